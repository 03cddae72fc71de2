"""Calibration rules: full rollouts, masked weights zero, methods, and the errors a user sees."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cortex_m import run_cli
from generated_c import model_ir
from liquid_edge.data import Sequences, random_sequences
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
