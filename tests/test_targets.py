"""Cores and boards as data: the built-in files, the listing command, extra target folders, bad files."""

from __future__ import annotations

import pytest

from cortex_m import run_cli, run_cli_json
from liquid_edge.errors import ConfigError
from liquid_edge.target_catalog import TARGETS_PATH_ENV, TargetFileError, load_catalog

CORES = ("cortex-m0", "cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
EMULATED_BOARDS = {"mps2-an385": "cortex-m3", "mps2-an386": "cortex-m4", "mps2-an500": "cortex-m7",
                   "mps2-an505": "cortex-m33", "mps3-an547": "cortex-m55", "microbit": "cortex-m0"}

EXTRA_BOARD = """
name = "my-an386"
description = "An AN386 with less RAM"
cores = ["cortex-m4"]
startup = "cortex-m"
stack_size = 0x1000
[memory.flash]
origin = 0x0
length = 0x40000
[memory.ram]
origin = 0x20000000
length = 0x8000
[console]
kind = "semihosting"
[qemu]
machine = "mps2-an386"
"""


def test_every_core_has_flags_features_and_a_default_board_that_carries_it():
    catalog = load_catalog()
    assert set(CORES) <= set(catalog.cores)
    for name in CORES:
        target = catalog.resolve(name)
        assert target.core.name in target.board.cores
        assert f"-mcpu={name}" in target.core.cflags
    features = {name: catalog.cores[name].features() for name in CORES}
    assert features["cortex-m0"] == features["cortex-m3"] == []
    assert features["cortex-m4"] == features["cortex-m33"] == ["dsp", "fpu"]
    assert features["cortex-m55"] == ["dsp", "fpu", "mve"]
    assert "-mfpu=fpv4-sp-d16" in catalog.cores["cortex-m4"].cflags
    assert "-mfpu=fpv5-d16" in catalog.cores["cortex-m7"].cflags
    assert "-mfpu=fpv5-sp-d16" in catalog.cores["cortex-m33"].cflags
    assert catalog.cores["cortex-m4"].hard_float and not catalog.cores["cortex-m3"].hard_float


def test_emulated_boards_name_their_qemu_machine_and_memory_map():
    catalog = load_catalog()
    for board_name, core in EMULATED_BOARDS.items():
        board = catalog.boards[board_name]
        assert board.qemu_machine == board_name
        assert core in board.cores
    microbit = catalog.boards["microbit"]
    assert (microbit.flash.origin, microbit.flash.length) == (0, 256 * 1024)
    assert (microbit.ram.origin, microbit.ram.length) == (0x20000000, 16 * 1024)


def test_targets_json_lists_cores_and_boards(capsys):
    code, listing = run_cli_json(capsys, "targets")
    assert code == 0
    cores = {core["name"]: core for core in listing["cores"]}
    boards = {board["name"]: board for board in listing["boards"]}
    assert set(CORES) <= set(cores) and set(EMULATED_BOARDS) <= set(boards)
    assert cores["cortex-m4"]["default_board"] == "mps2-an386"
    assert cores["cortex-m55"]["features"] == ["dsp", "fpu", "mve"]
    assert (cores["cortex-m4"]["bench_counter"], cores["cortex-m7"]["bench_counter"]) == ("unicorn", "qemu")
    assert boards["mps2-an505"]["flash"] == {"origin": 0x10000000, "length": 0x400000}


def test_targets_text_lists_every_core_and_board(capsys):
    code, out, _ = run_cli(capsys, "targets")
    assert code == 0
    for name in (*CORES, *EMULATED_BOARDS):
        assert name in out


def test_a_board_file_in_an_extra_folder_is_picked_up(tmp_path, monkeypatch, capsys):
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "my-an386.toml").write_text(EXTRA_BOARD)
    monkeypatch.setenv(TARGETS_PATH_ENV, str(tmp_path))
    target = load_catalog().resolve("cortex-m4", "my-an386")
    assert target.board.ram.length == 0x8000 and target.board.stack_size == 0x1000
    _, listing = run_cli_json(capsys, "targets")
    assert "my-an386" in {board["name"] for board in listing["boards"]}


def test_unknown_core_and_mismatched_board_are_one_line_errors():
    catalog = load_catalog()
    with pytest.raises(ConfigError, match="unknown target 'cortex-m9'.*cortex-m4"):
        catalog.resolve("cortex-m9")
    with pytest.raises(ConfigError, match="board 'microbit' carries cortex-m0, cortex-m0plus, not cortex-m4"):
        catalog.resolve("cortex-m4", "microbit")
    with pytest.raises(ConfigError, match="unknown board 'nope'"):
        catalog.resolve("cortex-m4", "nope")


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace('startup = "cortex-m"', 'startup = "nope"'), "startup 'nope' has no template"),
    (lambda text: text.replace("stack_size = 0x1000", "stack_size = 0x9000"), "does not fit in ram"),
    (lambda text: text.replace("origin = 0x20000000", "origin = 0x100"), "overlap"),
    (lambda text: text.replace('kind = "semihosting"', 'kind = "swo"'), "console kind 'swo' is unknown"),
    (lambda text: text.replace('name = "my-an386"', 'name = "other"'), "differs from the file name"),
    (lambda text: text.replace('cores = ["cortex-m4"]', 'cores = ["cortex-m99"]'), "cortex-m99 have no core file"),
    (lambda text: text.replace('stack_size = 0x1000', 'stack_size = "big"'), "'stack_size' must be a int"),
    (lambda text: text.replace("[qemu]", "[qemu"), "cannot read target file"),
])
def test_bad_board_files_name_the_file_and_the_problem(tmp_path, monkeypatch, edit, message):
    (tmp_path / "boards").mkdir()
    (tmp_path / "boards" / "my-an386.toml").write_text(edit(EXTRA_BOARD))
    monkeypatch.setenv(TARGETS_PATH_ENV, str(tmp_path))
    with pytest.raises(TargetFileError, match=message) as error:
        load_catalog()
    assert "my-an386.toml" in str(error.value) and "\n" not in str(error.value)


def test_a_missing_folder_in_the_targets_path_is_an_error_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv(TARGETS_PATH_ENV, f"{tmp_path}:{tmp_path / 'typo'}:")
    with pytest.raises(ConfigError, match=f"{TARGETS_PATH_ENV} names .*typo, which is not a folder"):
        load_catalog()


def test_an_unknown_board_points_at_the_targets_path():
    with pytest.raises(ConfigError, match=f"boards/my-board.toml in a folder listed in {TARGETS_PATH_ENV}"):
        load_catalog().resolve("cortex-m4", "my-board")
