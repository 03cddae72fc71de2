"""Integer nonlinearities: every table against the float function over every int16 input it accepts."""

from __future__ import annotations

import numpy as np
import pytest

from liquid_edge.quant import tables

# The bounds docs/numerics.md states for the fixed-format tables (real units, over the whole input range).
DOCUMENTED = {tables.TANH: 1.25e-4, tables.SIGMOID: 8e-5, tables.EXP_NEG: 1.55e-4, "lecun_tanh_q11_q14": 3.5e-4}

TABLES = [
    tables.build("tanh", tables.TANH_IN, tables.UNIT_OUT),
    tables.sigmoid_table(),
    tables.build("exp_neg", tables.EXP_IN, tables.UNIT_OUT, signed=False),
    tables.activation_table("lecun_tanh", 0),
    tables.activation_table("tanh", 0),
    *(tables.activation_table(name, frac) for name in ("silu", "gelu") for frac in (9, 12, 14)),
]


@pytest.mark.parametrize("table", TABLES, ids=[t.name for t in TABLES])
def test_table_error_is_within_the_stated_bound(table):
    assert table.max_error() <= tables.stated_error_bound(table)
    if table.name in DOCUMENTED:
        assert table.max_error() <= DOCUMENTED[table.name]


def test_the_gate_sigmoid_is_derived_from_the_tanh_table():
    """Entry k is 2^14 + (tanh entry k >> 1): the C code reads one table for both, within a step of rounding."""
    tanh, gate = tables.build("tanh", tables.TANH_IN, tables.UNIT_OUT), tables.sigmoid_table()
    assert tables.derives_from_tanh(gate, tanh)
    rounded = tables.build("sigmoid", tables.SIGMOID_IN, tables.UNIT_OUT)
    assert not tables.derives_from_tanh(rounded, tanh)
    assert np.abs(gate.values.astype(np.int64) - rounded.values).max() == 1


def test_lookup_interpolates_between_entries_and_hits_them_exactly():
    table = tables.build("tanh", tables.TANH_IN, tables.UNIT_OUT)
    edges = np.arange(-32768, 32768, 128)
    np.testing.assert_array_equal(table.lookup(edges), table.values[:-1])
    midpoint = table.lookup(np.array([-32768 + 64]))[0]
    assert midpoint == int(np.floor((int(table.values[0]) + int(table.values[1])) / 2 + 0.5))


def test_saturating_tables_stay_in_int16_and_are_monotonic():
    for table in TABLES[:4]:
        out = table.lookup(table.domain())
        assert out.min() >= -32768 and out.max() <= 32767
        diffs = np.diff(out)
        assert np.all(diffs >= 0) or np.all(diffs <= 0)
