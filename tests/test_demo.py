"""``liquid-edge demo --quick``: the main job end to end on a few test sequences of each dataset."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from liquid_edge.cli import main
from liquid_edge.demo_run import BUILDS, EXAMPLES, MARKER_FILE, QUICK_SEQUENCES, RESULTS_FILE, format_results
from liquid_edge.reporting.records import read_verifications

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None,
                                reason="needs arm-none-eabi-gcc and qemu-system-arm")


def run_cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    output = tmp_path_factory.mktemp("demo") / "out"
    return run_cli("demo", "--quick", "-o", str(output)), output


def test_quick_demo_passes_and_keeps_everything(quick_demo):
    code, output = quick_demo
    assert code == 0
    results = json.loads((output / RESULTS_FILE).read_text())
    assert results["passed"] and results["quick"] and (output / MARKER_FILE).is_file()
    models = [entry["model"] for entry in results["results"]]
    assert models == ["motions_ncp", "motions_dense", "power_ncp", "power_dense", "hours_ncp"]
    for example in EXAMPLES:
        for model in example.models:
            for build in BUILDS:
                folder = output / example.dataset / model / build
                assert (folder / "report.html").read_text().startswith("<!DOCTYPE html>")
                assert (folder / "firmware" / "build" / "app.elf").is_file()


def test_quick_demo_accuracy_comes_from_the_firmware_outputs(quick_demo):
    _, output = quick_demo
    results = json.loads((output / RESULTS_FILE).read_text())
    for entry, (example, model) in zip(results["results"], [(e, m) for e in EXAMPLES for m in e.models]):
        labels = np.load(output / example.dataset / "quick_test.npz")["y"]
        assert len(labels) == QUICK_SEQUENCES and len(set(labels)) == len(set(np.load(example.data("test"))["y"]))
        for build, key in (("float32", "float32_qemu"), ("int8", "int8_qemu")):
            record, = read_verifications(output / example.dataset / model / build)
            assert record.result["backend"] == "qemu:cortex-m4" and record.outputs.shape[0] == QUICK_SEQUENCES
            assert entry["accuracy"][key] == np.mean(record.outputs[:, -1].argmax(axis=1) == labels)
        # int8 on the target is bit-exact with the emulator, so their accuracies are the same number.
        assert entry["accuracy"]["int8_qemu"] == entry["accuracy"]["int8_emulator"]
        assert entry["builds"]["int8"]["parity"]["bit_exact"]
        assert entry["accuracy"]["pytorch_float32"] is None  # recorded on the whole split only
        for build in entry["builds"].values():
            assert build["flash_bytes"] > build["model_flash_bytes"] > 0
            assert build["ram_bytes"] > build["model_ram_bytes"] > 0
        assert entry["builds"]["float32"]["instructions_per_step"] > entry["builds"]["float32"]["macs_per_step"]


def test_demo_text_has_the_accuracy_and_cost_tables(quick_demo):
    _, output = quick_demo
    text = format_results(json.loads((output / RESULTS_FILE).read_text()))
    assert "Accuracy on the test split" in text and "quick run" in text
    assert "Memory and cost on cortex-m4" in text
    assert text.count("bit-exact") == 6 and "FAILED" not in text
    assert "parity under QEMU: 10 of 10 builds passed" in text
    assert f"Outputs, verification arrays and one report.html per build in {output}" in text


def test_demo_refuses_a_folder_it_did_not_write(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    assert run_cli("demo", "--quick", "-o", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("where", ["under_a_file", "unwritable"])
def test_demo_names_an_output_folder_it_cannot_write(tmp_path, capsys, where):
    (tmp_path / "afile").write_text("")
    output = tmp_path / "afile" / "sub" if where == "under_a_file" else "/proc/liquid-edge-demo"
    assert run_cli("demo", "--quick", "-o", str(output)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write the demo's output folder {output}") and err.count("\n") == 1
