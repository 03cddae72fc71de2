"""`liquid-edge bench`: executed instructions per step, deterministic, with MACs and memory figures."""

from __future__ import annotations

import numpy as np
import pytest

from cortex_m import compile_for, needs_cross, needs_qemu, run_cli, run_cli_json
from liquid_edge import firmware
from liquid_edge.benchmark import (QEMU_METHOD, bench, count_step_instructions, count_with_qemu_log,
                               thumb_instruction_count)
from liquid_edge.data import random_sequences
from liquid_edge.errors import RunError
from liquid_edge.target_catalog import TARGETS_PATH_ENV
from models import DENSE, WIRED
from test_targets import EXTRA_BOARD

pytestmark = [pytest.mark.cross, needs_cross]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    return {core: (root / core, compile_for(config, core, root / core))
            for core, config in (("cortex-m4", DENSE), ("cortex-m0", WIRED), ("cortex-m55", DENSE))}


def test_the_count_is_the_same_on_every_run(outputs):
    out, manifest = outputs["cortex-m4"]
    first, second = bench(out, manifest, steps=8), bench(out, manifest, steps=8)
    assert first == second
    assert first["instructions_per_step"] > first["macs_per_step"]["executed"] > 0


def test_json_figures_are_consistent(outputs, capsys):
    out, manifest = outputs["cortex-m4"]
    code, report = run_cli_json(capsys, "bench", str(out), "--steps", "8")
    assert code == 0
    assert report["target"] == "cortex-m4" and report["steps_measured"] == 8
    macs = report["macs_per_step"]
    assert macs == {"dense": 1040, "sparse": 1040, "executed": 1040}
    assert report["instructions_per_step_min"] <= report["instructions_per_step"] <= report[
        "instructions_per_step_max"]
    assert report["instructions_per_mac"] == round(report["instructions_per_step"] / macs["executed"], 2)
    assert report["flash_bytes"] == manifest["firmware"]["memory"]["total"]["flash_bytes"] > 0
    assert report["ram_bytes"] == manifest["firmware"]["memory"]["total"]["ram_bytes"] > 0
    assert 0 < report["stack_bytes_per_step"] < report["ram_bytes"]


def test_soft_float_core_counts_and_sparse_macs(outputs, capsys):
    out, _ = outputs["cortex-m0"]
    code, text, _ = run_cli(capsys, "bench", str(out), "--steps", "3")
    assert code == 0
    assert "cortex-m0 (microbit)" in text and "Executed instructions, not cycles." in text
    _, report = run_cli_json(capsys, "bench", str(out), "--steps", "3")
    macs = report["macs_per_step"]
    assert macs["sparse"] < macs["dense"] and macs["executed"] == macs["sparse"]
    # Software floating point: far more instructions per MAC than the M4F's FPU needs.
    assert report["instructions_per_mac"] > 20


@needs_qemu
def test_cores_unicorn_does_not_model_are_counted_under_qemu(outputs, capsys):
    out, manifest = outputs["cortex-m55"]
    first, second = bench(out, manifest, steps=6), bench(out, manifest, steps=6)
    assert first == second and first["method"] == QEMU_METHOD
    assert first["instructions_per_step"] > first["macs_per_step"]["executed"]
    code, text, _ = run_cli(capsys, "bench", str(out), "--steps", "6")
    assert code == 0 and "cortex-m55 (mps3-an547)" in text and "bytes (peak)" in text


@needs_qemu
def test_qemu_and_unicorn_count_the_same_instructions(outputs):
    out, manifest = outputs["cortex-m4"]
    target, library = firmware.target_of(manifest), firmware.library_of(out, manifest)
    data = random_sequences(DENSE.input_size, 1, 5, seed=2)
    by_qemu = count_with_qemu_log(out, manifest, target, library, data)
    by_unicorn = count_step_instructions(out / manifest["firmware"]["elf"], target, library.c_name, data.x[0],
                                         data.dt[0], manifest["summary"]["output_size"])
    assert by_qemu.per_step == by_unicorn.per_step
    assert by_qemu.stack_bytes == by_unicorn.stack_bytes > 0
    assert np.array_equal(by_qemu.outputs, by_unicorn.outputs)


def test_a_core_without_any_emulator_says_so(tmp_path, monkeypatch, capsys):
    board = EXTRA_BOARD.replace('name = "my-an386"', 'name = "my-m55"').replace('"cortex-m4"', '"cortex-m55"')
    (tmp_path / "targets" / "boards").mkdir(parents=True)
    (tmp_path / "targets" / "boards" / "my-m55.toml").write_text(board.split("[qemu]")[0])
    monkeypatch.setenv(TARGETS_PATH_ENV, str(tmp_path / "targets"))
    compile_for(DENSE, "cortex-m55", tmp_path / "out", board="my-m55")
    code, text, _ = run_cli(capsys, "bench", str(tmp_path / "out"))
    assert code == 0 and "unavailable" in text and "is not emulated by QEMU" in text
    _, report = run_cli_json(capsys, "bench", str(tmp_path / "out"))
    assert report["instructions_per_step"] is None and report["method"] is None
    assert report["flash_bytes"] > 0 and report["macs_per_step"]["dense"] == 1040


def test_bench_of_a_host_output_is_a_one_line_error(tmp_path, capsys):
    compile_for(DENSE, "host", tmp_path / "host")
    code, _, err = run_cli(capsys, "bench", str(tmp_path / "host"))
    assert code == 2 and err.startswith("error: this output was compiled for host") and err.count("\n") == 1


def test_thumb_instruction_lengths():
    nop16, add32, vcvt32 = b"\x00\xbf", b"\x01\xeb\x02\x00", b"\xb7\xee\xc0\x3a"
    assert thumb_instruction_count(nop16 + add32 + vcvt32 + nop16) == 4
    assert thumb_instruction_count(b"\xf0\xf7\xfe\xff") == 1  # bl: 0b11110 prefix


def test_an_emulator_stop_is_a_one_line_error():
    import unicorn
    from unicorn import arm_const

    from liquid_edge.benchmark import _call

    emu = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
    with pytest.raises(RunError, match=r"stopped at pc 0x.*UC_ERR_FETCH_UNMAPPED.*stack overflowed"):
        _call(emu, arm_const, 0x1000, 0x20001000, [])  # nothing is mapped: the first fetch fails
