"""``liquid-edge demo``: compile, verify under QEMU and measure the committed example models on real data."""

from __future__ import annotations

from pathlib import Path

import click

from liquid_edge import api
from liquid_edge.errors import EXIT_OK, EXIT_PARITY_FAILED
from liquid_edge.output import print_json


@click.command("demo")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Keep the compiled outputs, verification records and a report.html per build here "
                   "(default: a temporary folder, removed at the end).")
@click.option("--quick", is_flag=True, help="A smoke run: a few test sequences of every class of each dataset.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def command(output: Path | None, quick: bool, as_json: bool) -> int:
    """Train-free end-to-end run on the example datasets: float32 and int8 builds for a Cortex-M4, each run under
    QEMU over the test split; prints accuracy (from the firmware's outputs), memory and instructions per step.
    Exits with 1 when a build fails its parity check."""
    from liquid_edge.demo_run import format_results

    results = api.demo(output, quick=quick)
    if as_json:
        print_json(results)
    else:
        click.echo(format_results(results))
    return EXIT_OK if results["passed"] else EXIT_PARITY_FAILED
