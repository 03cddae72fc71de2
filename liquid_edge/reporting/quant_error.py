"""Quantization error per tensor: the integer emulator and the float64 reference run side by side.

Both record every intermediate of every step under the same names (:data:`liquid_edge.reference.Recorder`): the
quantized inputs, each backbone layer, the four heads, the table outputs, the gate, the new state of each layer
(as stored, so an 8-bit state shows its storage error), the LSTM tensors of mixed-memory models and the outputs.
Each side follows its own trajectory, as on a device: the error of a tensor includes what earlier steps left in
the state. The reference reads the original float inputs, so the figures include the input quantization: what a
user of the float API of the quantized C sees.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liquid_edge import reference
from liquid_edge.ir import Model


@dataclass(frozen=True)
class TensorError:
    name: str
    count: int                  # values compared
    low: float                  # range of the float reference
    high: float
    max_abs: float
    rmse: float
    relative: float             # RMSE / (high - low)


def tensor_errors(model_dir: Path, model: Model, x: np.ndarray, dt: np.ndarray) -> list[TensorError]:
    """One row per recorded tensor, in the order a step computes them."""
    from liquid_edge.quant import qmodel
    from liquid_edge.quant.emulator import Emulator

    emulator = Emulator(qmodel.load(Path(model_dir)))
    quantized, exact = _Recording(), _Recording()
    emulator.run_q(emulator.quantize_inputs(x), emulator.quantize_dt(dt), record=quantized)
    reference.run(model, x, dt, record=exact)
    names = _display_names(model)
    # The integer path forms every tensor the reference does but a relu layer's input, which it never needs.
    return [_error(names(name), quantized.stacked(name), exact.stacked(name))
            for name in exact.values if name in quantized.values]


class _Recording:
    """A :data:`~liquid_edge.reference.Recorder` keeping the real value of every tensor of every step."""

    def __init__(self):
        self.values: dict[str, list[np.ndarray]] = defaultdict(list)

    def __call__(self, name: str, values: np.ndarray, scale=1.0) -> None:
        self.values[name].append(np.asarray(values, dtype=np.float64) * scale)

    def stacked(self, name: str) -> np.ndarray:
        return np.stack(self.values[name], axis=1)


def _display_names(model: Model):
    """``cells.<i>.`` read as the wiring layer's name (inter, command, motor), or dropped for a one-cell model."""
    layer_names = model.wiring.layer_names if model.wiring is not None else ("",) * len(model.cells)

    def display(name: str) -> str:
        parts = name.split(".", 2)
        if parts[0] != "cells":
            return name
        layer = layer_names[int(parts[1])]
        return f"{layer}.{parts[2]}" if layer else parts[2]

    return display


def _error(name: str, quantized: np.ndarray, exact: np.ndarray) -> TensorError:
    difference = quantized - exact
    low, high = float(exact.min()), float(exact.max())
    rmse = float(np.sqrt(np.mean(difference ** 2)))
    return TensorError(name, int(exact.size), low, high, float(np.max(np.abs(difference))), rmse,
                       rmse / (high - low) if high > low else 0.0)
