"""Integer builds under QEMU: bit-exact with the emulator on every emulated core, in every scheme, over 1000 steps
with saturating inputs and dt."""

from __future__ import annotations

import numpy as np
import pytest

from cortex_m import needs_cross, needs_qemu, run_cli, run_cli_json
from models import by_id

pytestmark = [pytest.mark.qemu, pytest.mark.cross, needs_cross, needs_qemu]

# Every scheme on every emulated core; the model configurations rotate so that each cell kind (modes, backbone
# activations, wiring, mixed memory, projection) runs on several cores and under each scheme.
EMULATED_CORES = ("cortex-m0", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
ROTATION = ("default-lecun", "autoncp-default", "default-mixed", "default-proj", "no_gate-lecun", "pure-lecun",
            "default-silu", "no_gate-mixed-proj", "random-no_gate", "ncp-default", "autoncp-pure", "default-gelu",
            "autoncp-mixed-proj", "pure-mixed-proj", "default-tanh", "autoncp-no_gate", "default-nobackbone",
            "no_gate-silu-2layers")
CORES = [(core, scheme, ROTATION[(3 * c + s) % len(ROTATION)])
         for c, core in enumerate(EMULATED_CORES) for s, scheme in enumerate(("int8", "a16w8", "pow2"))]


@pytest.mark.parametrize("core,scheme,config_id", CORES, ids=[f"{c}-{s}-{m}" for c, s, m in CORES])
def test_qemu_is_bit_exact_with_the_emulator(capsys, write_checkpoint, tmp_path, core, scheme, config_id):
    checkpoint = write_checkpoint(by_id(config_id))
    rng = np.random.default_rng(1)
    inputs = by_id(config_id).input_size
    np.savez(tmp_path / "cal.npz", x=rng.standard_normal((4, 100, inputs)), dt=rng.uniform(0.1, 2, (4, 100)))
    x = rng.standard_normal((1, 1000, inputs)) * np.where(rng.random((1, 1000, 1)) < 0.03, 100.0, 1.0)
    dt = rng.uniform(0.0, 3.0, (1, 1000))
    dt[0, ::101] = 1e6
    np.savez(tmp_path / "test.npz", x=x, dt=dt)
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "compile", str(checkpoint.path), "-o", str(out), "--target", core,
                           "--quantize", scheme, "--calibration", str(tmp_path / "cal.npz"))
    assert code == 0, err
    code, report = run_cli_json(capsys, "verify", str(out), "--on", "qemu", "--data", str(tmp_path / "test.npz"))
    (result,) = report["results"]
    assert code == 0 and result["passed"], result["first_failure"]
    assert result["bit_exact"] is True and result["max_abs_error"] == 0.0 and result["steps"] == 1000
    # The image compares with == itself: its data header carries no tolerance.
    assert "LE_PARITY_ATOL" not in (out / "firmware" / "parity_data.h").read_text()


@pytest.mark.parametrize("core,cflags,marker", [
    ("cortex-m4", ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], "__smlad"),
    ("cortex-m55", ["-mcpu=cortex-m55", "-mfloat-abi=hard"], "vmladavaq_p_s16"),
])
def test_target_kernels_build_warning_free(capsys, write_checkpoint, tmp_path, core, cflags, marker):
    """The SMLAD/LDRD and Helium branches themselves, with -Werror (the firmware build does not make warnings
    errors)."""
    import subprocess

    checkpoint = write_checkpoint(by_id("default-proj"))
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "compile", str(checkpoint.path), "-o", str(out), "--target", core,
                           "--quantize", "int8", "--calibration", "random")
    assert code == 0, err
    source = next((out / "src").glob("*.c"))
    assert marker in source.read_text()
    result = subprocess.run(["arm-none-eabi-gcc", *cflags, "-mthumb", "-std=c99", "-O2", "-Wall", "-Wextra",
                             "-Werror", "-pedantic", "-c", str(source), "-o", str(tmp_path / "kernel.o")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
