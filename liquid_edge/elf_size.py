"""The memory table of a firmware image, read from its ELF file.

Flash holds every allocated section with contents (code, constants, the initial values of ``.data``); RAM holds
every writable allocated section (``.data``, ``.bss``, the stack). The linker script brackets the sections of the
model archive and of the math runtime (libm, libgcc) with ``__le_<group>_<kind>_start__``/``_end__`` symbols, so
each part is measured, not estimated. "rest of firmware" is what is left of the totals: start-up, console,
``main`` and the C library.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from liquid_edge.errors import BuildError

KINDS = ("text", "rodata", "data", "bss")


@dataclass(frozen=True)
class Part:
    key: str
    label: str
    flash: int = 0
    ram: int = 0


#: The rows of the table, in order (keys of the JSON form, labels of the text form).
PARTS = (Part("model_weights", "model weights"), Part("model_code", "model code"),
         Part("model_ram", "model state and static data"), Part("math_runtime", "math runtime (libm, libgcc)"),
         Part("stack", "stack (reserved)"), Part("rest", "rest of firmware"), Part("total", "firmware total"))


def memory_table(elf_path: Path, state_symbol: str) -> list[Part]:
    """Parts of the image, the last one being the total. ``state_symbol`` is the application's state object."""
    with open(elf_path, "rb") as handle:
        elf = ELFFile(handle)
        symbols = _symbols(elf, elf_path)
        flash_total, ram_total = _totals(elf)
        stack = _section_size(elf, ".stack")
    model = {kind: _group_size(symbols, "model", kind, elf_path) for kind in KINDS}
    math = {kind: _group_size(symbols, "math", kind, elf_path) for kind in KINDS}
    if state_symbol not in symbols:
        raise BuildError(f"{elf_path} has no symbol {state_symbol}", "rebuild the firmware from its generated project")
    state = symbols[state_symbol][1]
    sizes = [
        (model["rodata"], 0),
        (model["text"], 0),
        (model["data"], state + model["data"] + model["bss"]),
        (math["text"] + math["rodata"] + math["data"], math["data"] + math["bss"]),
        (0, stack),
    ]
    rest = (flash_total - sum(f for f, _ in sizes), ram_total - sum(r for _, r in sizes))
    return [replace(part, flash=flash, ram=ram)
            for part, (flash, ram) in zip(PARTS, [*sizes, rest, (flash_total, ram_total)])]


def as_json(parts: list[Part]) -> dict:
    return {part.key: {"flash_bytes": part.flash, "ram_bytes": part.ram} for part in parts}


def _symbols(elf: ELFFile, elf_path: Path) -> dict[str, tuple[int, int]]:
    table = elf.get_section_by_name(".symtab")
    if not isinstance(table, SymbolTableSection):
        raise BuildError(f"{elf_path} has no symbol table", "do not strip the firmware image")
    return {sym.name: (sym["st_value"], sym["st_size"]) for sym in table.iter_symbols() if sym.name}


def _group_size(symbols: dict[str, tuple[int, int]], group: str, kind: str, elf_path: Path) -> int:
    start, end = f"__le_{group}_{kind}_start__", f"__le_{group}_{kind}_end__"
    if start not in symbols or end not in symbols:
        raise BuildError(f"{elf_path} lacks the symbol {start}", "link it with the linker.ld that liquid-edge wrote")
    return symbols[end][0] - symbols[start][0]


def _totals(elf: ELFFile) -> tuple[int, int]:
    flash = ram = 0
    for section in elf.iter_sections():
        flags = section["sh_flags"]
        if not flags & SH_FLAGS.SHF_ALLOC:
            continue
        if section["sh_type"] != "SHT_NOBITS":
            flash += section["sh_size"]
        if flags & SH_FLAGS.SHF_WRITE:
            ram += section["sh_size"]
    return flash, ram


def _section_size(elf: ELFFile, name: str) -> int:
    section = elf.get_section_by_name(name)
    return 0 if section is None else section["sh_size"]
