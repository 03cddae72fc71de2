"""``liquid-edge verify OUT --on host``: exit codes, the JSON report, --data, --save, and the comparison itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from generated_c import model_ir
from liquid_edge.cli import main
from liquid_edge.compile import CompileOptions, compile_model
from liquid_edge.verify import Expected, compare, file_stem
from models import DENSE

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


def test_parity_failure_exits_1_and_names_the_first_failure(compiled, capsys):
    code, out, _ = run_cli(capsys, compiled, "--steps", 20, "--sequences", 1, "--tolerance", 0, "--json")
    report = json.loads(out)
    assert code == 1 and report["passed"] is False
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


def test_data_file_and_save(compiled, tmp_path, capsys):
    rng = np.random.default_rng(0)
    x, dt = rng.standard_normal((3, 30, DENSE.input_size)), rng.uniform(0.1, 3.0, (3, 30))
    np.savez(tmp_path / "data.npz", x=x, dt=dt)
    save = tmp_path / "saved"
    code, out, _ = run_cli(capsys, compiled, "--data", tmp_path / "data.npz", "--sequences", 2, "--save", save,
                           "--json")
    assert code == 0
    assert sorted(p.name for p in save.iterdir()) == ["dt.npy", "host.npy", "inputs.npy", "reference.npy"]
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
