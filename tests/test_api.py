"""The public Python API drives the whole path without a subprocess, and says what the CLI says."""

from __future__ import annotations

import numpy as np
import pytest

import liquid_edge as le
from cortex_m import needs_cross, needs_qemu, run_cli_json
from liquid_edge.errors import ConfigError, LiquidEdgeError
from models import DENSE, WIRED


def test_every_command_has_its_function():
    assert {"load", "inspect", "compile", "verify", "bench", "report", "targets", "demo"} <= set(le.__all__)


def test_compile_and_verify_on_host_from_a_checkpoint_path(write_checkpoint, tmp_path):
    checkpoint = write_checkpoint(DENSE)
    manifest = le.compile(checkpoint.path, tmp_path / "out")
    assert manifest["target"] == "host" and manifest["quantization"] is None
    report = le.verify(tmp_path / "out", sequences=2, steps=50, save=tmp_path / "saved")
    (result,) = report["results"]
    assert report["passed"] and result["backend"] == "host" and result["steps"] == 50
    assert result["max_abs_error"] <= result["tolerance"]
    assert np.load(tmp_path / "saved" / "host.npy").shape == (2, 50, le.inspect(le.load(checkpoint.path))["output_size"])


@needs_cross
@needs_qemu
def test_quantized_firmware_path_matches_the_cli(capsys, write_checkpoint, tmp_path):
    """load -> compile int8 for an M4 -> verify host and QEMU -> bench -> report, all from Python; the verify
    report is the one the CLI prints with --json."""
    checkpoint = write_checkpoint(WIRED)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cal.npz", x=rng.standard_normal((3, 60, WIRED.input_size)), dt=rng.uniform(0.2, 2, (3, 60)))
    out = tmp_path / "out"
    model = le.load(checkpoint.path)
    manifest = le.compile(model, out, target="cortex-m4", quantize="int8", calibration=tmp_path / "cal.npz")
    assert manifest["board"] == "mps2-an386" and manifest["quantization"]["scheme"] == "int8"

    report = le.verify(out, on="all", sequences=2, steps=120)
    assert report["passed"] and [r["backend"] for r in report["results"]] == ["host", "qemu:cortex-m4"]
    assert all(r["bit_exact"] and r["max_abs_error"] == 0.0 for r in report["results"])
    code, from_cli = run_cli_json(capsys, "verify", str(out), "--on", "all", "--sequences", "2", "--steps", "120")
    assert code == 0 and from_cli["results"] == report["results"]

    first, second = le.bench(out, steps=4), le.bench(out, steps=4)
    assert first["instructions_per_step"] == second["instructions_per_step"] > 0

    page = le.report(out, tmp_path / "report.html")
    assert page["files"] == [str(tmp_path / "report.html")] and (tmp_path / "report.html").stat().st_size > 0


def test_targets_lists_every_core_with_its_default_board():
    listing = le.targets()
    boards = {b["name"] for b in listing["boards"]}
    assert {"cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"} <= {
        c["name"] for c in listing["cores"]}
    assert all(c["default_board"] in boards for c in listing["cores"])


def test_errors_are_exceptions_with_the_fix(write_checkpoint, tmp_path):
    checkpoint = write_checkpoint(DENSE)
    with pytest.raises(ConfigError, match="--calibration only apply to a quantized build.*--quantize"):
        le.compile(checkpoint.path, tmp_path / "out", calibration="random")
    assert not (tmp_path / "out").exists()
    with pytest.raises(LiquidEdgeError, match="not a liquid-edge output folder"):
        le.verify(tmp_path)


@pytest.mark.parametrize("options,named", [(("--state-bits", "8"), "--state-bits"),
                                           (("--calibration-method", "minmax"), "--calibration-method")])
def test_quantization_options_without_a_scheme_are_refused(capsys, write_checkpoint, tmp_path, options, named):
    from cortex_m import run_cli

    checkpoint = write_checkpoint(DENSE)
    code, _, err = run_cli(capsys, "compile", str(checkpoint.path), "-o", str(tmp_path / "out"), *options)
    assert code == 2 and err == f"error: {named} only apply to a quantized build (add --quantize int8|a16w8|pow2)\n"
    assert not (tmp_path / "out").exists()
