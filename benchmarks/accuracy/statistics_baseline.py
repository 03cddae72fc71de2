#!/usr/bin/env python3
"""How far simple per-channel statistics go on each example dataset: the bar a sequence model has to clear.

Features: mean, standard deviation, minimum and maximum of every input channel over the whole sequence.
Classifiers: logistic regression and nearest centroid, both on standardized features (scikit-learn, which the
``datasets`` extra brings with aeon). Trained on the train fixture, scored on the test fixture. For comparison,
logistic regression on the whole raw sequence (every value of every step, in order): a model that sees the
shape at once, where a recurrent network reads it one step at a time in constant memory.

    python benchmarks/accuracy/statistics_baseline.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

DATA = Path(__file__).resolve().parents[2] / "examples" / "data"
DATASETS = ("basic_motions", "italy_power_demand")


def channel_statistics(x: np.ndarray) -> np.ndarray:
    """(N, T, I) -> (N, 4 I): mean, std, min, max of each channel over time."""
    return np.concatenate([x.mean(axis=1), x.std(axis=1), x.min(axis=1), x.max(axis=1)], axis=1)


def raw_values(x: np.ndarray) -> np.ndarray:
    """(N, T, I) -> (N, T I): the whole sequence as one flat vector."""
    return x.reshape(len(x), -1)


def load(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(DATA / f"{dataset}_{split}.npz", allow_pickle=False) as npz:
        return npz["x"].astype(np.float64), npz["y"]


def baseline(dataset: str) -> dict[str, float]:
    x, labels = load(dataset, "train")
    test_x, test_labels = load(dataset, "test")
    classifiers = {
        "logistic_regression": (channel_statistics, LogisticRegression(max_iter=5000)),
        "nearest_centroid": (channel_statistics, NearestCentroid()),
        "raw_logistic_regression": (raw_values, LogisticRegression(max_iter=5000)),
    }
    return {name: float(make_pipeline(StandardScaler(), classifier).fit(features(x), labels)
                        .score(features(test_x), test_labels))
            for name, (features, classifier) in classifiers.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {dataset: baseline(dataset) for dataset in DATASETS}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(f"{'dataset':<20}{'logistic regression':>22}{'nearest centroid':>20}{'raw values, logistic':>24}")
    for dataset, scores in results.items():
        print(f"{dataset:<20}{scores['logistic_regression']:>22.3f}{scores['nearest_centroid']:>20.3f}"
              f"{scores['raw_logistic_regression']:>24.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
