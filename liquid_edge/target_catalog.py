"""Cortex-M cores and boards, described as data: one TOML file per core and per board.

The built-in descriptions live in ``targets/cores/*.toml`` and ``targets/boards/*.toml``. More folders with the
same layout can be added through the environment variable ``LIQUID_EDGE_TARGETS_PATH`` (folders separated by
``os.pathsep``) or the ``extra_dirs`` argument; a file there overrides a built-in one of the same name. Adding a
board is adding a file: nothing in Python lists boards or cores.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from liquid_edge.assets import asset_dir
from liquid_edge.errors import ConfigError

TARGETS_PATH_ENV = "LIQUID_EDGE_TARGETS_PATH"
CONSOLE_KINDS = ("semihosting", "uart")


class TargetFileError(ConfigError):
    """A core or board file is unreadable or incomplete."""


@dataclass(frozen=True)
class Core:
    name: str
    description: str
    arch: str
    default_board: str
    cflags: tuple[str, ...]
    dsp: bool
    fpu: bool
    mve: bool
    unicorn_cpu: str | None  # CPU model of the in-process emulator; None: no emulator for this core
    path: Path

    @property
    def hard_float(self) -> bool:
        """Float arguments travel in FPU registers (changes the calling convention seen by an emulator)."""
        return "-mfloat-abi=hard" in self.cflags

    def features(self) -> list[str]:
        return [name for name in ("dsp", "fpu", "mve") if getattr(self, name)]


@dataclass(frozen=True)
class MemoryRegion:
    origin: int
    length: int

    @property
    def end(self) -> int:
        return self.origin + self.length


@dataclass(frozen=True)
class Console:
    kind: str                 # "semihosting" or "uart"
    uart: str | None = None   # UART driver (a template under firmware_templates/console/)
    base: int | None = None   # UART register base address

    @property
    def driver(self) -> str:
        """Name of the console template: the UART driver, or semihosting."""
        return self.uart if self.kind == "uart" else "semihosting"


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    cores: tuple[str, ...]
    startup: str
    stack_size: int
    flash: MemoryRegion
    ram: MemoryRegion
    console: Console
    qemu_machine: str | None
    path: Path


@dataclass(frozen=True)
class Target:
    """A core on a board: everything the firmware build needs."""

    core: Core
    board: Board

    @property
    def name(self) -> str:
        return self.core.name

    def to_manifest(self) -> dict:
        return {"core": self.core.name, "board": self.board.name}


@dataclass(frozen=True)
class Catalog:
    cores: dict[str, Core]
    boards: dict[str, Board]

    def core(self, name: str) -> Core:
        if name not in self.cores:
            raise ConfigError(f"unknown target '{name}'",
                              f"use host or one of {', '.join(sorted(self.cores))} (see 'liquid-edge targets')")
        return self.cores[name]

    def board(self, name: str) -> Board:
        if name not in self.boards:
            raise ConfigError(f"unknown board '{name}'",
                              f"use one of {', '.join(sorted(self.boards))} (see 'liquid-edge targets'), or add "
                              f"boards/{name}.toml in a folder listed in {TARGETS_PATH_ENV}")
        return self.boards[name]

    def resolve(self, core_name: str, board_name: str | None = None) -> Target:
        """The core with the given board, or with its default board."""
        core = self.core(core_name)
        board = self.board(board_name or core.default_board)
        if core.name not in board.cores:
            raise ConfigError(f"board '{board.name}' carries {', '.join(board.cores)}, not {core.name}",
                              f"drop --board to use {core.name}'s default board {core.default_board}")
        return Target(core, board)


def search_dirs(extra_dirs: Iterable[str | Path] = ()) -> list[Path]:
    """Target folders in increasing precedence: built-in, then the environment variable, then ``extra_dirs``."""
    from_env = [p for p in os.environ.get(TARGETS_PATH_ENV, "").split(os.pathsep) if p]
    for folder in from_env:
        if not Path(folder).is_dir():
            # A mistyped folder would otherwise only show later as an "unknown board".
            raise ConfigError(f"{TARGETS_PATH_ENV} names {folder}, which is not a folder",
                              "fix the path (folders holding cores/ and boards/, separated by ':') or unset it")
    return [asset_dir("targets")] + [Path(p) for p in [*from_env, *extra_dirs]]


def load_catalog(extra_dirs: Iterable[str | Path] = ()) -> Catalog:
    """Read every core and board file; check that each board's cores and each core's default board exist."""
    cores: dict[str, Core] = {}
    boards: dict[str, Board] = {}
    for folder in search_dirs(extra_dirs):
        for path in sorted((folder / "cores").glob("*.toml")):
            core = _core_from(path, _read(path))
            cores[core.name] = core
        for path in sorted((folder / "boards").glob("*.toml")):
            board = _board_from(path, _read(path))
            boards[board.name] = board
    for core in cores.values():
        if core.default_board not in boards:
            raise TargetFileError(f"{core.path}: default_board '{core.default_board}' has no board file",
                                  f"add boards/{core.default_board}.toml or name an existing board")
    for board in boards.values():
        unknown = [c for c in board.cores if c not in cores]
        if unknown:
            raise TargetFileError(f"{board.path}: cores {', '.join(unknown)} have no core file",
                                  f"use one of {', '.join(sorted(cores))}")
    return Catalog(cores, boards)


def describe_catalog(catalog: Catalog) -> dict:
    """The listing of ``liquid-edge targets --json``: every core and board, and the folders searched."""
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


def resolve_target(core_name: str, board_name: str | None = None) -> Target:
    return load_catalog().resolve(core_name, board_name)


def _read(path: Path) -> dict:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TargetFileError(f"cannot read target file {path}: {exc}", "fix the TOML syntax") from None


def _get(path: Path, table: dict, key: str, kind: type, default: Any = ...) -> Any:
    if key not in table:
        if default is not ...:
            return default
        raise TargetFileError(f"{path}: missing key '{key}'", "see docs/targets.md for the file format")
    value = table[key]
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise TargetFileError(f"{path}: '{key}' must be a {kind.__name__}, got {value!r}")
    return value


def _core_from(path: Path, data: dict) -> Core:
    features = _get(path, data, "features", dict)
    emulation = _get(path, data, "emulation", dict, {})
    cflags = _get(path, data, "cflags", list)
    if not all(isinstance(flag, str) for flag in cflags):
        raise TargetFileError(f"{path}: 'cflags' must be a list of strings")
    return Core(
        name=_name(path, data),
        description=_get(path, data, "description", str),
        arch=_get(path, data, "arch", str),
        default_board=_get(path, data, "default_board", str),
        cflags=tuple(cflags),
        dsp=_get(path, features, "dsp", bool),
        fpu=_get(path, features, "fpu", bool),
        mve=_get(path, features, "mve", bool),
        unicorn_cpu=_get(path, emulation, "unicorn_cpu", str, None),
        path=path,
    )


def _board_from(path: Path, data: dict) -> Board:
    memory = _get(path, data, "memory", dict)
    flash = _region(path, memory, "flash")
    ram = _region(path, memory, "ram")
    if flash.origin < ram.end and ram.origin < flash.end:
        raise TargetFileError(f"{path}: memory regions flash and ram overlap")
    stack_size = _get(path, data, "stack_size", int)
    if not 0 < stack_size < ram.length:
        raise TargetFileError(f"{path}: stack_size {stack_size:#x} does not fit in ram ({ram.length:#x} bytes)")
    startup = _get(path, data, "startup", str)
    _require_template(path, "startup", startup)
    cores = _get(path, data, "cores", list)
    if not cores or not all(isinstance(c, str) for c in cores):
        raise TargetFileError(f"{path}: 'cores' must be a non-empty list of core names")
    qemu = _get(path, data, "qemu", dict, None)
    return Board(
        name=_name(path, data),
        description=_get(path, data, "description", str),
        cores=tuple(cores),
        startup=startup,
        stack_size=stack_size,
        flash=flash,
        ram=ram,
        console=_console(path, _get(path, data, "console", dict)),
        qemu_machine=None if qemu is None else _get(path, qemu, "machine", str),
        path=path,
    )


def _name(path: Path, data: dict) -> str:
    name = _get(path, data, "name", str)
    if name != path.stem:
        raise TargetFileError(f"{path}: name '{name}' differs from the file name", f"rename the file to {name}.toml")
    return name


def _region(path: Path, memory: dict, key: str) -> MemoryRegion:
    table = _get(path, memory, key, dict)
    region = MemoryRegion(_get(path, table, "origin", int), _get(path, table, "length", int))
    if region.origin < 0 or region.length <= 0 or region.end > 1 << 32:
        raise TargetFileError(f"{path}: memory.{key} must lie inside the 32-bit address space with a positive length")
    return region


def _console(path: Path, table: dict) -> Console:
    kind = _get(path, table, "kind", str)
    if kind not in CONSOLE_KINDS:
        raise TargetFileError(f"{path}: console kind '{kind}' is unknown", f"use one of {', '.join(CONSOLE_KINDS)}")
    if kind == "semihosting":
        return Console(kind)
    console = Console(kind, _get(path, table, "uart", str), _get(path, table, "base", int))
    _require_template(path, "console", console.driver)
    return console


def _require_template(path: Path, folder: str, name: str) -> None:
    templates = asset_dir("firmware_templates") / folder
    if not (templates / f"{name}.c.j2").is_file():
        known = sorted(p.name.removesuffix(".c.j2") for p in templates.glob("*.c.j2"))
        raise TargetFileError(f"{path}: {folder} '{name}' has no template", f"use one of {', '.join(known)}")
