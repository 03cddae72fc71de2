"""Everything the report shows about one compiled output folder, as titled tables and figures.

Sources: the manifest (model summary, target, memory of the firmware image), the IR copy in ``OUT/model``, the
verification records in ``OUT/verify`` (one per backend that ran), ``liquid_edge.benchmark`` for the instruction count
of a step (measured when the report is made: same image, same inputs, same count), and for quantized builds the
integer emulator run next to the float reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


import numpy as np

from liquid_edge import ir_io, reference
from liquid_edge.compiler import MODEL_DIR, read_manifest
from liquid_edge.elf_size import memory_table
from liquid_edge.errors import LiquidEdgeError
from liquid_edge.firmware import STATE_SYMBOL
from liquid_edge.ir import Model
from liquid_edge.output import progress
from liquid_edge.reporting import plots
from liquid_edge.reporting.records import Verification, read_verifications

#: Sequences of the verification data used to measure the quantization error per tensor.
QUANT_ERROR_SEQUENCES = 16


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: list[tuple]


@dataclass(frozen=True)
class Figure:
    stem: str                   # file name in the Markdown variant
    caption: str
    png: bytes


@dataclass
class Section:
    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    sections: list[Section]
    data: dict                  # the same content for --json


def collect(out_dir: Path) -> Report:
    out_dir = Path(out_dir)
    manifest = read_manifest(out_dir)
    model = ir_io.load(out_dir / MODEL_DIR)
    verifications = read_verifications(out_dir)
    cost = measure_cost(out_dir, manifest)
    sections = [_model_section(manifest, model), _memory_section(out_dir, manifest), _cost_section(cost),
                _parity_section(verifications)]
    labelled = _accuracy_section(verifications)
    if labelled is not None:
        sections.append(labelled)
    sections += [_backend_section(model, manifest, v) for v in verifications]
    quant = _quantization_section(out_dir, manifest, model, verifications)
    if quant is not None:
        sections.append(quant)
    build = manifest["quantization"]["scheme"] if manifest.get("quantization") else "float32"
    target = manifest["target"] + (f" ({manifest['board']})" if manifest.get("board") else "")
    data = {"model_name": manifest["model_name"], "c_name": manifest["c_name"], "target": manifest["target"],
            "board": manifest.get("board"), "build": build, "summary": manifest["summary"],
            "memory": (manifest.get("firmware") or {}).get("memory"), "bench": cost,
            "parity": [dict(v.result, data=v.data, expected=v.expected_label) for v in verifications]}
    return Report(f"{manifest['model_name']} on {target}", f"{build} build, C name {manifest['c_name']}, "
                  f"liquid-edge {manifest['tool_version']}", sections, data)


def _model_section(manifest: dict, model: Model) -> Section:
    s = manifest["summary"]
    source = manifest.get("source") or {}
    if model.wiring is not None:
        layers = f"{model.wiring.kind} wiring: " + " -> ".join(
            f"{name} {cell.units}" for name, cell in zip(model.wiring.layer_names, model.cells))
    else:
        cell = model.cells[0]
        backbone = " x ".join(str(layer.out_features) for layer in cell.backbone)
        layers = f"{cell.units} units" + (f", backbone {backbone} ({cell.activation})" if backbone else "")
    rows = [
        ("source", f"{source.get('path', '?')} ({source.get('format', '?')}, sha256 {source.get('sha256', '?')[:12]})"),
        ("architecture", f"CfC, mode {model.mode}, {layers}"
         + (", mixed memory (LSTM)" if model.memory is not None else "")
         + (f", projection to {model.output_size}" if model.projection is not None else "")),
        ("inputs / outputs", f"{s['input_size']} / {s['output_size']}"),
        ("state", f"{s['state_size']} values ({s['state_bytes']:,} bytes)"),
        ("parameters", f"{s['parameters']:,}"),
        ("weights in the image", f"{s['weight_bytes']:,} bytes"),
        ("MACs per step", f"{s['executed_macs_per_step']:,} executed ({s['dense_macs_per_step']:,} dense)"),
    ]
    return Section("Model", tables=[Table(("property", "value"), rows)])


def _memory_section(out_dir: Path, manifest: dict) -> Section:
    firmware_info = manifest.get("firmware") or {}
    elf = out_dir / firmware_info["elf"] if firmware_info.get("elf") else None
    if elf is None or not elf.is_file():
        reason = firmware_info.get("not_built") or f"target {manifest['target']} builds no firmware image"
        return Section("Memory", notes=[f"No firmware image: {reason}."])
    rows = [(part.label, part.flash, part.ram) for part in memory_table(elf, STATE_SYMBOL)]
    return Section("Memory", notes=["Bytes of the application image, read from its ELF file (model parts are "
                                    "bracketed by linker symbols, not estimated)."],
                   tables=[Table(("part", "flash bytes", "RAM bytes"), rows)])


def measure_cost(out_dir: Path, manifest: dict) -> dict | None:
    """``bench`` of the firmware image (None without one); when counting fails, why, in ``counting_unavailable``."""
    if not (manifest.get("firmware") or {}).get("memory"):
        return None
    from liquid_edge.benchmark import bench

    progress("report: counting the instructions of a step")
    try:
        return bench(out_dir, manifest)
    except LiquidEdgeError as error:
        return {"counting_unavailable": error.one_line()}


def _cost_section(cost: dict | None) -> Section:
    if cost is None:
        return Section("Cost per step", notes=["Not measured: no firmware image."])
    if cost.get("instructions_per_step") is None:
        return Section("Cost per step", notes=[f"Not measured: {cost['counting_unavailable']}."])
    rows = [
        ("instructions per step", round(cost["instructions_per_step"])),
        ("range over the measured steps", f"{cost['instructions_per_step_min']:,} - "
                                          f"{cost['instructions_per_step_max']:,}"),
        ("MACs per step (executed)", cost["macs_per_step"]["executed"]),
        ("instructions per MAC", cost["instructions_per_mac"]),
        ("peak stack of a step", f"{cost['stack_bytes_per_step']:,} bytes"),
    ]
    return Section("Cost per step", notes=[f"{cost['method'].capitalize()}, {cost['steps_measured']} steps on {cost['target']}."],
                   tables=[Table(("figure", "value"), rows)])


def _parity_section(verifications: list[Verification]) -> Section:
    if not verifications:
        return Section("Parity", notes=["No verification recorded: run 'liquid-edge verify OUT --on all' first."])
    rows = []
    for v in verifications:
        r = v.result
        rows.append((r["backend"], v.expected_label, f"{r['sequences']} x {r['steps']}", _error(r["max_abs_error"]),
                     _error(r["rmse"]), "bit-exact" if r["bit_exact"] else f"<= {r['tolerance']:g}",
                     "pass" if r["passed"] else "FAIL"))
    data = sorted({v.data for v in verifications})
    return Section("Parity", notes=[f"Data: {', '.join(data)}."],
                   tables=[Table(("backend", "compared with", "sequences x steps", "max abs error", "RMSE",
                                  "required", "result"), rows)])


def _class_labels(v: Verification):
    """The class labels of the verified sequences, when their data file has one integer class per sequence and
    still holds the same inputs (else None: the report is not the place to guess)."""
    from liquid_edge.data import load_sequences

    try:
        sequences = load_sequences(v.data)
    except LiquidEdgeError:
        return None
    count, steps = v.inputs.shape[:2]
    y = sequences.y
    if (y is None or y.ndim != 1 or sequences.count < count or sequences.steps < steps
            or not np.issubdtype(y.dtype, np.integer)
            or not np.array_equal(sequences.x[:count, :steps], v.inputs)):
        return None
    return y[:count]


def _accuracy_section(verifications: list[Verification]) -> Section | None:
    rows = []
    for v in verifications:
        labels = _class_labels(v)
        if labels is not None:
            rows.append((v.result["backend"], _last_step_accuracy(v.outputs, labels), v.expected_label,
                         _last_step_accuracy(v.expected, labels), len(labels)))
    if not rows:
        return None
    return Section("Accuracy", notes=["The data file has a class per sequence: the class predicted is the arg-max of "
                                      "the outputs at the last step, as computed by the backend itself."],
                   tables=[Table(("backend", "accuracy", "compared with", "its accuracy", "sequences"), rows)])


def _last_step_accuracy(outputs, labels) -> str:
    correct = int(np.sum(outputs[:, -1].argmax(axis=1) == labels))
    return f"{100 * correct / len(labels):.1f}% ({correct}/{len(labels)})"


def _error(value: float | None):
    return "non-finite" if value is None else value


def _backend_section(model: Model, manifest: dict, v: Verification) -> Section:
    quantized = bool(manifest.get("quantization"))
    float_reference = None
    if quantized:
        float_reference, _ = reference.run(model, v.inputs[:1], v.dt[:1])
        float_reference = float_reference[0]
    trace = plots.traces(v.expected[0], v.outputs[0], v.expected_label, v.result["backend"], float_reference)
    histogram = plots.error_histogram(v.outputs - v.expected, v.result["backend"])
    return Section(f"Outputs on {v.result['backend']}", figures=[
        Figure(f"{v.stem}_traces", f"Each output of sequence 0 over time: {v.result['backend']} against the "
                                   f"{v.expected_label}.", trace),
        Figure(f"{v.stem}_errors", f"|{v.result['backend']} - {v.expected_label}| over all "
                                   f"{v.outputs.size:,} output values.", histogram),
    ])


def _quantization_section(out_dir: Path, manifest: dict, model: Model,
                          verifications: list[Verification]) -> Section | None:
    if not manifest.get("quantization"):
        return None
    from liquid_edge.reporting.quant_error import tensor_errors

    if verifications:
        x, dt = verifications[0].inputs[:QUANT_ERROR_SEQUENCES], verifications[0].dt[:QUANT_ERROR_SEQUENCES]
        origin = verifications[0].data
    else:
        from liquid_edge.data import random_sequences

        sequences = random_sequences(model.input_size, 4, 100)
        x, dt, origin = sequences.x, sequences.dt, sequences.origin
    rows = tensor_errors(out_dir / MODEL_DIR, model, x, dt)
    table = Table(("tensor", "values", "float range", "max abs error", "RMSE", "RMSE / range"),
                  [(r.name, r.count, f"{r.low:.3g} .. {r.high:.3g}", r.max_abs, r.rmse, r.relative) for r in rows])
    figure = Figure("quantization_errors", "Error of each tensor of the integer emulator against the float64 "
                                           "reference, every step.",
                    plots.tensor_errors([r.name for r in rows], [r.rmse for r in rows], [r.max_abs for r in rows]))
    return Section("Quantization error per tensor", tables=[table], figures=[figure], notes=[
        f"Integer emulator (bit-exact with the generated integer C) against the float64 reference on "
        f"{x.shape[0]} sequence(s) x {x.shape[1]} steps of {origin}, every intermediate of every step in the order a "
        f"step computes them (the state as stored); each side follows its own trajectory, so a tensor's error "
        f"includes what earlier steps left in the state."])
