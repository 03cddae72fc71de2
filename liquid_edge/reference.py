"""Float reference: executes the IR step by step in float64 numpy with explicit state.

This is the definition every backend is compared with. It follows ncps's formulas exactly, with one deliberate
difference: batched time spans are per sample. ``dt`` has shape ``(B,)`` (or ``(B, T)`` for a sequence), and
sample ``b`` uses ``dt[b]``. ncps squeezes batched time spans to ``(B,)`` and broadcasts them against the units
axis, which is only correct for ``B == 1``; feed ncps one sample at a time to compare.

``dtype=np.float32`` evaluates the same formulas with weights, inputs, state and every operation in float32. That
is not a definition of anything: ``verify`` uses its distance from the float64 run as the float32 noise floor of a
model on given data (see docs/numerics-float.md).

``record``, an optional :data:`Recorder` of :func:`step` and :func:`run`, receives every intermediate tensor of a
step under the names the integer emulator uses for its own (``liquid_edge.quant.emulator``), so that the two can be
compared tensor by tensor (``liquid_edge.reporting.quant_error``). Without one nothing extra is computed.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from liquid_edge.ir import CfCCell, Linear, LSTMMemory, Model

_erf = np.vectorize(math.erf, otypes=[np.float64])

# lecun_tanh uses 0.666, not 2/3: that is what ncps computes.
ACTIVATION_FUNCTIONS = {
    "lecun_tanh": lambda v: 1.7159 * np.tanh(0.666 * v),
    "silu": lambda v: v * sigmoid(v),
    "relu": lambda v: np.maximum(v, 0.0),
    "tanh": np.tanh,
    "gelu": lambda v: 0.5 * v * (1.0 + _erf(v / math.sqrt(2.0)).astype(v.dtype)),
}


#: ``record(name, values, scale)``: one intermediate of a step, ``values`` (B, n) standing for ``values * scale``
#: (the float reference passes real values and scale 1; the emulator its integers and the size of one step of
#: their format, a number or one per element). Names, the same in both: ``input``; ``memory.i``, ``memory.ig``,
#: ``memory.fg`` (with ncps's +1), ``memory.og``, ``memory.tanh(i)``, ``memory.sigmoid(ig|fg|og)``, ``memory.c``,
#: ``memory.h``; per cell ``cells.<i>.backbone.<k>.pre`` (the emulator's integer path never forms it for relu) and
#: ``cells.<i>.backbone.<k>``, ``cells.<i>.ff1``, ``.ff2``, ``.time_a``, ``.time_b``, ``.tanh(ff1)``,
#: ``.tanh(ff2)``, ``.gate_in`` (time_a dt + time_b), ``.gate``, or in pure mode ``.ff1``, ``.exp``; then
#: ``cells.<i>.state`` (the new state) and ``output``.
Recorder = Callable[..., None]


def scoped(record: Optional[Recorder], prefix: str) -> Optional[Recorder]:
    """``record`` with ``prefix.`` before every name (None stays None: no recording, no cost)."""
    if record is None:
        return None
    return lambda name, values, scale=1.0: record(f"{prefix}.{name}", values, scale)


def sigmoid(v: np.ndarray) -> np.ndarray:
    # Two-sided form: no overflow warning for large |v|.
    e = np.exp(-np.abs(v))
    return np.where(v >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def linear(layer: Linear, v: np.ndarray) -> np.ndarray:
    out = v @ layer.weight.T
    return out if layer.bias is None else out + layer.bias


@dataclass
class State:
    """Recurrent state of a batch: ``h`` is (B, hidden_size); ``c`` is the LSTM cell state or None."""

    h: np.ndarray
    c: np.ndarray | None = None

    def flat(self) -> np.ndarray:
        """The state as one (B, state_size) array: h, then c (the layout of the generated C state)."""
        return self.h if self.c is None else np.concatenate([self.h, self.c], axis=1)

    @classmethod
    def from_flat(cls, model: Model, values: np.ndarray) -> "State":
        values = np.atleast_2d(np.asarray(values, dtype=np.float64))
        if values.shape[1] != model.state_size:
            raise ValueError(f"state has {values.shape[1]} values, the model needs {model.state_size}")
        hidden = model.hidden_size
        if model.memory is None:
            return cls(values.copy())
        return cls(values[:, :hidden].copy(), values[:, hidden:].copy())


def initial_state(model: Model, batch: int = 1, dtype=np.float64) -> State:
    zeros = np.zeros((batch, model.hidden_size), dtype=dtype)
    return State(zeros, zeros.copy() if model.memory is not None else None)


def cfc_cell_step(cell: CfCCell, x: np.ndarray, h: np.ndarray, dt: np.ndarray,
                  record: Optional[Recorder] = None) -> np.ndarray:
    """One CfC update. ``x`` (B, I), ``h`` (B, U), ``dt`` (B, 1) -> new ``h`` (B, U)."""
    z = np.concatenate([x, h], axis=1)
    act = ACTIVATION_FUNCTIONS[cell.activation]
    for k, layer in enumerate(cell.backbone):
        pre = linear(layer, z)
        z = act(pre)
        if record is not None:
            record(f"backbone.{k}.pre", pre)
            record(f"backbone.{k}", z)
    ff1 = linear(cell.ff1, z)
    if cell.mode == "pure":
        decay = np.exp(-dt * (np.abs(cell.w_tau) + np.abs(ff1)))
        if record is not None:
            record("ff1", ff1)
            record("exp", decay)
        return -cell.A * decay * ff1 + cell.A
    ff2, time_a, time_b = linear(cell.ff2, z), linear(cell.time_a, z), linear(cell.time_b, z)
    gate_in = time_a * dt + time_b
    f1, f2, gate = np.tanh(ff1), np.tanh(ff2), sigmoid(gate_in)
    if record is not None:
        for name, value in (("ff1", ff1), ("ff2", ff2), ("time_a", time_a), ("time_b", time_b), ("tanh(ff1)", f1),
                            ("tanh(ff2)", f2), ("gate_in", gate_in), ("gate", gate)):
            record(name, value)
    if cell.mode == "no_gate":
        return f1 + gate * f2
    return f1 * (1.0 - gate) + gate * f2


def lstm_step(memory: LSTMMemory, x: np.ndarray, h: np.ndarray, c: np.ndarray,
              record: Optional[Recorder] = None) -> tuple[np.ndarray, np.ndarray]:
    z = linear(memory.input_map, x) + linear(memory.recurrent_map, h)
    i, ig, fg, og = np.split(z, 4, axis=1)
    fg = fg + 1.0
    tanh_i, sig_ig, sig_fg, sig_og = np.tanh(i), sigmoid(ig), sigmoid(fg), sigmoid(og)
    c_new = c * sig_fg + tanh_i * sig_ig
    h_new = np.tanh(c_new) * sig_og
    if record is not None:
        for name, value in (("i", i), ("ig", ig), ("fg", fg), ("og", og), ("tanh(i)", tanh_i),
                            ("sigmoid(ig)", sig_ig), ("sigmoid(fg)", sig_fg), ("sigmoid(og)", sig_og),
                            ("c", c_new), ("h", h_new)):
            record(name, value)
    return h_new, c_new


def step(model: Model, x: np.ndarray, state: State, dt: np.ndarray | float | None = None,
         dtype=np.float64, record: Optional[Recorder] = None) -> tuple[np.ndarray, State]:
    """Advance one step. ``x`` (B, I); ``dt`` scalar, (B,) or None (1.0). Returns (output (B, O), new state);
    ``record`` receives the intermediates (see :data:`Recorder`)."""
    return _step(with_dtype(model, dtype), x, state, dt, dtype, record)


def _step(model: Model, x: np.ndarray, state: State, dt, dtype,
          record: Optional[Recorder] = None) -> tuple[np.ndarray, State]:
    x = np.atleast_2d(np.asarray(x, dtype=dtype))
    batch = x.shape[0]
    dt_col = np.ones((batch, 1), dtype=dtype) if dt is None else np.broadcast_to(
        np.asarray(dt, dtype=dtype).reshape(-1, 1), (batch, 1))
    h = state.h.astype(dtype, copy=False)
    c = None if state.c is None else state.c.astype(dtype, copy=False)
    if record is not None:
        record("input", x)
    if model.memory is not None:
        h, c = lstm_step(model.memory, x, h, c, scoped(record, "memory"))
    layer_inputs = x
    new_parts = []
    offset = 0
    for i, cell in enumerate(model.cells):
        cell_record = scoped(record, f"cells.{i}")
        part = cfc_cell_step(cell, layer_inputs, h[:, offset:offset + cell.units], dt_col, cell_record)
        if cell_record is not None:
            cell_record("state", part)
        new_parts.append(part)
        layer_inputs = part
        offset += cell.units
    output = layer_inputs if model.projection is None else linear(model.projection, layer_inputs)
    if record is not None:
        record("output", output)
    return output, State(np.concatenate(new_parts, axis=1), c)


def run(model: Model, x: np.ndarray, dt: np.ndarray | None = None, state: State | None = None,
        dtype=np.float64, record: Optional[Recorder] = None) -> tuple[np.ndarray, State]:
    """Run sequences. ``x`` (B, T, I) or (T, I); ``dt`` (B, T), (T,) or None. Returns (outputs, final state);
    the outputs are float64 arrays whatever ``dtype`` computed them. ``record`` receives the intermediates of
    every step, in step order (see :data:`Recorder`)."""
    model = with_dtype(model, dtype)
    x = np.asarray(x, dtype=dtype)
    unbatched = x.ndim == 2
    if unbatched:
        x = x[None]
        dt = None if dt is None else np.asarray(dt)[None]
    batch, steps, _ = x.shape
    state = initial_state(model, batch, dtype) if state is None else state
    outputs = np.empty((batch, steps, model.output_size))
    for t in range(steps):
        outputs[:, t], state = _step(model, x[:, t], state, None if dt is None else dt[:, t], dtype, record)
    return (outputs[0] if unbatched else outputs), state


def with_dtype(value, dtype):
    """An IR object (model, cell, layer) with every floating-point array converted to ``dtype``; unchanged for
    float64, the dtype the IR holds."""
    if np.dtype(dtype) == np.float64:
        return value
    if isinstance(value, np.ndarray):
        return value.astype(dtype) if value.dtype.kind == "f" else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: with_dtype(getattr(value, f.name), dtype)
                                             for f in dataclasses.fields(value) if f.init})
    if isinstance(value, (list, tuple)):
        return type(value)(with_dtype(item, dtype) for item in value)
    return value
