"""Sequence data files, one format for verification, calibration and examples.

* ``.npz``: ``x`` shaped (sequences, steps, inputs); optional ``dt`` shaped (sequences, steps) of elapsed times;
  optional ``y`` labels shaped (sequences,) (class per sequence) or (sequences, steps[, outputs]).
* ``.npy``: ``x`` alone, shaped (sequences, steps, inputs) or (steps, inputs) for one sequence.
* ``.csv``: a header row; optional columns ``sequence`` (id; rows of one id form one sequence, in file order),
  ``dt`` and ``y``; every other column is an input feature, in column order.
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liquid_edge.errors import LiquidEdgeError


class DataError(LiquidEdgeError):
    """A data file is missing, unreadable or has the wrong shape."""


@dataclass(frozen=True)
class Sequences:
    x: np.ndarray               # (N, T, I) float64
    dt: np.ndarray | None       # (N, T) float64, or None for dt = 1
    y: np.ndarray | None        # labels, or None
    origin: str = ""

    @property
    def count(self) -> int:
        return self.x.shape[0]

    @property
    def steps(self) -> int:
        return self.x.shape[1]

    def take(self, count: int | None = None, steps: int | None = None) -> "Sequences":
        """The first ``count`` sequences and ``steps`` steps (None keeps all)."""
        check_shape(count, steps)
        n, t = slice(None, count), slice(None, steps)
        y = self.y
        if y is not None:
            y = y[n] if y.ndim == 1 else y[n, t]
        return Sequences(self.x[n, t], None if self.dt is None else self.dt[n, t], y, self.origin)


def random_sequences(input_size: int, count: int, steps: int, seed: int = 0,
                     irregular_dt: bool = True) -> Sequences:
    """Unit-normal inputs with irregular elapsed times in [0.05, 2] (the default test data of verify)."""
    check_shape(count, steps)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((count, steps, input_size))
    dt = rng.uniform(0.05, 2.0, (count, steps)) if irregular_dt else None
    return Sequences(x, dt, None, f"random (seed {seed})")


def check_shape(count: int | None, steps: int | None) -> None:
    """A number of sequences or steps asked for must be at least 1 (None: all of them)."""
    for what, value in (("sequences", count), ("steps", steps)):
        if value is not None and not value >= 1:
            raise DataError(f"the number of {what} must be at least 1, got {value}")


def load_sequences(path: str | Path, input_size: int | None = None) -> Sequences:
    """Read a data file; with ``input_size`` also check it matches the model. Raises :class:`DataError`."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist", "pass an existing .npz, .npy or .csv file")
    suffix = path.suffix.lower()
    readers = {".npz": _read_npz, ".npy": _read_npy, ".csv": _read_csv}
    if suffix not in readers:
        raise DataError(f"data file {path} has an unknown type '{suffix}'", "use .npz, .npy or .csv")
    try:
        x, dt, y = readers[suffix](path)
    except DataError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"cannot read data file {path}: {' '.join(str(exc).split())}",
                        "check that the file is complete and in the documented format") from None
    return _checked(path, x, dt, y, input_size)


def _read_npz(path: Path):
    with np.load(path, allow_pickle=False) as npz:
        if "x" not in npz.files:
            raise DataError(f"data file {path} has no array 'x' (found: {', '.join(npz.files) or 'none'})",
                            "save the inputs as x, shaped (sequences, steps, inputs)")
        return npz["x"], npz["dt"] if "dt" in npz.files else None, npz["y"] if "y" in npz.files else None


def _read_npy(path: Path):
    x = np.load(path, allow_pickle=False)
    return (x[None] if x.ndim == 2 else x), None, None


def _read_csv(path: Path):
    with path.open(newline="") as handle:
        rows = [(line, row) for line, row in enumerate(csv.reader(handle), start=1) if row]
    if len(rows) < 2:
        raise DataError(f"data file {path} has no data rows", "write a header row, then one row per step")
    header = [h.strip() for h in rows[0][1]]
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(f"data file {path}: line {line} has {len(row)} values but the header names "
                            f"{len(header)} columns", "give every row one value per header column")
    body = np.array([[float(v) for v in row] for _, row in rows[1:]], dtype=np.float64)
    special = {"sequence", "dt", "y"}
    features = [i for i, h in enumerate(header) if h not in special]
    seq_ids = body[:, header.index("sequence")] if "sequence" in header else np.zeros(len(body))
    order = list(dict.fromkeys(seq_ids.tolist()))
    groups = [body[seq_ids == s] for s in order]
    if len({len(g) for g in groups}) != 1:
        raise DataError(f"data file {path}: sequences have different lengths",
                        "give every sequence the same number of steps")
    x = np.stack([g[:, features] for g in groups])
    dt = np.stack([g[:, header.index("dt")] for g in groups]) if "dt" in header else None
    y = np.stack([g[:, header.index("y")] for g in groups]) if "y" in header else None
    return x, dt, y


def _checked(path: Path, x, dt, y, input_size: int | None) -> Sequences:
    x = np.asarray(x)
    for name, array in (("x", x), ("dt", dt), ("y", y)):
        if array is not None and np.asarray(array).dtype.kind not in "biuf":
            raise DataError(f"data file {path}: {name} holds {np.asarray(array).dtype} values, not real numbers",
                            f"save {name} as a float or integer array")
    if x.ndim != 3:
        raise DataError(f"data file {path}: x has shape {x.shape}, expected (sequences, steps, inputs)")
    if 0 in x.shape[:2]:
        raise DataError(f"data file {path}: x has shape {x.shape}, with no sequences or no steps",
                        "save at least one sequence of at least one step")
    if input_size is not None and x.shape[2] != input_size:
        raise DataError(f"data file {path}: x has {x.shape[2]} inputs per step but the model takes {input_size}")
    if not np.all(np.isfinite(x)):
        raise DataError(f"data file {path}: x holds NaN or Inf values", "clean or impute the data first")
    if dt is not None:
        dt = np.asarray(dt, dtype=np.float64)
        if dt.shape != x.shape[:2]:
            raise DataError(f"data file {path}: dt has shape {dt.shape}, expected {x.shape[:2]} (sequences, steps)")
        if not np.all(np.isfinite(dt)) or np.any(dt < 0):
            raise DataError(f"data file {path}: dt must be finite and non-negative")
    if y is not None and (np.ndim(y) == 0 or len(y) != x.shape[0]):
        raise DataError(f"data file {path}: y has shape {np.shape(y)} but x holds {x.shape[0]} sequences",
                        "save one label (or one label per step) per sequence")
    return Sequences(x.astype(np.float64), dt, None if y is None else np.asarray(y), str(path))
