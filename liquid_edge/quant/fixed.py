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


def requantize(acc: np.ndarray, multiplier: np.ndarray | None, shift: np.ndarray) -> np.ndarray:
    """Accumulator to output scale: ``(acc * m + 2**(n-1)) >> n`` (int64), or ``rshift_round(acc, n)`` when
    the scheme has no multipliers (power-of-two scales). Not saturated: the caller clamps."""
    acc = np.asarray(acc, dtype=np.int64)
    if multiplier is None:
        return rshift_round(acc, shift)
    return rshift_round(acc * np.asarray(multiplier, dtype=np.int64), shift)


def multiplier_and_shift(ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``ratio ~= m / 2**n`` with ``m`` in [2**30, 2**31) (31 significant bits) and ``n`` in [1, 62]."""
    ratio = np.asarray(ratio, dtype=np.float64)
    mult = np.zeros(ratio.shape, dtype=np.int64)
    shift = np.ones(ratio.shape, dtype=np.int64)
    for i, r in np.ndenumerate(ratio):
        if r <= 0:
            continue
        mantissa, exponent = math.frexp(r)          # r = mantissa * 2**exponent, mantissa in [0.5, 1)
        m = round(mantissa * 2 ** 31)
        n = 31 - exponent
        if m == 2 ** 31:
            m, n = 2 ** 30, n - 1
        if n > 62:                                  # below 2**-32: contributes nothing to a 16-bit output
            continue
        if n < 1:
            raise ValueError(f"requantization ratio {r} is too large")
        mult[i], shift[i] = m, n
    return mult, shift


def ceil_log2(value: float) -> int:
    """Smallest ``k`` with ``2**k >= value`` (value > 0)."""
    mantissa, exponent = math.frexp(value)
    return exponent - 1 if mantissa == 0.5 else exponent


def frac_bits_for(absmax: float, bits: int) -> int:
    """Fraction bits of the finest Q format of ``bits`` bits whose range ``[-2**(bits-1-f), ...)`` holds absmax."""
    absmax = max(float(absmax), 2.0 ** -20)
    return bits - 1 - ceil_log2(absmax * (1 + 2 ** -(bits - 1)))
