"""``liquid-edge verify OUT --on host``: exit codes, the JSON report, --data, --save, and the comparison itself."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from cortex_m import compile_for, needs_cross
from generated_c import model_ir
from liquid_edge import api
from liquid_edge.cli import main
from liquid_edge.compiler import CompileOptions, compile_model
from liquid_edge.data import DataError
from liquid_edge.target_catalog import TARGETS_PATH_ENV
from liquid_edge.parity import (MIN_FLOAT_TOLERANCE, NOISE_FLOOR_BASIS, NOISE_FLOOR_FACTOR, USER_BASIS, Expected,
                                compare, file_stem, verify)
from models import DENSE
from test_targets import EXTRA_BOARD

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BASIC_MOTIONS_DENSE = EXAMPLES / "basic_motions" / "models" / "dense.pt"
BASIC_MOTIONS_TEST = EXAMPLES / "data" / "basic_motions_test.npz"

RESULT_KEYS = {"backend", "passed", "max_abs_error", "rmse", "steps", "first_failure"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("verify") / "out"
    compile_model(model_ir(DENSE), out, CompileOptions(name="verify_me"))
    return out


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["verify", *map(str, args)])
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_passes_within_tolerance(compiled, capsys):
    code, out, err = run_cli(capsys, compiled, "--on", "host", "--steps", 50, "--sequences", 2, "--json")
    report = json.loads(out)
    assert code == 0 and report["passed"] is True
    (result,) = report["results"]
    assert RESULT_KEYS <= set(result)
    assert result["backend"] == "host" and result["steps"] == 50 and result["sequences"] == 2
    assert result["first_failure"] is None and 0 < result["max_abs_error"] <= 1e-5
    assert len(result["outputs"]) == DENSE.units
    assert "verify:" in err   # progress goes to stderr, stdout stays JSON
    # Unit-scale inputs: 4 x the float32 noise floor stays below the 1e-5 minimum.
    assert 0 < report["float32_noise_floor"] < MIN_FLOAT_TOLERANCE / NOISE_FLOOR_FACTOR
    assert (result["tolerance"], result["tolerance_basis"]) == (MIN_FLOAT_TOLERANCE, NOISE_FLOOR_BASIS)
    assert report["skipped"] == []


def test_parity_failure_exits_1_and_names_the_first_failure(compiled, capsys):
    code, out, _ = run_cli(capsys, compiled, "--steps", 20, "--sequences", 1, "--tolerance", 0, "--json")
    report = json.loads(out)
    assert code == 1 and report["passed"] is False
    assert report["results"][0]["tolerance_basis"] == USER_BASIS
    failure = report["results"][0]["first_failure"]
    assert set(failure) >= {"sequence", "step", "output", "expected", "actual"}
    assert failure["error"] > 0


def test_human_report(compiled, capsys):
    code, out, _ = run_cli(capsys, compiled, "--steps", 10, "--sequences", 1, "--tolerance", 0)
    assert code == 1
    assert "FAIL" in out and "first failure at sequence 0" in out
    assert "float32 rounding alone" not in out   # nothing is small next to a zero tolerance


def test_marginal_float_failure_points_at_the_tolerance(compiled, capsys):
    code, out, _ = run_cli(capsys, compiled, "--steps", 50, "--sequences", 2, "--tolerance", 1e-8)
    assert code == 1 and "float32 rounding alone" in out


@pytest.mark.parametrize("args, message", [
    (["--on", "qemu"], "cannot run this output"),
    (["--on", "fpga"], "unknown backend"),
    (["--tolerance", "-1"], "tolerance"),
    (["--data", "missing.npz"], "does not exist"),
    (["--sequences", "0"], "--sequences"),
    (["--steps", "-3"], "--steps"),
])
def test_usage_errors_exit_2(compiled, capsys, args, message):
    code, out, err = run_cli(capsys, compiled, *args)
    assert code == 2 and out == ""
    assert err.startswith("error:") and message in err and "Traceback" not in err


def test_not_an_output_folder_exits_2(tmp_path, capsys):
    code, _, err = run_cli(capsys, tmp_path)
    assert code == 2 and "not a liquid-edge output folder" in err


def test_data_file_with_wrong_width_exits_2(compiled, tmp_path, capsys):
    np.savez(tmp_path / "data.npz", x=np.zeros((2, 5, DENSE.input_size + 1)))
    code, _, err = run_cli(capsys, compiled, "--data", tmp_path / "data.npz")
    assert code == 2 and "inputs per step" in err


@pytest.mark.parametrize("shape", [(0, 30, DENSE.input_size), (2, 0, DENSE.input_size)])
def test_empty_data_is_a_one_line_error(compiled, tmp_path, capsys, shape):
    np.savez(tmp_path / "empty.npz", x=np.zeros(shape))
    code, _, err = run_cli(capsys, compiled, "--data", tmp_path / "empty.npz")
    assert code == 2 and "no sequences or no steps" in err and err.count("\n") == 1


@pytest.mark.parametrize("count, steps", [(0, 5), (2, 0), (-1, 5)])
def test_python_api_refuses_empty_verifications(compiled, count, steps):
    with pytest.raises(DataError, match="must be at least 1"):
        verify(compiled, count=count, steps=steps)


def test_on_all_reports_the_skipped_backends(compiled, capsys):
    code, out, err = run_cli(capsys, compiled, "--on", "all", "--steps", 5, "--sequences", 1, "--json")
    report = json.loads(out)
    assert code == 0 and [r["backend"] for r in report["results"]] == ["host"]
    (skipped,) = report["skipped"]
    assert skipped["backend"] == "qemu" and "compiled for host" in skipped["reason"]
    assert "skipping qemu: it is compiled for host" in err


@needs_cross
def test_qemu_on_a_board_without_emulation_names_the_emulated_boards(tmp_path, monkeypatch, capsys):
    (tmp_path / "targets" / "boards").mkdir(parents=True)
    (tmp_path / "targets" / "boards" / "my-an386.toml").write_text(EXTRA_BOARD.split("[qemu]")[0])
    monkeypatch.setenv(TARGETS_PATH_ENV, str(tmp_path / "targets"))
    compile_for(DENSE, "cortex-m4", tmp_path / "out", board="my-an386")
    code, _, err = run_cli(capsys, tmp_path / "out", "--on", "qemu")
    assert code == 2 and "board my-an386 is not emulated by QEMU" in err and "mps2-an386" in err


def test_save_never_overwrites_other_files(compiled, tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    code, _, err = run_cli(capsys, compiled, "--steps", 5, "--sequences", 1, "--save", tmp_path / "file")
    assert code == 2 and "is not a folder" in err and err.count("\n") == 1
    folder = tmp_path / "arrays"
    folder.mkdir()
    (folder / "reference.npy").write_text("mine")
    code, _, err = run_cli(capsys, compiled, "--steps", 5, "--sequences", 1, "--save", folder)
    assert code == 2 and "already holds reference.npy" in err
    assert (folder / "reference.npy").read_text() == "mine"
    (folder / "reference.npy").unlink()
    for steps in (5, 7):   # a save replaces its own earlier files
        code, _, _ = run_cli(capsys, compiled, "--steps", steps, "--sequences", 1, "--save", folder)
        assert code == 0 and np.load(folder / "host.npy").shape[1] == steps


def test_data_file_and_save(compiled, tmp_path, capsys):
    rng = np.random.default_rng(0)
    x, dt = rng.standard_normal((3, 30, DENSE.input_size)), rng.uniform(0.1, 3.0, (3, 30))
    np.savez(tmp_path / "data.npz", x=x, dt=dt)
    save = tmp_path / "saved"
    code, out, _ = run_cli(capsys, compiled, "--data", tmp_path / "data.npz", "--sequences", 2, "--save", save,
                           "--json")
    assert code == 0
    assert sorted(p.name for p in save.glob("*.npy")) == ["dt.npy", "host.npy", "inputs.npy", "reference.npy"]
    np.testing.assert_array_equal(np.load(save / "inputs.npy"), x[:2])
    np.testing.assert_array_equal(np.load(save / "dt.npy"), dt[:2])
    host, ref = np.load(save / "host.npy"), np.load(save / "reference.npy")
    assert host.shape == ref.shape == (2, 30, DENSE.units)
    assert np.max(np.abs(host - ref)) == json.loads(out)["results"][0]["max_abs_error"]


def test_compare_fails_on_non_finite_outputs():
    expected = Expected(np.zeros((1, 3, 2)), bit_exact=False, label="reference")
    actual = np.zeros((1, 3, 2))
    actual[0, 1, 1] = np.nan
    result = compare("host", expected, actual, tolerance=1.0)
    assert result["passed"] is False and result["max_abs_error"] is None
    assert (result["first_failure"]["step"], result["first_failure"]["output"]) == (1, 1)


def test_compare_bit_exact_ignores_the_tolerance():
    expected = Expected(np.zeros((1, 2, 1)), bit_exact=True, label="emulator")
    result = compare("host", expected, np.full((1, 2, 1), 1e-9), tolerance=1.0)
    assert result["passed"] is False and result["bit_exact"] is True and result["tolerance"] == 0.0


def test_backend_names_become_file_names():
    assert file_stem("qemu:cortex-m4") == "qemu_cortex-m4"
    assert file_stem("host") == "host"


def test_missing_compiler_is_a_one_line_error(compiled, capsys, monkeypatch):
    monkeypatch.setenv("CC", "no-such-cc")
    code, _, err = run_cli(capsys, compiled, "--steps", 5, "--sequences", 1)
    assert code == 2 and "the C compiler 'no-such-cc' is not installed" in err and "Traceback" not in err


@needs_cross
def test_on_all_skips_a_backend_whose_tools_are_missing(tmp_path, capsys, monkeypatch):
    """--on all verifies on what the machine has: without the cross compiler, host runs and QEMU is listed as
    skipped with the install command; asked for by name, QEMU is an error."""
    compile_for(DENSE, "cortex-m4", tmp_path / "out")
    monkeypatch.setattr("liquid_edge.firmware.CROSS_GCC", "no-such-arm-none-eabi-gcc")
    code, out, err = run_cli(capsys, tmp_path / "out", "--on", "all", "--steps", 5, "--sequences", 1, "--json")
    report = json.loads(out)
    assert code == 0 and [r["backend"] for r in report["results"]] == ["host"]
    (skipped,) = report["skipped"]
    assert skipped["backend"] == "qemu" and "no-such-arm-none-eabi-gcc is not installed" in skipped["reason"]
    assert "apt-get install" in skipped["reason"]
    code, _, err = run_cli(capsys, tmp_path / "out", "--on", "qemu", "--steps", 5, "--sequences", 1)
    (error,) = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "no-such-arm-none-eabi-gcc is not installed" in error and "Traceback" not in err


# ----------------------------------------------------------------- the default float tolerance on a real model

@pytest.fixture(scope="module")
def basic_motions(tmp_path_factory):
    """The BasicMotions dense example: raw IMU inputs up to |x| = 29, where float32 rounding exceeds 1e-5."""
    out = tmp_path_factory.mktemp("basic_motions") / "out"
    compile_model(api.load(BASIC_MOTIONS_DENSE), out)
    return out


def test_a_real_model_passes_the_default_tolerance(basic_motions, capsys):
    code, out, _ = run_cli(capsys, basic_motions, "--data", BASIC_MOTIONS_TEST, "--json")
    report = json.loads(out)
    (result,) = report["results"]
    assert code == 0 and result["passed"], result
    assert result["max_abs_error"] > MIN_FLOAT_TOLERANCE   # an absolute 1e-5 would fail this correct build
    assert result["tolerance"] == NOISE_FLOOR_FACTOR * report["float32_noise_floor"]
    assert result["tolerance_basis"] == NOISE_FLOOR_BASIS == "float32 noise floor x 4"


def test_the_default_tolerance_still_catches_a_wrong_weight(basic_motions, tmp_path, capsys):
    """One projection weight off by 1e-3 in the generated C (a real fault, far smaller than a wrong layout)."""
    broken = tmp_path / "broken"
    shutil.copytree(basic_motions, broken, ignore=shutil.ignore_patterns("build", "verify"))
    source = next((broken / "src").glob("*.c"))
    text = source.read_text()
    block = re.search(r"_proj_w\[\d+\] = \{\s*(-?[0-9.e-]+)f", text)
    weight = float(block.group(1))
    source.write_text(text[:block.start(1)] + repr(float(np.float32(weight + 1e-3))) + text[block.end(1):])
    code, out, _ = run_cli(capsys, broken, "--data", BASIC_MOTIONS_TEST, "--json")
    (result,) = json.loads(out)["results"]
    assert code == 1 and not result["passed"]
    assert result["max_abs_error"] > 2 * result["tolerance"]
