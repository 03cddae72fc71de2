"""Checkpoints to IR: ``load_model(path)`` reads an ncps PyTorch checkpoint into a validated :class:`Model`.

Steps: :mod:`.checkpoint_file` reads the file safely, :mod:`.discovery` finds the ncps modules in it,
:mod:`.config` settles what the tensors cannot tell, :mod:`.ncps_layout` builds the IR.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from liquid_edge.errors import ConfigError, ModelFormatError
from liquid_edge.ir import Model, Source
from liquid_edge.loaders import config
from liquid_edge.loaders.checkpoint_file import read_checkpoint
from liquid_edge.loaders.discovery import FoundModule, find_modules, top_level_summary
from liquid_edge.loaders.ncps_layout import CHOICES, CfCOptions, MissingSettings, build_cfc

__all__ = ["load_model", "FORMAT_STATE_DICT", "FORMAT_MODULE_PICKLE"]

#: ``Source.format`` of a model: where its settings could come from.
FORMAT_STATE_DICT = "state_dict"
FORMAT_MODULE_PICKLE = "module_pickle"


def load_model(path: str | Path, *, module: str | None = None, mode: str | None = None,
               activation: str | None = None, cli: bool = False) -> Model:
    """Load one ncps CfC from a state dict or a whole-module pickle (read without running code from it).

    ``module`` is the key prefix of the CfC when the file holds several ncps modules; ``mode`` and ``activation``
    supply what a state dict cannot tell (see :mod:`liquid_edge.loaders.config` for the other sources); ``cli``
    names them as command-line options in messages.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    found = find_modules(checkpoint.content)
    if not found:
        raise ModelFormatError(f"{path} holds no ncps CfC module ({top_level_summary(checkpoint.content)})",
                               "pass a checkpoint of an ncps CfC, or of a model that contains one")
    chosen = _choose(found, module, path)
    if chosen.kind == "ltc":
        raise ModelFormatError(f"module {chosen.label} of {path} is an ncps LTC: LTC is not supported yet",
                               "CfC models (dense or NCP-wired) are supported")
    _check_finite(chosen, path)
    sources = [config.options_source(mode, activation, cli)]
    sidecar = config.sidecar_source(path)
    if sidecar is not None:
        sources.append(sidecar)
    sources += config.checkpoint_sources(checkpoint.content)
    if chosen.pickled is not None:
        sources.append(config.pickled_source(chosen.pickled))
    _check_module_paths(sources, found)
    settings = config.resolve(sources, chosen.path)
    source = Source(path=str(path), sha256=checkpoint.sha256,
                    format=FORMAT_STATE_DICT if chosen.pickled is None else FORMAT_MODULE_PICKLE,
                    module=chosen.path)
    options = CfCOptions(mode=settings.get("mode"), activation=settings.get("activation"),
                         wiring_kind=settings.get("wiring"))
    try:
        return build_cfc(chosen.tensors, options, settings.get("name", path.stem), source)
    except MissingSettings as exc:
        raise MissingSettings(exc.keys, _missing_fix(exc.keys, path, checkpoint.content, cli)) from None
    except ModelFormatError as exc:
        # Tensor names in these messages are relative to the module: say which module of which file.
        where = f"module {chosen.path} of {path}" if chosen.path else str(path)
        raise ModelFormatError(f"{exc.problem} ({where})", exc.fix) from None


def _missing_fix(keys: list[str], path: Path, content, cli: bool) -> str:
    """How to give the missing settings, in the caller's spelling, with what the checkpoint's generic config
    dicts suggest (never taken silently: they may describe another part of the user's model)."""
    spelled = [f"--{key} {'|'.join(CHOICES[key])}" if cli else f"{key}={'|'.join(CHOICES[key])}" for key in keys]
    fix = f"pass {' and '.join(spelled)}, or set {' and '.join(keys)} in {config.sidecar_path(path).name} next to it"
    hints = config.suggestions(content, keys)
    if hints:
        fix += f"; {', '.join(hints)}, which may describe another part of the model"
    return fix


def _check_finite(module: FoundModule, path: Path) -> None:
    """Name the checkpoint's own key: the user has to find the tensor in their file, not in the IR."""
    for key, tensor in module.tensors.items():
        if tensor.dtype.kind == "f" and not np.all(np.isfinite(tensor)):
            bad = int(np.count_nonzero(~np.isfinite(tensor)))
            name = f"{module.path}.{key}" if module.path else key
            raise ModelFormatError(f"tensor {name} in {path} holds {bad} non-finite value(s) (NaN or Inf)",
                                   "retrain or repair the checkpoint")


def _listing(found: list[FoundModule]) -> str:
    return ", ".join(f"{m.label} ({m.kind.upper() if m.kind == 'ltc' else 'CfC'})" for m in found)


def _choose(found: list[FoundModule], module: str | None, path: Path) -> FoundModule:
    if module is not None:
        wanted = module.strip(".")
        for candidate in found:
            if candidate.path == wanted:
                return candidate
        raise ConfigError(f"{path} has no ncps module '{module}'", f"choose one of: {_listing(found)}")
    if len(found) > 1:
        raise ConfigError(f"{path} holds {len(found)} ncps modules: {_listing(found)}",
                          "pass --module with the one to load")
    return found[0]


def _check_module_paths(sources: list[config.ConfigSource], found: list[FoundModule]) -> None:
    """A per-module setting for a module that does not exist is a typo: say so instead of ignoring it."""
    known = {m.path for m in found}
    for source in sources:
        for module_path in source.per_module:
            if module_path not in known:
                raise ConfigError(f"{source.label} configures module '{module_path}', which is not in the file",
                                  f"modules in the file: {_listing(found)}")
