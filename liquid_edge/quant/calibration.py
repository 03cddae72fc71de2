"""Calibration: ranges of every intermediate the quantizer needs, collected over full recurrent rollouts.

The float reference is replayed step by step over whole sequences (the state error a recurrent model
accumulates only shows there, never in single steps); of what it records (:data:`liquid_edge.reference.Recorder`)
the absolute values of these are kept:

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
from liquid_edge.output import Meter, progress
from liquid_edge.reference import initial_state, step

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


def _kept_tensors(model: Model) -> dict[str, str]:
    """The reference's name of each tensor whose range the quantizer reads -> the quantizer's name for it."""
    kept = {"memory.c": "memory.c"} if model.memory is not None else {}
    if model.projection is not None:
        kept["output"] = "output"
    for i, cell in enumerate(model.cells):
        prefix = f"cells.{i}"
        kept.update({f"{prefix}.backbone.{k}.pre": f"{prefix}.backbone.{k}" for k in range(len(cell.backbone))})
        names = ("ff1", "state") if cell.mode == "pure" else ("time_a",)
        kept.update({f"{prefix}.{name}": f"{prefix}.{name}" for name in names})
    return kept


def collect(model: Model, data: Sequences) -> dict[str, np.ndarray]:
    """Every recorded tensor as a flat array of absolute values."""
    assert_masked_weights_zero(model)
    if data.count == 0 or data.steps == 0:
        raise CalibrationError("the calibration data holds no steps", "pass sequences with at least one step")
    records: dict[str, list[np.ndarray]] = defaultdict(list)
    kept = _kept_tensors(model)

    def record(name: str, value: np.ndarray, scale: float = 1.0) -> None:
        if name == "input":
            for j in range(value.shape[1]):
                records[f"x.{j}"].append(np.abs(value[:, j]))
        elif name in kept:
            records[kept[name]].append(np.abs(value).ravel())

    state = initial_state(model, data.count)
    meter = Meter("calibrate", data.steps, "steps")
    for t in range(data.steps):
        _, state = step(model, data.x[:, t], state, None if data.dt is None else data.dt[:, t], record=record)
        meter.update(t + 1)
    return {name: np.concatenate(chunks) for name, chunks in records.items()}


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
