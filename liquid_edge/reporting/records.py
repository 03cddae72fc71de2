"""Verification results kept in the output folder, so ``liquid-edge report OUT`` can show every backend that ran.

``verify`` calls :func:`record_verification` once per backend; each run replaces the previous record of the same
backend:

* ``OUT/verify/<backend>.json``: the parity result (the entry of ``verify --json``'s ``results``), plus the data
  origin and what the backend was compared with;
* ``OUT/verify/<backend>.npz``: ``inputs`` (N, T, I), ``dt`` (N, T), ``expected`` and ``outputs`` (N, T, O).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VERIFY_DIR = "verify"


@dataclass(frozen=True)
class Verification:
    stem: str
    result: dict                # backend, passed, max_abs_error, rmse, ... (see liquid_edge.parity.compare)
    data: str                   # where the sequences came from
    expected_label: str         # "float64 reference" or the integer emulator
    inputs: np.ndarray
    dt: np.ndarray
    expected: np.ndarray
    outputs: np.ndarray


def record_verification(out_dir: Path, stem: str, result: dict, data: str, expected_label: str,
                        inputs: np.ndarray, dt: np.ndarray | None, expected: np.ndarray, outputs: np.ndarray) -> None:
    folder = Path(out_dir) / VERIFY_DIR
    folder.mkdir(exist_ok=True)
    dt = np.ones(inputs.shape[:2]) if dt is None else dt
    partial = folder / f".{stem}.npz.partial"
    with partial.open("wb") as handle:
        np.savez_compressed(handle, inputs=inputs, dt=dt, expected=expected, outputs=outputs)
    os.replace(partial, folder / f"{stem}.npz")
    record = {"result": result, "data": data, "expected": expected_label}
    partial = folder / f".{stem}.json.partial"
    partial.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(partial, folder / f"{stem}.json")


def read_verifications(out_dir: Path) -> list[Verification]:
    """Every recorded backend run of ``out_dir``, in name order (none when verify never ran)."""
    found = []
    for path in sorted((Path(out_dir) / VERIFY_DIR).glob("*.json")):
        arrays_path = path.with_suffix(".npz")
        if not arrays_path.is_file():
            continue
        record = json.loads(path.read_text())
        with np.load(arrays_path, allow_pickle=False) as npz:
            found.append(Verification(path.stem, record["result"], record["data"], record["expected"],
                                      npz["inputs"], npz["dt"], npz["expected"], npz["outputs"]))
    return found
