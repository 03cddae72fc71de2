"""The model description (IR): one framework-free, validated description of a liquid network.

Loaders turn checkpoints into a :class:`Model`; the float reference, the quantizer, the emulator and the emitters
all read it. Weights are float64 numpy arrays in PyTorch layout (``weight`` is ``(out, in)``).

Conventions that every consumer relies on:

* A dense CfC is one :class:`CfCCell`. A wired (NCP) CfC is one cell per wiring layer, run in order
  (inter, command, motor): cell ``l`` reads the new state of cell ``l-1`` (the sensory input for ``l = 0``).
* The recurrent state is the concatenation of the cells' states in that layer order (this is ncps's order,
  not neuron-ID order), followed by the LSTM cell state when ``memory`` is present.
* ``mask`` on a :class:`Linear` is the checkpoint's sparsity mask; the weights under a zero mask entry are already
  zero in the IR (ncps keeps their initial values in the file, which must never leak into statistics or code).
  Only ff1/ff2 of wired cells carry masks: ncps never masks the time heads.
* Time spans: one elapsed time ``dt`` per sample and step (``None`` means 1.0 everywhere).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from liquid_edge.errors import ModelFormatError

MODES = ("default", "no_gate", "pure")
ACTIVATIONS = ("lecun_tanh", "silu", "relu", "tanh", "gelu")
WIRED_LAYER_NAMES = ("inter", "command", "motor")


@dataclass(frozen=True, eq=False)
class Linear:
    """``y = weight @ x + bias`` with an optional 0/1 sparsity mask of the same shape as ``weight``."""

    weight: np.ndarray
    bias: np.ndarray | None
    mask: np.ndarray | None = None

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def dense_macs(self) -> int:
        return self.out_features * self.in_features

    @property
    def sparse_macs(self) -> int:
        """Multiply-accumulates left when masked-out weights are neither stored nor multiplied."""
        return self.dense_macs if self.mask is None else int(np.count_nonzero(self.mask))

    @property
    def parameter_count(self) -> int:
        return self.weight.size + (0 if self.bias is None else self.bias.size)

    def arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        yield "weight", self.weight
        if self.bias is not None:
            yield "bias", self.bias
        if self.mask is not None:
            yield "mask", self.mask

    def validate(self, name: str, in_features: int, out_features: int, *, bias: bool = True) -> None:
        _require_matrix(f"{name}.weight", self.weight, (out_features, in_features))
        if bias:
            if self.bias is None:
                raise ModelFormatError(f"tensor {name}.bias is missing", "check that the checkpoint is complete")
            _require_matrix(f"{name}.bias", self.bias, (out_features,))
        elif self.bias is not None:
            raise ModelFormatError(f"tensor {name}.bias is unexpected: this layer has no bias")
        if self.mask is not None:
            _require_matrix(f"{name}.mask", self.mask, (out_features, in_features))
            if not np.all((self.mask == 0) | (self.mask == 1)):
                raise ModelFormatError(f"tensor {name}.mask holds values other than 0 and 1")
            if np.any(self.weight[self.mask == 0] != 0):
                raise ModelFormatError(f"tensor {name}.weight is non-zero under its mask",
                                       "zero masked weights when building the IR")


@dataclass(frozen=True, eq=False)
class CfCCell:
    """One closed-form continuous-time cell (ncps ``CfCCell``).

    ``input_size`` is the width of the vector this cell reads besides its own state. The heads read the backbone
    output, or ``[x, h]`` when there is no backbone. ``pure`` mode has ff1, ``w_tau`` and ``A`` only.
    """

    input_size: int
    units: int
    mode: str
    activation: str
    backbone: tuple[Linear, ...]
    ff1: Linear
    ff2: Linear | None = None
    time_a: Linear | None = None
    time_b: Linear | None = None
    w_tau: np.ndarray | None = None
    A: np.ndarray | None = None

    @property
    def head_input_size(self) -> int:
        return self.backbone[-1].out_features if self.backbone else self.input_size + self.units

    def heads(self) -> dict[str, Linear]:
        names = ("ff1",) if self.mode == "pure" else ("ff1", "ff2", "time_a", "time_b")
        return {n: getattr(self, n) for n in names}

    def linears(self) -> Iterator[tuple[str, Linear]]:
        for i, layer in enumerate(self.backbone):
            yield f"backbone.{i}", layer
        yield from self.heads().items()

    def arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        for lname, layer in self.linears():
            for aname, array in layer.arrays():
                yield f"{lname}.{aname}", array
        if self.mode == "pure":
            yield "w_tau", self.w_tau
            yield "A", self.A

    def validate(self, name: str) -> None:
        if self.mode not in MODES:
            raise ModelFormatError(f"{name}: unknown CfC mode '{self.mode}'", f"use one of {', '.join(MODES)}")
        if self.activation not in ACTIVATIONS:
            raise ModelFormatError(f"{name}: unknown activation '{self.activation}'",
                                   f"use one of {', '.join(ACTIVATIONS)}")
        if self.input_size < 1 or self.units < 1:
            raise ModelFormatError(f"{name}: sizes must be positive (input {self.input_size}, units {self.units})")
        width = self.input_size + self.units
        for i, layer in enumerate(self.backbone):
            layer.validate(f"{name}.backbone.{i}", width, layer.out_features)
            if layer.mask is not None:
                raise ModelFormatError(f"{name}.backbone.{i} is masked; only ff1/ff2 may carry a sparsity mask")
            width = layer.out_features
        heads = self.heads()
        for head_name in ("ff1", "ff2", "time_a", "time_b"):
            head = getattr(self, head_name)
            if head_name not in heads:
                if head is not None:
                    raise ModelFormatError(f"{name}.{head_name} is present but mode '{self.mode}' has no such head")
                continue
            if head is None:
                raise ModelFormatError(f"tensor {name}.{head_name}.weight is missing",
                                       "check that the checkpoint is complete")
            head.validate(f"{name}.{head_name}", width, self.units)
            if head.mask is not None and head_name.startswith("time"):
                raise ModelFormatError(f"{name}.{head_name} is masked; ncps never masks the time heads")
        pure_params = {"w_tau": self.w_tau, "A": self.A}
        for pname, value in pure_params.items():
            if self.mode == "pure":
                if value is None:
                    raise ModelFormatError(f"tensor {name}.{pname} is missing (pure mode needs it)")
                _require_matrix(f"{name}.{pname}", value, (self.units,))
            elif value is not None:
                raise ModelFormatError(f"{name}.{pname} is present but only pure mode has it")


@dataclass(frozen=True, eq=False)
class LSTMMemory:
    """ncps mixed-memory LSTM cell: ``z = input_map(x) + recurrent_map(h)``; chunks i, ig, fg, og."""

    input_map: Linear
    recurrent_map: Linear

    def linears(self) -> Iterator[tuple[str, Linear]]:
        yield "input_map", self.input_map
        yield "recurrent_map", self.recurrent_map

    def arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        for lname, layer in self.linears():
            for aname, array in layer.arrays():
                yield f"{lname}.{aname}", array

    def validate(self, name: str, input_size: int, units: int) -> None:
        self.input_map.validate(f"{name}.input_map", input_size, 4 * units)
        self.recurrent_map.validate(f"{name}.recurrent_map", units, 4 * units, bias=False)


@dataclass(frozen=True)
class Wiring:
    """What is known of the ncps wiring a wired model was built with (the masks in the cells are the truth)."""

    kind: str
    layer_names: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """Where a model came from: shown in reports and written into generated headers."""

    path: str
    sha256: str
    format: str
    module: str = ""


@dataclass(frozen=True, eq=False)
class Model:
    """A complete liquid network: cells, optional mixed memory, optional output projection."""

    name: str
    input_size: int
    cells: tuple[CfCCell, ...]
    wiring: Wiring | None = None
    memory: LSTMMemory | None = None
    projection: Linear | None = None
    source: Source | None = None
    kind: str = field(default="cfc")

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return tuple(cell.units for cell in self.cells)

    @property
    def hidden_size(self) -> int:
        return sum(self.layer_sizes)

    @property
    def state_size(self) -> int:
        """Number of state values: hidden state, plus the LSTM cell state with mixed memory."""
        return self.hidden_size * (2 if self.memory is not None else 1)

    @property
    def rnn_output_size(self) -> int:
        return self.cells[-1].units

    @property
    def output_size(self) -> int:
        return self.projection.out_features if self.projection is not None else self.rnn_output_size

    @property
    def mode(self) -> str:
        return self.cells[0].mode

    def linears(self) -> Iterator[tuple[str, Linear]]:
        """Every linear layer with a stable dotted name (``cells.0.ff1``, ``memory.input_map``, ``projection``)."""
        if self.memory is not None:
            for lname, layer in self.memory.linears():
                yield f"memory.{lname}", layer
        for i, cell in enumerate(self.cells):
            for lname, layer in cell.linears():
                yield f"cells.{i}.{lname}", layer
        if self.projection is not None:
            yield "projection", self.projection

    def arrays(self) -> Iterator[tuple[str, np.ndarray]]:
        """Every array with a stable dotted name; the serialized form of the weights."""
        if self.memory is not None:
            for aname, array in self.memory.arrays():
                yield f"memory.{aname}", array
        for i, cell in enumerate(self.cells):
            for aname, array in cell.arrays():
                yield f"cells.{i}.{aname}", array
        if self.projection is not None:
            for aname, array in self.projection.arrays():
                yield f"projection.{aname}", array

    def validate(self) -> "Model":
        """Check every shape and value; raise :class:`ModelFormatError` naming the offending tensor."""
        if self.kind != "cfc":
            raise ModelFormatError(f"unsupported model kind '{self.kind}'")
        if not self.cells:
            raise ModelFormatError("the model has no cells")
        if self.input_size < 1:
            raise ModelFormatError(f"input size must be positive, got {self.input_size}")
        modes = {cell.mode for cell in self.cells}
        if len(modes) != 1:
            raise ModelFormatError(f"all cells must share one mode, got {sorted(modes)}")
        width = self.input_size
        for i, cell in enumerate(self.cells):
            if cell.input_size != width:
                raise ModelFormatError(f"cells.{i} reads {cell.input_size} inputs but the previous layer gives {width}")
            cell.validate(f"cells.{i}")
            width = cell.units
        if len(self.cells) > 1 and self.wiring is None:
            raise ModelFormatError("a model with several cells must say which wiring it has")
        if self.wiring is not None and len(self.wiring.layer_names) != len(self.cells):
            raise ModelFormatError(f"the wiring names {len(self.wiring.layer_names)} layers "
                                   f"but the model has {len(self.cells)} cells")
        if self.memory is not None:
            self.memory.validate("memory", self.input_size, self.hidden_size)
        if self.projection is not None:
            self.projection.validate("projection", self.rnn_output_size, self.projection.out_features)
        for aname, array in self.arrays():
            if not np.all(np.isfinite(array)):
                bad = int(np.count_nonzero(~np.isfinite(array)))
                raise ModelFormatError(f"tensor {aname} holds {bad} non-finite value(s) (NaN or Inf)",
                                       "retrain or repair the checkpoint")
        return self


def _require_matrix(name: str, array: object, shape: tuple[int, ...]) -> None:
    if not isinstance(array, np.ndarray):
        raise ModelFormatError(f"tensor {name} is not an array")
    if array.shape != shape:
        raise ModelFormatError(f"tensor {name} has shape {tuple(array.shape)}, expected {shape}")
