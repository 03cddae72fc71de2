"""``liquid-edge report OUT -o report.html``: model, memory, cost, parity and plots of a compiled output folder."""

from __future__ import annotations

from pathlib import Path

import click

from liquid_edge import api
from liquid_edge.output import print_json


@click.command("report")
@click.argument("out_dir", metavar="OUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", "page", required=True, type=click.Path(path_type=Path),
              help="The page to write: report.html (one self-contained file) or report.md (+ report_files/).")
@click.option("--format", "fmt", type=click.Choice(["html", "md"]),
              help="Page format (default: from the suffix of --output; html unless .md).")
@click.option("--json", "as_json", is_flag=True, help="Also print the report's figures as JSON.")
def command(out_dir: Path, page: Path, fmt: str | None, as_json: bool) -> None:
    """Write a report on OUT: model summary, memory, instructions per step, parity of every backend that ran
    (run 'liquid-edge verify OUT' first), output traces, error histograms, quantization error per tensor."""
    report = api.report(out_dir, page, fmt=fmt)
    written = report["files"]
    if as_json:
        print_json(report)
    else:
        click.echo(f"wrote {written[0]}" + (f" and {len(written) - 1} figure(s)" if len(written) > 1 else ""))
