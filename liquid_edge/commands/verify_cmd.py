"""``liquid-edge verify OUT --on host|qemu|all``: parity of the compiled code with the reference."""

from __future__ import annotations

from pathlib import Path

import click

from liquid_edge import api
from liquid_edge.errors import EXIT_OK, EXIT_PARITY_FAILED
from liquid_edge.output import format_table, print_json
from liquid_edge.runners import BACKENDS
from liquid_edge.parity import ALL_BACKENDS, MIN_FLOAT_TOLERANCE, NOISE_FLOOR_FACTOR, USER_BASIS


@click.command("verify")
@click.argument("out_dir", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--on", "on", default="host", show_default=True, metavar="BACKEND",
              help=f"Where to run the compiled code: a backend ({', '.join(BACKENDS)}) or '{ALL_BACKENDS}' (every "
                   "backend the target supports).")
@click.option("--data", type=click.Path(path_type=Path),
              help="Sequences (.npz/.npy/.csv); default: random inputs with irregular dt.")
@click.option("--steps", type=click.IntRange(min=1), help="Steps per sequence (default 200, or all of --data).")
@click.option("--sequences", "count", type=click.IntRange(min=1),
              help="Number of sequences (default 4, or all of --data).")
@click.option("--tolerance", type=float,
              help=f"Max abs error allowed for float builds (default: {NOISE_FLOOR_FACTOR} x the float32 noise floor "
                   "of the model on the data, i.e. the largest difference between a float32 and the float64 "
                   f"evaluation of the reference, and at least {MIN_FLOAT_TOLERANCE:g}).")
@click.option("--save", type=click.Path(path_type=Path), help="Write inputs, dt, reference and backend outputs "
                                                                "as .npy files into this folder (never over files "
                                                                "that an earlier --save did not write).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def command(out_dir: Path, on: str, data: Path | None, steps: int | None, count: int | None,
            tolerance: float | None, save: Path | None, as_json: bool) -> int:
    """Run the same sequences through the reference and the compiled code of OUT; exit 1 on a parity failure."""
    report = api.verify(out_dir, on=on, data=data, sequences=count, steps=steps, tolerance=tolerance, save=save)
    if as_json:
        print_json(report)
    else:
        click.echo(format_report(report))
    return EXIT_OK if report["passed"] else EXIT_PARITY_FAILED


def format_report(report: dict) -> str:
    rows = [(r["backend"], r["sequences"], r["steps"], _error(r["max_abs_error"]), _error(r["rmse"]),
             "exact" if r["bit_exact"] else r["tolerance"], "pass" if r["passed"] else "FAIL")
            for r in report["results"]]
    lines = [f"{report['c_name']} vs {report['expected']} on {report['data']}",
             format_table(("backend", "sequences", "steps", "max abs error", "RMSE", "tolerance", "result"), rows)]
    floor = report["float32_noise_floor"]
    if floor is not None and any(r["tolerance_basis"] != USER_BASIS for r in report["results"]):
        lines.append(f"tolerance: max({MIN_FLOAT_TOLERANCE:g}, {NOISE_FLOOR_FACTOR} x the float32 noise floor "
                     f"{floor:.2g} of this model on this data)")
    if "quantization" in report:
        lines.append(format_quantization(report["quantization"]))
    for r in report["results"]:
        f = r["first_failure"]
        if f is not None:
            lines.append(f"{r['backend']}: first failure at sequence {f['sequence']}, step {f['step']}, output "
                         f"{f['output']}: expected {f['expected']:.7g}, got {f['actual']:.7g} "
                         f"({r['exceeded']:,} values outside the tolerance)")
    if any(_marginal_float_failure(r) for r in report["results"]):
        lines.append("note: float32 rounding alone reaches errors of this size on large inputs or sensitive "
                     "recurrences (docs/numerics-float.md); without --tolerance, verify derives one from the "
                     "model's float32 noise floor on the data")
    return "\n".join(lines)


def _marginal_float_failure(result: dict) -> bool:
    """A float build that fails a user's tolerance by less than 100x: more likely rounding than a fault. (The
    default tolerance already covers the rounding of this model on this data.)"""
    error = result["max_abs_error"]
    return (not result["passed"] and result["tolerance_basis"] == USER_BASIS and error is not None
            and 0 < result["tolerance"] and error < 100 * result["tolerance"])


def _error(value: float | None):
    return "non-finite" if value is None else value


def format_quantization(section: dict) -> str:
    """The quantized model against the float reference (reported apart from the bit-exact parity above)."""
    rows = [(o["output"], "exact" if o["sqnr_db"] is None else round(o["sqnr_db"], 1), o["max_abs_error"])
            for o in section["outputs"]]
    text = "quantized model vs " + section["against"] + "\n" + format_table(("output", "SQNR dB", "max abs error"),
                                                                          rows)
    accuracy = section.get("accuracy")
    if accuracy and accuracy["quantized"] is not None:
        text += f"\naccuracy: quantized {accuracy['quantized']:.2%}, float {accuracy['float']:.2%}"
    return text
