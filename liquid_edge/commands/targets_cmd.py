"""``liquid-edge targets``: the Cortex-M cores and boards that ``compile --target`` and ``--board`` accept."""

from __future__ import annotations

import click

from liquid_edge import api
from liquid_edge.output import format_table, print_json
from liquid_edge.target_catalog import TARGETS_PATH_ENV


@click.command("targets")
@click.option("--json", "as_json", is_flag=True, help="Print cores and boards as JSON.")
def command(as_json: bool) -> None:
    """List the cores (with their default board) and the boards (memory, console, QEMU machine)."""
    listing = api.targets()
    if as_json:
        print_json(listing)
    else:
        click.echo(format_listing(listing))


def format_listing(listing: dict) -> str:
    cores = format_table(
        ("core", "features", "default board", "bench", "description"),
        [(c["name"], ", ".join(c["features"]) or "-", c["default_board"],
          c["bench_counter"] or "-", c["description"]) for c in listing["cores"]])
    boards = format_table(
        ("board", "cores", "flash", "RAM", "console", "QEMU machine"),
        [(b["name"], ", ".join(b["cores"]), _size(b["flash"]), _size(b["ram"]), b["console"],
          b["qemu_machine"] or "-") for b in listing["boards"]])
    return (f"{cores}\n\n{boards}\n\ntarget files: {', '.join(listing['search_path'])} "
            f"(add folders with {TARGETS_PATH_ENV})")


def _size(region: dict) -> str:
    length = region["length"]
    size = f"{length // (1024 * 1024)} MB" if length % (1024 * 1024) == 0 else f"{length // 1024} KB"
    return f"{size} @ {region['origin']:#010x}"
