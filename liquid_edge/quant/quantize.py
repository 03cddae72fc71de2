"""Float IR + calibration ranges -> :class:`QModel` (formats chosen as documented in docs/numerics.md)."""

from __future__ import annotations

import numpy as np

from liquid_edge.data import Sequences
from liquid_edge.errors import LiquidEdgeError
from liquid_edge.ir import CfCCell, Model
from liquid_edge.quant import calibration, fixed, tables
from liquid_edge.quant.qmodel import SCHEME_ACT_BITS, SCHEMES, QCell, QLinear, QModel

WEIGHT_MAX = 127
NO_GATE_STATE_FRAC, DEFAULT_STATE_FRAC = 14, 15
MAX_FRAC = 24          # finest format any calibrated tensor gets (keeps every shift in range)


class QuantizationError(LiquidEdgeError):
    """The model cannot be quantized with the requested scheme."""


def quantize(model: Model, data: Sequences, scheme: str = "int8", *, state_bits: int = 16,
             method: str = "percentile") -> QModel:
    """Quantize ``model`` with ranges calibrated on ``data`` (full rollouts)."""
    if scheme not in SCHEMES:
        raise QuantizationError(f"unknown quantization scheme '{scheme}'", f"use one of {', '.join(SCHEMES)}")
    if state_bits not in (8, 16):
        raise QuantizationError(f"state bits must be 8 or 16, got {state_bits}")
    ranges = calibration.ranges(model, data, method)
    try:
        qmodel = _Builder(model, scheme, state_bits, ranges, method).build()
    except (ValueError, OverflowError):
        # A range so wide that no 16-bit format and 32-bit multiplier can carry it (inputs of 1e30, say).
        widest = max(ranges, key=lambda name: ranges[name])
        raise QuantizationError(f"the calibration data drives {widest} to {ranges[widest]:.3g}, beyond what fixed "
                                f"point can represent", "calibrate on data at the model's input scale") from None
    qmodel.calibration["data"] = data.origin
    return qmodel


def quantize_from_source(model: Model, scheme: str, source: str | None, *, state_bits: int = 16,
                         method: str = "percentile") -> QModel:
    """``--quantize`` with ``--calibration FILE|random``: a clear error when the data is missing."""
    return quantize(model, calibration.calibration_data(source, model), scheme, state_bits=state_bits,
                    method=method)


class _Builder:
    def __init__(self, model: Model, scheme: str, state_bits: int, ranges: dict[str, float], method: str):
        self.model, self.scheme, self.state_bits = model, scheme, state_bits
        self.ranges, self.method = ranges, method
        self.act_bits = SCHEME_ACT_BITS[scheme]
        self.act_max = fixed.limits(self.act_bits)[1]
        self.pow2 = scheme == "pow2"
        self.tables: dict[str, tables.Table] = {}

    # -- formats -------------------------------------------------------------------------------------------
    def frac(self, name: str, bits: int = 16) -> int:
        return int(np.clip(fixed.frac_bits_for(self.ranges.get(name, 1.0), bits), 0, MAX_FRAC))

    def act_frac(self, frac16: int) -> int:
        """Matmul-input format of a value held in 16-bit format ``frac16``."""
        return frac16 - (16 - self.act_bits)

    def table(self, table: tables.Table) -> str:
        self.tables.setdefault(table.name, table)
        return table.name

    # -- layers ----------------------------------------------------------------------------------------------
    def linear(self, name: str, weight: np.ndarray, bias: np.ndarray | None, in_scales: np.ndarray,
               out_fracs: np.ndarray, mask: np.ndarray | None = None, split: int | None = None) -> QLinear:
        """int8 weights per output row and column group (``[0, split)``, ``[split, cols)``), with the per-element
        input scales folded in before quantizing."""
        cols = weight.shape[1]
        split = cols if split is None else split
        folded = weight * in_scales[None, :]
        out_scale = 2.0 ** -np.asarray(out_fracs, dtype=np.float64)
        groups = [(0, split), (split, cols)]
        scales = [self.group_scale(folded[:, a:b], out_scale) for a, b in groups]
        q_weight = np.zeros(weight.shape, dtype=np.int64)
        for (a, b), scale in zip(groups, scales):
            q_weight[:, a:b] = np.clip(np.round(folded[:, a:b] / scale[:, None]), -WEIGHT_MAX, WEIGHT_MAX)
        q_bias = np.round((np.zeros(len(out_scale)) if bias is None else bias) / scales[0])
        limit = 2 ** 30 if self.pow2 else 2 ** 31 - 1
        worst1 = np.abs(q_weight[:, :split]).sum(axis=1) * (self.act_max + 1) + np.abs(q_bias)
        worst2 = np.abs(q_weight[:, split:]).sum(axis=1) * (self.act_max + 1)
        worst = np.maximum(worst1, worst2)
        if np.any(worst > limit):
            raise QuantizationError(f"{name}: the 32-bit accumulator could overflow ({int(worst.max())} > {limit})",
                                    "use --quantize int8 (8-bit activations) for this layer width")
        ratios = [scale / out_scale for scale in scales]
        # A second group without weights (empty, or a zero row) needs no multiplier: keep it from setting n.
        ratios[1] = np.where(np.any(q_weight[:, split:] != 0, axis=1), ratios[1], 0.0)
        mask = None if mask is None else (mask != 0)
        if self.pow2:
            shifts = [np.where(ratio > 0, np.rint(-np.log2(np.where(ratio > 0, ratio, 1.0))), 0).astype(np.int64)
                      for ratio in ratios]
            if any(np.any(shift > 30) or np.any(shift < 0) for shift in shifts):
                raise QuantizationError(f"{name}: weight and output ranges are too far apart for shift-only "
                                        "requantization", "use --quantize int8 or a16w8")
            return QLinear(q_weight.astype(np.int8), q_bias.astype(np.int32), shifts[0].astype(np.int8), None, mask,
                           split, None, shifts[1].astype(np.int8))
        m1, m2, shift = fixed.multipliers_and_shift(ratios[0], ratios[1], worst1, worst2)
        return QLinear(q_weight.astype(np.int8), q_bias.astype(np.int32), shift.astype(np.int8),
                       m1.astype(np.int32), mask, split, m2.astype(np.int32))

    def group_scale(self, folded: np.ndarray, out_scale: np.ndarray) -> np.ndarray:
        """Weight scale of each row of one column group (a power of two in the pow2 scheme)."""
        rowmax = np.max(np.abs(folded), axis=1, initial=0.0)
        scale = np.where(rowmax > 0, rowmax / WEIGHT_MAX, out_scale)
        return 2.0 ** np.ceil(np.log2(scale)) if self.pow2 else scale

    def input_scales(self) -> np.ndarray:
        absmax = np.array([self.ranges.get(f"x.{j}", 0.0) for j in range(self.model.input_size)])
        absmax = np.where(absmax > 0, absmax, 1.0)
        if self.pow2:
            scale = 2.0 ** -np.array([fixed.frac_bits_for(a, self.act_bits) for a in absmax], dtype=np.float64)
        else:
            scale = absmax / self.act_max
        inv2 = (2.0 / scale).astype(np.float32)
        return 2.0 / inv2.astype(np.float64), inv2

    # -- model -------------------------------------------------------------------------------------------------
    def build(self) -> QModel:
        model = self.model
        in_scale, inv2 = self.input_scales()
        state_fracs = [self.state_frac(i, cell) for i, cell in enumerate(model.cells)]
        hidden_act_scales = np.concatenate([np.full(cell.units, 2.0 ** -self.act_frac(f))
                                            for cell, f in zip(model.cells, state_fracs)])
        memory, c_frac = None, 0
        if model.memory is not None:
            c_frac = min(self.frac("memory.c"), 15)
            memory = self.memory(in_scale, hidden_act_scales)
            # The cells then read the LSTM's output (Q15) as their hidden state.
            hidden_act_scales = np.full(model.hidden_size, 2.0 ** -self.act_frac(tables.UNIT_OUT))
        cells, layer_scales, offset = [], in_scale, 0
        for i, cell in enumerate(model.cells):
            h_scales = hidden_act_scales[offset:offset + cell.units]
            cells.append(self.cell(i, cell, np.concatenate([layer_scales, h_scales]), state_fracs[i]))
            layer_scales = np.full(cell.units, 2.0 ** -self.act_frac(state_fracs[i]))
            offset += cell.units
        projection, output_frac = None, state_fracs[-1]
        if model.projection is not None:
            output_frac = self.frac("output")
            proj = model.projection
            projection = self.linear("projection", proj.weight, proj.bias, layer_scales,
                                     np.full(proj.out_features, output_frac))
        return QModel(name=model.name, scheme=self.scheme, act_bits=self.act_bits, state_bits=self.state_bits,
                      input_size=model.input_size, output_size=model.output_size, input_inv_scale2=inv2,
                      input_scale=in_scale, output_frac=output_frac, cells=cells, tables=self.tables,
                      memory=memory, c_frac=c_frac, projection=projection,
                      calibration={"method": self.method, "ranges": self.ranges})

    def state_frac(self, index: int, cell: CfCCell) -> int:
        if cell.mode == "pure":
            return self.frac(f"cells.{index}.state")
        return NO_GATE_STATE_FRAC if cell.mode == "no_gate" else DEFAULT_STATE_FRAC

    def memory(self, in_scale: np.ndarray, hidden_act_scales: np.ndarray) -> QLinear:
        memory, hidden = self.model.memory, self.model.hidden_size
        weight = np.concatenate([memory.input_map.weight, memory.recurrent_map.weight], axis=1)
        bias = memory.input_map.bias.copy()
        bias[2 * hidden:3 * hidden] += 1.0   # ncps adds 1 to the forget gate pre-activation
        fracs = np.repeat([tables.TANH_IN, tables.SIGMOID_IN, tables.SIGMOID_IN, tables.SIGMOID_IN], hidden)
        self.table(tables.build("tanh", tables.TANH_IN, tables.UNIT_OUT))
        self.table(tables.sigmoid_table())
        return self.linear("memory", weight, bias, np.concatenate([in_scale, hidden_act_scales]), fracs,
                           split=len(in_scale))

    def cell(self, index: int, cell: CfCCell, z_scales: np.ndarray, state_frac: int) -> QCell:
        prefix = f"cells.{index}"
        split = cell.input_size    # the layer reading [input, state] gets one weight scale per part
        backbone, out_fracs, table_names = [], [], []
        for k, layer in enumerate(cell.backbone):
            pre_frac = self.frac(f"{prefix}.backbone.{k}")
            if cell.activation == "relu":
                out_frac = self.act_frac(pre_frac)
                backbone.append(self.linear(f"{prefix}.backbone.{k}", layer.weight, layer.bias, z_scales,
                                            np.full(layer.out_features, out_frac), split=split))
                table_names.append("")
            else:
                table = tables.activation_table(cell.activation, pre_frac)
                table_names.append(self.table(table))
                backbone.append(self.linear(f"{prefix}.backbone.{k}", layer.weight, layer.bias, z_scales,
                                            np.full(layer.out_features, table.in_frac), split=split))
                out_frac = self.act_frac(table.out_frac)
            out_fracs.append(out_frac)
            z_scales = np.full(layer.out_features, 2.0 ** -out_frac)
            split = None
        units = cell.units
        if cell.mode == "pure":
            ff1_frac = self.frac(f"{prefix}.ff1")
            amp_frac = min(fixed.frac_bits_for(float(np.max(np.abs(cell.A))), 16), MAX_FRAC)
            if amp_frac + ff1_frac - state_frac < 0:
                raise QuantizationError(f"{prefix}: pure-mode ranges need a left shift",
                                        "use a wider calibration set or another scheme")
            self.table(tables.build("exp_neg", tables.EXP_IN, tables.UNIT_OUT, signed=False))
            heads = self.linear(f"{prefix}.ff1", cell.ff1.weight, cell.ff1.bias, z_scales,
                                np.full(units, ff1_frac), cell.ff1.mask, split)
            tau = fixed.sat(np.round(np.abs(cell.w_tau) * 2.0 ** ff1_frac), 16).astype(np.int16)
            amp = fixed.sat(np.round(cell.A * 2.0 ** amp_frac), 16).astype(np.int16)
            return QCell(units, cell.mode, cell.activation, state_frac, backbone, out_fracs, table_names, heads,
                         ff1_frac=ff1_frac, amp_frac=amp_frac, tau=tau, amp=amp)
        ta_frac = self.frac(f"{prefix}.time_a")
        heads_list = [cell.ff1, cell.ff2, cell.time_a, cell.time_b]
        weight = np.concatenate([h.weight for h in heads_list])
        bias = np.concatenate([h.bias for h in heads_list])
        mask = None
        if cell.ff1.mask is not None:
            dense = np.ones((2 * units, cell.head_input_size))
            mask = np.concatenate([cell.ff1.mask, cell.ff2.mask, dense])
        fracs = np.repeat([tables.TANH_IN, tables.TANH_IN, ta_frac, tables.SIGMOID_IN], units)
        heads = self.linear(f"{prefix}.heads", weight, bias, z_scales, fracs, mask, split)
        self.table(tables.build("tanh", tables.TANH_IN, tables.UNIT_OUT))
        self.table(tables.sigmoid_table())
        return QCell(units, cell.mode, cell.activation, state_frac, backbone, out_fracs, table_names, heads,
                     ta_frac=ta_frac)

