"""The firmware project: files, builds (make, CMake, warning-free), memory table, parity image, extra boards."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
import torch

from cortex_m import compile_for, needs_cross, needs_qemu, run_cli, run_cli_json
from liquid_edge import firmware, ir_io, reference
from liquid_edge.data import random_sequences
from liquid_edge.errors import BuildError, ConfigError, ToolMissingError
from liquid_edge.runners.qemu import parse_console, run_image
from liquid_edge.target_catalog import TARGETS_PATH_ENV, load_catalog
from models import DENSE, WIRED, build
from test_targets import EXTRA_BOARD

pytestmark = [pytest.mark.cross, needs_cross]

PROJECT_FILES = ("Makefile", "CMakeLists.txt", "arm-none-eabi.cmake", "startup.c", "console.c", "le_runtime.c",
                 "le_firmware.h", "linker.ld", "app_main.c", "le_app.h")


@pytest.fixture(scope="module")
def m4_output(tmp_path_factory):
    out = tmp_path_factory.mktemp("m4") / "out"
    return out, compile_for(DENSE, "cortex-m4", out)


@pytest.fixture(scope="module")
def m4_parity(m4_output):
    """The parity image of the M4 output with 2 sequences x 24 steps, and those sequences' reference outputs."""
    out, manifest = m4_output
    data = random_sequences(DENSE.input_size, 2, 24, seed=3)
    expected, _ = reference.run(ir_io.load(out / "model"), data.x, data.dt)
    target, library = firmware.target_of(manifest), firmware.library_of(out, manifest)
    fw_dir = firmware.firmware_dir(out)
    parity = firmware.ParityData(data.x, data.dt, expected, atol=1e-5)
    firmware.write_parity_program(fw_dir, library, target, parity)
    return firmware.build(fw_dir, "parity"), parity, manifest


def test_compile_writes_the_project_and_builds_the_application(m4_output):
    out, manifest = m4_output
    for name in PROJECT_FILES:
        assert (out / "firmware" / name).is_file(), name
    info = manifest["firmware"]
    assert (info["core"], info["board"], info["qemu_machine"]) == ("cortex-m4", "mps2-an386", "mps2-an386")
    assert manifest["board"] == "mps2-an386"
    assert (out / info["elf"]).is_file()
    assert "-mfpu=fpv4-sp-d16" in (out / "firmware" / "Makefile").read_text()


def test_memory_table_is_positive_adds_up_and_agrees_with_the_size_tool(m4_output):
    out, manifest = m4_output
    memory, summary = manifest["firmware"]["memory"], manifest["summary"]
    parts = {key: value for key, value in memory.items() if key != "total"}
    for kind in ("flash_bytes", "ram_bytes"):
        assert all(value[kind] >= 0 for value in memory.values())
        assert sum(value[kind] for value in parts.values()) == memory["total"][kind]
    assert memory["model_weights"]["flash_bytes"] >= summary["weight_bytes"] > 0
    assert memory["model_code"]["flash_bytes"] > 0
    assert memory["model_ram"]["ram_bytes"] >= summary["state_bytes"]
    assert memory["stack"]["ram_bytes"] == load_catalog().boards["mps2-an386"].stack_size
    sections = subprocess.run(["arm-none-eabi-size", "-A", str(out / manifest["firmware"]["elf"])],
                              capture_output=True, text=True, check=True).stdout
    sizes = {line.split()[0]: int(line.split()[1]) for line in sections.splitlines() if line.startswith(".")}
    assert memory["total"]["flash_bytes"] == sizes[".text"] + sizes[".rodata"] + sizes[".data"] + sizes.get(
        ".ARM.exidx", 0)
    assert memory["total"]["ram_bytes"] == sizes[".data"] + sizes[".bss"] + sizes[".stack"]


def test_compile_cli_prints_the_memory_table(tmp_path, capsys):
    checkpoint = tmp_path / "wired.pt"
    torch.save(build(WIRED), checkpoint)
    code, out, _ = run_cli(capsys, "compile", str(checkpoint), "--target", "cortex-m3", "-o", str(tmp_path / "o"))
    assert code == 0
    assert "cortex-m3 (mps2-an385)" in out
    for label in ("model weights", "model code", "model state and static data", "firmware total"):
        assert label in out
    code, manifest = run_cli_json(capsys, "compile", str(checkpoint), "--target", "cortex-m3", "-o",
                                  str(tmp_path / "o"), "--force")
    assert code == 0 and manifest["firmware"]["memory"]["total"]["flash_bytes"] > 0


def test_without_the_cross_compiler_the_sources_are_written_with_the_install_command(tmp_path, monkeypatch, capsys):
    checkpoint = tmp_path / "dense.pt"
    torch.save(build(DENSE), checkpoint)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, out, _ = run_cli(capsys, "compile", str(checkpoint), "--target", "cortex-m4", "-o", str(tmp_path / "o"))
    assert code == 0
    assert "apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi" in out
    assert (tmp_path / "o" / "firmware" / "Makefile").is_file()
    assert not (tmp_path / "o" / "firmware" / "build").exists()


def test_templates_build_warning_free_with_make_and_cmake(m4_output, m4_parity, tmp_path):
    out, _ = m4_output
    copy = tmp_path / "copy"
    shutil.copytree(out / "src", copy / "src")
    shutil.copytree(out / "firmware", copy / "firmware", ignore=shutil.ignore_patterns("build"))
    strict = "EXTRA_CFLAGS=-Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes"
    subprocess.run(["make", "-C", str(copy / "firmware"), "-s", strict, "all", "parity"], check=True,
                   capture_output=True)
    if shutil.which("cmake") is None:
        pytest.skip("cmake missing")
    build_dir = copy / "cmake-build"
    subprocess.run(["cmake", "-S", str(copy / "firmware"), "-B", str(build_dir)], check=True, capture_output=True)
    subprocess.run(["cmake", "--build", str(build_dir)], check=True, capture_output=True)
    assert (build_dir / "app.elf").is_file() and (build_dir / "parity.elf").is_file()


def test_parity_image_carries_no_float_printf(m4_parity):
    elf, _, _ = m4_parity
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    names = {line.split()[-1] for line in symbols.splitlines()}
    assert not names & {"printf", "_printf_float", "_dtoa_r", "_vfprintf_r"}
    assert {"le_parity_inputs", "le_parity_expected", "le_parity_dts"} <= names


@needs_qemu
def test_parity_image_checks_and_prints_every_output(m4_parity):
    elf, parity, manifest = m4_parity
    code, console = run_image(elf, "mps2-an386", timeout_s=30)
    assert code == 0 and "E 0" in console
    outputs, states = parse_console(console, parity.expected.shape, manifest["summary"]["state_size"])
    assert np.max(np.abs(outputs - parity.expected)) <= 1e-5
    assert np.all(np.isfinite(states))


@needs_qemu
def test_parity_image_without_elapsed_times_steps_with_dt_one(m4_output, tmp_path):
    out, manifest = m4_output
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    data = random_sequences(DENSE.input_size, 2, 20, seed=5, irregular_dt=False)
    expected, _ = reference.run(ir_io.load(copy / "model"), data.x, None)
    target, library = firmware.target_of(manifest), firmware.library_of(copy, manifest)
    firmware.write_parity_program(copy / "firmware", library, target,
                                  firmware.ParityData(data.x, None, expected, atol=1e-5))
    code, console = run_image(firmware.build(copy / "firmware", "parity"), "mps2-an386", timeout_s=30)
    assert code == 0
    outputs, _ = parse_console(console, expected.shape, manifest["summary"]["state_size"])
    assert np.max(np.abs(outputs - expected)) <= 1e-5


@needs_qemu
def test_parity_image_reports_mismatches_and_exits_non_zero(m4_output, tmp_path):
    out, manifest = m4_output
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    data = random_sequences(DENSE.input_size, 1, 20, seed=4)
    expected, _ = reference.run(ir_io.load(copy / "model"), data.x, data.dt)
    expected[0, 7, 2] += 0.01
    expected[0, 9, 0] = np.nan  # a non-finite expectation still compiles, and nothing matches it
    target, library = firmware.target_of(manifest), firmware.library_of(copy, manifest)
    firmware.write_parity_program(copy / "firmware", library, target,
                                  firmware.ParityData(data.x, data.dt, expected, atol=1e-5))
    code, console = run_image(firmware.build(copy / "firmware", "parity"), "mps2-an386", timeout_s=30)
    assert code == 1
    assert {"M 0 7 2", "M 0 9 0", "E 2"} <= set(console.splitlines())


@needs_qemu
def test_exact_mode_accepts_identical_bits_and_rejects_one_ulp(m4_output, m4_parity, tmp_path):
    """The comparison integer builds use: equality, checked here on float outputs the image produced itself."""
    out, manifest = m4_output
    elf, parity, _ = m4_parity
    _, console = run_image(elf, "mps2-an386", timeout_s=30)
    produced, _ = parse_console(console, parity.expected.shape, manifest["summary"]["state_size"])
    target, library = firmware.target_of(manifest), firmware.library_of(out, manifest)
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for nudge, exit_code in ((0, 0), (1, 1)):
        expected = produced.astype(np.float32)
        expected.view(np.uint32)[1, 5, 0] += nudge
        exact = firmware.ParityData(parity.inputs, parity.dts, expected.astype(np.float64), exact=True)
        firmware.write_parity_program(copy / "firmware", library, target, exact)
        code, console = run_image(firmware.build(copy / "firmware", "parity"), "mps2-an386", timeout_s=30)
        assert code == exit_code, console[-300:]
        printed, _ = parse_console(console, parity.expected.shape, manifest["summary"]["state_size"])
        assert np.array_equal(printed, produced)


@needs_qemu
def test_a_board_added_as_a_file_builds_and_runs(tmp_path, monkeypatch):
    (tmp_path / "targets" / "boards").mkdir(parents=True)
    (tmp_path / "targets" / "boards" / "my-an386.toml").write_text(EXTRA_BOARD)
    monkeypatch.setenv(TARGETS_PATH_ENV, str(tmp_path / "targets"))
    manifest = compile_for(DENSE, "cortex-m4", tmp_path / "out", board="my-an386")
    assert manifest["firmware"]["board"] == "my-an386"
    assert "LENGTH = 0x8000" in (tmp_path / "out" / "firmware" / "linker.ld").read_text()
    code, console = run_image(tmp_path / "out" / manifest["firmware"]["elf"], "mps2-an386", timeout_s=30)
    assert code == 0 and "no more input" in console


HOOKS_C = """#include "le_app.h"
#include "le_firmware.h"

static int remaining = 3;

int le_read_sensors(float input[MACRO_INPUT_SIZE], float *elapsed)
{
    input[0] = 0.5f;
    *elapsed = 0.1f;
    return remaining-- > 0;
}

void le_write_actuators(const float output[MACRO_OUTPUT_SIZE])
{
    (void)output;
    le_console_write("actuated\\n");
}
"""


@needs_qemu
def test_application_sources_outside_the_project_replace_the_weak_hooks(m4_output, tmp_path):
    out, manifest = m4_output
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("build"))
    hooks = tmp_path / "app" / "hooks.c"
    hooks.parent.mkdir()
    hooks.write_text(HOOKS_C.replace("MACRO", manifest["c_name"].upper()))
    subprocess.run(["make", "-C", str(copy / "firmware"), "-s", f"APP_SOURCES={hooks}",
                    "EXTRA_CFLAGS=-Werror -Wmissing-prototypes -Wstrict-prototypes"], check=True, capture_output=True)
    assert sorted(p.name for p in hooks.parent.iterdir()) == ["hooks.c"]  # nothing written next to the source
    elfs = [copy / "firmware" / "build" / "app.elf"]
    if shutil.which("cmake") is not None:
        build_dir = copy / "cmake-build"
        subprocess.run(["cmake", "-S", str(copy / "firmware"), "-B", str(build_dir), f"-DAPP_SOURCES={hooks}"],
                       check=True, capture_output=True)
        subprocess.run(["cmake", "--build", str(build_dir)], check=True, capture_output=True)
        elfs.append(build_dir / "app.elf")
    for elf in elfs:
        code, console = run_image(elf, "mps2-an386", timeout_s=30)
        assert code == 0 and console.count("actuated") == 3 and "no more input" in console, (elf, console)


@pytest.mark.parametrize("name, clash", [("le_app", "le_app.h"), ("parity_data", "parity_data.h"),
                                         ("le_check", "le_check_step")])
def test_a_model_name_that_clashes_with_the_firmware_is_refused_before_anything_is_written(tmp_path, name, clash):
    with pytest.raises(ConfigError, match=f"'{name}' .*{clash}.*--name"):
        compile_for(WIRED, "cortex-m4", tmp_path / "out", name=name)
    assert not (tmp_path / "out").exists()


def test_names_sharing_only_the_firmware_prefix_are_accepted(tmp_path):
    manifest = compile_for(WIRED, "cortex-m0", tmp_path / "out", name="le")
    assert manifest["c_name"] == "le" and manifest["firmware"]["memory"]["total"]["flash_bytes"] > 0


def test_a_firmware_too_big_for_the_board_names_the_overflowing_region(tmp_path, monkeypatch):
    (tmp_path / "targets" / "boards").mkdir(parents=True)
    small = EXTRA_BOARD.replace("length = 0x40000", "length = 0x1000")
    (tmp_path / "targets" / "boards" / "my-an386.toml").write_text(small)
    monkeypatch.setenv(TARGETS_PATH_ENV, str(tmp_path / "targets"))
    with pytest.raises(BuildError, match=r"does not fit in the board's memory: FLASH overflowed by \d+ bytes") as err:
        compile_for(DENSE, "cortex-m4", tmp_path / "out", board="my-an386")
    assert "staging" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_an_up_to_date_image_is_used_without_the_cross_compiler(m4_output, tmp_path, monkeypatch):
    out, _ = m4_output
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)  # keeps the modification times: the built image stays current
    monkeypatch.setattr(firmware, "cross_compiler_available", lambda: False)
    fw_dir = copy / "firmware"
    assert firmware.build(fw_dir, "app") == fw_dir / "build" / "app.elf"
    (fw_dir / "app_main.c").touch()
    with pytest.raises(ToolMissingError, match="arm-none-eabi-gcc is not installed"):
        firmware.build(fw_dir, "app")


def test_an_output_for_a_board_file_that_is_gone_says_where_to_add_it(tmp_path, monkeypatch):
    (tmp_path / "targets" / "boards").mkdir(parents=True)
    (tmp_path / "targets" / "boards" / "my-an386.toml").write_text(EXTRA_BOARD)
    monkeypatch.setenv(TARGETS_PATH_ENV, str(tmp_path / "targets"))
    manifest = compile_for(WIRED, "cortex-m4", tmp_path / "out", board="my-an386")
    monkeypatch.delenv(TARGETS_PATH_ENV)
    with pytest.raises(ConfigError, match=f"board 'my-an386', which has no board file.*{TARGETS_PATH_ENV}"):
        firmware.target_of(manifest)


def test_a_model_whose_scratch_exceeds_the_board_stack_is_refused(tmp_path, monkeypatch):
    (tmp_path / "targets" / "boards").mkdir(parents=True)
    tiny_stack = EXTRA_BOARD.replace("stack_size = 0x1000", "stack_size = 0x40")
    (tmp_path / "targets" / "boards" / "my-an386.toml").write_text(tiny_stack)
    monkeypatch.setenv(TARGETS_PATH_ENV, str(tmp_path / "targets"))
    with pytest.raises(ConfigError, match="bytes of stack for its scratch buffers alone, .* reserves 64 bytes"):
        compile_for(DENSE, "cortex-m4", tmp_path / "out", board="my-an386")
    assert not (tmp_path / "out").exists()


def test_a_model_whose_scratch_leaves_little_stack_for_call_frames_is_warned_about(tmp_path, monkeypatch, capsys):
    (tmp_path / "targets" / "boards").mkdir(parents=True)
    small_stack = EXTRA_BOARD.replace("stack_size = 0x1000", "stack_size = 0x200")
    (tmp_path / "targets" / "boards" / "my-an386.toml").write_text(small_stack)
    monkeypatch.setenv(TARGETS_PATH_ENV, str(tmp_path / "targets"))
    manifest = compile_for(WIRED, "cortex-m4", tmp_path / "out", board="my-an386")
    assert manifest["summary"]["scratch_bytes"] < 0x200 < manifest["summary"]["scratch_bytes"] + 768
    assert "warning: one step needs" in capsys.readouterr().err


def test_a_cross_compiler_without_newlib_is_a_missing_tool_with_the_install_command(tmp_path, monkeypatch):
    # What arm-none-eabi-gcc says when libnewlib-arm-none-eabi is not installed: no C library headers.
    fake = tmp_path / "bin" / "arm-none-eabi-gcc"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nexec {shutil.which('arm-none-eabi-gcc')} -nostdinc \"$@\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    with pytest.raises(ToolMissingError, match=r"cannot find \w+\.h: its C library .*libnewlib-arm-none-eabi"):
        compile_for(WIRED, "cortex-m4", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_failing_build_during_compile_names_no_temporary_folder(tmp_path, monkeypatch):
    broken = tmp_path / "bin" / "arm-none-eabi-gcc"
    broken.parent.mkdir()
    broken.write_text("#!/bin/sh\necho 'app_main.c:1:1: error: the compiler is broken' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", f"{broken.parent}:{os.environ['PATH']}")
    with pytest.raises(BuildError, match="does not build: app_main.c:1:1: error: the compiler is broken") as error:
        compile_for(WIRED, "cortex-m4", tmp_path / "out")
    assert "staging" not in str(error.value) and "nothing was written" in str(error.value)


def test_make_parity_before_verify_says_what_writes_the_parity_program(tmp_path):
    compile_for(WIRED, "cortex-m0", tmp_path / "out")
    result = subprocess.run(["make", "-C", str(tmp_path / "out" / "firmware"), "-s", "parity"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "parity_main.c is written by 'liquid-edge verify OUT --on qemu': run it first" in result.stderr
