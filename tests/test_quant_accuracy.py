"""The quantized model against the float reference on a smooth task, and the verify report of a quantized build."""

from __future__ import annotations

import numpy as np
import pytest

from cortex_m import run_cli, run_cli_json
from generated_c import model_ir
from liquid_edge import reference
from liquid_edge.data import Sequences
from liquid_edge.quant import Emulator, quantize
from liquid_edge.quant.accuracy import classification_accuracy, sqnr_db
from models import by_id

# Stated floors (dB) of the whole-output SQNR on smooth inputs inside the calibrated range (docs/numerics.md).
FLOORS = {"int8": 30.0, "a16w8": 35.0, "pow2": 33.0}


def sines(count: int, steps: int, inputs: int, seed: int, dt: float = 0.5) -> Sequences:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[None, :, None] * 0.05
    x = np.sin(rng.uniform(0.2, 1.5, (count, 1, inputs)) * t + rng.uniform(0, 6.3, (count, 1, inputs)))
    return Sequences(x, np.full((count, steps), dt), None, "sines")


@pytest.mark.parametrize("config_id", ["default-lecun", "autoncp-default"])
@pytest.mark.parametrize("scheme", sorted(FLOORS))
def test_sqnr_against_float_is_above_the_stated_floor(config_id, scheme):
    model = model_ir(by_id(config_id))
    calibration, test = sines(8, 300, model.input_size, 1), sines(4, 300, model.input_size, 2)
    expected, _ = reference.run(model, test.x, test.dt)
    actual = Emulator(quantize(model, calibration, scheme)).run(test.x, test.dt)
    assert sqnr_db(expected, actual) >= FLOORS[scheme]


def test_state_error_does_not_accumulate_over_a_long_stream():
    model = model_ir(by_id("default-lecun"))
    qmodel = quantize(model, sines(8, 300, model.input_size, 1), "int8")
    stream = sines(1, 3000, model.input_size, 3)
    expected, _ = reference.run(model, stream.x, stream.dt)
    error = Emulator(qmodel).run(stream.x, stream.dt) - expected
    early, late = np.sqrt(np.mean(error[:, :500] ** 2)), np.sqrt(np.mean(error[:, -500:] ** 2))
    assert late <= 1.5 * early


def test_classification_accuracy_reads_per_sequence_and_per_step_labels():
    outputs = np.zeros((2, 3, 4))
    outputs[0, -1, 2] = outputs[1, -1, 1] = 1.0
    assert classification_accuracy(outputs, np.array([2, 3])) == 0.5
    assert classification_accuracy(outputs, np.zeros((2, 3), dtype=int)) == pytest.approx(4 / 6)
    assert classification_accuracy(outputs, np.zeros(5)) is None


def test_verify_of_a_quantized_build_is_bit_exact_and_reports_the_float_gap(capsys, write_checkpoint, tmp_path):
    checkpoint = write_checkpoint(by_id("default-proj"))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", x=rng.standard_normal((4, 100, 5)), dt=rng.uniform(0.1, 2, (4, 100)))
    np.savez(tmp_path / "test.npz", x=rng.standard_normal((3, 50, 5)), y=np.array([0, 1, 2]))
    out = tmp_path / "out"
    code, _, _ = run_cli(capsys, "compile", str(checkpoint.path), "-o", str(out), "--quantize", "a16w8",
                         "--calibration", str(tmp_path / "cal.npz"), "--state-bits", "8")
    assert code == 0
    code, report = run_cli_json(capsys, "verify", str(out), "--data", str(tmp_path / "test.npz"))
    assert code == 0 and report["passed"]
    (host,) = report["results"]
    assert host["bit_exact"] is True and host["max_abs_error"] == 0.0
    section = report["quantization"]
    assert len(section["outputs"]) == 3 and section["sqnr_db"] > 20
    assert set(section["accuracy"]) == {"quantized", "float"}
    code, text, _ = run_cli(capsys, "verify", str(out), "--data", str(tmp_path / "test.npz"))
    assert "quantized model vs float64 reference" in text and "accuracy: quantized" in text
