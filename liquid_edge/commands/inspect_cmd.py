"""``liquid-edge inspect MODEL``: what a checkpoint holds, its size and its cost per step."""

from __future__ import annotations

from pathlib import Path

import click

from liquid_edge import api
from liquid_edge.ir import ACTIVATIONS, MODES
from liquid_edge.output import format_table, print_json


def model_options(function):
    """The options every command that reads a checkpoint shares: which module, and what a state dict cannot tell."""
    function = click.option("--activation", type=click.Choice(ACTIVATIONS),
                            help="Backbone activation (a state dict cannot tell it).")(function)
    function = click.option("--mode", type=click.Choice(MODES),
                            help="CfC mode (a state dict cannot tell default from no_gate).")(function)
    function = click.option("--module", "module_path", metavar="PATH",
                            help="Key prefix of the ncps module to load when the file holds several.")(function)
    return click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))(function)


@click.command("inspect")
@model_options
@click.option("--json", "as_json", is_flag=True, help="Print the full summary as JSON.")
def command(model_path: Path, module_path: str | None, mode: str | None, activation: str | None,
            as_json: bool) -> None:
    """Show the architecture, parameter count, synapses, MACs per step and state size of MODEL."""
    summary = api.inspect(api.load(model_path, module=module_path, mode=mode, activation=activation, cli=True))
    if as_json:
        print_json(summary)
    else:
        click.echo(format_summary(summary))


def format_summary(summary: dict) -> str:
    arch = summary["architecture"]
    params, macs = summary["parameters"], summary["macs_per_step"]
    state = f"{summary['state_size']} values"
    if arch["mixed_memory"]:
        state += f" ({summary['hidden_size']} hidden + {summary['hidden_size']} LSTM cell)"
    projection = arch["projection"]
    rows = [
        ("model", summary["name"]),
        *_source_rows(summary["source"]),
        ("architecture", _architecture_line(arch)),
        *((f"cell {cell['name']}", _cell_line(cell)) for cell in arch["cells"]),
        ("mixed memory", "yes (LSTM)" if arch["mixed_memory"] else "no"),
        ("projection", f"{projection['in']} -> {projection['out']}" if projection else "none"),
        ("inputs", summary["input_size"]),
        ("outputs", summary["output_size"]),
        ("state", state),
        ("parameters", f"{params['stored']:,} stored, {params['effective']:,} effective"),
        ("synapses", "dense" if summary["synapses"] is None else f"{summary['synapses']:,} (mask entries)"),
        ("MACs/step", f"{macs['dense']:,} dense, {macs['sparse']:,} with sparsity"),
    ]
    layers = format_table(("layer", "in", "out", "parameters", "MACs dense", "MACs sparse"),
                          [(r["name"], r["in"], r["out"], r["parameters"], r["macs_dense"], r["macs_sparse"])
                           for r in summary["layers"]])
    return format_table(("property", "value"), [(k, str(v)) for k, v in rows]) + "\n\n" + layers


def _source_rows(source: dict | None) -> list[tuple[str, str]]:
    if source is None:
        return []
    where = source["format"] + (f", module {source['module']}" if source["module"] else "")
    return [("source", f"{source['path']} ({where})"), ("sha256", source["sha256"])]


def _architecture_line(arch: dict) -> str:
    line = f"CfC, mode {arch['mode']}"
    return line + (f", wired ({arch['wiring']})" if arch["wiring"] else ", dense")


def _cell_line(cell: dict) -> str:
    text = f"{cell['units']} units"
    if cell["backbone_units"]:
        widths = "-".join(str(units) for units in cell["backbone_units"])
        text += f", backbone {widths} {cell['activation']}"
    if cell["synapses"] is not None:
        text += f", {cell['synapses']} synapses"
    return text
