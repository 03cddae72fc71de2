"""``liquid-edge demo``: the whole toolchain on real data, offline, from the committed example checkpoints.

For each example model (an NCP-wired and a dense CfC per dataset, trained by ``examples/<dataset>/train.py``):

1. load the checkpoint and run the float64 reference over the test split;
2. compile it for a Cortex-M4 twice, float32 and int8 (ranges calibrated on the train split);
3. run each firmware image under QEMU over the test split (``verify``: float32 within verify's default
   tolerance, derived from the model's float32 noise floor on the data; int8 bit-exact with the integer
   emulator) and compute the accuracy from the outputs the firmware produced;
4. count the instructions of one step (``bench``) and read flash and RAM from the image.

The class of a sequence is the arg-max of the model's outputs at its last step, as in training.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liquid_edge import api, reference
from liquid_edge.assets import asset_dir
from liquid_edge.compiler import CompileOptions, compile_model
from liquid_edge.data import load_sequences
from liquid_edge.errors import LiquidEdgeError
from liquid_edge.output import format_table, progress
from liquid_edge.reporting.collect import collect, measure_cost
from liquid_edge.reporting.records import read_verifications
from liquid_edge.reporting.render import write
from liquid_edge.parity import verify

TARGET = "cortex-m4"
QUICK_SEQUENCES = 8
RESULTS_FILE = "demo.json"
#: Written first into an output folder, so a folder left by an interrupted run is still recognised as the demo's.
MARKER_FILE = ".liquid-edge-demo"


class DemoError(LiquidEdgeError):
    """The demo cannot find its examples or write its output folder."""


@dataclass(frozen=True)
class Example:
    dataset: str                # folder under examples/ and stem of the data fixtures
    title: str
    models: tuple[str, ...] = ("ncp", "dense")

    def checkpoint(self, model: str) -> Path:
        return asset_dir("examples") / self.dataset / "models" / f"{model}.pt"

    def data(self, split: str) -> Path:
        return asset_dir("examples") / "data" / f"{self.dataset}_{split}.npz"

    def recorded_metrics(self, model: str) -> dict:
        """Figures written by the training script (PyTorch float32 accuracy on the whole test split)."""
        return json.loads((asset_dir("examples") / self.dataset / "models" / "metrics.json").read_text())[model]


EXAMPLES = (
    Example("basic_motions", "BasicMotions"),
    Example("italy_power_demand", "ItalyPowerDemand"),
    # 12 readings a day at random hours, with the elapsed hours as dt: the elapsed-time input on the target.
    Example("italy_power_demand_irregular", "ItalyPowerDemand, irregular", models=("ncp",)),
)

#: The builds of every model; the int8 one calibrates its ranges on the example's train split.
BUILDS = ("float32", "int8")


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Share of sequences whose last-step outputs have their maximum at the label."""
    return float(np.mean(outputs[:, -1].argmax(axis=1) == labels))


def run(output: Path | None = None, quick: bool = False) -> dict:
    """Run the demo; keep compiled outputs, verification records and reports in ``output`` when given."""
    _check_examples()
    if output is None:
        with tempfile.TemporaryDirectory(prefix="liquid-edge-demo.") as scratch:
            return _run(Path(scratch), quick, keep=False)
    output = Path(output)
    _check_output(output)
    results = _run(output, quick, keep=True)
    partial = output / f".{RESULTS_FILE}.partial"
    partial.write_text(json.dumps(results, indent=2) + "\n")
    partial.replace(output / RESULTS_FILE)
    return results


def _check_examples() -> None:
    missing = [e.checkpoint(m) for e in EXAMPLES for m in e.models if not e.checkpoint(m).is_file()]
    missing += [e.data(s) for e in EXAMPLES for s in ("train", "test") if not e.data(s).is_file()]
    if missing:
        raise DemoError(f"{len(missing)} of the demo's example files are missing from {asset_dir('examples')}, "
                        f"e.g. {missing[0].relative_to(asset_dir('examples'))}",
                        "reinstall liquid-edge (pip install --force-reinstall liquid-edge), or restore examples/ "
                        "in a source checkout (git checkout -- examples)")


def _check_output(output: Path) -> None:
    """A new or empty folder, or a previous demo output (recognised by its marker file), which is replaced."""
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not (output / MARKER_FILE).is_file())):
        raise DemoError(f"{output} exists and is not a previous demo output",
                        "pass a new or empty folder with -o")
    try:
        output.mkdir(parents=True, exist_ok=True)
        (output / MARKER_FILE).touch()
    except OSError as exc:
        raise DemoError(f"cannot write the demo's output folder {output}: {exc.strerror}",
                        "pass a writable folder with -o") from None
    for example in EXAMPLES:
        shutil.rmtree(output / example.dataset, ignore_errors=True)


def _run(output: Path, quick: bool, keep: bool) -> dict:
    total = sum(len(e.models) for e in EXAMPLES) * len(BUILDS)
    done = 0
    results = []
    for example in EXAMPLES:
        test_path = _test_data(example, output, quick)
        test = load_sequences(test_path)
        count, labels = test.count, test.y
        for model_key in example.models:
            model = api.load(example.checkpoint(model_key))
            metrics = example.recorded_metrics(model_key)
            reference_outputs, _ = reference.run(model, test.x, test.dt)
            entry = {"dataset": example.title, "example": example.dataset, "checkpoint": model_key,
                     "model": model.name, "parameters": api.inspect(model)["parameters"]["stored"],
                     "test_sequences": count, "steps": test.steps,
                     "accuracy": {"pytorch_float32": None if quick else metrics["test_accuracy"],
                                  "reference_float64": accuracy(reference_outputs, labels)},
                     "builds": {}}
            for build in BUILDS:
                done += 1
                progress(f"demo: [{done}/{total}] {model.name} {build}: compile for {TARGET}, run {count} test "
                         f"sequences under QEMU, count instructions")
                out = output / example.dataset / model_key / build
                entry["builds"][build] = _build(model, example, build, out, test_path, labels, keep)
            entry["accuracy"]["float32_qemu"] = entry["builds"]["float32"]["qemu_accuracy"]
            entry["accuracy"]["int8_emulator"] = entry["builds"]["int8"]["expected_accuracy"]
            entry["accuracy"]["int8_qemu"] = entry["builds"]["int8"]["qemu_accuracy"]
            results.append(entry)
    passed = all(b["parity"]["passed"] for entry in results for b in entry["builds"].values())
    return {"target": TARGET, "quick": quick, "passed": passed, "output": str(output) if keep else None,
            "results": results}


def _test_data(example: Example, output: Path, quick: bool) -> Path:
    """The whole test split; for a quick run, a few sequences of every class taken in turn (the archives order
    their sequences by class, so the first few would all be of one), written next to the builds."""
    path = example.data("test")
    if not quick:
        return path
    test = load_sequences(path)
    by_class = [np.flatnonzero(test.y == label) for label in np.unique(test.y)]
    in_turn = [i for group in itertools.zip_longest(*by_class) for i in group if i is not None]
    picked = np.sort(in_turn[:QUICK_SEQUENCES])
    subset = output / example.dataset / "quick_test.npz"
    subset.parent.mkdir(parents=True, exist_ok=True)
    np.savez(subset, x=test.x[picked], y=test.y[picked], **({} if test.dt is None else {"dt": test.dt[picked]}))
    return subset


def _build(model, example: Example, build: str, out: Path, test_path: Path, labels: np.ndarray, keep: bool) -> dict:
    options = CompileOptions(target=TARGET, force=True)
    if build == "int8":
        options = CompileOptions(target=TARGET, force=True, quantize="int8", calibration=str(example.data("train")))
    manifest = compile_model(model, out, options)
    parity = verify(out, on="qemu", data=test_path)
    record = next(r for r in read_verifications(out) if r.result["backend"] == parity["results"][0]["backend"])
    cost = measure_cost(out, manifest)
    memory = manifest["firmware"]["memory"]
    if keep:
        write(collect(out), out / "report.html", "html")
    result = parity["results"][0]
    return {
        "qemu_accuracy": accuracy(record.outputs, labels),        # from the firmware's own outputs
        "expected_accuracy": accuracy(record.expected, labels),   # float64 reference, or the integer emulator
        "parity": {"passed": result["passed"], "bit_exact": result["bit_exact"], "tolerance": result["tolerance"],
                   "max_abs_error": result["max_abs_error"], "compared_with": parity["expected"]},
        "flash_bytes": memory["total"]["flash_bytes"], "ram_bytes": memory["total"]["ram_bytes"],
        "model_flash_bytes": memory["model_weights"]["flash_bytes"] + memory["model_code"]["flash_bytes"],
        "model_ram_bytes": memory["model_ram"]["ram_bytes"],
        "instructions_per_step": cost.get("instructions_per_step"),
        "instructions_not_counted": cost.get("counting_unavailable"),
        "macs_per_step": manifest["summary"]["executed_macs_per_step"],
    }


def format_results(results: dict) -> str:
    def percent(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    accuracy_rows = []
    cost_rows = []
    for entry in results["results"]:
        a = entry["accuracy"]
        accuracy_rows.append((entry["dataset"], entry["model"], entry["parameters"], entry["test_sequences"],
                              percent(a["pytorch_float32"]), percent(a["reference_float64"]),
                              percent(a["float32_qemu"]), percent(a["int8_emulator"]), percent(a["int8_qemu"])))
        for build, b in entry["builds"].items():
            p = b["parity"]
            parity = "bit-exact" if p["bit_exact"] else f"{p['max_abs_error']:.1e} <= {p['tolerance']:.1e}"
            parity = parity if p["passed"] else "FAILED"
            cost_rows.append((entry["model"], build, b["model_flash_bytes"], b["flash_bytes"], b["model_ram_bytes"],
                              b["ram_bytes"], "-" if b["instructions_per_step"] is None
                              else round(b["instructions_per_step"]), b["macs_per_step"], parity))
    lines = [f"Accuracy on the test split (class = arg-max of the outputs at the last step), {results['target']}"
             + (f" -- quick run: {QUICK_SEQUENCES} test sequences per dataset, every class" if results["quick"] else ""),
             format_table(("dataset", "model", "params", "sequences", "PyTorch", "float64 ref", "float32 QEMU",
                           "int8 emulator", "int8 QEMU"), accuracy_rows),
             "",
             f"Memory and cost on {results['target']} (bytes; instructions executed by one step)",
             format_table(("model", "build", "model flash", "image flash", "model RAM", "image RAM",
                           "instr/step", "MACs/step", "QEMU parity"), cost_rows)]
    builds = [b for e in results["results"] for b in e["builds"].values()]
    passed = sum(b["parity"]["passed"] for b in builds)
    lines.append(f"parity under QEMU: {passed} of {len(builds)} builds passed (float32 within the bound, "
                 "int8 bit-exact with the integer emulator)")
    skipped = {b["instructions_not_counted"] for b in builds if b["instructions_not_counted"]}
    lines += [f"instructions not counted: {reason}" for reason in sorted(skipped)]
    if results["output"]:
        lines.append(f"\nOutputs, verification arrays and one report.html per build in {results['output']}")
    return "\n".join(lines)
