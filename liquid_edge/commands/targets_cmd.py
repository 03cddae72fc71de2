"""``liquid-edge targets``: the Cortex-M cores and boards that ``compile --target`` and ``--board`` accept."""

from __future__ import annotations

import click

from liquid_edge.output import format_table, print_json
from liquid_edge.targets import TARGETS_PATH_ENV, Catalog, Core, load_catalog, search_dirs


@click.command("targets")
@click.option("--json", "as_json", is_flag=True, help="Print cores and boards as JSON.")
def command(as_json: bool) -> None:
    """List the cores (with their default board) and the boards (memory, console, QEMU machine)."""
    catalog = load_catalog()
    listing = describe(catalog)
    if as_json:
        print_json(listing)
    else:
        click.echo(format_listing(listing))


def describe(catalog: Catalog) -> dict:
    return {
        "cores": [{"name": core.name, "description": core.description, "arch": core.arch,
                   "features": core.features(), "cflags": list(core.cflags), "default_board": core.default_board,
                   "bench_counter": _counter(core, catalog), "file": str(core.path)}
                  for core in sorted(catalog.cores.values(), key=lambda c: c.name)],
        "boards": [{"name": board.name, "description": board.description, "cores": list(board.cores),
                    "flash": {"origin": board.flash.origin, "length": board.flash.length},
                    "ram": {"origin": board.ram.origin, "length": board.ram.length},
                    "stack_size": board.stack_size, "startup": board.startup, "console": board.console.kind,
                    "qemu_machine": board.qemu_machine, "file": str(board.path)}
                   for board in sorted(catalog.boards.values(), key=lambda b: b.name)],
        "search_path": [str(folder) for folder in search_dirs()],
    }


def _counter(core: Core, catalog: Catalog) -> str | None:
    """How `liquid-edge bench` counts on this core (on its default board)."""
    if core.unicorn_cpu is not None:
        return "unicorn"
    return "qemu" if catalog.boards[core.default_board].qemu_machine is not None else None


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
