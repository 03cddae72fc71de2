"""The Cortex-M firmware project: rendered from ``firmware_templates/`` into ``OUT/firmware``, built with make.

The project holds the start-up code, the linker script of the board's memory map, the console, the application
skeleton (``app_main.c``) and, once ``liquid-edge verify`` has written them, the parity program
(``parity_main.c`` + ``parity_data.c``). Makefile and CMakeLists.txt build both images; the Makefile also builds
the instruction-count driver that ``liquid-edge bench`` writes into a temporary copy (``bench_main.c``).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import jinja2
import numpy as np

from liquid_edge import elf_size
from liquid_edge.assets import asset_dir
from liquid_edge.errors import BuildError, ConfigError, ToolMissingError
from liquid_edge.output import format_table, progress
from liquid_edge.target_catalog import TARGETS_PATH_ENV, Target, load_catalog

CROSS_GCC = "arm-none-eabi-gcc"
INSTALL_HINT = "apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi"
FIRMWARE_DIR = "firmware"
#: Symbol of the application's state object (the memory table reads its size).
STATE_SYMBOL = "le_model_state"
#: Archives whose sections the linker script brackets, by group (see linker.ld.j2 and elf_size.py).
SECTION_GROUPS = {"model": ["libliquid_model.a"], "math": ["libm.a", "libgcc.a"]}
_STATIC_FILES = ("le_firmware.h", "le_runtime.c", "arm-none-eabi.cmake")
_BUILD_TIMEOUT_S = 300
#: Stack a step uses besides its scratch buffers, and the caller's frames. `bench` measures 96 to 284 bytes of
#: peak stack beyond the scratch on the built-in cores (the soft-float M0 deepest); twice the most, rounded up.
CALL_FRAMES_BYTES = 768
_C_IDENTIFIER = re.compile(r"\b[A-Za-z_]\w*\b")


@dataclass(frozen=True)
class Library:
    """What the firmware needs to know of the generated C library."""

    c_name: str                    # prefix of every symbol, e.g. "walker"
    header: str                    # e.g. "walker.h"
    sources: tuple[str, ...]       # C files, relative to OUT/src

    @property
    def macro(self) -> str:
        return self.c_name.upper()


@dataclass(frozen=True)
class ParityData:
    """Sequences and expected outputs carried inside the parity image.

    ``exact``: outputs must equal ``expected`` bit for bit (integer builds); otherwise the image accepts
    ``|output - expected| <= atol + rtol * |expected|``. ``io_ctype`` is the C type of inputs and outputs and
    ``run_fn`` / ``step_fn`` the functions under test (the float API, or an integer one with the same shape).
    """

    inputs: np.ndarray             # (N, T, I)
    dts: np.ndarray | None         # (N, T) or None for dt = 1
    expected: np.ndarray           # (N, T, O)
    atol: float = 0.0
    rtol: float = 0.0
    exact: bool = False
    io_ctype: str = "float"
    run_fn: str = ""               # default: <c_name>_run
    step_fn: str = ""              # default: <c_name>_step

    @property
    def bytes_per_sequence(self) -> int:
        io_bytes = np.dtype(np.float32 if self.io_ctype == "float" else self.io_ctype.removesuffix("_t")).itemsize
        steps = self.inputs.shape[1]
        per_step = (self.inputs.shape[2] + self.expected.shape[2]) * io_bytes + (4 if self.dts is not None else 0)
        return steps * per_step

    def select(self, sequences: slice) -> "ParityData":
        return replace(self, inputs=self.inputs[sequences], expected=self.expected[sequences],
                       dts=None if self.dts is None else self.dts[sequences])


def firmware_dir(out_dir: Path) -> Path:
    return Path(out_dir) / FIRMWARE_DIR


def library_of(out_dir: Path, manifest: dict) -> Library:
    """The generated library of a compiled output folder: every C file of ``OUT/src``."""
    c_name = manifest["c_name"]
    sources = tuple(sorted(path.name for path in (Path(out_dir) / "src").glob("*.c")))
    return Library(c_name, f"{c_name}.h", sources)


def target_of(manifest: dict) -> Target:
    """The core and board a compiled output folder was built for (``manifest["firmware"]``)."""
    firmware = manifest.get("firmware")
    if not firmware:
        raise ConfigError(f"this output was compiled for {manifest.get('target', 'host')}, not for a Cortex-M core",
                          "compile again with --target cortex-m4 (or another core, see 'liquid-edge targets')")
    catalog = load_catalog()
    for kind, name, known in (("core", firmware["core"], catalog.cores), ("board", firmware["board"], catalog.boards)):
        if name not in known:
            # An output compiled for a board (or core) read from LIQUID_EDGE_TARGETS_PATH needs that file again.
            raise ConfigError(f"this output was compiled for {kind} '{name}', which has no {kind} file here",
                              f"add the folder holding {kind}s/{name}.toml to {TARGETS_PATH_ENV}")
    return catalog.resolve(firmware["core"], firmware["board"])


def add_firmware(out_dir: Path, manifest: dict, core_name: str, board_name: str | None = None) -> None:
    """The compile hook for Cortex-M targets: write ``OUT/firmware``; build the application when the cross
    compiler is installed and record its memory table; fill ``manifest["board"]`` and ``manifest["firmware"]``."""
    target = load_catalog().resolve(core_name, board_name)
    _check_stack(manifest["summary"]["scratch_bytes"], target)
    library = library_of(out_dir, manifest)
    _check_name_clashes(out_dir / "src" / library.header, library)
    fw_dir = emit_project(out_dir, library, target)
    info = {"core": target.core.name, "board": target.board.name, "qemu_machine": target.board.qemu_machine,
            "project": FIRMWARE_DIR, "elf": None, "memory": None, "not_built": None}
    if cross_compiler_available():
        try:
            elf = build(fw_dir, "app")
        except BuildError as exc:
            if str(fw_dir) not in exc.problem:
                raise
            # fw_dir is compile's staging folder, removed when compile fails: no path of it helps the user.
            raise BuildError(f"the generated firmware does not build: {exc.problem.split(' failed: ', 1)[-1]}",
                             "nothing was written; compile with --target host for the library alone, and report "
                             "the model and this message") from None
        info["elf"] = elf.relative_to(out_dir).as_posix()
        info["memory"] = elf_size.as_json(elf_size.memory_table(elf, STATE_SYMBOL))
    else:
        info["not_built"] = f"{CROSS_GCC} is not installed; install it with: {INSTALL_HINT}"
    manifest["board"] = target.board.name
    manifest["firmware"] = info


def format_firmware(info: dict) -> str:
    """The firmware part of the compile report: the memory table of the built application, or how to build it."""
    if info["memory"] is None:
        return f"firmware: sources in {info['project']}/, not built: {info['not_built']}"
    labels = {part.key: part.label for part in elf_size.PARTS}
    rows = [[labels[key], sizes["flash_bytes"], sizes["ram_bytes"]] for key, sizes in info["memory"].items()]
    return (f"firmware: {info['elf']} ({info['core']} on {info['board']})\n"
            + format_table(("memory (bytes)", "flash", "RAM"), rows))


def _check_stack(scratch: int, target: Target) -> None:
    """A stack overflow runs through the model's state and off the RAM: the image faults or computes garbage."""
    stack = target.board.stack_size
    if scratch >= stack:
        raise ConfigError(f"one step needs {scratch:,} bytes of stack for its scratch buffers alone, but board "
                          f"{target.board.name} reserves {stack:,} bytes of stack",
                          "use a board with a larger stack_size (a board file, see docs/targets.md), or a model "
                          "with a narrower backbone")
    if scratch + CALL_FRAMES_BYTES > stack:
        progress(f"warning: one step needs {scratch:,} bytes of stack for its scratch buffers plus call frames "
                 f"(up to ~{CALL_FRAMES_BYTES} bytes), and board {target.board.name} reserves {stack:,}: the stack "
                 "may overflow; 'liquid-edge bench OUT' measures the peak of a step")


def _check_name_clashes(header: Path, library: Library) -> None:
    """The firmware's own files and identifiers share the include path and the translation units with the model:
    refuse a model name whose header or public identifiers would collide with them (e.g. ``le_app``, whose
    header would be shadowed by the firmware's ``le_app.h``)."""
    templates = asset_dir("firmware_templates")
    own_headers = {path.name.removesuffix(".j2") for path in templates.rglob("*") if ".h" in path.suffixes}
    if library.header in own_headers:
        raise ConfigError(f"the model's C name '{library.c_name}' clashes with the firmware's own "
                          f"{library.header}", "choose another name with --name")
    own_identifiers = set()
    for path in templates.rglob("*"):
        if path.is_file():
            own_identifiers.update(_C_IDENTIFIER.findall(path.read_text()))
    model_identifiers = {word for word in _C_IDENTIFIER.findall(header.read_text())
                         if word.startswith((f"{library.c_name}_", f"{library.macro}_"))}
    clashes = sorted(model_identifiers & own_identifiers)
    if clashes:
        raise ConfigError(f"the model's C name '{library.c_name}' makes identifiers the firmware already uses "
                          f"({', '.join(clashes)})", "choose another name with --name")


def emit_project(out_dir: Path, library: Library, target: Target) -> Path:
    """Write the firmware project into ``OUT/firmware`` (the library sources are in ``OUT/src``)."""
    fw_dir = firmware_dir(out_dir)
    fw_dir.mkdir(parents=True, exist_ok=True)
    context = _context(library, target)
    rendered = {
        "startup.c": f"startup/{target.board.startup}.c.j2",
        "console.c": f"console/{target.board.console.driver}.c.j2",
        "linker.ld": "linker.ld.j2",
        "app_main.c": "app_main.c.j2",
        "le_app.h": "le_app.h.j2",
        "Makefile": "Makefile.j2",
        "CMakeLists.txt": "CMakeLists.txt.j2",
    }
    for name, template in rendered.items():
        _write(fw_dir / name, _environment().get_template(template).render(context))
    for name in _STATIC_FILES:
        _write(fw_dir / name, (asset_dir("firmware_templates") / name).read_text())
    return fw_dir


def write_parity_program(fw_dir: Path, library: Library, target: Target, data: ParityData) -> None:
    """Write ``parity_main.c``, ``parity_data.h`` and ``parity_data.c`` (the data as constants in flash)."""
    _write_data_program(fw_dir, "parity_main.c", library, target, data)


def write_bench_program(fw_dir: Path, library: Library, target: Target, data: ParityData) -> None:
    """Write ``bench_main.c`` (the instruction-count driver) and its data, the first sequence of ``data``."""
    _write_data_program(fw_dir, "bench_main.c", library, target, data)


def _write_data_program(fw_dir: Path, main: str, library: Library, target: Target, data: ParityData) -> None:
    sequences, steps, _ = data.inputs.shape
    context = _context(library, target) | {
        "exact": data.exact, "io_ctype": data.io_ctype, "atol": _c_literal(data.atol, "float"),
        "rtol": _c_literal(data.rtol, "float"),
        "run_fn": data.run_fn or f"{library.c_name}_run", "step_fn": data.step_fn or f"{library.c_name}_step",
        "sequences": sequences, "steps": steps, "has_dt": data.dts is not None,
        "inputs": _literals(data.inputs, data.io_ctype), "expected": _literals(data.expected, data.io_ctype),
        "dts": [] if data.dts is None else _literals(data.dts, "float"),
    }
    for name in (main, "parity_data.h", "parity_data.c"):
        _write(fw_dir / name, _environment().get_template(f"{name}.j2").render(context))


def cross_compiler_available() -> bool:
    return shutil.which(CROSS_GCC) is not None


def build(fw_dir: Path, goal: str = "app") -> Path:
    """Build ``app``, ``parity`` or ``bench`` with make; return the ELF. Raises ToolMissingError or BuildError."""
    if shutil.which("make") is None:
        raise ToolMissingError("make is not installed, so the firmware cannot be built", "apt-get install make")
    make_goal = "all" if goal == "app" else goal
    elf = fw_dir / "build" / f"{goal}.elf"
    if not cross_compiler_available():
        # An image built earlier (e.g. on another machine) is still usable: `make -q` says whether it is current.
        if elf.is_file() and subprocess.run(["make", "-C", str(fw_dir), "-q", make_goal],
                                            capture_output=True).returncode == 0:
            return elf
        raise ToolMissingError(f"{CROSS_GCC} is not installed, so the firmware cannot be built",
                               f"install it: {INSTALL_HINT}")
    try:
        result = subprocess.run(["make", "-C", str(fw_dir), "-s", f"-j{min(2, os.cpu_count() or 1)}", make_goal],
                                capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise BuildError(f"the firmware build in {fw_dir} took longer than {_BUILD_TIMEOUT_S} s") from None
    if result.returncode != 0:
        log = result.stderr + result.stdout
        overflows = re.findall(r"region `(\w+)' overflowed by (\d+) bytes", log)
        if overflows:
            raise BuildError("the firmware does not fit in the board's memory: "
                             + ", ".join(f"{region} overflowed by {count} bytes" for region, count in overflows),
                             "choose a board with more memory (--board), or a smaller or quantized model")
        missing_header = re.search(r"fatal error: ((?:stdint|string|math|stddef)\.h): No such file", log)
        if missing_header:
            # arm-none-eabi-gcc alone has no C library: newlib is a separate Debian package.
            raise ToolMissingError(f"{CROSS_GCC} cannot find {missing_header[1]}: its C library (newlib) is missing",
                                   f"install it: {INSTALL_HINT}")
        raise BuildError(f"the firmware build in {fw_dir} failed: {_first_error(log)}",
                         f"run 'make -C {fw_dir} {make_goal}' to see the full log")
    return elf


def _first_error(log: str) -> str:
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[0]


def _context(library: Library, target: Target) -> dict:
    return {
        "c_name": library.c_name, "macro": library.macro, "header": library.header,
        "model_sources": [f"../src/{source}" for source in library.sources], "src_dir": "../src",
        "core": target.core, "board": target.board, "console": target.board.console, "groups": SECTION_GROUPS,
    }


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(asset_dir("firmware_templates")),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["c_values"] = _c_lines
    return env


def _literals(values: np.ndarray, ctype: str) -> list[str]:
    return [_c_literal(v, ctype) for v in np.asarray(values).ravel()]


def _c_literal(value: float, ctype: str) -> str:
    if ctype == "float":
        value = float(np.float32(value))
        if math.isnan(value):
            return '__builtin_nanf("")'
        if math.isinf(value):
            return "__builtin_inff()" if value > 0 else "-__builtin_inff()"
        # A hexadecimal literal is the exact float32 value: no decimal rounding between Python and the image.
        return value.hex() + "f"
    return str(int(value))


def _c_lines(literals: list[str], per_line: int = 6) -> str:
    return ",\n".join("    " + ", ".join(literals[i:i + per_line]) for i in range(0, len(literals), per_line))


def _write(path: Path, text: str) -> None:
    """Write through a temporary file so an interrupted run never leaves a half-written file."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, prefix=f".{path.name}.") as handle:
        handle.write(text)
    os.replace(handle.name, path)
