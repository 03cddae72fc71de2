"""Bit-exact emulator of the generated integer C: the golden model of every integer backend.

Vectorized over the batch with numpy int64 (every C intermediate fits); each operation mirrors one statement
of ``codegen/int/model_q.c.j2`` and the helpers of :mod:`liquid_edge.quant.fixed` and ``tables``.
The float entry points mirror the C float API too: the float32 quantization of inputs, dt and state, and the
float32 dequantization of outputs, so the float API of a quantized build is bit-exact as well.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from liquid_edge.quant import fixed, tables
from liquid_edge.quant.qmodel import DT_FRAC, DT_MAX_Q, QCell, QLinear, QModel
from liquid_edge.reference import Recorder, scoped

DT_ONE = 1 << DT_FRAC


def matvec(layer: QLinear, z: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """(B, cols) int -> (B, rows): the two column groups accumulated apart, requantized, saturated to [lo, hi]."""
    w, k = layer.weight.astype(np.int64), layer.split
    acc1 = z[:, :k] @ w[:, :k].T + layer.bias.astype(np.int64)
    acc2 = z[:, k:] @ w[:, k:].T
    if layer.multiplier is None:
        out = (fixed.rshift_round(acc1, layer.shift.astype(np.int64))
               + fixed.rshift_round(acc2, layer.shift2.astype(np.int64)))
    else:
        total = acc1 * layer.multiplier.astype(np.int64) + acc2 * layer.multiplier2.astype(np.int64)
        out = fixed.rshift_round(total, layer.shift.astype(np.int64))
    return np.clip(out, lo, hi)


class Emulator:
    def __init__(self, qmodel: QModel):
        self.q = qmodel
        self.act_lo, self.act_hi = fixed.limits(qmodel.act_bits)

    def lut(self, name: str, x: np.ndarray) -> np.ndarray:
        return self.q.tables[name].lookup(x)

    def to_act(self, v16: np.ndarray) -> np.ndarray:
        """16-bit value to matmul precision (drop 8 fraction bits, rounded, in the int8 scheme)."""
        return fixed.convert(v16, 16 - self.q.act_bits, self.q.act_bits)

    def state_to16(self, stored: np.ndarray) -> np.ndarray:
        return fixed.convert(stored, -(16 - self.q.state_bits), 16)

    def state_from16(self, v16: np.ndarray) -> np.ndarray:
        return fixed.convert(v16, 16 - self.q.state_bits, self.q.state_bits)

    # -- one step --------------------------------------------------------------------------------------------
    def step_q(self, state: np.ndarray, x_q: np.ndarray, dt_q: np.ndarray,
               record: Optional[Recorder] = None) -> tuple[np.ndarray, np.ndarray]:
        """``state`` (B, S) stored integers, ``x_q`` (B, I), ``dt_q`` (B,) Q16 -> (output (B, O) int16, state).
        ``record`` receives the intermediates as integers with their scale, under the names of the float
        reference (:data:`liquid_edge.reference.Recorder`)."""
        q = self.q
        x_q = np.asarray(x_q, dtype=np.int64)
        dt_q = np.clip(np.asarray(dt_q, dtype=np.int64), 0, DT_MAX_Q)[:, None]
        hidden = q.hidden_size
        state = np.asarray(state, dtype=np.int64)
        h_stored = state[:, :hidden]
        new_state = state.copy()
        h_act = self.to_act(self.state_to16(h_stored))
        if record is not None:
            record("input", x_q, q.input_scale)
        if q.memory is not None:
            h16, c_new = self.memory(x_q, h_act, self.state_to16(state[:, hidden:]), scoped(record, "memory"))
            new_state[:, hidden:] = self.state_from16(c_new)
            h_act = self.to_act(h16)
        layer_input, offset = x_q, 0
        for i, cell in enumerate(q.cells):
            cell_record = scoped(record, f"cells.{i}")
            z = np.concatenate([layer_input, h_act[:, offset:offset + cell.units]], axis=1)
            new16 = self.cell(cell, z, dt_q, cell_record)
            stored = self.state_from16(new16)
            new_state[:, offset:offset + cell.units] = stored
            if cell_record is not None:
                cell_record("state", stored, _step_size(cell.state_frac - (16 - q.state_bits)))
            layer_input = self.to_act(new16)
            offset += cell.units
        if q.projection is not None:
            output = matvec(q.projection, layer_input, *fixed.INT16)
        else:
            output = new16
        if record is not None:
            record("output", output, _step_size(q.output_frac))
        return output, new_state

    def memory(self, x_q: np.ndarray, h_act: np.ndarray, c16: np.ndarray,
               record: Optional[Recorder] = None) -> tuple[np.ndarray, np.ndarray]:
        hidden = self.q.hidden_size
        pre = matvec(self.q.memory, np.concatenate([x_q, h_act], axis=1), *fixed.INT16)
        i, ig, fg, og = (pre[:, k * hidden:(k + 1) * hidden] for k in range(4))
        tanh, sig = tables.TANH, tables.SIGMOID
        c_frac = self.q.c_frac
        tanh_i, sig_ig, sig_fg, sig_og = self.lut(tanh, i), self.lut(sig, ig), self.lut(sig, fg), self.lut(sig, og)
        c_new = fixed.sat(fixed.rshift_round(c16 * sig_fg, 15) + fixed.rshift_round(tanh_i * sig_ig, 30 - c_frac), 16)
        c_tanh = fixed.convert(c_new, c_frac - tables.TANH_IN, 16)
        h16 = fixed.rshift_round(self.lut(tanh, c_tanh) * sig_og, 15)
        if record is not None:
            for name, value, frac in (("i", i, tables.TANH_IN), ("ig", ig, tables.SIGMOID_IN),
                                      ("fg", fg, tables.SIGMOID_IN), ("og", og, tables.SIGMOID_IN),
                                      ("tanh(i)", tanh_i, tables.UNIT_OUT),
                                      ("sigmoid(ig)", sig_ig, tables.UNIT_OUT),
                                      ("sigmoid(fg)", sig_fg, tables.UNIT_OUT),
                                      ("sigmoid(og)", sig_og, tables.UNIT_OUT),
                                      ("c", c_new, c_frac), ("h", h16, tables.UNIT_OUT)):
                record(name, value, _step_size(frac))
        return h16, c_new

    def backbone(self, cell: QCell, z: np.ndarray, record: Optional[Recorder] = None) -> np.ndarray:
        for k, (layer, table_name, out_frac) in enumerate(zip(cell.backbone, cell.backbone_table,
                                                              cell.backbone_out_frac)):
            if not table_name:            # relu: requantized straight into the next layer's format
                z = matvec(layer, z, 0, self.act_hi)
            else:
                pre = matvec(layer, z, *fixed.INT16)
                z = self.to_act(self.lut(table_name, pre))
                if record is not None:
                    record(f"backbone.{k}.pre", pre, _step_size(self.q.tables[table_name].in_frac))
            if record is not None:
                record(f"backbone.{k}", z, _step_size(out_frac))
        return z

    def cell(self, cell: QCell, z: np.ndarray, dt_q: np.ndarray, record: Optional[Recorder] = None) -> np.ndarray:
        z = self.backbone(cell, z, record)
        pre = matvec(cell.heads, z, *fixed.INT16)
        u = cell.units
        tanh, sig = tables.TANH, tables.SIGMOID
        if cell.mode == "pure":
            ff1 = pre
            s = cell.tau.astype(np.int64) + np.abs(ff1)
            arg = np.clip(fixed.rshift_round(s * dt_q, cell.ff1_frac + DT_FRAC - tables.EXP_IN), 0, 32767)
            e = self.lut(tables.EXP_NEG, arg)
            if record is not None:
                record("ff1", ff1, _step_size(cell.ff1_frac))
                record("exp", e, _step_size(tables.UNIT_OUT))
            p = fixed.rshift_round(e * ff1, 15)
            t = (1 << cell.ff1_frac) - p
            shift = cell.amp_frac + cell.ff1_frac - cell.state_frac
            return fixed.sat(fixed.rshift_round(cell.amp.astype(np.int64) * t, shift), 16)
        ff1, ff2, ta, tb = (pre[:, k * u:(k + 1) * u] for k in range(4))
        gate_in = fixed.sat(fixed.rshift_round(ta * dt_q, cell.ta_frac + DT_FRAC - tables.SIGMOID_IN) + tb, 16)
        g = self.lut(sig, gate_in)
        f1, f2 = self.lut(tanh, ff1), self.lut(tanh, ff2)
        if record is not None:
            for name, value, frac in (("ff1", ff1, tables.TANH_IN), ("ff2", ff2, tables.TANH_IN),
                                      ("time_a", ta, cell.ta_frac), ("time_b", tb, tables.SIGMOID_IN),
                                      ("tanh(ff1)", f1, tables.UNIT_OUT), ("tanh(ff2)", f2, tables.UNIT_OUT),
                                      ("gate_in", gate_in, tables.SIGMOID_IN), ("gate", g, tables.UNIT_OUT)):
                record(name, value, _step_size(frac))
        if cell.mode == "no_gate":
            return fixed.sat(fixed.rshift_round(f1 + fixed.rshift_round(g * f2, 15), 1), 16)
        return fixed.sat(f1 + fixed.rshift_round(g * (f2 - f1), 15), 16)

    # -- sequences and the float API -------------------------------------------------------------------------
    def initial_state(self, batch: int) -> np.ndarray:
        return np.zeros((batch, self.q.state_size), dtype=np.int64)

    def run_q(self, x_q: np.ndarray, dt_q: np.ndarray | None = None, state: np.ndarray | None = None,
              record: Optional[Recorder] = None) -> tuple[np.ndarray, np.ndarray]:
        """``x_q`` (B, T, I) -> outputs (B, T, O) int16 and the final stored state; dt_q None means dt = 1.
        ``record`` receives the intermediates of every step, in step order."""
        batch, steps, _ = x_q.shape
        state = self.initial_state(batch) if state is None else state
        outputs = np.empty((batch, steps, self.q.output_size), dtype=np.int64)
        for t in range(steps):
            dt = np.full(batch, DT_ONE) if dt_q is None else dt_q[:, t]
            outputs[:, t], state = self.step_q(state, x_q[:, t], dt, record)
        return outputs, state

    def quantize_inputs(self, x: np.ndarray) -> np.ndarray:
        return quantize_float(x, self.q.input_inv_scale2, self.act_lo, self.act_hi)

    @staticmethod
    def quantize_dt(dt: np.ndarray) -> np.ndarray:
        return quantize_float(np.asarray(dt), np.float32(2.0 * DT_ONE), 0, DT_MAX_Q)

    def run(self, x: np.ndarray, dt: np.ndarray | None = None) -> np.ndarray:
        """The float API: float inputs and dt, float32 outputs, exactly as the generated ``NAME_run``."""
        x_q = self.quantize_inputs(np.asarray(x))
        out_q, _ = self.run_q(x_q, None if dt is None else self.quantize_dt(dt))
        return dequantize(out_q, self.q.output_frac)


def _step_size(frac: int) -> float:
    """What one unit of an integer in format ``frac`` stands for."""
    return 2.0 ** -frac


def quantize_float(v: np.ndarray, inv_scale2: np.ndarray | np.float32, lo: int, hi: int) -> np.ndarray:
    """Mirror of the C quantizer: one float32 multiply by 2/scale, truncation, then round half away from zero
    in integers (so no float rounding step exists that a compiler could fuse into the multiply)."""
    q2 = np.asarray(v, dtype=np.float32) * np.asarray(inv_scale2, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        top, bottom = np.float32(2 * hi + 1), np.float32(2 * lo - 1)
        t = np.trunc(np.where(np.isnan(q2), 0, np.clip(q2, bottom, top))).astype(np.int64)
    r = np.where(t >= 0, (t + 1) >> 1, -((1 - t) >> 1))
    r = np.where(q2 >= top, hi, np.where(q2 <= bottom, lo, r))
    return np.clip(r, lo, hi)


def dequantize(q: np.ndarray, frac: int | np.ndarray) -> np.ndarray:
    """float32(q) * 2**-frac: exact in float32 for 16-bit integers."""
    return np.asarray(q, dtype=np.float32) * np.float32(2.0) ** -np.asarray(frac, dtype=np.float32)

