"""Quantization error per tensor: the integer emulator and the float64 reference stepped side by side.

The tensors are the recurrent state of each layer (after every step, dequantized with its storage format), the
LSTM cell state of mixed-memory models and the outputs. The reference reads the original float inputs, so the
figures include the input quantization: what a user of the float API of the quantized C sees.
"""

from __future__ import annotations

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
    from liquid_edge.quant import qmodel
    from liquid_edge.quant.emulator import DT_ONE, DT_MAX_Q, Emulator, dequantize, quantize_float

    quantized = qmodel.load(Path(model_dir))
    emulator = Emulator(quantized)
    x_q = emulator.quantize_inputs(x)
    dt_q = quantize_float(dt, np.float32(2.0 * DT_ONE), 0, DT_MAX_Q)
    batch, steps, _ = x.shape
    state_q, state_f = emulator.initial_state(batch), reference.initial_state(model, batch)
    fractions = quantized.state_fracs()
    states_q, states_f, outputs_q, outputs_f = [], [], [], []
    for t in range(steps):
        out_q, state_q = emulator.step_q(state_q, x_q[:, t], dt_q[:, t])
        out_f, state_f = reference.step(model, x[:, t], state_f, dt[:, t])
        states_q.append(dequantize(state_q, fractions))
        states_f.append(state_f.flat())
        outputs_q.append(dequantize(out_q, quantized.output_frac))
        outputs_f.append(out_f)
    states_q, states_f = np.stack(states_q, axis=1), np.stack(states_f, axis=1)
    errors = [_error(f"state: {name}", states_q[..., part], states_f[..., part]) for name, part in _state_parts(model)]
    errors.append(_error("outputs", np.stack(outputs_q, axis=1), np.stack(outputs_f, axis=1)))
    return errors


def _state_parts(model: Model) -> list[tuple[str, slice]]:
    names = model.wiring.layer_names if model.wiring is not None else ("hidden",)
    parts, offset = [], 0
    for name, cell in zip(names, model.cells):
        parts.append((name, slice(offset, offset + cell.units)))
        offset += cell.units
    if model.memory is not None:
        parts.append(("LSTM cell", slice(offset, offset + model.hidden_size)))
    return parts


def _error(name: str, quantized: np.ndarray, exact: np.ndarray) -> TensorError:
    difference = np.asarray(quantized, dtype=np.float64) - exact
    low, high = float(exact.min()), float(exact.max())
    rmse = float(np.sqrt(np.mean(difference ** 2)))
    return TensorError(name, int(exact.size), low, high, float(np.max(np.abs(difference))), rmse,
                       rmse / (high - low) if high > low else 0.0)
