"""Find the ncps modules inside a loaded checkpoint, wherever the user's own model put them.

Two shapes of content are searched the same way:

* state dicts (possibly nested in wrapper dicts such as ``{"state_dict": ...}``): keys are joined with dots and
  an ncps CfC is recognised by its key layout, ``<prefix>.rnn_cell.ff1.weight`` (dense) or
  ``<prefix>.rnn_cell.layer_0.ff1.weight`` (wired); the prefix is the module path;
* whole-module pickles: :class:`~liquid_edge.loaders.safe_unpickle.Record` trees, where ncps ``CfC`` records are
  found by class name through the ``_modules`` of any ``nn.Module`` container, and their hyper-parameters (mode,
  activation, wiring kind) are read from the pickled attributes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from liquid_edge.errors import ConfigError, ModelFormatError
from liquid_edge.loaders.safe_unpickle import Record

#: Top-level keys that wrap a state dict (plain PyTorch habits and Lightning); stripped from module paths.
WRAPPER_KEYS = ("state_dict", "model_state_dict")

_CFC_KEY = re.compile(r"^(?:(.*)\.)?rnn_cell\.(?:layer_\d+\.)?ff1\.weight$")
_LTC_KEY = re.compile(r"^(?:(.*)\.)?rnn_cell\.gleak$")
_CFC_PARTS = ("rnn_cell.", "lstm.", "fc.")

# The classes a pickled CfC is interpreted through (full names: a look-alike class elsewhere is not trusted).
_CFC_CLASS = "ncps.torch.cfc.CfC"
_WIRED_CELL_CLASS = "ncps.torch.wired_cfc_cell.WiredCfCCell"
_LTC_CLASSES = ("ncps.torch.ltc.LTC", "ncps.torch.ltc_cell.LTCCell")
_TORCH_ACTIVATIONS = "torch.nn.modules.activation."
_ACTIVATION_CLASSES = {"ncps.torch.cfc_cell.LeCun": "lecun_tanh", _TORCH_ACTIVATIONS + "SiLU": "silu",
                       _TORCH_ACTIVATIONS + "ReLU": "relu", _TORCH_ACTIVATIONS + "Tanh": "tanh",
                       _TORCH_ACTIVATIONS + "GELU": "gelu"}
_NOT_ACTIVATIONS = ("torch.nn.modules.linear.Linear", "torch.nn.modules.dropout.Dropout",
                    "torch.nn.modules.linear.Identity")


@dataclass(frozen=True)
class FoundModule:
    """One ncps module: its path in the checkpoint, its tensors (keys relative to it) and pickled settings."""

    path: str
    kind: str                                   # "cfc" or "ltc"
    tensors: dict[str, np.ndarray]
    pickled: dict[str, str] | None = None   # mode/activation/wiring of a whole-module pickle; None: state dict

    @property
    def label(self) -> str:
        return self.path or "(root)"


def find_modules(content: Any) -> list[FoundModule]:
    flat: dict[str, np.ndarray] = {}
    found: list[FoundModule] = []
    _walk(content, "", flat, found, top=True)
    found.extend(_modules_from_keys(flat))
    return sorted(found, key=lambda module: module.path)


def top_level_summary(content: Any) -> str:
    """A short description of what the checkpoint holds, for the 'no ncps module' error."""
    if isinstance(content, Record) and content.items:
        content = content.items
    if isinstance(content, dict):
        keys = [str(k) for k in content]
        shown = ", ".join(keys[:12]) + (f", ... ({len(keys)} keys)" if len(keys) > 12 else "")
        return f"top-level keys: {shown}" if keys else "an empty dict"
    if isinstance(content, Record):
        return f"a pickled {content.qualname}"
    return f"a {type(content).__name__}"


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _walk(value: Any, path: str, flat: dict, found: list, top: bool = False) -> None:
    if isinstance(value, np.ndarray):
        flat[path] = value
    elif isinstance(value, Record) and value.items:
        _walk(value.items, path, flat, found, top)
    elif isinstance(value, Record):
        _walk_record(value, path, flat, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, "" if top and key in WRAPPER_KEYS else _join(path, key), flat, found)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _walk(item, _join(path, index), flat, found)


def _walk_record(record: Record, path: str, flat: dict, found: list) -> None:
    if record.qualname == _CFC_CLASS:
        found.append(FoundModule(path, "cfc", module_tensors(record), _pickled_options(record)))
    elif record.qualname in _LTC_CLASSES:
        found.append(FoundModule(path, "ltc", {}, {}))
    else:
        # Any other nn.Module (the user's own container, Sequential, ...) is searched through its submodules.
        for name, child in _submodules(record):
            _walk(child, _join(path, name), flat, found)


def _submodules(record: Record) -> Iterator[tuple[str, Any]]:
    modules = record.attributes().get("_modules")
    if isinstance(modules, dict):
        yield from ((name, child) for name, child in modules.items() if child is not None)


def module_tensors(record: Record, prefix: str = "") -> dict[str, np.ndarray]:
    """What ``module.state_dict()`` would return for a pickled module: parameters, persistent buffers."""
    attrs = record.attributes()
    tensors: dict[str, np.ndarray] = {}
    transient = attrs.get("_non_persistent_buffers_set")
    transient = transient if isinstance(transient, (set, frozenset)) else set()
    for group in ("_parameters", "_buffers"):
        entries = attrs.get(group)
        for name, value in (entries.items() if isinstance(entries, dict) else ()):
            if value is None or (group == "_buffers" and name in transient):
                continue
            if not isinstance(value, np.ndarray):
                raise ModelFormatError(f"{_join(prefix, name)} in the pickled module is not a tensor")
            tensors[_join(prefix, name)] = value
    for name, child in _submodules(record):
        if isinstance(child, Record):
            tensors.update(module_tensors(child, _join(prefix, name)))
    return tensors


def _pickled_options(cfc: Record) -> dict[str, str]:
    """Mode, backbone activation and wiring kind of a pickled ncps CfC (what a state dict cannot tell)."""
    cell = dict(_submodules(cfc)).get("rnn_cell")
    if not isinstance(cell, Record):
        raise ModelFormatError("the pickled CfC has no rnn_cell")
    options: dict[str, str] = {}
    if cell.qualname == _WIRED_CELL_CLASS:
        layers = [child for _, child in _submodules(cell) if isinstance(child, Record)]
        modes = [layer.attributes().get("mode") for layer in layers]
        if not modes or any(mode != modes[0] for mode in modes):
            raise ModelFormatError(f"the pickled wired CfC has no single mode (layers say {modes})")
        options["mode"] = modes[0]
        wiring = cfc.attributes().get("wiring", cell.attributes().get("_wiring"))
        if isinstance(wiring, Record):
            options["wiring"] = wiring.class_name
    else:
        options["mode"] = cell.attributes().get("mode")
        backbone = dict(_submodules(cell)).get("backbone")
        if isinstance(backbone, Record):
            options["activation"] = _backbone_activation(backbone)
    return {key: value for key, value in options.items() if value is not None}


def _backbone_activation(backbone: Record) -> str:
    names = set()
    for _, layer in _submodules(backbone):
        if not isinstance(layer, Record) or layer.qualname in _NOT_ACTIVATIONS:
            continue
        if layer.qualname not in _ACTIVATION_CLASSES:
            raise ConfigError(f"the pickled CfC backbone uses {layer.qualname}, which is not an ncps activation")
        if layer.qualname.endswith(".GELU") and layer.attributes().get("approximate", "none") != "none":
            raise ConfigError("the pickled CfC backbone uses GELU with the tanh approximation; only exact GELU "
                              "(what ncps builds) is supported")
        names.add(_ACTIVATION_CLASSES[layer.qualname])
    if len(names) != 1:
        raise ModelFormatError(f"cannot tell the backbone activation of the pickled CfC (found {sorted(names)})")
    return names.pop()


def _modules_from_keys(flat: dict[str, np.ndarray]) -> Iterator[FoundModule]:
    prefixes = {m.group(1) or "" for key in flat if (m := _CFC_KEY.match(key))}
    for prefix in sorted(prefixes):
        start = f"{prefix}." if prefix else ""
        tensors = {key[len(start):]: value for key, value in flat.items()
                   if key.startswith(start) and key[len(start):].startswith(_CFC_PARTS)}
        yield FoundModule(prefix, "cfc", tensors)
    for prefix in sorted({m.group(1) or "" for key in flat if (m := _LTC_KEY.match(key))}):
        yield FoundModule(prefix, "ltc", {})
