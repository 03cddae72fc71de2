"""C naming, the layout of the generated library, and the compile pipeline (output folder, manifest, CLI)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from generated_c import model_ir
from liquid_edge import __version__, ir_io
from liquid_edge.cli import main
from liquid_edge.compiler import CompileOptions, compile_model, read_manifest
from liquid_edge.emit.c_library import emit_c_library, plan_library
from liquid_edge.emit.naming import MAX_LENGTH, c_identifier
from liquid_edge.errors import ConfigError, LiquidEdgeError
from liquid_edge.ir import Source
from models import DENSE, WIRED, by_id


@pytest.mark.parametrize("name, expected", [
    ("walker", "walker"),
    ("Wind sensor #2", "wind_sensor_2"),
    ("int", "m_int"),                       # keyword
    ("while", "m_while"),
    ("bool", "m_bool"),                     # C23 keyword
    ("3d-net", "m_3d_net"),                 # leading digit
    ('my "quoted" model\'s', "my_quoted_model_s"),
    ("réseau", "reseau"),                   # accents folded
    ("模型", "model"),                       # nothing ASCII left
    ("", "model"),
    ("__Init", "init"),                     # leading underscores, capital
    ("a__b", "a_b"),                        # double underscore
    ("string", "m_string"),                 # str + lower case: reserved library prefix
    ("error", "m_error"),                   # E + capital once upper-cased: errno macros
    ("uint8", "m_uint8"),                   # int/uint ... _t: stdint types
    ("signal", "m_signal"),                 # SIG macros
])
def test_c_identifier(name, expected):
    assert c_identifier(name) == expected


@pytest.mark.parametrize("name", ["x" * 80, "_" * 5 + "Ab" * 30, "9" * 30, "é" * 50 + "z"])
def test_c_identifier_is_short_and_valid(name):
    ident = c_identifier(name)
    assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", ident)
    assert len(ident) <= MAX_LENGTH


def test_header_documents_the_model():
    model = model_ir(by_id("default-mixed"))
    model = dataclasses.replace(model, source=Source("ckpt.pt", "ab" * 32, "state_dict"))
    header = emit_c_library(model, "walker").files["walker.h"]
    for text in ("#define WALKER_INPUT_SIZE 5", "#define WALKER_OUTPUT_SIZE 12", "#define WALKER_STATE_SIZE 24",
                 "#define WALKER_SCRATCH_BYTES", f"liquid-edge {__version__}", "sha256: " + "ab" * 32,
                 "[0, 12)  hidden state", "[12, 24)  LSTM cell state", "void walker_run(walker_state_t *state"):
        assert text in header


def test_sparse_layout_keeps_only_masked_in_synapses():
    model = model_ir(WIRED)
    plan = plan_library(model, "ncp")
    for cell_plan, cell in zip(plan.cells, model.cells):
        kept = int(np.count_nonzero(cell.ff1.mask))
        assert cell_plan.sparse
        assert cell_plan.arrays["ff_w"].values.size == 2 * kept    # ff1 and ff2 per kept synapse
        assert cell_plan.arrays["ff_col"].values.size == kept
        assert cell_plan.arrays["time_w"].values.size == 2 * cell.time_a.weight.size   # time heads stay dense
    assert plan.macs_per_step == sum(layer.sparse_macs for _, layer in model.linears())
    dense_plan = plan_library(model, "ncp", sparse=False)
    assert dense_plan.macs_per_step == sum(layer.dense_macs for _, layer in model.linears())
    assert plan.weight_bytes < dense_plan.weight_bytes


def test_all_ones_mask_is_emitted_dense():
    plan = plan_library(model_ir(by_id("fullyconnected-default")), "fc")
    assert not any(cell.sparse for cell in plan.cells)


def test_a_cell_without_synapses_is_emitted_dense():
    """An all-zero mask would leave zero-length arrays (not C); the dense layout of its zero weights is valid."""
    model = model_ir(WIRED)
    cell = model.cells[0]
    cut = {name: dataclasses.replace(head, weight=np.zeros_like(head.weight), mask=np.zeros_like(head.mask))
           for name, head in (("ff1", cell.ff1), ("ff2", cell.ff2))}
    model = dataclasses.replace(model, cells=(dataclasses.replace(cell, **cut), *model.cells[1:])).validate()
    plan = plan_library(model, "cut")
    assert [c.sparse for c in plan.cells] == [False, True, True]


def test_weights_are_float32_literals_that_round_trip():
    model = model_ir(by_id("default-mixed"))
    source = emit_c_library(model, "m").files["m.c"]
    for array in plan_library(model, "m").arrays:
        block = re.search(rf"{array.name}\[\d+\] = \{{(.*?)\}};", source, re.S).group(1)
        values = np.array([float(v.rstrip("f")) for v in block.split(",") if v.strip()], dtype=np.float32)
        np.testing.assert_array_equal(values, array.values.astype(np.float32))


# ---------------------------------------------------------------------------------------------- compile pipeline

@pytest.fixture(scope="module")
def dense_model():
    return model_ir(DENSE)


def test_compile_writes_the_output_folder(dense_model, tmp_path):
    out = tmp_path / "out"
    manifest = compile_model(dense_model, out, CompileOptions(name="My Model"))
    assert manifest == read_manifest(out)
    assert manifest["c_name"] == "my_model" and manifest["target"] == "host"
    assert manifest["board"] is None and manifest["quantization"] is None
    assert manifest["tool_version"] == __version__
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert sorted([*manifest["files"], "liquid_edge.json"]) == on_disk
    assert {"src/my_model.h", "src/my_model.c", "Makefile", "CMakeLists.txt", "model/model.json",
            "model/model.npz"} <= set(manifest["files"])
    assert ir_io.load(out / "model").state_size == dense_model.state_size
    assert manifest["summary"]["executed_macs_per_step"] == manifest["summary"]["dense_macs_per_step"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]   # no staging folder left behind


@pytest.mark.parametrize("tool", ["make", "cmake"])
def test_host_build_files_build_the_library(dense_model, tmp_path, tool):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    out = tmp_path / "out"
    compile_model(dense_model, out, CompileOptions(name="lib_test"))
    if tool == "make":
        subprocess.run(["make", "-s", "-C", str(out)], check=True, capture_output=True)
        assert (out / "build" / "make" / "liblib_test.a").is_file()
    else:
        build = tmp_path / "cmake-build"
        subprocess.run(["cmake", "-S", str(out), "-B", str(build)], check=True, capture_output=True)
        subprocess.run(["cmake", "--build", str(build)], check=True, capture_output=True)
        assert (build / "liblib_test.a").is_file()


def test_compile_refuses_a_foreign_folder(dense_model, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(LiquidEdgeError, match="not a liquid-edge output"):
        compile_model(dense_model, tmp_path, CompileOptions(force=True))
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_compile_replaces_a_previous_output_only_with_force(dense_model, tmp_path):
    out = tmp_path / "out"
    compile_model(dense_model, out, CompileOptions(name="first"))
    with pytest.raises(LiquidEdgeError, match="--force"):
        compile_model(dense_model, out, CompileOptions(name="second"))
    assert read_manifest(out)["c_name"] == "first"
    compile_model(dense_model, out, CompileOptions(name="second", force=True))
    assert read_manifest(out)["c_name"] == "second"
    assert not (out / "src" / "first.c").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_compile_into_an_existing_empty_folder(dense_model, tmp_path):
    compile_model(dense_model, tmp_path, CompileOptions(name="here"))
    assert read_manifest(tmp_path)["c_name"] == "here"


@pytest.mark.parametrize("options", [CompileOptions(target="no-such-core"), CompileOptions(board="mps2-an386")])
def test_compile_rejects_bad_targets_before_writing(dense_model, tmp_path, options):
    with pytest.raises(ConfigError):
        compile_model(dense_model, tmp_path / "out", options)
    assert list(tmp_path.iterdir()) == []


def test_compile_cli_from_a_checkpoint(write_checkpoint, tmp_path, capsys):
    checkpoint = write_checkpoint(WIRED)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", str(checkpoint.path), "-o", str(out), "--json"])
    assert exit_info.value.code == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["source"]["sha256"] in (out / "src" / f"{manifest['c_name']}.h").read_text()
    assert manifest["summary"]["executed_macs_per_step"] == manifest["summary"]["sparse_macs_per_step"]
    assert manifest["summary"]["sparse_macs_per_step"] < manifest["summary"]["dense_macs_per_step"]


def test_compile_cli_dense_flag_and_errors(write_checkpoint, tmp_path, capsys):
    checkpoint = write_checkpoint(WIRED)
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", str(checkpoint.path), "-o", str(tmp_path / "out"), "--dense", "--json"])
    assert exit_info.value.code == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary["executed_macs_per_step"] == summary["dense_macs_per_step"]
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", str(checkpoint.path), "-o", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1   # one line, no traceback



def test_force_keeps_files_liquid_edge_did_not_write(dense_model, tmp_path):
    out = tmp_path / "out"
    compile_model(dense_model, out, CompileOptions(name="first"))
    (out / "main.c").write_text("mine")
    (out / "verify").mkdir()
    (out / "verify" / "host.json").write_text("{}")       # a verification record: ours
    with pytest.raises(LiquidEdgeError, match="did not write: main.c"):
        compile_model(dense_model, out, CompileOptions(name="second", force=True))
    assert (out / "main.c").read_text() == "mine" and read_manifest(out)["c_name"] == "first"
    (out / "main.c").unlink()
    compile_model(dense_model, out, CompileOptions(name="second", force=True))
    assert read_manifest(out)["c_name"] == "second"


def test_output_folders_follow_the_umask(dense_model, tmp_path):
    previous = os.umask(0o027)
    try:
        compile_model(dense_model, tmp_path / "out", CompileOptions())
    finally:
        os.umask(previous)
    modes = {p.stat().st_mode & 0o777 for p in [tmp_path / "out", *(tmp_path / "out").rglob("*")] if p.is_dir()}
    assert modes == {0o750}


def test_a_symlinked_output_stays_a_link(dense_model, tmp_path):
    (tmp_path / "real").mkdir()
    link = tmp_path / "link"
    link.symlink_to("real")
    compile_model(dense_model, link, CompileOptions(name="first"))
    compile_model(dense_model, link, CompileOptions(name="second", force=True))
    assert link.is_symlink() and read_manifest(tmp_path / "real")["c_name"] == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


@pytest.mark.parametrize("location", ["/proc/no-such-output", "/dev/null/out"])
def test_unwritable_output_is_a_one_line_error(write_checkpoint, capsys, location):
    checkpoint = write_checkpoint(DENSE)
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", str(checkpoint.path), "-o", location])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.startswith("error: cannot write the output folder")
    assert err.count("\n") == 1


def test_compile_cli_without_output_writes_a_folder_named_after_the_build(write_checkpoint, tmp_path, capsys,
                                                                           monkeypatch):
    checkpoint = write_checkpoint(WIRED)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", str(checkpoint.path), "--json"])
    assert exit_info.value.code == 0
    manifest = json.loads(capsys.readouterr().out)
    assert (tmp_path / f"{checkpoint.path.stem}-host" / "liquid_edge.json").is_file()
    assert manifest["target"] == "host"
