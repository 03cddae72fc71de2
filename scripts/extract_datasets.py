#!/usr/bin/env python3
"""Extract the example datasets from the UEA/UCR archive files that the ``aeon`` wheel ships, offline.

    pip install -e ".[datasets]"          # aeon, which carries the archive files inside its package
    python scripts/extract_datasets.py    # writes examples/data/<name>_{train,test}.npz

Nothing is downloaded: the ``.ts`` files are read from the installed package folder. Each split is first cached
whole under ``~/.cache/liquid-edge/datasets`` (``--cache``), then written as a fixture in the project's data format
(``liquid_edge.data``): ``x`` float32 (sequences, steps, inputs), ``y`` int64 class index, ``classes`` (the archive's
class labels in the header's order, so ``y`` indexes it). The archive's own train/test split is kept and the values
are unchanged. Both datasets are small enough to commit whole; ``--max-sequences`` is the documented subsetting rule
(the first N of a split, in archive order) for anyone adding a bigger one.

One derived task shows the elapsed-time input: ``italy_power_demand_irregular`` keeps 12 of the 24 hourly readings
of each day, drawn at random (numpy ``default_rng(IRREGULAR_SEED)``, one draw per sequence, train split first, kept
in time order), and gives each kept reading ``dt`` = hours since the previous kept one (for the first: its hour
plus one, i.e. hours since the start of the day).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Dataset:
    archive_name: str   # folder and file stem in the archive
    fixture_name: str   # stem of the committed fixture files


DATASETS = (
    Dataset("BasicMotions", "basic_motions"),
    Dataset("ItalyPowerDemand", "italy_power_demand"),
)


def archive_folder() -> Path:
    """The folder of archive files inside the installed aeon package."""
    try:
        import aeon
    except ImportError:
        sys.exit("error: the aeon package is not installed (pip install -e '.[datasets]')")
    return Path(aeon.__file__).resolve().parent / "datasets" / "data"


def read_split(dataset: Dataset, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(x (N, T, I) float32, y (N,) int64, class labels) of one archive split."""
    from aeon.datasets import load_from_ts_file

    path = archive_folder() / dataset.archive_name / f"{dataset.archive_name}_{split.upper()}.ts"
    if not path.is_file():
        sys.exit(f"error: {path} is missing from the installed aeon package (aeon {aeon_version()})")
    x, labels, meta = load_from_ts_file(str(path), return_meta_data=True)
    classes = list(meta["class_values"])
    # The archive stores (N, channels, steps); the project's format is (N, steps, inputs).
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32).transpose(0, 2, 1))
    y = np.array([classes.index(str(label)) for label in labels], dtype=np.int64)
    return x, y, classes


IRREGULAR_SOURCE = "italy_power_demand"
IRREGULAR_KEPT_STEPS = 12
IRREGULAR_SEED = 2024


def irregular_subsample(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Keep ``IRREGULAR_KEPT_STEPS`` random steps of each sequence, in order; ``dt`` in units of the original step."""
    count, steps, _ = x.shape
    kept = np.sort(np.stack([rng.choice(steps, IRREGULAR_KEPT_STEPS, replace=False) for _ in range(count)]), axis=1)
    dt = np.diff(kept, axis=1, prepend=-1).astype(np.float32)
    return np.take_along_axis(x, kept[:, :, None], axis=1), dt


def aeon_version() -> str:
    return importlib.metadata.version("aeon")


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write through a temporary file so an interrupted run never leaves a half-written fixture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial.npz")
    np.savez_compressed(temporary, **arrays)
    temporary.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "examples" / "data")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "liquid-edge" / "datasets")
    parser.add_argument("--max-sequences", type=int, default=None,
                        help="keep the first N sequences of each split (default: all)")
    args = parser.parse_args(argv)

    keep = slice(None, args.max_sequences)
    rng = np.random.default_rng(IRREGULAR_SEED)
    for dataset in DATASETS:
        for split in ("train", "test"):
            x, y, classes = read_split(dataset, split)
            write_npz(args.cache / f"{dataset.archive_name}_{split}.npz", x=x, y=y, classes=np.array(classes))
            x, y = x[keep], y[keep]
            _write_fixture(args.output / f"{dataset.fixture_name}_{split}.npz", dataset, x=x, y=y,
                           classes=np.array(classes))
            if dataset.fixture_name == IRREGULAR_SOURCE:
                sparse_x, dt = irregular_subsample(x, rng)
                _write_fixture(args.output / f"{IRREGULAR_SOURCE}_irregular_{split}.npz", dataset, x=sparse_x, dt=dt,
                               y=y, classes=np.array(classes))
    return 0


def _write_fixture(path: Path, dataset: Dataset, **arrays: np.ndarray) -> None:
    write_npz(path, **arrays)
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    print(f"{shown}: x {arrays['x'].shape}{', dt' if 'dt' in arrays else ''}, {len(arrays['classes'])} classes, "
          f"from {dataset.archive_name} (aeon {aeon_version()})", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
