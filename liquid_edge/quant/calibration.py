"""Calibration: ranges of every intermediate the quantizer needs, collected over full recurrent rollouts.

The float reference is replayed step by step over whole sequences (the state error a recurrent model
accumulates only shows there, never in single steps), recording the absolute values of:

* ``x.<j>``: each input feature;
* ``cells.<i>.backbone.<k>``: each backbone pre-activation (sizes the silu/gelu/relu formats);
* ``cells.<i>.time_a``: the time_a head (it is multiplied by dt before the sigmoid);
* ``cells.<i>.ff1`` and ``cells.<i>.state`` in pure mode (no bounded nonlinearity there);
* ``memory.c``: the LSTM cell state; ``output``: the projection output.

Two methods turn the recorded values into one range per tensor: ``minmax`` (largest |value|) and
``percentile`` (the 99.99th percentile of |value|, the sample at or below it, so that rare outliers
(fewer than 1 in 10,000 values) do not set the range; values beyond it saturate).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from liquid_edge.data import Sequences, load_sequences, random_sequences
from liquid_edge.errors import LiquidEdgeError
from liquid_edge.ir import Model
from liquid_edge.output import progress
from liquid_edge.reference import ACTIVATION_FUNCTIONS, initial_state, linear, lstm_step, sigmoid

METHODS = ("minmax", "percentile")
PERCENTILE = 99.99


class CalibrationError(LiquidEdgeError):
    """Calibration data is missing or unusable."""


def random_calibration(model: Model, count: int = 16, steps: int = 200) -> Sequences:
    """Unit-normal inputs and irregular dt: only for smoke tests, the ranges of real data may differ widely."""
    progress("warning: calibrating on random data; the ranges of real inputs may differ widely "
             "(pass --calibration FILE with representative sequences)")
    return random_sequences(model.input_size, count, steps, seed=1234)


def assert_masked_weights_zero(model: Model) -> None:
    """Masked synapses must be zero before any statistic or scale is computed (the IR guarantees it)."""
    for name, layer in model.linears():
        if layer.mask is not None and np.any(layer.weight[layer.mask == 0] != 0):
            raise CalibrationError(f"{name} has non-zero weights under its sparsity mask",
                                   "zero masked weights when building the IR")


def collect(model: Model, data: Sequences) -> dict[str, np.ndarray]:
    """Every recorded tensor as a flat array of absolute values."""
    assert_masked_weights_zero(model)
    if data.count == 0 or data.steps == 0:
        raise CalibrationError("the calibration data holds no steps", "pass sequences with at least one step")
    records: dict[str, list[np.ndarray]] = defaultdict(list)

    def record(name: str, value: np.ndarray) -> None:
        records[name].append(np.abs(value).reshape(value.shape[0], -1))

    state = initial_state(model, data.count)
    h, c = state.h, state.c
    for t in range(data.steps):
        x = data.x[:, t]
        dt = np.ones((data.count, 1)) if data.dt is None else data.dt[:, t:t + 1]
        for j in range(model.input_size):
            record(f"x.{j}", x[:, j:j + 1])
        if model.memory is not None:
            h, c = lstm_step(model.memory, x, h, c)
            record("memory.c", c)
        layer_input, parts, offset = x, [], 0
        for i, cell in enumerate(model.cells):
            z = np.concatenate([layer_input, h[:, offset:offset + cell.units]], axis=1)
            for k, layer in enumerate(cell.backbone):
                pre = linear(layer, z)
                record(f"cells.{i}.backbone.{k}", pre)
                z = ACTIVATION_FUNCTIONS[cell.activation](pre)
            ff1 = linear(cell.ff1, z)
            if cell.mode == "pure":
                new = -cell.A * np.exp(-dt * (np.abs(cell.w_tau) + np.abs(ff1))) * ff1 + cell.A
                record(f"cells.{i}.ff1", ff1)
                record(f"cells.{i}.state", new)
            else:
                ta = linear(cell.time_a, z)
                record(f"cells.{i}.time_a", ta)
                gate = sigmoid(ta * dt + linear(cell.time_b, z))
                f1, f2 = np.tanh(ff1), np.tanh(linear(cell.ff2, z))
                new = f1 + gate * f2 if cell.mode == "no_gate" else f1 * (1.0 - gate) + gate * f2
            parts.append(new)
            layer_input = new
            offset += cell.units
        h = np.concatenate(parts, axis=1)
        if model.projection is not None:
            record("output", linear(model.projection, layer_input))
    return {name: np.concatenate(chunks, axis=1).ravel() for name, chunks in records.items()}


def ranges(model: Model, data: Sequences, method: str = "percentile") -> dict[str, float]:
    """One range (largest |value| kept) per recorded tensor."""
    if method not in METHODS:
        raise CalibrationError(f"unknown calibration method '{method}'", f"use one of {', '.join(METHODS)}")
    values = collect(model, data)
    if method == "minmax":
        return {name: float(np.max(v)) for name, v in values.items()}
    return {name: float(np.percentile(v, PERCENTILE, method="lower")) for name, v in values.items()}


RANDOM = "random"


def calibration_data(source: str | None, model: Model) -> Sequences:
    """The sequences named by ``--calibration``: a data file, or ``random`` (explicit, with a warning)."""
    if source is None:
        raise CalibrationError("quantization needs calibration data",
                               "pass --calibration FILE (.npz/.npy/.csv sequences), or --calibration random")
    if source == RANDOM:
        return random_calibration(model)
    return load_sequences(source, model.input_size)
