"""``liquid-edge report``: verification records, quantization error per tensor, HTML opened in a real browser,
the Markdown variant."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from generated_c import model_ir
from models import by_id
from liquid_edge import api
from liquid_edge.cli import main
from liquid_edge.compiler import CompileOptions, compile_model
from liquid_edge.data import load_sequences
from liquid_edge.reporting.records import read_verifications
from liquid_edge.parity import verify

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINT = ROOT / "examples" / "basic_motions" / "models" / "ncp.pt"
TEST_DATA = ROOT / "examples" / "data" / "basic_motions_test.npz"
TRAIN_DATA = ROOT / "examples" / "data" / "basic_motions_train.npz"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

needs_cross = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc missing")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm missing")


@pytest.fixture(scope="module", params=["float32", "int8"])
def verified_output(request, tmp_path_factory) -> Path:
    """The BasicMotions NCP compiled for Cortex-M4 (float32, or int8 calibrated on the train split), verified on
    the host and under QEMU on 3 test sequences."""
    out = tmp_path_factory.mktemp("report") / request.param
    quantize = {"quantize": "int8", "calibration": str(TRAIN_DATA)} if request.param == "int8" else {}
    compile_model(api.load(CHECKPOINT), out, CompileOptions(target="cortex-m4", **quantize))
    for backend in ("host", "qemu"):
        assert verify(out, on=backend, data=TEST_DATA, count=3)["passed"]
    return out


def expectation(out: Path) -> str:
    """What the backends of a build are compared with."""
    return "int8 integer emulator" if out.name == "int8" else "float64 reference"


def figure_count(out: Path) -> int:
    """Traces and error histogram per backend (two backends), and the quantization error chart of int8 builds."""
    return 4 + (out.name == "int8")


def run_cli(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return exit_info.value.code


@needs_cross
@needs_qemu
def test_verify_records_every_backend_with_its_arrays(verified_output):
    records = {r.stem: r for r in read_verifications(verified_output)}
    assert set(records) == {"host", "qemu_cortex-m4"}
    sequences = load_sequences(TEST_DATA).take(3)
    for record in records.values():
        assert record.result["passed"] and record.expected_label == expectation(verified_output)
        np.testing.assert_array_equal(record.inputs, sequences.x)
        assert record.outputs.shape == record.expected.shape == (3, 100, 4)
        assert np.max(np.abs(record.outputs - record.expected)) == pytest.approx(record.result["max_abs_error"])


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM after the load event, from headless Chromium (no network, no profile left behind)."""
    result = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@needs_cross
@needs_qemu
@pytest.mark.skipif(chromium() is None, reason="chromium missing (scripts/setup.sh installs it)")
def test_html_report_renders_in_a_browser_with_decoded_figures(verified_output, tmp_path):
    page = tmp_path / "report.html"
    assert run_cli("report", str(verified_output), "-o", str(page)) == 0
    html = page.read_text()
    assert "src=\"http" not in html and "src=\"file" not in html  # one self-contained file
    # The browser records each image's decoded width once the page has loaded.
    probe = ("<script>window.addEventListener('load', () => { for (const img of document.images) "
             "img.setAttribute('data-natural-width', img.naturalWidth); "
             "document.body.setAttribute('data-loaded', 'yes'); });</script>")
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", probe + "</body>"))
    dom = dump_dom(probed, tmp_path / "profile")
    assert 'data-loaded="yes"' in dom
    widths = [int(w) for w in re.findall(r'data-natural-width="(\d+)"', dom)]
    assert len(widths) == figure_count(verified_output) and all(w > 100 for w in widths)
    headings = ["Model", "Memory", "Cost per step", "Parity", "Accuracy", "Outputs on qemu:cortex-m4"]
    if verified_output.name == "int8":
        headings.append("Quantization error per tensor")
    for heading in headings:
        assert f"<h2>{heading}</h2>" in dom
    assert dom.count("<table>") == len(headings) - 1  # every section but the outputs has a table
    assert re.search(r"<td>qemu:cortex-m4</td>.*?<td class=\"pass\">pass</td>", dom, re.S)
    assert re.search(r"instructions per step</td><td class=\"num\">[\d,]+", dom)


@needs_cross
@needs_qemu
def test_markdown_report_links_its_figures(verified_output, tmp_path):
    page = tmp_path / "report.md"
    assert run_cli("report", str(verified_output), "-o", str(page)) == 0
    text = page.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == figure_count(verified_output)
    for link in links:
        assert (tmp_path / link).read_bytes().startswith(PNG_MAGIC)
    assert f"| qemu:cortex-m4 | {expectation(verified_output)} | 3 x 100 |" in text
    # The test data has a class per sequence: the page gives the accuracy of the firmware's own outputs.
    assert re.search(rf"\| qemu:cortex-m4 \| \d+\.\d% \(\d/3\) \| {expectation(verified_output)} \|", text)
    if verified_output.name == "int8":
        # 3 sequences x 100 steps x 4 motor neurons, the outputs of an NCP without projection.
        assert "| motor.gate | 1,200 |" in text and "| output | 1,200 |" in text


def test_host_output_reports_without_firmware_figures(tmp_path):
    out = tmp_path / "host"
    compile_model(api.load(CHECKPOINT), out, CompileOptions(target="host"))
    assert verify(out, on="host", data=TEST_DATA, count=2)["passed"]
    page = tmp_path / "host.md"
    assert run_cli("report", str(out), "-o", str(page)) == 0
    text = page.read_text()
    assert "No firmware image: target host builds no firmware image." in text
    assert "Not measured: no firmware image." in text
    assert "| host | float64 reference | 2 x 100 |" in text
    assert "Quantization error per tensor" not in text  # a float build


def test_report_of_a_folder_that_is_no_output_is_one_line_error(tmp_path, capsys):
    assert run_cli("report", str(tmp_path), "-o", str(tmp_path / "r.html")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_a_page_that_cannot_be_written_is_one_line_error_and_replaces_nothing(tmp_path, capsys):
    import os

    out = tmp_path / "host"
    compile_model(api.load(CHECKPOINT), out, CompileOptions(target="host"))
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "afile").write_text("mine")
    for page, problem in ((out, "exists and is not a regular file"),
                          (tmp_path / "fifo", "exists and is not a regular file"),
                          (tmp_path / "afile" / "r.html", "cannot write the report page")):
        assert run_cli("report", str(out), "-o", str(page)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ") and problem in err and "Traceback" not in err
    assert (tmp_path / "fifo").is_fifo() and (tmp_path / "afile").read_text() == "mine"
    assert not list(tmp_path.rglob(".*.partial"))
    # A symlink to a page is followed: the page is replaced, the link stays a link.
    (tmp_path / "page.html").write_text("old")
    (tmp_path / "link.html").symlink_to("page.html")
    assert run_cli("report", str(out), "-o", str(tmp_path / "link.html")) == 0
    assert (tmp_path / "link.html").is_symlink() and (tmp_path / "page.html").read_text().startswith("<!DOCTYPE")


def test_quantization_error_per_tensor_covers_every_intermediate(tmp_path):
    from liquid_edge import reference
    from liquid_edge.quant import qmodel
    from liquid_edge.quant.emulator import Emulator
    from liquid_edge.quant.quantize import quantize
    from liquid_edge.reporting.quant_error import tensor_errors

    model = api.load(CHECKPOINT)
    quantized = quantize(model, load_sequences(TRAIN_DATA))
    qmodel.save(quantized, tmp_path)
    test = load_sequences(TEST_DATA).take(4, 50)
    dt = np.ones(test.x.shape[:2])
    rows = {r.name: r for r in tensor_errors(tmp_path, model, test.x, dt)}
    per_layer = ["ff1", "ff2", "time_a", "time_b", "tanh(ff1)", "tanh(ff2)", "gate_in", "gate", "state"]
    assert list(rows) == ["input", *(f"{layer}.{name}" for layer in ("inter", "command", "motor")
                                     for name in per_layer), "output"]
    # The output row is the error of the quantized float API (the emulator's run) against the reference.
    error = Emulator(quantized).run(test.x, dt) - reference.run(model, test.x, dt)[0]
    assert rows["output"].max_abs == pytest.approx(np.max(np.abs(error)))
    assert rows["output"].rmse == pytest.approx(np.sqrt(np.mean(error ** 2)))
    # An NCP without projection outputs its motor neurons: the two rows measure the same values.
    assert rows["motor.state"].rmse == pytest.approx(rows["output"].rmse)
    assert rows["inter.state"].count == rows["inter.gate"].count == 4 * 50 * 10
    # The input row is the input quantization alone: at most half a step of the per-channel input scale.
    assert rows["input"].max_abs <= 0.5 * np.max(quantized.input_scale) + 1e-12
    for row in rows.values():
        assert 0 < row.rmse <= row.max_abs and row.low < row.high
        assert row.relative == pytest.approx(row.rmse / (row.high - row.low))


@pytest.mark.parametrize("config_id", ["default-silu", "no_gate-mixed-proj", "pure-mixed-proj"])
def test_emulator_and_reference_record_the_same_tensors(config_id):
    """Every tensor the float reference records has its integer twin, of the same shape, for each cell kind (but
    the input of a relu, which the integer path never forms)."""
    from liquid_edge import reference
    from liquid_edge.data import random_sequences
    from liquid_edge.quant.emulator import Emulator
    from liquid_edge.quant.quantize import quantize

    model = model_ir(by_id(config_id))
    data = random_sequences(model.input_size, 3, 20)
    emulator = Emulator(quantize(model, data))
    exact, integer = {}, {}
    reference.run(model, data.x, data.dt, record=lambda name, values, scale=1.0: exact.setdefault(name, values.shape))
    emulator.run_q(emulator.quantize_inputs(data.x), emulator.quantize_dt(data.dt),
                   record=lambda name, values, scale: integer.setdefault(name, values.shape))
    relu_inputs = {name for name in exact if name.endswith(".pre")} if model.cells[0].activation == "relu" else set()
    assert integer == {name: shape for name, shape in exact.items() if name not in relu_inputs}
    assert any(name.startswith("memory.") for name in exact) == (model.memory is not None)


def test_figures_are_png(tmp_path):
    from liquid_edge.reporting import plots

    rng = np.random.default_rng(0)
    expected = rng.standard_normal((20, 3))
    for png in (plots.traces(expected, expected + 1e-6, "reference", "target", expected),
                plots.error_histogram(rng.standard_normal((2, 20, 3)) * 1e-6, "target"),
                plots.tensor_errors(["a", "b"], [1e-3, 2e-3], [1e-2, 3e-2])):
        assert png.startswith(PNG_MAGIC)
        assert base64.b64encode(png)  # embeddable
