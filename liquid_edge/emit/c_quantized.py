"""Integer C library emitter: a :class:`QModel` becomes ``<name>.h`` + ``<name>.c`` (``codegen/int/*.j2``).

The library keeps the float API of the float emitter (quantize on entry, dequantize on exit) and adds
``<name>_step_q`` / ``<name>_run_q``, whose outputs are bit-exact with :mod:`liquid_edge.quant.emulator`.

Layout decisions:

* Dense layers, portable: int8 weights row-major ``[row][col]``; the four CfC heads are one matrix (rows ff1,
  ff2, time_a, time_b) so one pass over the head input feeds all of them.
* Dense layers, cores with the DSP extension (``dsp=True``): the weights are widened offline to int16 and packed
  two per 32-bit word, ``[block of 8 rows][column pair][row in block]``, each word ``W[r][2k] | W[r][2k+1] << 16``.
  One load of an input pair then feeds eight ``SMLAD`` (two 16x16 multiply-accumulates each, eight rows at once)
  and the weight words come two per load, with no sign-extension in the loop: twice the weight bytes of int8
  for less than one instruction per MAC in the inner loop.
  Without ``__ARM_FEATURE_DSP`` (e.g. on the host) the same layout runs through plain C, bit-identically.
* Helium cores (M55) keep the int8 rows; the portable kernel has an MVE branch for them (docs/numerics.md).
* Masked (NCP) layers that keep fewer than ``SPARSE_MAX_DENSITY`` of their weights: only kept synapses are
  stored (``col`` index, and per row its counts in the two column groups; bytes up to 255 inputs). Denser masked layers run through the dense kernels with their masked weights stored as zeros:
  a gathered input costs an index load and an address computation per MAC, about three times a dense MAC, and
  the indices cost flash. The CfC heads of an NCP cell are always that dense (ncps masks ff1 and ff2 only, so
  time_a and time_b keep every weight): their rows of a few kept synapses each are where per-row overhead
  dominated. The results are the same either way (a masked weight is an exact zero and the int32 accumulation
  cannot overflow in any order).
* Activations travel as int16 in every scheme (the int8 scheme keeps them in [-128, 127]): the kernels then
  have one signature, and widening for 16x16 multiply-accumulate costs nothing at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from liquid_edge import __version__
from liquid_edge.emit.c_library import CLibrary, template_environment
from liquid_edge.ir import Source
from liquid_edge.quant import fixed, tables
from liquid_edge.quant.qmodel import DT_FRAC, DT_MAX_Q, QCell, QLinear, QModel

_CTYPE_BYTES = {"int8_t": 1, "uint8_t": 1, "int16_t": 2, "int32_t": 4, "uint16_t": 2, "uint32_t": 4, "float": 4}
ROW_BLOCK = 8
#: Masked layers keeping a smaller fraction of their weights run through the sparse kernel (see above).
SPARSE_MAX_DENSITY = 1 / 3


@dataclass(frozen=True)
class IntArray:
    name: str
    ctype: str
    values: np.ndarray
    comment: str

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * _CTYPE_BYTES[self.ctype]

    def c_values(self, per_line: int = 16) -> list[str]:
        if self.ctype == "float":
            literals = [c_float(v) for v in self.values.ravel()]
        else:
            literals = [str(int(v)) for v in self.values.ravel()]
        return [", ".join(literals[i:i + per_line]) for i in range(0, len(literals), per_line)]


def c_float(value: float) -> str:
    """Exact float32 literal (C99 hexadecimal floating constant)."""
    return float(np.float32(value)).hex() + "f"


@dataclass
class LayerPlan:
    """One matrix: its arrays and how the template calls the kernel."""

    prefix: str
    layer: QLinear
    sparse: bool
    packed: bool = False
    arrays: list[IntArray] = field(default_factory=list)
    headroom: np.ndarray | None = None   # DSP layout: per-row power of two scaling the weights (headroom_bits)

    @property
    def split(self) -> int:
        return self.layer.split

    @property
    def z_split(self) -> int:
        """Where the second column group starts in the input vector: packed kernels read pairs, so a pair never
        straddles the groups (an odd first group is followed by one zero)."""
        return self.split + self.split % 2 if self.packed else self.split

    @property
    def z_size(self) -> int:
        return self.z_split + self.cols - self.split

    @property
    def pairs1(self) -> int:
        return self.z_split // 2

    @property
    def pairs2(self) -> int:
        return (self.cols - self.split + 1) // 2

    @property
    def out_size(self) -> int:
        """Length of the output buffer: packed kernels write whole blocks of rows."""
        return -(-self.rows // ROW_BLOCK) * ROW_BLOCK if self.packed else self.rows

    @property
    def rows(self) -> int:
        return self.layer.rows

    @property
    def cols(self) -> int:
        return self.layer.cols

    @property
    def macs(self) -> int:
        """Multiply-accumulates the kernel executes."""
        return self.kept if self.sparse else self.rows * self.cols

    @property
    def kept(self) -> int:
        """Weights the mask keeps (all of them in an unmasked layer)."""
        return self.rows * self.cols if self.layer.mask is None else int(np.count_nonzero(self.layer.mask))


@dataclass
class CellPlan:
    index: int
    cell: QCell
    state_offset: int
    input_size: int
    backbone: list[LayerPlan]
    heads: LayerPlan
    arrays: list[IntArray] = field(default_factory=list)

    @property
    def ta_shift(self) -> int:
        """Right shift of time_a * dt (Q ta_frac times Q16) to the sigmoid's input format."""
        return self.cell.ta_frac + DT_FRAC - tables.SIGMOID_IN

    @property
    def ta_dt_needs_64(self) -> bool:
        """|time_a * dt| < 2^45: from a shift of 14 on, the shifted product fits 32 bits."""
        return self.ta_shift < 14

    @property
    def rshift64(self) -> bool:
        """Whether the cell's update uses the 64-bit rounding shift (pure mode, or a short time_a shift)."""
        return self.cell.mode == "pure" or self.ta_dt_needs_64


@dataclass
class QuantPlan:
    q: QModel
    c_name: str
    cells: list[CellPlan]
    memory: LayerPlan | None
    projection: LayerPlan | None
    arrays: list[IntArray]
    scratch: int
    index_ctype: str = "uint16_t"   # column indices and synapse offsets of the sparse layers

    @property
    def macro(self) -> str:
        return self.c_name.upper()

    @property
    def pow2(self) -> bool:
        return self.q.scheme == "pow2"

    def layers(self) -> list[LayerPlan]:
        out = [] if self.memory is None else [self.memory]
        for cell in self.cells:
            out += cell.backbone + [cell.heads]
        return out + ([] if self.projection is None else [self.projection])

    @property
    def needs_dense(self) -> bool:
        return any(not layer.sparse and not layer.packed for layer in self.layers())

    @property
    def needs_packed(self) -> bool:
        return any(layer.packed for layer in self.layers())

    def vector(self, size: int) -> int:
        """Length of an int16 vector of ``size`` values: even when packed kernels read it in pairs."""
        return size + size % 2 if self.needs_packed else size

    @property
    def rshift64_in_cells(self) -> bool:
        return any(cell.rshift64 for cell in self.cells)

    @property
    def requant_only_portable(self) -> bool:
        """Whether the general requant() serves only the portable branch of the DSP layout (unused on DSP cores)."""
        return not (self.needs_dense or self.needs_sparse)

    @property
    def needs_sparse(self) -> bool:
        return any(layer.sparse for layer in self.layers())

    @property
    def sigmoid_from_tanh(self) -> bool:
        return sigmoid_from_tanh(self.q)

    @property
    def needs_signed_lut(self) -> bool:
        return any(t.signed for t in self.q.tables.values())

    @property
    def needs_positive_lut(self) -> bool:
        return any(not t.signed for t in self.q.tables.values())

    @property
    def weight_bytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)

    @property
    def macs_per_step(self) -> int:
        return sum(layer.macs for layer in self.layers())

    @property
    def input_ctype(self) -> str:
        return f"int{self.q.act_bits}_t"

    @property
    def state_ctype(self) -> str:
        return f"int{self.q.state_bits}_t"

    @property
    def act_limits(self) -> tuple[int, int]:
        return fixed.limits(self.q.act_bits)

    @property
    def state_limits(self) -> tuple[int, int]:
        return fixed.limits(self.q.state_bits)

    @property
    def dt_max(self) -> int:
        return DT_MAX_Q

    @property
    def dt_frac(self) -> int:
        return DT_FRAC

    @property
    def table_consts(self) -> dict[str, str]:
        return {"tanh": tables.TANH, "sigmoid": tables.SIGMOID, "exp": tables.EXP_NEG,
                "tanh_in": tables.TANH_IN, "sigmoid_in": tables.SIGMOID_IN, "exp_in": tables.EXP_IN}


def sigmoid_from_tanh(q: QModel) -> bool:
    """Whether the gate sigmoid is read through the tanh table (``tables.sigmoid_table``), not stored; models
    quantized before that derivation keep their own sigmoid table."""
    gate, tanh = q.tables.get(tables.SIGMOID), q.tables.get(tables.TANH)
    return gate is not None and tanh is not None and tables.derives_from_tanh(gate, tanh)


def packed_pairs(weight: np.ndarray, split: int) -> np.ndarray:
    """The DSP layout: rows padded to a multiple of ROW_BLOCK, each column group to even, int16 pairs in uint32
    words."""
    rows, cols = weight.shape
    first, second = split + split % 2, cols - split + (cols - split) % 2
    padded = np.zeros((-(-rows // ROW_BLOCK) * ROW_BLOCK, first + second), dtype=np.int64)
    padded[:rows, :split] = weight[:, :split]
    padded[:rows, first:first + cols - split] = weight[:, split:]
    halves = padded.reshape(-1, ROW_BLOCK, padded.shape[1] // 2, 2) & 0xFFFF   # [block][row][pair][half]
    words = halves[..., 0] | (halves[..., 1] << 16)
    return words.transpose(0, 2, 1).ravel()                                    # [block][pair][row]


def headroom_bits(layer: QLinear, act_bits: int) -> np.ndarray:
    """Per row, the power of two ``k`` by which the DSP layout scales the row's weights and bias, so that its
    requantization shift ``n + k`` reaches 33 and the kernel always takes the high-word path. Exact:
    ``floor((2^k v + 2^(n+k-1)) / 2^(n+k)) = floor((v + 2^(n-1)) / 2^n)``. Only where the scaled weights still fit
    int16 (``k <= 8``) and every scaled partial sum stays below 2^30 (so the int32 accumulation and the 64-bit
    products keep their bounds); other rows get ``k = 0``."""
    if layer.multiplier is None:
        return np.zeros(layer.rows, dtype=np.int64)
    weight, split = np.abs(layer.weight.astype(np.int64)), layer.split
    act_max = 2 ** (act_bits - 1)
    worst = np.maximum(weight[:, :split].sum(axis=1) * act_max + np.abs(layer.bias.astype(np.int64)),
                       weight[:, split:].sum(axis=1) * act_max)
    k = np.clip(33 - layer.shift.astype(np.int64), 0, 8)
    return np.where(np.left_shift(worst, k) < 2 ** 30, k, 0)


def _packed_requantization(layer: QLinear, headroom: np.ndarray) -> np.ndarray:
    """One array per layer for the DSP kernel (one pointer, few registers): the two shifts, or [m1, m2, n - 33]
    per row (``n`` including the row's ``headroom``), the kernel then working on the high word (same result, see
    docs/numerics.md). The padding rows of the last block come out 0."""
    padding = -layer.rows % ROW_BLOCK

    def padded(values: np.ndarray, fill: int) -> np.ndarray:
        return np.concatenate([values.astype(np.int64), np.full(padding, fill, dtype=np.int64)])

    if layer.multiplier is None:
        return np.stack([padded(layer.shift, 0), padded(layer.shift2, 0)], axis=1).ravel()
    high = padded(layer.shift.astype(np.int64) + headroom, 33) - 33
    return np.stack([padded(layer.multiplier, 0), padded(layer.multiplier2, 0), high], axis=1).ravel()


def _runs_sparse(layer: QLinear, sparse_max_density: float) -> bool:
    return layer.mask is not None and bool(np.count_nonzero(layer.mask) < sparse_max_density * layer.mask.size)


def _index_ctype(layers: list[QLinear], sparse_max_density: float) -> str:
    """One index type for every sparse layer of the model (one kernel): bytes where every column index and
    per-row count fits."""
    widest = max((layer.cols for layer in layers if _runs_sparse(layer, sparse_max_density)), default=0)
    if widest > 0xFFFF:
        raise ValueError(f"a sparse layer of {widest} inputs (at most 65535)")
    return "uint8_t" if widest <= 0xFF else "uint16_t"


def _layer_plan(prefix: str, layer: QLinear, comment: str, dsp: bool, sparse_max_density: float,
                act_bits: int, index_ctype: str) -> LayerPlan:
    plan = LayerPlan(prefix, layer, sparse=_runs_sparse(layer, sparse_max_density))
    headroom = headroom_bits(layer, act_bits)
    # The DSP kernel requantizes from the high word only (n >= 33); a layer with a row it cannot scale that far
    # (a ratio above about 2^6 or a huge accumulator: rare) keeps the int8 rows and the general requantization.
    plan.packed = dsp and not plan.sparse and (layer.multiplier is None or bool(np.all(layer.shift + headroom >= 33)))
    a = plan.arrays
    bias = layer.bias
    if plan.packed:
        plan.headroom = headroom
        weight = layer.weight.astype(np.int64) << headroom[:, None]
        bias = layer.bias.astype(np.int64) << headroom
        a.append(IntArray(f"{prefix}_w", "uint32_t", packed_pairs(weight, layer.split),
                          f"{comment}: int16 pairs [block of {ROW_BLOCK} rows][column pair][row]"
                          + (", rows scaled by 2^headroom" if headroom.any() else "")))
    elif plan.sparse:
        rows, cols = np.nonzero(layer.mask)
        first_group = np.bincount(rows[cols < layer.split], minlength=layer.rows)
        second_group = np.bincount(rows[cols >= layer.split], minlength=layer.rows)
        a.append(IntArray(f"{prefix}_w", "int8_t", layer.weight[rows, cols],
                          f"{comment}: kept synapses, row order, columns increasing"))
        a.append(IntArray(f"{prefix}_col", index_ctype, cols, "input index of each kept synapse"))
        a.append(IntArray(f"{prefix}_count", index_ctype, np.stack([first_group, second_group], axis=1).ravel(),
                          "kept synapses of each row in the first and in the second column group"))
    else:
        a.append(IntArray(f"{prefix}_w", "int8_t", layer.weight, f"{comment} [{layer.rows}][{layer.cols}]"))
    if plan.packed:
        bias = np.concatenate([bias, np.zeros(-len(bias) % ROW_BLOCK, dtype=bias.dtype)])
    a.append(IntArray(f"{prefix}_b", "int32_t", bias, "bias at accumulator scale"))
    if plan.packed:
        a.append(IntArray(f"{prefix}_rq", "int32_t", _packed_requantization(layer, headroom),
                          "requantization per row: shifts of both groups" if layer.multiplier is None else
                          "requantization per row: m1, m2, n - 33"))
        return plan
    if layer.multiplier is not None:
        a.append(IntArray(f"{prefix}_m", "int32_t", layer.multiplier, "multiplier of the first column group"))
        a.append(IntArray(f"{prefix}_m2", "int32_t", layer.multiplier2, "multiplier of the second column group"))
        a.append(IntArray(f"{prefix}_s", "int8_t", layer.shift, "requantization right shift"))
    else:
        a.append(IntArray(f"{prefix}_s", "int8_t", layer.shift, "right shift of the first column group"))
        a.append(IntArray(f"{prefix}_s2", "int8_t", layer.shift2, "right shift of the second column group"))
    return plan


def plan_quantized(q: QModel, c_name: str, dsp: bool = False,
                   sparse_max_density: float = SPARSE_MAX_DENSITY) -> QuantPlan:
    index_ctype = _index_ctype([layer for _, layer in q.linears()], sparse_max_density)

    def layer_plan(prefix: str, layer: QLinear, comment: str) -> LayerPlan:
        return _layer_plan(prefix, layer, comment, dsp, sparse_max_density, q.act_bits, index_ctype)

    arrays: list[IntArray] = []
    derived = {tables.SIGMOID} if sigmoid_from_tanh(q) else set()
    for table in (t for name, t in q.tables.items() if name not in derived):
        arrays.append(IntArray(f"{c_name}_t_{table.name}", "int16_t", table.values,
                               f"{table.function}: input Q{table.in_frac}, output Q{table.out_frac}"))
    memory = None
    if q.memory is not None:
        memory = layer_plan(f"{c_name}_lstm", q.memory, "LSTM gates i, ig, fg, og")
        arrays += memory.arrays
    cells, offset, width = [], 0, q.input_size
    scratch = 0
    for i, cell in enumerate(q.cells):
        prefix = f"{c_name}_c{i}"
        backbone = [layer_plan(f"{prefix}_bb{k}", layer, f"backbone layer {k}")
                    for k, layer in enumerate(cell.backbone)]
        heads = layer_plan(f"{prefix}_heads", cell.heads, "heads ff1" if cell.mode == "pure"
                           else "heads ff1, ff2, time_a, time_b")
        plan = CellPlan(i, cell, offset, width, backbone, heads)
        for layer in backbone:
            plan.arrays += layer.arrays
        plan.arrays += heads.arrays
        if cell.mode == "pure":
            plan.arrays.append(IntArray(f"{prefix}_tau", "int16_t", cell.tau, f"|w_tau| in Q{cell.ff1_frac}"))
            plan.arrays.append(IntArray(f"{prefix}_amp", "int16_t", cell.amp, f"A in Q{cell.amp_frac}"))
        arrays += plan.arrays
        cells.append(plan)
        scratch = max(scratch, width + cell.units + sum(l.rows for l in backbone) + heads.rows)
        offset += cell.units
        width = cell.units
    projection = None
    if q.projection is not None:
        projection = layer_plan(f"{c_name}_proj", q.projection, "output projection")
        arrays += projection.arrays
    state_fracs = q.state_fracs()
    arrays.append(IntArray(f"{c_name}_state_inv2", "float", 2.0 ** (state_fracs + 1), "2 / scale of each state value"))
    arrays.append(IntArray(f"{c_name}_state_scale", "float", 2.0 ** -state_fracs.astype(np.float64),
                           "scale of each state value"))
    arrays.append(IntArray(f"{c_name}_input_inv2", "float", q.input_inv_scale2, "2 / scale of each input"))
    return QuantPlan(q, c_name, cells, memory, projection, arrays, scratch, index_ctype)


def emit_quantized_library(q: QModel, c_name: str, dsp: bool = False,
                           sparse_max_density: float = SPARSE_MAX_DENSITY, source: Source | None = None) -> CLibrary:
    """Render ``<c_name>.h`` and ``<c_name>.c`` for ``q``, with the figures of the float emitter's manifest.
    ``dsp``: lay dense weights out for the SMLAD kernel (targets whose core has the DSP extension).
    ``sparse_max_density``: masked layers keeping less than this fraction of their weights run sparse.
    ``source``: the checkpoint the float model came from, named in the header."""
    plan = plan_quantized(q, c_name, dsp, sparse_max_density)
    env = template_environment()
    context = {"plan": plan, "q": q, "name": c_name, "NAME": plan.macro, "version": __version__,
               "c_float": c_float, "T": plan.table_consts, "source": source}
    files = {f"{c_name}.h": env.get_template("int/model_q.h.j2").render(context),
             f"{c_name}.c": env.get_template("int/model_q.c.j2").render(context)}
    return CLibrary(c_name, files, _figures(plan))


def _figures(plan: QuantPlan) -> dict:
    q = plan.q
    dense = sum(layer.rows * layer.cols for layer in plan.layers())
    return {
        "input_size": q.input_size,
        "output_size": q.output_size,
        "state_size": q.state_size,
        "state_bytes": q.state_size * q.state_bits // 8,
        "scratch_bytes": 2 * plan.scratch,
        "weight_bytes": plan.weight_bytes,
        "dense_macs_per_step": dense,
        "sparse_macs_per_step": sum(layer.kept for layer in plan.layers()),
        "executed_macs_per_step": plan.macs_per_step,
        "sparse_code": plan.needs_sparse,
    }
