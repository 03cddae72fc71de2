"""Build the IR from the tensors of one ncps ``CfC`` module (keys relative to that module).

Key layout (ncps 1.0.x, unchanged since 0.0.8):

* ``rnn_cell.backbone.<k>.{weight,bias}``: Linear layers at Sequential indices; activations and dropout take the
  indices in between, so the layers are simply the indices that hold a weight, in numeric order.
* ``rnn_cell.{ff1,ff2,time_a,time_b}.{weight,bias}``; pure mode: ``rnn_cell.{ff1,w_tau,A}``.
* wired: ``rnn_cell.layer_<l>.{sparsity_mask,ff1,ff2,time_a,time_b}`` (or ``w_tau``/``A`` in pure mode).
* mixed memory: ``lstm.input_map.{weight,bias}``, ``lstm.recurrent_map.weight``; projection: ``fc.{weight,bias}``.

What the tensors cannot tell (default vs no_gate, the backbone activation) comes from :class:`CfCOptions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from liquid_edge.errors import ConfigError, ModelFormatError
from liquid_edge.ir import ACTIVATIONS, MODES, WIRED_LAYER_NAMES, CfCCell, Linear, LSTMMemory, Model, Source, Wiring

_BACKBONE_KEY = re.compile(r"^rnn_cell\.backbone\.(\d+)\.weight$")
_WIRED_LAYER_KEY = re.compile(r"^rnn_cell\.layer_(\d+)\.ff1\.weight$")


@dataclass(frozen=True)
class CfCOptions:
    """Hyper-parameters a state_dict cannot tell. ``None`` means unknown."""

    mode: str | None = None
    activation: str | None = None
    wiring_kind: str | None = None


def is_pure(tensors: dict[str, np.ndarray]) -> bool:
    return any(key.endswith(".w_tau") for key in tensors)


def is_wired(tensors: dict[str, np.ndarray]) -> bool:
    return any(_WIRED_LAYER_KEY.match(key) for key in tensors)


def has_backbone(tensors: dict[str, np.ndarray]) -> bool:
    return any(_BACKBONE_KEY.match(key) for key in tensors)


#: What the tensors cannot tell, with the values that are possible (pure mode is seen in the tensors).
CHOICES = {"mode": ("default", "no_gate"), "activation": ACTIVATIONS}


class MissingSettings(ConfigError):
    """Settings the tensors cannot tell and no source gave; the loader words the fix for its caller."""

    def __init__(self, keys: list[str], fix: str | None = None):
        self.keys = keys
        described = {"mode": "whether the CfC mode is 'default' or 'no_gate'",
                     "activation": "which backbone activation the CfC uses"}
        super().__init__("the checkpoint does not say " + " nor ".join(described[key] for key in keys),
                         fix or " and ".join(f"set {key} to one of {', '.join(CHOICES[key])}" for key in keys))


def build_cfc(tensors: dict[str, np.ndarray], options: CfCOptions, name: str,
              source: Source | None = None) -> Model:
    """Turn the tensors of one ncps CfC into a validated :class:`Model`.

    Raises :class:`ConfigError` when the mode or activation is needed but unknown (listing the choices), and
    :class:`ModelFormatError` for missing or malformed tensors.
    """
    mode = "pure" if is_pure(tensors) else options.mode
    if is_pure(tensors) and options.mode not in (None, "pure"):
        raise ConfigError(f"the checkpoint is a pure-mode CfC (it has w_tau) but mode '{options.mode}' was given",
                          "drop the mode option or pass --mode pure")
    if mode == "pure" and not is_pure(tensors):
        raise ConfigError("mode 'pure' was given but the checkpoint is not a pure-mode CfC (it has no w_tau)",
                          "pass --mode default or --mode no_gate")
    missing = [key for key, unknown in (("mode", mode is None),
                                        ("activation", options.activation is None and not is_wired(tensors)
                                         and has_backbone(tensors))) if unknown]
    if missing:
        raise MissingSettings(missing)
    if mode not in MODES:
        raise ConfigError(f"unknown CfC mode '{mode}'", f"use one of {', '.join(MODES)}")
    wired = is_wired(tensors)
    if options.wiring_kind is not None and not wired:
        raise ConfigError(f"wiring '{options.wiring_kind}' was given but the checkpoint is a dense CfC",
                          "remove the wiring setting")
    if wired:
        cells = _wired_cells(tensors, mode)
        input_size = cells[0].input_size
        wiring = Wiring(options.wiring_kind or "unknown", _layer_names(len(cells)))
    else:
        activation = options.activation
        if activation is not None and activation not in ACTIVATIONS:
            raise ConfigError(f"unknown activation '{activation}'", f"use one of {', '.join(ACTIVATIONS)}")
        # Without a backbone the activation is never applied; a fixed name keeps equal models equal.
        cell, input_size = _dense_cell(tensors, mode, activation if has_backbone(tensors) else "lecun_tanh")
        cells = (cell,)
        wiring = None
    memory = None
    if "lstm.input_map.weight" in tensors:
        memory = LSTMMemory(_linear(tensors, "lstm.input_map"), _linear(tensors, "lstm.recurrent_map", bias=False))
    projection = _linear(tensors, "fc") if "fc.weight" in tensors else None
    return Model(name=name, input_size=input_size, cells=cells, wiring=wiring, memory=memory,
                 projection=projection, source=source).validate()


def _layer_names(count: int) -> tuple[str, ...]:
    return WIRED_LAYER_NAMES if count == len(WIRED_LAYER_NAMES) else tuple(f"layer_{i}" for i in range(count))


def _tensor(tensors: dict[str, np.ndarray], key: str) -> np.ndarray:
    try:
        return np.asarray(tensors[key], dtype=np.float64)
    except KeyError:
        raise ModelFormatError(f"tensor {key} is missing", "check that the checkpoint is complete") from None


def _linear(tensors: dict[str, np.ndarray], prefix: str, *, bias: bool = True,
            mask: np.ndarray | None = None) -> Linear:
    weight = _tensor(tensors, f"{prefix}.weight")
    if mask is not None:
        if mask.shape != weight.shape:
            raise ModelFormatError(f"tensor {prefix}.weight has shape {weight.shape} but its sparsity mask "
                                   f"has shape {mask.shape}")
        # ncps keeps the initial values of masked weights in the file; they must not reach anything downstream.
        weight = np.where(mask != 0, weight, 0.0)
    return Linear(weight, _tensor(tensors, f"{prefix}.bias") if bias else None, mask)


def _heads(tensors: dict[str, np.ndarray], prefix: str, mode: str, mask: np.ndarray | None) -> dict:
    heads = {"ff1": _linear(tensors, f"{prefix}.ff1", mask=mask)}
    if mode == "pure":
        heads["w_tau"] = _tensor(tensors, f"{prefix}.w_tau").reshape(-1)
        heads["A"] = _tensor(tensors, f"{prefix}.A").reshape(-1)
    else:
        heads["ff2"] = _linear(tensors, f"{prefix}.ff2", mask=mask)
        heads["time_a"] = _linear(tensors, f"{prefix}.time_a")
        heads["time_b"] = _linear(tensors, f"{prefix}.time_b")
    return heads


def _dense_cell(tensors: dict[str, np.ndarray], mode: str, activation: str) -> tuple[CfCCell, int]:
    indices = sorted(int(m.group(1)) for key in tensors if (m := _BACKBONE_KEY.match(key)))
    backbone = tuple(_linear(tensors, f"rnn_cell.backbone.{i}") for i in indices)
    units = _tensor(tensors, "rnn_cell.ff1.weight").shape[0]
    concat_width = backbone[0].in_features if backbone else _tensor(tensors, "rnn_cell.ff1.weight").shape[1]
    input_size = concat_width - units
    cell = CfCCell(input_size=input_size, units=units, mode=mode, activation=activation, backbone=backbone,
                   **_heads(tensors, "rnn_cell", mode, None))
    return cell, input_size


def _wired_cells(tensors: dict[str, np.ndarray], mode: str) -> tuple[CfCCell, ...]:
    layers = sorted(int(m.group(1)) for key in tensors if (m := _WIRED_LAYER_KEY.match(key)))
    if layers != list(range(len(layers))):
        raise ModelFormatError(f"wired CfC layers are not numbered 0..n-1 (found {layers})")
    cells = []
    for layer in layers:
        prefix = f"rnn_cell.layer_{layer}"
        mask = np.abs(_tensor(tensors, f"{prefix}.sparsity_mask"))
        units, width = _tensor(tensors, f"{prefix}.ff1.weight").shape
        # Wired cells have no backbone; ncps hard-codes lecun_tanh there, unused.
        cells.append(CfCCell(input_size=width - units, units=units, mode=mode, activation="lecun_tanh",
                             backbone=(), **_heads(tensors, prefix, mode, mask)))
    return tuple(cells)
