"""Settings a state dict cannot tell (CfC mode, backbone activation), and where they come from.

Sources, all optional, all checked against each other (a disagreement is an error, never a silent choice):

1. the ``--mode`` / ``--activation`` options (``mode=`` / ``activation=`` in the Python API);
2. a sidecar JSON next to the checkpoint, named after it plus ``.json`` (``model.pt`` -> ``model.pt.json``);
3. a config dict saved in the checkpoint beside the state dict: ``liquid_edge_config`` (same schema as the
   sidecar);
4. the pickled module itself, for whole-module pickles.

The common ``config`` / ``hparams`` / ``hyper_parameters`` dicts of training frameworks describe a user's whole
model (an ``activation`` there may be the encoder's), so they are never a source: when a setting is missing,
the error quotes what they say as a suggestion (:func:`suggestions`).

Schema of the sidecar and of ``liquid_edge_config``: ``mode``, ``activation``, ``wiring`` (wiring kind, for
reports), ``name`` (model name), and ``modules``: ``{module path: {the same keys}}`` for files with several
modules. Top-level keys apply to every module; a key set both at top level and for a module must agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from liquid_edge.errors import ConfigError
from liquid_edge.ir import ACTIVATIONS, MODES
from liquid_edge.loaders.safe_unpickle import Record

SETTINGS = ("mode", "activation", "wiring", "name")
STRICT_CONFIG_KEY = "liquid_edge_config"
GENERIC_CONFIG_KEYS = ("config", "hparams", "hyper_parameters")

_VALID = {"mode": MODES, "activation": ACTIVATIONS}


def sidecar_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + ".json")


class ConfigSource:
    """One place that may say something about the settings of each module."""

    def __init__(self, label: str, common: dict[str, Any], per_module: dict[str, dict[str, Any]] | None = None):
        self.label = label
        self.common = common
        self.per_module = per_module or {}

    def settings_for(self, module_path: str) -> dict[str, Any]:
        merged = dict(self.common)
        for key, value in self.per_module.get(module_path, {}).items():
            if key in merged and merged[key] != value:
                raise ConfigError(f"{self.label} sets {key} to '{merged[key]}' at top level and to '{value}' for "
                                  f"module '{module_path}'", "keep one of them")
            merged[key] = value
        return merged


def options_source(mode: str | None, activation: str | None, cli: bool = False) -> ConfigSource:
    """The caller's own settings, named as the caller wrote them: CLI options, or Python API settings."""
    given = {key: value for key, value in (("mode", mode), ("activation", activation)) if value is not None}
    names = " and ".join(f"--{key}" if cli else key for key in given)
    noun = ("option" if cli else "setting") + ("s" if len(given) > 1 else "")
    label = f"the {names} {noun}" if given else "the options"
    return ConfigSource(label, _checked(given, label))


def sidecar_source(checkpoint: Path) -> ConfigSource | None:
    path = sidecar_path(checkpoint)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"sidecar {path} is not valid JSON: {exc}", "fix or remove the sidecar") from None
    return _structured_source(f"sidecar {path.name}", data)


def checkpoint_sources(content: Any) -> list[ConfigSource]:
    content = _as_dict(content)
    if content is None:
        return []
    if STRICT_CONFIG_KEY in content:
        return [_structured_source(f"checkpoint entry '{STRICT_CONFIG_KEY}'", content[STRICT_CONFIG_KEY])]
    return []


def suggestions(content: Any, keys: list[str]) -> list[str]:
    """What the checkpoint's generic config dicts say about ``keys``, as phrases for an error message (only
    values that are valid CfC settings: ``"mode": "train"`` is not about the CfC)."""
    content = _as_dict(content) or {}
    found = []
    for entry_key in GENERIC_CONFIG_KEYS:
        entry = _as_dict(content.get(entry_key)) or {}
        said = [f"{key} '{entry[key]}'" for key in keys
                if isinstance(entry.get(key), str) and entry[key] in _VALID[key]]
        if said:
            found.append(f"its '{entry_key}' entry says {' and '.join(said)}")
    return found


def _as_dict(value: Any) -> dict | None:
    """A dict, or the items of a pickled dict subclass (e.g. Lightning's AttributeDict); else None."""
    if isinstance(value, dict):
        return value
    return value.items if isinstance(value, Record) and value.items else None


def pickled_source(settings: dict[str, str]) -> ConfigSource:
    return ConfigSource("the pickled module", _checked(settings, "the pickled module"))


def resolve(sources: list[ConfigSource], module_path: str) -> dict[str, Any]:
    """Merge what every source says about one module; raise :class:`ConfigError` on any disagreement."""
    said: dict[str, list[tuple[str, Any]]] = {}
    for source in sources:
        for key, value in source.settings_for(module_path).items():
            said.setdefault(key, []).append((source.label, value))
    resolved = {}
    for key, claims in said.items():
        if len({value for _, value in claims}) > 1:
            listed = ", ".join(f"'{value}' from {label}" for label, value in claims)
            raise ConfigError(f"conflicting {key}: {listed}", "make them agree or remove all but one")
        resolved[key] = claims[0][1]
    return resolved


def _structured_source(label: str, data: Any) -> ConfigSource:
    if not isinstance(data, dict):
        raise ConfigError(f"{label} must be a JSON object", f"use keys {', '.join(SETTINGS)} and modules")
    common = {key: value for key, value in data.items() if key != "modules"}
    modules = data.get("modules", {})
    if not isinstance(modules, dict) or not all(isinstance(v, dict) for v in modules.values()):
        raise ConfigError(f"{label}: 'modules' must map module paths to objects",
                          'e.g. {"modules": {"encoder.cfc": {"mode": "default"}}}')
    return ConfigSource(label, _checked(common, label),
                        {path: _checked(settings, f"{label} (module '{path}')") for path, settings in modules.items()})


def _checked(settings: dict[str, Any], label: str) -> dict[str, Any]:
    for key, value in settings.items():
        if key not in SETTINGS:
            raise ConfigError(f"{label} has an unknown key '{key}'", f"use {', '.join(SETTINGS)}")
        if key in _VALID and value not in _VALID[key]:
            raise ConfigError(f"{label} gives {key} '{value}'", f"use one of {', '.join(_VALID[key])}")
        if key in ("wiring", "name") and (not isinstance(value, str) or not value):
            raise ConfigError(f"{label} gives {key} {value!r}", f"{key} must be a non-empty string")
    return settings
