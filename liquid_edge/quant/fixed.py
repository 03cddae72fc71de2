"""Integer primitives shared by the quantizer and the bit-exact emulator.

Each function here is the numpy twin of one C helper in ``codegen/int/kernels.c.j2``; the two must agree bit for
bit on every input the generated code can see. All arithmetic is done on int64 numpy arrays, wide enough for
every intermediate the C code forms (the C code itself never overflows: see docs/numerics.md).
"""

from __future__ import annotations

import math

import numpy as np

INT8 = (-128, 127)
INT16 = (-32768, 32767)
INT32 = (-(2 ** 31), 2 ** 31 - 1)


def limits(bits: int) -> tuple[int, int]:
    return {8: INT8, 16: INT16, 32: INT32}[bits]


def sat(v: np.ndarray, bits: int) -> np.ndarray:
    lo, hi = limits(bits)
    return np.clip(v, lo, hi)


def rshift_round(v: np.ndarray, n: int | np.ndarray) -> np.ndarray:
    """``floor(v / 2**n + 1/2)`` for ``n >= 1``; ``v`` unchanged for ``n == 0`` (C: add half, arithmetic shift)."""
    n = np.asarray(n, dtype=np.int64)
    half = np.where(n > 0, np.left_shift(np.int64(1), np.maximum(n - 1, 0)), 0)
    return np.right_shift(np.asarray(v, dtype=np.int64) + half, n)


def convert(v: np.ndarray, shift: int, bits: int) -> np.ndarray:
    """Change of Q format: ``shift > 0`` drops fraction bits (rounded), ``shift < 0`` adds them; then saturate."""
    v = np.asarray(v, dtype=np.int64)
    moved = rshift_round(v, shift) if shift >= 0 else v * (1 << -shift)
    return sat(moved, bits)


def multipliers_and_shift(ratio1: np.ndarray, ratio2: np.ndarray, worst1: np.ndarray,
                          worst2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two ratios per row with one shift: ``ratio_g ~= m_g / 2**n``, ``n`` in [1, 62] as large as possible with
    both multipliers below 2**31 and ``worst1 * m1 + worst2 * m2 + 2**(n-1) < 2**63`` (``worst_g``: the largest
    |accumulator| of group g), so the 64-bit sum of the C code cannot overflow."""
    shape = np.shape(ratio1)
    m1, m2 = np.zeros(shape, dtype=np.int64), np.zeros(shape, dtype=np.int64)
    shift = np.full(shape, 62, dtype=np.int64)
    for i in np.ndindex(shape):
        r1, r2 = float(ratio1[i]), float(ratio2[i])
        top = max(r1, r2)
        if top <= 0:
            continue
        n = min(62, math.floor(math.log2((2 ** 31 - 1) / top)))
        while n >= 1:
            a, b = round(r1 * 2 ** n), round(r2 * 2 ** n)
            if max(a, b) < 2 ** 31 and int(worst1[i]) * a + int(worst2[i]) * b + 2 ** (n - 1) < 2 ** 63:
                break
            n -= 1
        if n < 1:
            raise ValueError(f"requantization ratio {top} is too large")
        m1[i], m2[i], shift[i] = a, b, n
    return m1, m2, shift


def ceil_log2(value: float) -> int:
    """Smallest ``k`` with ``2**k >= value`` (value > 0)."""
    mantissa, exponent = math.frexp(value)
    return exponent - 1 if mantissa == 0.5 else exponent


def frac_bits_for(absmax: float, bits: int) -> int:
    """Fraction bits of the finest Q format of ``bits`` bits whose range ``[-2**(bits-1-f), ...)`` holds absmax."""
    absmax = max(float(absmax), 2.0 ** -20)
    return bits - 1 - ceil_log2(absmax * (1 + 2 ** -(bits - 1)))
