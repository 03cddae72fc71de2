"""Calibration rules: full rollouts, masked weights zero, methods, and the errors a user sees."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cortex_m import run_cli
from generated_c import model_ir
from liquid_edge.data import Sequences, load_sequences, random_sequences
from liquid_edge.output import Meter
from liquid_edge.quant import calibration
from liquid_edge.quant.calibration import CalibrationError
from models import by_id


def test_masked_weights_must_be_zero_before_any_statistic():
    model = model_ir(by_id("autoncp-default"))
    calibration.assert_masked_weights_zero(model)
    cell = model.cells[0]
    leaked = dataclasses.replace(cell.ff1, weight=np.where(cell.ff1.mask == 0, 0.3, cell.ff1.weight))
    broken = dataclasses.replace(model, cells=(dataclasses.replace(cell, ff1=leaked), *model.cells[1:]))
    with pytest.raises(CalibrationError, match="non-zero weights under its sparsity mask"):
        calibration.collect(broken, random_sequences(model.input_size, 1, 5))


def test_ranges_come_from_full_rollouts():
    """The pure-mode state drifts over a sequence: a one-step calibration would miss most of its range."""
    model = model_ir(by_id("pure-lecun"))
    data = random_sequences(model.input_size, 4, 200, seed=2)
    full = calibration.ranges(model, data, "minmax")
    first_step = calibration.ranges(model, data.take(steps=1), "minmax")
    assert set(full) >= {"x.0", "cells.0.backbone.0", "cells.0.ff1", "cells.0.state"}
    assert full["cells.0.state"] > first_step["cells.0.state"]


def test_percentile_is_robust_to_outliers_and_minmax_is_not():
    model = model_ir(by_id("default-lecun"))
    data = random_sequences(model.input_size, 4, 300, seed=2)
    x = data.x.copy()
    x[0, 10, 0] = 1e3
    spiked = Sequences(x, data.dt, None, "spiked")
    assert calibration.ranges(model, spiked, "minmax")["x.0"] == 1e3
    assert calibration.ranges(model, spiked, "percentile")["x.0"] < 10


def test_unknown_method_and_empty_data_are_errors():
    model = model_ir(by_id("default-lecun"))
    with pytest.raises(CalibrationError, match="unknown calibration method"):
        calibration.ranges(model, random_sequences(model.input_size, 1, 3), "mse")
    with pytest.raises(CalibrationError, match="no steps"):
        calibration.collect(model, Sequences(np.zeros((1, 0, model.input_size)), None, None, "empty"))


def test_compile_without_calibration_is_a_one_line_error(capsys, write_checkpoint, tmp_path):
    checkpoint = write_checkpoint(by_id("default-lecun"))
    code, out, err = run_cli(capsys, "compile", str(checkpoint.path), "-o", str(tmp_path / "out"),
                             "--quantize", "int8")
    assert code == 2 and out == ""
    assert err.strip() == ("error: quantization needs calibration data (pass --calibration FILE "
                           "(.npz/.npy/.csv sequences), or --calibration random)")
    assert not (tmp_path / "out").exists()


def test_random_calibration_is_explicit_and_warns(capsys, write_checkpoint, tmp_path):
    checkpoint = write_checkpoint(by_id("default-lecun"))
    code, _, err = run_cli(capsys, "compile", str(checkpoint.path), "-o", str(tmp_path / "out"),
                           "--quantize", "a16w8", "--calibration", "random")
    assert code == 0
    assert "warning: calibrating on random data" in err


def test_calibration_file_must_match_the_model(capsys, write_checkpoint, tmp_path):
    checkpoint = write_checkpoint(by_id("default-lecun"))
    data = tmp_path / "cal.npz"
    np.savez(data, x=np.zeros((2, 10, 3)))
    code, _, err = run_cli(capsys, "compile", str(checkpoint.path), "-o", str(tmp_path / "out"),
                           "--quantize", "int8", "--calibration", str(data))
    assert code == 2 and "has 3 inputs per step but the model takes 5" in err


def _write_formats(tmp_path, data: Sequences) -> dict[str, str]:
    """The same sequences as .npz, .npy (x alone) and .csv (a sequence id column, dt, then the features)."""
    np.savez(tmp_path / "cal.npz", x=data.x, dt=data.dt)
    np.save(tmp_path / "cal.npy", data.x)
    count, steps, inputs = data.x.shape
    ids = np.repeat(np.arange(count), steps)[:, None]
    table = np.hstack([ids, data.dt.reshape(-1, 1), data.x.reshape(-1, inputs)])
    header = ",".join(["sequence", "dt", *(f"x{j}" for j in range(inputs))])
    np.savetxt(tmp_path / "cal.csv", table, delimiter=",", header=header, comments="", fmt="%.17g")
    return {suffix: str(tmp_path / f"cal.{suffix}") for suffix in ("npz", "npy", "csv")}


def test_the_three_data_formats_hold_the_same_sequences(tmp_path):
    data = random_sequences(3, 4, 30, seed=5)
    files = _write_formats(tmp_path, data)
    for suffix, path in files.items():
        read = load_sequences(path, 3)
        np.testing.assert_array_equal(read.x, data.x)
        if suffix == "npy":
            assert read.dt is None
        else:
            np.testing.assert_array_equal(read.dt, data.dt)


@pytest.mark.parametrize("text, message", [
    ("a,b\n1\n", "line 2 has 1 values but the header names 2 columns"),
    ("a,b\n1,2\n3,4,5\n", "line 3 has 3 values but the header names 2 columns"),
    ("a,b\n\n", "has no data rows"),
    ("a,b\n1,x\n", "could not convert string to float: 'x'"),
    ("sequence,a\n0,1\n0,2\n1,3\n", "sequences have different lengths"),
])
def test_malformed_csv_is_a_one_line_error(capsys, write_checkpoint, tmp_path, text, message):
    checkpoint = write_checkpoint(by_id("default-lecun"))
    (tmp_path / "cal.csv").write_text(text)
    code, out, err = run_cli(capsys, "compile", str(checkpoint.path), "-o", str(tmp_path / "out"),
                             "--quantize", "int8", "--calibration", str(tmp_path / "cal.csv"))
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("error: ")
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("method", calibration.METHODS)
def test_calibration_from_each_format_through_the_cli(capsys, write_checkpoint, tmp_path, method):
    """.npz and .csv carry the same sequences and dt: the same quantized model (.npy, x alone, builds too)."""
    checkpoint = write_checkpoint(by_id("default-silu"))
    data = random_sequences(5, 3, 40, seed=6)
    files = _write_formats(tmp_path, data)
    arrays = {}
    for suffix, path in files.items():
        out = tmp_path / f"out_{suffix}"
        code, _, err = run_cli(capsys, "compile", str(checkpoint.path), "-o", str(out), "--quantize", "int8",
                               "--calibration", path, "--calibration-method", method)
        assert code == 0, err
        with np.load(out / "model" / "quant.npz") as npz:
            arrays[suffix] = {key: npz[key] for key in npz.files}
    assert arrays["npz"].keys() == arrays["csv"].keys()
    for key, value in arrays["npz"].items():
        np.testing.assert_array_equal(arrays["csv"][key], value)


def test_long_calibration_shows_progress(capsys, monkeypatch):
    monkeypatch.setattr(calibration, "Meter", lambda *args: Meter(*args, interval=0.0))
    model = model_ir(by_id("default-lecun"))
    calibration.ranges(model, random_sequences(model.input_size, 2, 5))
    err = capsys.readouterr().err
    assert err.splitlines() == [f"calibrate: {t} of 5 steps" for t in range(1, 6)]


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.full((1, 4, 5), "a")}, "x holds <U1 values, not real numbers"),
    ({"x": np.ones((1, 4, 5)) * (1 + 1j)}, "x holds complex128 values, not real numbers"),
    ({"x": np.ones((2, 4, 5)), "y": np.zeros(3)}, "y has shape (3,) but x holds 2 sequences"),
    ({"x": np.ones((2, 4, 5)) * 1e30}, "beyond what fixed point can represent"),
])
def test_unusable_calibration_data_is_a_one_line_error(capsys, write_checkpoint, tmp_path, arrays, message):
    checkpoint = write_checkpoint(by_id("default-lecun"))
    np.savez(tmp_path / "cal.npz", **arrays)
    code, out, err = run_cli(capsys, "compile", str(checkpoint.path), "-o", str(tmp_path / "out"),
                             "--quantize", "int8", "--calibration", str(tmp_path / "cal.npz"))
    assert code == 2 and out == "" and err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
