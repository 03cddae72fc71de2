#!/usr/bin/env python3
"""Write benchmarks/accuracy/RESULTS.md and the accuracy table of every examples/*/README.md from a full demo run
(the figures are never copied by hand).

    python benchmarks/accuracy/make_results.py                 # runs `liquid-edge demo` (about a minute)
    python benchmarks/accuracy/make_results.py DIR/demo.json   # from the results of `liquid-edge demo -o DIR`
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
STATIC_NOTES = """\
Reference points, not deployed: per-channel statistics (mean, std, min, max) with logistic regression or
nearest centroid (`statistics_baseline.py`): BasicMotions 100.0% / 95.0%, ItalyPowerDemand 56.9% / 56.3%;
logistic regression on the whole raw sequence at once: BasicMotions 72.5%, ItalyPowerDemand 96.3%. The
irregular-task NCP trained and run without `dt` (`examples/italy_power_demand_irregular/models/metrics.json`):
70.7%.
"""


def percent(value: float | None, count: int | None = None) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" + (f" ({round(value * count)})" if count else "")


def tool_version(command: list[str], pattern: str) -> str:
    try:
        text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "?"
    match = re.search(pattern, text)
    return match.group(1) if match else "?"


def render(results: dict) -> str:
    gcc = tool_version(["arm-none-eabi-gcc", "--version"], r"(\d+\.\d+\.\d+)")
    qemu = tool_version(["qemu-system-arm", "--version"], r"version (\d+\.\d+)")
    versions = (f"liquid-edge {importlib.metadata.version('liquid-edge')}, torch {importlib.metadata.version('torch')}, "
                f"arm-none-eabi-gcc {gcc}, QEMU {qemu}, Python {platform.python_version()}")
    lines = [
        "# Accuracy on real data: PyTorch, float C and int8 C on a Cortex-M4 (QEMU)",
        "",
        f"Written by `benchmarks/accuracy/make_results.py` from `liquid-edge demo` ({versions}). Accuracy is the "
        "share of test sequences whose outputs at the last step have their maximum at the label; the QEMU columns "
        "are computed from the outputs the firmware printed, over the whole test split of the archive (number of "
        "correct sequences in brackets).",
        "",
        "| dataset | model | parameters | test sequences | PyTorch float32 | float64 reference | float32 C on QEMU "
        "| int8 emulator | int8 C on QEMU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in results["results"]:
        a, n = e["accuracy"], e["test_sequences"]
        lines.append(f"| {e['dataset']} | {e['model']} | {e['parameters']:,} | {n:,} | {percent(a['pytorch_float32'], n)} "
                     f"| {percent(a['reference_float64'])} | {percent(a['float32_qemu'], n)} "
                     f"| {percent(a['int8_emulator'], n)} | {percent(a['int8_qemu'], n)} |")
    lines += ["", STATIC_NOTES, "## Parity and cost of the same builds", "",
              "| model | build | QEMU parity | model flash | image flash | model RAM | image RAM | instructions / step "
              "| MACs / step |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for e in results["results"]:
        for build, b in e["builds"].items():
            p = b["parity"]
            parity = "bit-exact" if p["bit_exact"] else f"max abs error {p['max_abs_error']:.1e} (bound {p['tolerance']:.1e})"
            instructions = "-" if b["instructions_per_step"] is None else f"{round(b['instructions_per_step']):,}"
            lines.append(f"| {e['model']} | {build} | {parity if p['passed'] else 'FAILED: ' + parity} "
                         f"| {b['model_flash_bytes']:,} | {b['flash_bytes']:,} | {b['model_ram_bytes']:,} "
                         f"| {b['ram_bytes']:,} | {instructions} | {b['macs_per_step']:,} |")
    lines += ["", "Bytes; image RAM includes the reserved stack. Instructions are executed instructions per step "
              "counted by `bench` (unicorn emulator, not cycles). The float bound is verify's default: 4 x the "
              "float32 noise floor of the model on the test split, at least 1e-5 (docs/numerics-float.md); int8 "
              "builds must match the integer emulator bit for bit, so their accuracy on QEMU is the emulator's.", ""]
    return "\n".join(lines)


#: The examples' READMEs carry the demo's accuracy table between these lines.
TABLE_START, TABLE_END = "<!-- accuracy table: benchmarks/accuracy/make_results.py -->", "<!-- end of table -->"
MODEL_TITLES = {"ncp": "NCP", "dense": "dense CfC"}


def example_table(entries: list[dict]) -> str:
    lines = [TABLE_START,
             "| model | PyTorch float32 | float64 reference | float32 C on QEMU | int8 emulator | int8 C on QEMU |",
             "|---|---:|---:|---:|---:|---:|"]
    for e in entries:
        a, n = e["accuracy"], e["test_sequences"]
        lines.append(f"| {MODEL_TITLES.get(e['checkpoint'], e['checkpoint'])} | {percent(a['pytorch_float32'], n)} "
                     f"| {percent(a['reference_float64'])} | {percent(a['float32_qemu'], n)} "
                     f"| {percent(a['int8_emulator'], n)} | {percent(a['int8_qemu'], n)} |")
    return "\n".join([*lines, TABLE_END])


def update_example_readmes(results: dict) -> None:
    by_example: dict[str, list[dict]] = {}
    for entry in results["results"]:
        by_example.setdefault(entry["example"], []).append(entry)
    for example, entries in by_example.items():
        readme = ROOT / "examples" / example / "README.md"
        text = readme.read_text()
        start, end = text.find(TABLE_START), text.find(TABLE_END)
        if start < 0 or end < start:
            sys.exit(f"error: {readme} has no accuracy table between '{TABLE_START}' and '{TABLE_END}'")
        readme.write_text(text[:start] + example_table(entries) + text[end + len(TABLE_END):])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="?", type=Path, help="demo.json of a full `liquid-edge demo -o DIR` run")
    args = parser.parse_args()
    if args.results is None:
        from liquid_edge.demo_run import run

        results = run()
    else:
        results = json.loads(args.results.read_text())
    if results["quick"]:
        sys.exit("error: these are the results of a --quick run; RESULTS.md records the whole test splits")
    (HERE / "RESULTS.md").write_text(render(results))
    update_example_readmes(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
