"""Float parity of the generated C on every emulated Cortex-M core, under QEMU, through `liquid-edge verify`.

Tolerance: max abs error 1e-5 against the float64 reference over 200 steps with irregular dt (measured: below
5e-7 on every core; newlib's expf/tanhf on the target and glibc's on the host differ by a few float32 ulps).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cortex_m import compile_for, needs_cross, needs_qemu, run_cli, run_cli_json
from liquid_edge.errors import RunError
from liquid_edge.runners.qemu import parse_console, run_image
from liquid_edge.target_catalog import load_catalog
from liquid_edge.parity import MIN_FLOAT_TOLERANCE
from models import DENSE, WIRED

pytestmark = [pytest.mark.qemu, pytest.mark.cross, needs_cross, needs_qemu]

CORES = ("cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE_CHECKPOINT = EXAMPLES / "basic_motions" / "models" / "ncp.pt"
EXAMPLE_DATA = EXAMPLES / "data" / "basic_motions_test.npz"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """compiled(config, core, board=None) -> output folder, each compiled once per module."""
    cache = {}

    def get(config, core, board=None):
        key = (config.id, core, board)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{config.id}-{core}") / "out"
            compile_for(config, core, out, board)
            cache[key] = out
        return cache[key]

    return get


@pytest.mark.parametrize("config", [DENSE, WIRED], ids=lambda c: c.id)
@pytest.mark.parametrize("core", CORES)
def test_float_parity_on_every_core(core, config, compiled, capsys):
    out = compiled(config, core)
    code, report = run_cli_json(capsys, "verify", str(out), "--on", "qemu", "--steps", "200", "--sequences", "2")
    assert code == 0, report
    (result,) = report["results"]
    assert result["backend"] == f"qemu:{core}"
    assert (result["sequences"], result["steps"]) == (2, 200)
    assert result["tolerance"] == MIN_FLOAT_TOLERANCE   # unit-scale inputs: the floor x 4 stays below it
    assert result["passed"] and result["max_abs_error"] <= MIN_FLOAT_TOLERANCE


@pytest.mark.parametrize("core", ("cortex-m0plus", *CORES))
def test_example_checkpoint_passes_on_every_core(core, tmp_path, capsys):
    """The command line a user runs: a shipped real-data checkpoint, compiled for each core and verified on its
    test split under QEMU with the default tolerance."""
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "compile", str(EXAMPLE_CHECKPOINT), "--target", core, "-o", str(out))
    assert code == 0, err
    code, report = run_cli_json(capsys, "verify", str(out), "--on", "qemu", "--data", str(EXAMPLE_DATA),
                                "--sequences", "8")
    (result,) = report["results"]
    assert code == 0 and result["passed"] and result["backend"] == f"qemu:{core}"
    assert (result["sequences"], result["steps"]) == (8, 100)
    assert result["max_abs_error"] <= result["tolerance"]


def test_qemu_results_have_the_host_json_contract(compiled, capsys):
    code, report = run_cli_json(capsys, "verify", str(compiled(DENSE, "cortex-m4")), "--on", "all", "--steps", "50",
                                "--sequences", "1")
    assert code == 0
    host, qemu = report["results"]
    assert (host["backend"], qemu["backend"]) == ("host", "qemu:cortex-m4")
    assert host.keys() == qemu.keys()


def test_uart_console_board(compiled, capsys):
    out = compiled(WIRED, "cortex-m3", "mps2-an385-uart")
    code, report = run_cli_json(capsys, "verify", str(out), "--on", "qemu", "--steps", "60", "--sequences", "2")
    assert code == 0 and report["results"][0]["passed"]


def test_sequences_that_do_not_fit_flash_are_split_over_images(compiled, capsys):
    # 20 sequences of 200 steps take 288 KB of flash: more than the micro:bit's 256 KB.
    out = compiled(DENSE, "cortex-m0")
    code, report = run_cli_json(capsys, "verify", str(out), "--on", "qemu", "--steps", "200", "--sequences", "20")
    assert code == 0 and report["results"][0]["sequences"] == 20
    last_image = (out / "firmware" / "parity_data.h").read_text()
    assert "#define LE_PARITY_SEQUENCES 20u" not in last_image


def test_hung_firmware_is_a_clean_error(compiled, tmp_path):
    fw_dir = compiled(DENSE, "cortex-m4") / "firmware"
    (tmp_path / "hang.c").write_text("int main(void);\nint main(void)\n{\n    for (;;) {\n    }\n}\n")
    elf = tmp_path / "hang.elf"
    core = load_catalog().cores["cortex-m4"]
    subprocess.run(["arm-none-eabi-gcc", *core.cflags, "-O2", "-nostartfiles", "--specs=nano.specs",
                    "-T", str(fw_dir / "linker.ld"), "-I", str(fw_dir), *(str(fw_dir / name) for name in
                                                                        ("startup.c", "console.c", "le_runtime.c")),
                    str(tmp_path / "hang.c"), "-o", str(elf)], check=True)
    with pytest.raises(RunError, match=r"hang.elf printed nothing for 1 s under qemu-system-arm -M mps2-an386"):
        run_image(elf, "mps2-an386", timeout_s=1)


def test_verify_timeout_is_one_line_without_traceback(compiled, capsys, monkeypatch):
    monkeypatch.setenv("LIQUID_EDGE_QEMU_TIMEOUT", "0.001")
    code, out, err = run_cli(capsys, "verify", str(compiled(DENSE, "cortex-m4")), "--on", "qemu", "--steps", "20",
                             "--sequences", "1")
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "printed nothing for 0.001 s" in lines[0]
    assert "Traceback" not in err


def test_console_parser_rejects_faults_and_truncated_runs():
    with pytest.raises(RunError, match="stopped with 'fault: the processor raised a fault exception'"):
        parse_console("Y 0 0 3f800000\nfault: the processor raised a fault exception\n", (1, 2, 1), 1)
    with pytest.raises(RunError, match=r"ended early \(1 of 2 steps reported\)"):
        parse_console("Y 0 0 3f800000\nS 0 00000000\nE 0\n", (1, 2, 1), 1)
    with pytest.raises(RunError, match=r"ended early \(0 of 3 steps reported\)"):
        parse_console("", (1, 3, 1), 1)
    lockup = "\nqemu: fatal: Lockup: can't escalate 3 to HardFault (current priority -1)\n\nR00=00020068\n"
    with pytest.raises(RunError, match="crashed the emulated core .*Lockup.*stack overflowed"):
        parse_console(lockup, (1, 2, 1), 1)
    outputs, states = parse_console("Y 0 0 3f800000\nY 0 1 7fc00000\nS 0 bf000000\nE 1\n", (1, 2, 1), 1)
    assert outputs[0, 0, 0] == 1.0 and outputs[0, 1, 0] != outputs[0, 1, 0] and states[0, 0] == -0.5
    outputs, _ = parse_console("Y 0 0 ffffff80 0000007f\nS 0 00000000\nE 0\n", (1, 1, 2), 1, integer_outputs=True)
    assert outputs.tolist() == [[[-128.0, 127.0]]]
