"""Nonlinearities in integer arithmetic: 513-entry int16 tables with linear interpolation.

A table covers the whole int16 input range of its Q format: a *signed* table reads ``x`` in [-32768, 32767]
(512 intervals of 128 input steps), a *non-negative* table reads ``x`` in [0, 32767] (512 intervals of 64
steps). Entry ``k`` holds ``round(f(v_k) * 2**out_frac)`` saturated to int16, ``v_k`` being the left edge of
interval ``k`` (entry 512 is the right edge of the last interval). Lookup, exactly as the C code does it::

    u = x + 32768 (signed) or x (non-negative);  k = u >> s;  r = u & (2**s - 1)    (s = 7 or 6)
    y = t[k] + ((t[k+1] - t[k]) * r + 2**(s-1)) >> s                                (arithmetic shift)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from liquid_edge.quant import fixed
from liquid_edge.reference import ACTIVATION_FUNCTIONS, sigmoid

ENTRIES = 513

FUNCTIONS = {
    "tanh": np.tanh,
    "sigmoid": sigmoid,
    "exp_neg": lambda v: np.exp(-v),
    **{name: fn for name, fn in ACTIVATION_FUNCTIONS.items() if name != "relu"},
}


@dataclass(frozen=True, eq=False)
class Table:
    function: str
    in_frac: int
    out_frac: int
    signed: bool
    values: np.ndarray  # int16, ENTRIES

    @property
    def name(self) -> str:
        return table_name(self.function, self.in_frac, self.out_frac)

    @property
    def index_shift(self) -> int:
        return 7 if self.signed else 6

    def lookup(self, x: np.ndarray) -> np.ndarray:
        return lookup(self.values, self.index_shift, self.signed, x)

    def domain(self) -> np.ndarray:
        """Every int16 input the table accepts."""
        return np.arange(-32768 if self.signed else 0, 32768, dtype=np.int64)

    def max_error(self) -> float:
        """Largest |table(x) - f(x)| over every accepted input, in real units."""
        x = self.domain()
        exact = FUNCTIONS[self.function](x / 2.0 ** self.in_frac)
        return float(np.max(np.abs(self.lookup(x) / 2.0 ** self.out_frac - exact)))


def table_name(function: str, in_frac: int, out_frac: int) -> str:
    return f"{function}_q{in_frac}_q{out_frac}"


def build(function: str, in_frac: int, out_frac: int, signed: bool = True) -> Table:
    step = 128 if signed else 64
    start = -32768 if signed else 0
    edges = (start + step * np.arange(ENTRIES)) / 2.0 ** in_frac
    values = fixed.sat(np.round(FUNCTIONS[function](edges) * 2.0 ** out_frac).astype(np.int64), 16)
    return Table(function, in_frac, out_frac, signed, values.astype(np.int16))


def lookup(values: np.ndarray, shift: int, signed: bool, x: np.ndarray) -> np.ndarray:
    u = np.asarray(x, dtype=np.int64) + (32768 if signed else 0)
    k = u >> shift
    r = u & ((1 << shift) - 1)
    t = values.astype(np.int64)
    lo, hi = t[k], t[k + 1]     # k <= 511: u never reaches 2**16 (or 2**15)
    return lo + (((hi - lo) * r + (1 << (shift - 1))) >> shift)


# Fixed formats of the tables whose range does not depend on the data (see docs/numerics.md).
TANH_IN, SIGMOID_IN, EXP_IN, UNIT_OUT = 12, 11, 11, 15   # tanh on [-8, 8), sigmoid on [-16, 16), exp(-u), u < 16
LECUN_IN, LECUN_OUT = 11, 14                             # 1.7159 tanh(0.666 x) on [-16, 16), output in (-2, 2)
TANH = table_name("tanh", TANH_IN, UNIT_OUT)
SIGMOID = table_name("sigmoid", SIGMOID_IN, UNIT_OUT)
EXP_NEG = table_name("exp_neg", EXP_IN, UNIT_OUT)


def sigmoid_table() -> Table:
    """The gate sigmoid (input Q11, output Q15) derived entry by entry from the tanh table: sigmoid(x) =
    (1 + tanh(x / 2)) / 2, and the Q11 edge ``v_k`` read as Q12 is ``v_k / 2``, the tanh table's edge ``k``; so
    entry ``k`` is ``2^14 + (tanh[k] >> 1)`` (floor), within 7.6e-5 of sigmoid. The C code then reads the tanh
    table for both (one 1 KB array less in flash)."""
    assert SIGMOID_IN == TANH_IN - 1 and UNIT_OUT == 15
    tanh = build("tanh", TANH_IN, UNIT_OUT).values.astype(np.int64)
    return Table("sigmoid", SIGMOID_IN, UNIT_OUT, True, (2 ** 14 + (tanh >> 1)).astype(np.int16))


def derives_from_tanh(gate: Table, tanh: Table) -> bool:
    """Whether ``gate`` holds exactly the entries :func:`sigmoid_table` derives from ``tanh``."""
    return bool(np.array_equal(gate.values.astype(np.int64), 2 ** 14 + (tanh.values.astype(np.int64) >> 1)))


def activation_table(activation: str, pre_frac: int) -> Table:
    """Backbone activation table: lecun_tanh/tanh have fixed formats; silu/gelu use the calibrated ``pre_frac``
    for input and output (both are bounded by their input above and by -0.28 below)."""
    if activation == "lecun_tanh":
        return build("lecun_tanh", LECUN_IN, LECUN_OUT)
    if activation == "tanh":
        return build("tanh", TANH_IN, UNIT_OUT)
    return build(activation, pre_frac, pre_frac)


def stated_error_bound(table: Table) -> float:
    """Documented bound of ``max_error``: interpolation error h^2/8 max|f''| plus one output LSB of rounding."""
    h = (128 if table.signed else 64) / 2.0 ** table.in_frac
    curvature = {"tanh": 0.77, "sigmoid": 0.1, "exp_neg": 1.0, "lecun_tanh": 1.7159 * 0.666 ** 2 * 0.77,
                 "silu": 0.5, "gelu": 0.8}[table.function]
    return h * h / 8 * curvature + 1.0 / 2 ** table.out_frac + math.ulp(1.0)
