"""The quantized model: integer weights, fixed-point formats and tables, saved as ``quant.json`` + ``quant.npz``.

It is everything the emulator and the integer C emitter read; neither looks at the float IR again. A
"frac" is a number of fraction bits: an integer ``q`` in format ``frac`` stands for ``q * 2**-frac``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from liquid_edge.errors import ModelFormatError
from liquid_edge.quant.tables import Table

FORMAT_VERSION = 1
SCHEMES = ("int8", "a16w8", "pow2")
SCHEME_ACT_BITS = {"int8": 8, "a16w8": 16, "pow2": 16}
DT_FRAC = 16
DT_MAX_Q = 2 ** 30 - 1          # dt saturates just below 16384


@dataclass(eq=False)
class QLinear:
    """A linear layer whose columns form two groups, ``[0, split)`` and ``[split, cols)``, each with its own weight
    scale per row: a cell's ``[input, state]`` concatenation mixes ranges that one int8 scale per row cannot cover
    (raw sensor inputs of range 30 beside a state in (-1, 1) would leave the state weights 3 bits). Layers fed one
    kind of value have ``split == cols``.

    Per row ``r``: ``acc1 = bias[r] + sum_{c < split} weight[r, c] z[c]``, ``acc2 = sum_{c >= split} ...`` (int32),
    then ``floor((acc1 * multiplier[r] + acc2 * multiplier2[r] + 2**(shift[r]-1)) / 2**shift[r])`` on 64 bits
    (the quantizer keeps that sum below 2**63), or in the power-of-two scheme (``multiplier`` None)
    ``rshift_round(acc1, shift[r]) + rshift_round(acc2, shift2[r])``; then saturated.
    ``weight`` is int8 (zero under ``mask``); masked synapses are neither stored nor multiplied in C."""

    weight: np.ndarray
    bias: np.ndarray
    shift: np.ndarray
    multiplier: np.ndarray | None = None
    mask: np.ndarray | None = None
    split: int = 0
    multiplier2: np.ndarray | None = None
    shift2: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return int(self.weight.shape[0])

    @property
    def cols(self) -> int:
        return int(self.weight.shape[1])

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        out = {f"{prefix}.weight": self.weight, f"{prefix}.bias": self.bias, f"{prefix}.shift": self.shift,
               f"{prefix}.split": np.array(self.split)}
        for name in ("multiplier", "mask", "multiplier2", "shift2"):
            if getattr(self, name) is not None:
                out[f"{prefix}.{name}"] = getattr(self, name)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], prefix: str) -> "QLinear":
        return cls(arrays[f"{prefix}.weight"], arrays[f"{prefix}.bias"], arrays[f"{prefix}.shift"],
                   arrays.get(f"{prefix}.multiplier"), arrays.get(f"{prefix}.mask"), int(arrays[f"{prefix}.split"]),
                   arrays.get(f"{prefix}.multiplier2"), arrays.get(f"{prefix}.shift2"))


@dataclass(eq=False)
class QCell:
    units: int
    mode: str
    activation: str
    state_frac: int              # 16-bit format of the new state
    backbone: list[QLinear]
    backbone_out_frac: list[int]  # act-precision format of each backbone output
    backbone_table: list[str]     # table name per backbone layer ("" for relu)
    heads: QLinear                # rows: ff1, ff2, time_a, time_b (pure: ff1 only)
    ta_frac: int = 0
    ff1_frac: int = 0             # pure: format of ff1 and tau
    amp_frac: int = 0             # pure: format of A
    tau: np.ndarray | None = None  # pure: |w_tau| (int16)
    amp: np.ndarray | None = None  # pure: A (int16)


@dataclass(eq=False)
class QModel:
    name: str
    scheme: str
    act_bits: int
    state_bits: int
    input_size: int
    output_size: int
    input_inv_scale2: np.ndarray   # float32: 2 / input scale (the C quantizer truncates then halves)
    input_scale: np.ndarray        # float64: the real scale folded into the first layers
    output_frac: int
    cells: list[QCell]
    tables: dict[str, Table]
    memory: QLinear | None = None  # rows: i, ig, fg (+1 in bias), og
    c_frac: int = 0
    projection: QLinear | None = None
    calibration: dict = field(default_factory=dict)

    @property
    def hidden_size(self) -> int:
        return sum(cell.units for cell in self.cells)

    @property
    def state_size(self) -> int:
        return self.hidden_size * (2 if self.memory is not None else 1)

    def state_fracs(self) -> np.ndarray:
        """Storage format of every state element (hidden state, then LSTM cell state)."""
        drop = 16 - self.state_bits
        fracs = [cell.state_frac - drop for cell in self.cells for _ in range(cell.units)]
        if self.memory is not None:
            fracs += [self.c_frac - drop] * self.hidden_size
        return np.array(fracs, dtype=np.int64)

    def linears(self) -> list[tuple[str, QLinear]]:
        out = [] if self.memory is None else [("memory", self.memory)]
        for i, cell in enumerate(self.cells):
            out += [(f"cells.{i}.backbone.{k}", layer) for k, layer in enumerate(cell.backbone)]
            out.append((f"cells.{i}.heads", cell.heads))
        if self.projection is not None:
            out.append(("projection", self.projection))
        return out


def describe(qmodel: QModel) -> dict:
    """The manifest's ``quantization`` entry."""
    return {"scheme": qmodel.scheme, "act_bits": qmodel.act_bits, "weight_bits": 8, "state_bits": qmodel.state_bits,
            "output_frac": qmodel.output_frac, "dt_frac": DT_FRAC,
            "calibration": {"data": qmodel.calibration.get("data"), "method": qmodel.calibration.get("method")}}


def save(qmodel: QModel, directory: Path, stem: str = "quant") -> None:
    arrays: dict[str, np.ndarray] = {"input_inv_scale2": qmodel.input_inv_scale2, "input_scale": qmodel.input_scale}
    for name, layer in qmodel.linears():
        arrays.update(layer.arrays(name))
    cells = []
    for i, cell in enumerate(qmodel.cells):
        spec = {f.name: getattr(cell, f.name) for f in fields(cell)
                if f.name not in ("backbone", "heads", "tau", "amp")}
        spec["backbone_layers"] = len(cell.backbone)
        cells.append(spec)
        if cell.tau is not None:
            arrays[f"cells.{i}.tau"], arrays[f"cells.{i}.amp"] = cell.tau, cell.amp
    tables = {}
    for name, table in qmodel.tables.items():
        tables[name] = {"function": table.function, "in_frac": table.in_frac, "out_frac": table.out_frac,
                        "signed": table.signed}
        arrays[f"tables.{name}"] = table.values
    meta = {"format_version": FORMAT_VERSION, "name": qmodel.name, "scheme": qmodel.scheme,
            "act_bits": qmodel.act_bits, "state_bits": qmodel.state_bits, "input_size": qmodel.input_size,
            "output_size": qmodel.output_size, "output_frac": qmodel.output_frac, "c_frac": qmodel.c_frac,
            "memory": qmodel.memory is not None, "projection": qmodel.projection is not None,
            "cells": cells, "tables": tables, "calibration": qmodel.calibration}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.json").write_text(json.dumps(meta, indent=2) + "\n")
    np.savez(directory / f"{stem}.npz", **arrays)


def load(directory: Path, stem: str = "quant") -> QModel:
    meta_path, arrays_path = directory / f"{stem}.json", directory / f"{stem}.npz"
    if not meta_path.is_file() or not arrays_path.is_file():
        raise ModelFormatError(f"{directory} holds no quantized model ({stem}.json + {stem}.npz)",
                               "compile with --quantize")
    try:
        meta = json.loads(meta_path.read_text())
        with np.load(arrays_path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (ValueError, OSError) as exc:
        raise ModelFormatError(f"cannot read the quantized model in {directory}: {exc}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"{meta_path} has format version {meta.get('format_version')}, "
                               f"this liquid-edge reads {FORMAT_VERSION}", "recompile the model")
    tables = {name: Table(spec["function"], spec["in_frac"], spec["out_frac"], spec["signed"],
                          arrays[f"tables.{name}"]) for name, spec in meta["tables"].items()}
    cells = []
    for i, spec in enumerate(meta["cells"]):
        spec = dict(spec)
        layers = spec.pop("backbone_layers")
        cells.append(QCell(**spec, backbone=[QLinear.from_arrays(arrays, f"cells.{i}.backbone.{k}")
                                             for k in range(layers)],
                           heads=QLinear.from_arrays(arrays, f"cells.{i}.heads"),
                           tau=arrays.get(f"cells.{i}.tau"), amp=arrays.get(f"cells.{i}.amp")))
    return QModel(
        name=meta["name"], scheme=meta["scheme"], act_bits=meta["act_bits"], state_bits=meta["state_bits"],
        input_size=meta["input_size"], output_size=meta["output_size"],
        input_inv_scale2=arrays["input_inv_scale2"], input_scale=arrays["input_scale"],
        output_frac=meta["output_frac"], cells=cells, tables=tables,
        memory=QLinear.from_arrays(arrays, "memory") if meta["memory"] else None, c_frac=meta["c_frac"],
        projection=QLinear.from_arrays(arrays, "projection") if meta["projection"] else None,
        calibration=meta["calibration"])
