"""``liquid-edge bench OUT``: executed instructions per step on the target core, MACs, flash and RAM."""

from __future__ import annotations

from pathlib import Path

import click

from liquid_edge import api
from liquid_edge.benchmark import DEFAULT_STEPS
from liquid_edge.output import format_table, print_json


@click.command("bench")
@click.argument("out_dir", metavar="OUT", type=click.Path(path_type=Path))
@click.option("--steps", type=click.IntRange(min=1), default=DEFAULT_STEPS, show_default=True,
              help="Steps of the fixed, seeded input sequence to average over.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def command(out_dir: Path, steps: int, as_json: bool) -> None:
    """Count the instructions one step executes on OUT's Cortex-M core (the same number every run)."""
    report = api.bench(out_dir, steps=steps)
    if as_json:
        print_json(report)
    else:
        click.echo(format_report(report))


def format_report(report: dict) -> str:
    macs = report["macs_per_step"]
    if report["instructions_per_step"] is None:
        instructions = [("instructions/step", f"unavailable: {report['counting_unavailable']}")]
    else:
        instructions = [
            ("instructions/step", f"{report['instructions_per_step']:,} (mean of {report['steps_measured']} steps; "
                                  f"min {report['instructions_per_step_min']:,}, "
                                  f"max {report['instructions_per_step_max']:,})"),
            ("instructions/MAC", report["instructions_per_mac"]),
            ("stack per step", "not measured by this method" if report["stack_bytes_per_step"] is None
             else f"{report['stack_bytes_per_step']:,} bytes (peak)"),
            ("counted by", report["method"]),
        ]
    rows = [
        ("target", f"{report['target']} ({report['board']})"),
        *instructions,
        ("MACs/step", f"{macs['executed']:,} executed ({macs['dense']:,} dense, {macs['sparse']:,} sparse)"),
        ("model flash", f"{report['model_flash_bytes']:,} bytes (weights and code)"),
        ("model RAM", f"{report['model_ram_bytes']:,} bytes (state and static data)"),
        ("firmware", f"{report['flash_bytes']:,} bytes flash, {report['ram_bytes']:,} bytes RAM"),
    ]
    note = "Executed instructions, not cycles." if report["instructions_per_step"] is not None else ""
    return format_table(("figure", "value"), rows) + (f"\n{note}" if note else "")
