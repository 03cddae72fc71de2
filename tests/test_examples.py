"""The example datasets and checkpoints: documented shapes and origin, recorded accuracies reproduced."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from liquid_edge import api, reference
from liquid_edge.data import load_sequences

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = EXAMPLES / "data"

# (fixture stem, archive name, train sequences, test sequences, steps, inputs, classes, has dt)
DATASETS = [
    ("basic_motions", "BasicMotions", 40, 40, 100, 6, 4, False),
    ("italy_power_demand", "ItalyPowerDemand", 67, 1029, 24, 1, 2, False),
    ("italy_power_demand_irregular", "ItalyPowerDemand", 67, 1029, 12, 1, 2, True),
]
MODELS = [("basic_motions", "ncp"), ("basic_motions", "dense"), ("italy_power_demand", "ncp"),
          ("italy_power_demand", "dense"), ("italy_power_demand_irregular", "ncp"),
          ("italy_power_demand_irregular", "ncp_no_dt")]


@pytest.mark.parametrize("stem, archive, train, test, steps, inputs, classes, has_dt", DATASETS)
def test_fixtures_have_the_documented_shapes_and_origin(stem, archive, train, test, steps, inputs, classes, has_dt):
    readme = (DATA / "README.md").read_text()
    assert f"`{stem}_{{train,test}}.npz` | {archive} |" in readme
    assert "aeon 1.6.0" in readme
    for split, count in (("train", train), ("test", test)):
        path = DATA / f"{stem}_{split}.npz"
        with np.load(path, allow_pickle=False) as npz:
            assert npz["x"].dtype == np.float32 and npz["x"].shape == (count, steps, inputs)
            assert npz["y"].shape == (count,) and set(np.unique(npz["y"])) == set(range(classes))
            assert len(npz["classes"]) == classes
        sequences = load_sequences(path, inputs)      # the project's own reader accepts them
        assert (sequences.dt is not None) == has_dt and sequences.count == count


def test_fixtures_stay_small():
    assert sum(p.stat().st_size for p in DATA.glob("*.npz")) < 2_000_000


def recorded(stem: str, model: str) -> dict:
    return json.loads((EXAMPLES / stem / "models" / "metrics.json").read_text())[model]


@pytest.mark.parametrize("stem, model", MODELS)
def test_checkpoints_reproduce_their_recorded_accuracy_in_the_float_reference(stem, model):
    loaded = api.load(EXAMPLES / stem / "models" / f"{model}.pt")
    test = load_sequences(DATA / f"{stem}_test.npz")
    metrics = recorded(stem, model)
    outputs, _ = reference.run(loaded, test.x, None if metrics["spec"]["ignore_dt"] else test.dt)
    correct = int(np.sum(outputs[:, -1].argmax(axis=1) == test.y))
    assert metrics["test_sequences"] == test.count
    assert correct == round(metrics["test_accuracy"] * test.count)
    assert loaded.output_size == len(np.unique(test.y))
    assert (loaded.wiring is not None) == model.startswith("ncp")


def test_irregular_sampling_subsets_the_regular_days_with_their_elapsed_hours():
    with np.load(DATA / "italy_power_demand_test.npz") as regular, \
            np.load(DATA / "italy_power_demand_irregular_test.npz") as irregular:
        hours = np.cumsum(irregular["dt"], axis=1).astype(int) - 1      # dt counts hours since the previous reading
        assert np.all(np.diff(hours, axis=1) > 0) and np.all(hours < 24)
        np.testing.assert_array_equal(np.take_along_axis(regular["x"], hours[:, :, None], axis=1), irregular["x"])
        np.testing.assert_array_equal(regular["y"], irregular["y"])


def test_the_elapsed_time_input_is_worth_its_recorded_accuracy():
    with_dt, without = recorded("italy_power_demand_irregular", "ncp"), recorded("italy_power_demand_irregular",
                                                                                  "ncp_no_dt")
    assert with_dt["test_accuracy"] > without["test_accuracy"] + 0.05


def test_sequence_models_beat_channel_statistics_where_statistics_fail():
    """ItalyPowerDemand is the task statistics cannot solve (recorded baseline 0.569); the models reach > 0.9."""
    readme = (DATA / "README.md").read_text()
    assert "| ItalyPowerDemand | 0.569 | 0.563 | 0.963 |" in readme
    assert all(recorded("italy_power_demand", m)["test_accuracy"] > 0.9 for m in ("ncp", "dense"))


@pytest.mark.parametrize("wired", [True, False])
def test_folded_standardization_equals_standardizing_the_inputs(wired):
    pytest.importorskip("ncps")
    import torch

    sys.path.insert(0, str(EXAMPLES))
    try:
        import training
    finally:
        sys.path.remove(str(EXAMPLES))
    spec = training.ModelSpec("m", wired_units=8 if wired else 0, units=6, backbone_units=8)
    model = training.build(spec, input_size=3, classes=2).eval()
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((2, 7, 3)) * [5.0, 0.5, 2.0] + [3.0, -1.0, 0.0]).astype(np.float32)
    mean, std = x.mean(axis=(0, 1)), x.std(axis=(0, 1))
    with torch.no_grad():
        standardized = model(torch.from_numpy((x - mean) / std))[0]
        training.fold_standardization(model, mean, std)
        folded = model(torch.from_numpy(x))[0]
    np.testing.assert_allclose(folded.numpy(), standardized.numpy(), atol=2e-5)


def test_statistics_baseline_matches_the_recorded_figures():
    sys.path.insert(0, str(ROOT / "benchmarks" / "accuracy"))
    try:
        import statistics_baseline
    finally:
        sys.path.remove(str(ROOT / "benchmarks" / "accuracy"))
    scores = statistics_baseline.baseline("italy_power_demand")
    assert round(scores["logistic_regression"], 3) == 0.569
    assert round(scores["nearest_centroid"], 3) == 0.563
    assert round(scores["raw_logistic_regression"], 3) == 0.963


def test_results_page_records_the_checkpoints_accuracy():
    """benchmarks/accuracy/RESULTS.md is generated from a demo run: its PyTorch column must be today's metrics."""
    results = (ROOT / "benchmarks" / "accuracy" / "RESULTS.md").read_text()
    names = {"motions": "basic_motions", "power": "italy_power_demand", "hours": "italy_power_demand_irregular"}
    rows = re.findall(r"^\| [^|]+ \| (\w+?)_(ncp|dense) \| [\d,]+ \| [\d,]+ \| ([\d.]+)% \((\d+)\) \|", results, re.M)
    assert len(rows) == 5
    for prefix, model, percent, correct in rows:
        metrics = recorded(names[prefix], model)
        assert int(correct) == round(metrics["test_accuracy"] * metrics["test_sequences"])
