"""Float32 C library emitter: the IR becomes ``<name>.h`` + ``<name>.c`` (rendered from ``codegen/*.j2``).

What the generated code looks like, and why:

* Every weight is a ``static const`` array (flash), named ``<name>_<piece>``; nothing is allocated, nothing is
  writable at file scope, so any number of state instances (and of models) can run side by side.
* The four CfC heads read the same vector, so their weights are interleaved ``[unit][input][ff1, ff2, time_a,
  time_b]``: one load of an input element feeds four multiply-accumulates. The LSTM gates are laid out the same
  way (``[unit][x then h][i, ig, fg, og]``).
* Wired (NCP) cells keep only the synapses their mask allows: ff1/ff2 become a compressed-row list
  (``row`` offsets per unit, ``col`` input indices, weights interleaved ``[synapse][ff1, ff2]``); the time heads,
  which ncps never masks, stay dense and run through the linear kernel as one matrix of 2 x units rows before
  the units are updated. Backbone layers, the projection and pure-mode ff1 use that kernel too: rows in blocks
  of four interleaved ``[out / 4][in][4]``, so it also feeds four MACs per load. ``sparse=False`` emits the dense
  layout instead; both add the same products in the same order, so they give identical results.
* Scratch buffers live on the stack with compile-time sizes; ``<NAME>_SCRATCH_BYTES`` is their largest total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import jinja2
import numpy as np

from liquid_edge import __version__
from liquid_edge.analysis import summarize
from liquid_edge.assets import asset_dir
from liquid_edge.ir import CfCCell, Linear, Model
from liquid_edge.emit.naming import comment_text

FLOAT_BYTES = 4


@dataclass(frozen=True)
class CArray:
    """One ``static const`` array of the generated library."""

    name: str
    ctype: str
    values: np.ndarray
    comment: str

    @property
    def nbytes(self) -> int:
        return int(self.values.size) * _CTYPE_BYTES[self.ctype]

    def c_values(self, per_line: int = 8) -> list[str]:
        """The initializer, as lines of comma-separated C literals."""
        literals = [_c_float(v) for v in self.values] if self.ctype == "float" else [str(int(v)) for v in
                                                                                       self.values]
        return [", ".join(literals[i:i + per_line]) for i in range(0, len(literals), per_line)]


_CTYPE_BYTES = {"float": 4, "uint8_t": 1, "uint16_t": 2, "uint32_t": 4}


def _c_float(value: float) -> str:
    # numpy prints the shortest decimal that reads back as the same float32; C then rounds it correctly.
    text = str(np.float32(value))
    if not any(ch in text for ch in ".en"):
        text += ".0"
    return text + "f"


def _index_ctype(limit: int) -> str:
    return next(t for t, top in (("uint8_t", 0xFF), ("uint16_t", 0xFFFF), ("uint32_t", 0xFFFFFFFF)) if limit <= top)


@dataclass
class CellPlan:
    """What the template needs to emit one CfC cell as ``<name>_cell<index>``."""

    index: int
    cell: CfCCell
    sparse: bool
    state_offset: int
    layer_name: str
    arrays: dict[str, CArray] = field(default_factory=dict)
    macs: int = 0

    @property
    def concat_size(self) -> int:
        return self.cell.input_size + self.cell.units

    @property
    def backbone_sizes(self) -> list[tuple[int, int]]:
        return [(layer.in_features, layer.out_features) for layer in self.cell.backbone]

    @property
    def head_input_size(self) -> int:
        return self.cell.head_input_size

    @property
    def pure_dense(self) -> bool:
        """Pure mode without a mask: ff1 of all units through the linear kernel into a buffer, then the update."""
        return self.cell.mode == "pure" and not self.sparse

    @property
    def time_buffer(self) -> bool:
        """Sparse cells with time heads: both dense time heads of all units through the linear kernel first."""
        return self.sparse and self.cell.mode != "pure"

    @property
    def scratch_floats(self) -> int:
        """``z``, the backbone ping-pong buffers (one for a single layer), and ff1 (pure dense cells) or the time
        heads (sparse cells)."""
        widths = [layer.out_features for layer in self.cell.backbone]
        buffers = min(len(widths), 2) * max(widths, default=0)
        return (self.concat_size + buffers + (self.cell.units if self.pure_dense else 0)
                + (2 * self.cell.units if self.time_buffer else 0))


@dataclass
class LibraryPlan:
    """Everything the templates read: the model, its C name, the arrays and the figures."""

    model: Model
    c_name: str
    sparse: bool
    cells: list[CellPlan]
    arrays: list[CArray]
    index_ctype: str
    offset_ctype: str
    macs_per_step: int
    scratch_floats: int

    @property
    def macro(self) -> str:
        return self.c_name.upper()

    @property
    def activations(self) -> list[str]:
        """Backbone activations used (only these are emitted: unused static functions would warn)."""
        return sorted({cell.activation for cell in self.model.cells if cell.backbone})

    @property
    def needs_tanh(self) -> bool:
        return (self.model.mode != "pure" or self.model.memory is not None
                or bool({"lecun_tanh", "tanh"} & set(self.activations)))

    @property
    def needs_sigmoid(self) -> bool:
        return self.model.mode != "pure" or self.model.memory is not None or "silu" in self.activations

    @property
    def kernels(self) -> set[str]:
        used = set()
        for plan in self.cells:
            if plan.cell.backbone:
                used.add("linear")
            pure = plan.cell.mode == "pure"
            if plan.sparse:
                used |= {"sparse_dot"} if pure else {"sparse_mac2", "linear"}
            else:
                used.add("linear" if pure else "mac4")
        if self.model.memory is not None:
            used.add("mac4")
        if self.model.projection is not None:
            used.add("linear")
        if "linear" in used:
            used |= {"mac4", "dot"}
        return used

    @property
    def weight_bytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)


def plan_library(model: Model, c_name: str, *, sparse: bool = True) -> LibraryPlan:
    """Lay out the weights for the kernels and count what the generated code will execute."""
    sparse_cells = [sparse and _is_masked(cell) for cell in model.cells]
    kept = [_kept_synapses(cell) if s else None for cell, s in zip(model.cells, sparse_cells)]
    index_ctype = _index_ctype(max((c.head_input_size - 1 for c, s in zip(model.cells, sparse_cells) if s),
                                   default=0))
    offset_ctype = _index_ctype(max((int(np.count_nonzero(k)) for k in kept if k is not None), default=0))
    arrays: list[CArray] = []
    cells: list[CellPlan] = []
    offset = 0
    layer_names = model.wiring.layer_names if model.wiring is not None else ("cfc",)
    for i, cell in enumerate(model.cells):
        plan = CellPlan(i, cell, sparse_cells[i], offset, layer_names[i])
        prefix = f"{c_name}_c{i}"
        for k, layer in enumerate(cell.backbone):
            plan.arrays[f"bb{k}_w"] = CArray(f"{prefix}_bb{k}_w", "float", _row_blocked(layer.weight),
                                             f"backbone layer {k} weights {_blocked_shape(layer)}")
            plan.arrays[f"bb{k}_b"] = CArray(f"{prefix}_bb{k}_b", "float", layer.bias, f"backbone layer {k} bias")
            plan.macs += layer.dense_macs
        if plan.sparse:
            _plan_sparse_heads(plan, prefix, kept[i], index_ctype, offset_ctype)
        else:
            _plan_dense_heads(plan, prefix)
        arrays.extend(plan.arrays.values())
        cells.append(plan)
        offset += cell.units
    macs = sum(p.macs for p in cells)
    scratch = max(p.scratch_floats for p in cells)
    if model.memory is not None:
        arrays.extend(_plan_memory(model, c_name))
        macs += model.memory.input_map.dense_macs + model.memory.recurrent_map.dense_macs
        # The step keeps the LSTM's hidden output while the cells run; the LSTM's own [x, h] is not live then.
        scratch = model.hidden_size + max(scratch, model.input_size + model.hidden_size)
    if model.projection is not None:
        proj = model.projection
        arrays.append(CArray(f"{c_name}_proj_w", "float", _row_blocked(proj.weight),
                             f"output projection weights {_blocked_shape(proj)}"))
        arrays.append(CArray(f"{c_name}_proj_b", "float", proj.bias, "output projection bias"))
        macs += proj.dense_macs
    return LibraryPlan(model, c_name, sparse, cells, arrays, index_ctype, offset_ctype, macs, scratch)


def _is_masked(cell: CfCCell) -> bool:
    """True when a mask removes some synapses but not all (an all-ones mask, e.g. FullyConnected wiring, is
    better dense, and an all-zero one would leave empty arrays, which C does not allow)."""
    masks = [head.mask for head in _ff_heads(cell) if head.mask is not None]
    return bool(masks) and not np.all(_kept_synapses(cell)) and bool(np.any(_kept_synapses(cell)))


def _ff_heads(cell: CfCCell) -> tuple[Linear, ...]:
    return (cell.ff1,) if cell.mode == "pure" else (cell.ff1, cell.ff2)


def _kept_synapses(cell: CfCCell) -> np.ndarray:
    """Synapses any ff head keeps: ncps gives ff1 and ff2 one mask; the union keeps this exact for any pair."""
    keep = np.zeros((cell.units, cell.head_input_size), dtype=bool)
    for head in _ff_heads(cell):
        keep |= (head.mask != 0) if head.mask is not None else True
    return keep


def _row_blocked(weight: np.ndarray) -> np.ndarray:
    """The layout of the linear kernel: blocks of four rows interleaved ``[out / 4][in][4]``, then the rest."""
    full = weight.shape[0] // 4 * 4
    blocks = weight[:full].reshape(-1, 4, weight.shape[1]).transpose(0, 2, 1)
    return np.concatenate([blocks.ravel(), weight[full:].ravel()])


def _blocked_shape(layer: Linear) -> str:
    out, width = layer.out_features, layer.in_features
    rest = f" + [{out % 4}][{width}]" if out % 4 else ""
    return f"[{out // 4}][{width}][4]{rest}"


def _interleave(*layers: Linear) -> np.ndarray:
    """``[unit][input][head]`` from heads shaped ``(units, inputs)``."""
    return np.stack([layer.weight for layer in layers], axis=-1).ravel()


def _plan_head_biases(plan: CellPlan, prefix: str) -> None:
    cell = plan.cell
    pure = cell.mode == "pure"
    biases = [cell.ff1.bias] if pure else [cell.ff1.bias, cell.ff2.bias, cell.time_a.bias, cell.time_b.bias]
    plan.arrays["heads_b"] = CArray(f"{prefix}_heads_b", "float", np.stack(biases, axis=-1).ravel(),
                                    "head biases [unit][ff1]" if pure else
                                    "head biases [unit][ff1, ff2, time_a, time_b]")
    if pure:
        plan.arrays["tau"] = CArray(f"{prefix}_tau", "float", np.abs(cell.w_tau), "|w_tau| per unit")
        plan.arrays["amp"] = CArray(f"{prefix}_a", "float", cell.A, "A per unit")


def _plan_dense_heads(plan: CellPlan, prefix: str) -> None:
    cell = plan.cell
    pure = cell.mode == "pure"
    if pure:
        plan.arrays["heads_w"] = CArray(f"{prefix}_heads_w", "float", _row_blocked(cell.ff1.weight),
                                        f"ff1 weights {_blocked_shape(cell.ff1)}")
        plan.macs += cell.ff1.dense_macs
    else:
        plan.arrays["heads_w"] = CArray(f"{prefix}_heads_w", "float",
                                        _interleave(cell.ff1, cell.ff2, cell.time_a, cell.time_b),
                                        f"heads [{cell.units}][{cell.head_input_size}][ff1, ff2, time_a, time_b]")
        plan.macs += 4 * cell.ff1.dense_macs
    _plan_head_biases(plan, prefix)


def _plan_sparse_heads(plan: CellPlan, prefix: str, keep: np.ndarray, index_ctype: str, offset_ctype: str) -> None:
    cell, a = plan.cell, plan.arrays
    ff_heads = _ff_heads(cell)
    rows, cols = np.nonzero(keep)
    row_offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=cell.units))])
    names = "ff1" if len(ff_heads) == 1 else "ff1, ff2"
    a["ff_w"] = CArray(f"{prefix}_ff_w", "float", np.stack([h.weight[rows, cols] for h in ff_heads], axis=-1).ravel(),
                       f"kept synapses [synapse][{names}], in unit order")
    a["ff_col"] = CArray(f"{prefix}_ff_col", index_ctype, cols, "input index of each kept synapse")
    a["ff_row"] = CArray(f"{prefix}_ff_row", offset_ctype, row_offsets, "first synapse of each unit, then the end")
    plan.macs += len(rows) * len(ff_heads)
    if cell.mode == "pure":
        _plan_head_biases(plan, prefix)
        return
    # The time heads stay dense: one matrix of rows time_a[0], time_b[0], time_a[1], ... for the linear kernel.
    time_rows = Linear(np.stack([cell.time_a.weight, cell.time_b.weight], axis=1).reshape(2 * cell.units, -1),
                       np.stack([cell.time_a.bias, cell.time_b.bias], axis=1).ravel())
    a["ff_b"] = CArray(f"{prefix}_ff_b", "float", np.stack([cell.ff1.bias, cell.ff2.bias], axis=-1).ravel(),
                       "ff biases [unit][ff1, ff2]")
    a["time_w"] = CArray(f"{prefix}_time_w", "float", _row_blocked(time_rows.weight),
                         f"time heads (dense), rows time_a/time_b of unit 0, 1, ...: {_blocked_shape(time_rows)}")
    a["time_b"] = CArray(f"{prefix}_time_b", "float", time_rows.bias, "time head biases [unit][time_a, time_b]")
    plan.macs += time_rows.dense_macs


def _plan_memory(model: Model, c_name: str) -> list[CArray]:
    memory, hidden = model.memory, model.hidden_size
    w_in, w_rec = memory.input_map.weight, memory.recurrent_map.weight
    # Rows j, H+j, 2H+j, 3H+j of both maps are unit j's gates i, ig, fg, og; [x, h] is one vector in C.
    weight = np.concatenate([w_in, w_rec], axis=1).reshape(4, hidden, -1).transpose(1, 2, 0)
    bias = memory.input_map.bias.reshape(4, hidden).T.copy()
    bias[:, 2] += 1.0  # ncps adds 1 to the forget gate pre-activation: folded into its bias
    return [CArray(f"{c_name}_lstm_w", "float", weight.ravel(),
                   f"LSTM gates [{hidden}][{model.input_size} inputs then {hidden} hidden][i, ig, fg, og]"),
            CArray(f"{c_name}_lstm_b", "float", bias.ravel(), "LSTM gate biases [unit][i, ig, fg, og], fg + 1")]


@cache
def template_environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(asset_dir("codegen"))),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    env.filters["comment"] = comment_text
    return env


@dataclass(frozen=True)
class CLibrary:
    """The generated sources (file name -> text) and the figures a user cares about."""

    c_name: str
    files: dict[str, str]
    figures: dict


def emit_c_library(model: Model, c_name: str, *, sparse: bool = True) -> CLibrary:
    """Render the float32 library of ``model`` with every symbol prefixed by ``c_name`` (already sanitized)."""
    plan = plan_library(model, c_name, sparse=sparse)
    env = template_environment()
    context = {"plan": plan, "model": model, "name": c_name, "NAME": plan.macro, "version": __version__}
    files = {f"{c_name}.h": env.get_template("model.h.j2").render(context),
             f"{c_name}.c": env.get_template("model.c.j2").render(context)}
    return CLibrary(c_name, files, library_figures(plan))


def library_figures(plan: LibraryPlan) -> dict:
    """Sizes, memory and MACs per step: what the model needs (dense, with sparsity) and what this code executes."""
    model = plan.model
    macs = summarize(model)["macs_per_step"]
    return {
        "input_size": model.input_size,
        "output_size": model.output_size,
        "state_size": model.state_size,
        "state_bytes": model.state_size * FLOAT_BYTES,
        "scratch_bytes": plan.scratch_floats * FLOAT_BYTES,
        "weight_bytes": plan.weight_bytes,
        "dense_macs_per_step": macs["dense"],
        "sparse_macs_per_step": macs["sparse"],
        "executed_macs_per_step": plan.macs_per_step,
        "sparse_code": any(cell.sparse for cell in plan.cells),
    }
