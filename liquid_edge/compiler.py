"""The compile pipeline: IR -> output folder (IR copy, C library, host build files, firmware, manifest).

Everything is written into a staging folder next to ``OUT`` and moved into place at the end, so a failure never
leaves a half-written ``OUT`` and never touches a folder that is not a previous liquid-edge output.

Seams for the other parts of the toolchain:

* ``_emit_library`` turns the IR into sources: the float32 emitter, or the quantizer and the integer emitter
  (which also give ``manifest["quantization"]``).
* Targets other than ``host`` call ``liquid_edge.firmware.add_firmware(staging_dir, manifest, target, board)``,
  which writes ``firmware/`` into the staging folder and may update the manifest (``board``, ``firmware``). It
  is called after ``model/`` and ``src/`` exist and before the manifest and its file list are written.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from liquid_edge import __version__, ir_io
from liquid_edge.analysis import summarize
from liquid_edge.emit.c_library import CLibrary, emit_c_library, template_environment
from liquid_edge.emit.naming import c_identifier
from liquid_edge.errors import ConfigError, LiquidEdgeError
from liquid_edge.firmware import FIRMWARE_DIR, add_firmware
from liquid_edge.ir import Model
from liquid_edge.reporting.records import VERIFY_DIR
from liquid_edge.target_catalog import resolve_target

HOST_TARGET = "host"
MANIFEST_NAME = "liquid_edge.json"
MANIFEST_FORMAT = "liquid-edge output"
MANIFEST_VERSION = 1
MODEL_DIR = "model"
SOURCE_DIR = "src"
HOST_BUILD_FILES = ("Makefile", "CMakeLists.txt")
DEFAULT_STATE_BITS = 16
DEFAULT_CALIBRATION_METHOD = "percentile"
#: What liquid-edge writes into OUT after compile, so --force may replace it although the manifest does not list
#: it: host builds (the verify runner's build/host, the Makefile's build/make), verification records, and the
#: firmware's build folder and the data programs that verify and bench write next to its sources.
PRODUCT_DIRS = ("build", VERIFY_DIR, f"{FIRMWARE_DIR}/build")
PRODUCT_FILES = tuple(f"{FIRMWARE_DIR}/{name}" for name in ("parity_main.c", "bench_main.c", "parity_data.h",
                                                               "parity_data.c"))


class OutputFolderError(LiquidEdgeError):
    """The output folder cannot be written or read as a liquid-edge output."""


@dataclass(frozen=True)
class CompileOptions:
    """How to compile: ``name`` (default: the model's name) becomes the C prefix after sanitizing; ``board``
    picks the board of a Cortex-M target (None: the core's default board)."""

    target: str = HOST_TARGET
    board: str | None = None
    name: str | None = None
    sparse: bool = True
    force: bool = False
    quantize: str | None = None                  # None: float32; else a scheme of liquid_edge.quant
    calibration: str | None = None               # data file for the ranges, or "random"
    calibration_method: str | None = None        # None: percentile (quantized builds only)
    state_bits: int | None = None                # None: 16 (quantized builds only)


def compile_model(model: Model, out_dir: Path, options: CompileOptions = CompileOptions()) -> dict:
    """Write the output folder for ``model`` and return its manifest."""
    # A symlinked OUT stays a link: the output goes into the folder it points to.
    out_dir = Path(out_dir).resolve() if Path(out_dir).is_symlink() else Path(out_dir)
    _check_options(options)
    _check_destination(out_dir, options.force)
    c_name = c_identifier(options.name or model.name)
    staging = _staging_folder(out_dir)
    try:
        ir_io.save(model, staging / MODEL_DIR)
        library, quantization = _emit_library(model, c_name, options, staging / MODEL_DIR)
        _write_files(staging / SOURCE_DIR, library.files)
        _write_files(staging, _host_build_files(c_name, sorted(library.files)))
        manifest = _manifest(model, library, options)
        manifest["quantization"] = quantization
        if options.target != HOST_TARGET:
            add_firmware(staging, manifest, options.target, options.board)
        manifest["files"] = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
        try:
            _move_into_place(staging, out_dir)
        except OSError as exc:
            raise _unwritable(out_dir, exc) from None
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return manifest


def read_manifest(out_dir: Path) -> dict:
    """The manifest of a compiled output folder; :class:`OutputFolderError` when there is none."""
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        raise OutputFolderError(f"{out_dir} is not a liquid-edge output folder (no {MANIFEST_NAME})",
                                "pass the folder written by 'liquid-edge compile MODEL -o OUT'")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise OutputFolderError(f"cannot read {path}: {exc}", "recompile the model") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise OutputFolderError(f"{path} is not a liquid-edge manifest", "recompile the model")
    return manifest


def _emit_library(model: Model, c_name: str, options: CompileOptions,
                  model_dir: Path) -> tuple[CLibrary, dict | None]:
    """The sources of the library and the manifest's quantization entry (None for float32). A quantized build
    saves its integer model next to the IR (``model/quant.json`` + ``quant.npz``) for verify and report."""
    if options.quantize is None:
        return emit_c_library(model, c_name, sparse=options.sparse), None
    from liquid_edge.emit.c_quantized import emit_quantized_library
    from liquid_edge.quant import qmodel as quant_model
    from liquid_edge.quant.quantize import quantize_from_source

    quantized = quantize_from_source(model, options.quantize, options.calibration,
                                     state_bits=options.state_bits or DEFAULT_STATE_BITS,
                                     method=options.calibration_method or DEFAULT_CALIBRATION_METHOD)
    quant_model.save(quantized, model_dir)
    # SMLAD layout for DSP cores; Helium cores (M55) keep int8 rows, which their vector loads widen themselves.
    core = None if options.target == HOST_TARGET else resolve_target(options.target, options.board).core
    dsp = core is not None and core.dsp and not core.mve
    return (emit_quantized_library(quantized, c_name, dsp=dsp, source=model.source),
            quant_model.describe(quantized) | {"dsp_kernels": dsp})


def _check_options(options: CompileOptions) -> None:
    """Fail before anything is written: calibration data only with a scheme; host takes no board, other targets
    must name a known core (and board)."""
    if options.quantize is None:
        given = [f"--{name.replace('_', '-')}" for name in ("calibration", "calibration_method", "state_bits")
                 if getattr(options, name) is not None]
        if given:
            raise ConfigError(f"{' and '.join(given)} only apply to a quantized build",
                              "add --quantize int8|a16w8|pow2")
    if options.target != HOST_TARGET:
        resolve_target(options.target, options.board)
    elif options.board is not None:
        raise ConfigError(f"--board {options.board} needs a Cortex-M target, not host",
                          "add --target with a core from 'liquid-edge targets'")


def _check_destination(out_dir: Path, force: bool) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise OutputFolderError(f"{out_dir} exists and is not a folder", "choose another output folder with -o")
    if not any(out_dir.iterdir()):
        return
    try:
        read_manifest(out_dir)
    except OutputFolderError:
        raise OutputFolderError(f"{out_dir} is not empty and is not a liquid-edge output folder",
                                "choose a new or empty output folder with -o") from None
    if not force:
        raise OutputFolderError(f"{out_dir} already holds a compiled model", "pass --force to replace it")
    unknown = foreign_files(out_dir)
    if unknown:
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise OutputFolderError(f"{out_dir} holds files that liquid-edge did not write: {shown}",
                                "move them out of the folder, or choose another output folder with -o")


def foreign_files(out_dir: Path) -> list[str]:
    """Files (and links) in a previous output that are neither in its manifest nor products of liquid-edge."""
    ours = {MANIFEST_NAME, *PRODUCT_FILES, *read_manifest(out_dir).get("files", ())}
    found = []
    for folder, dirs, files in os.walk(out_dir):
        relative = Path(folder).relative_to(out_dir)
        dirs[:] = [d for d in dirs if (relative / d).as_posix() not in PRODUCT_DIRS]
        # os.walk lists a link to a folder under dirs without entering it: it is a user's entry too.
        entries = files + [d for d in dirs if (Path(folder) / d).is_symlink()]
        found += [(relative / name).as_posix() for name in entries]
    return sorted(name for name in found if name not in ours)


def _staging_folder(out_dir: Path) -> Path:
    """A new folder next to OUT, with the permissions the umask gives a new folder (mkdtemp's are 0700)."""
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.resolve().name}.", suffix=".staging",
                                        dir=out_dir.resolve().parent))
    except OSError as exc:
        raise _unwritable(out_dir, exc) from None
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def _unwritable(out_dir: Path, exc: OSError) -> OutputFolderError:
    existing = next(p for p in out_dir.absolute().parents if p.exists())
    reason = f"{existing} is not a folder" if not existing.is_dir() else exc.strerror or str(exc)
    return OutputFolderError(f"cannot write the output folder {out_dir}: {reason}",
                             "choose a writable location with -o")


def _move_into_place(staging: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    if not any(out_dir.iterdir()):
        # An existing empty folder keeps its identity (permissions, a shell's working directory).
        for entry in staging.iterdir():
            os.replace(entry, out_dir / entry.name)
        staging.rmdir()
        return
    # Swap by renames, so OUT is either the old or the new output at every moment.
    retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old", dir=out_dir.parent))
    os.replace(out_dir, retired / "previous")
    os.replace(staging, out_dir)
    shutil.rmtree(retired)


def _write_files(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


def _host_build_files(c_name: str, sources: list[str]) -> dict[str, str]:
    env = template_environment()
    context = {"name": c_name, "version": __version__, "source_dir": SOURCE_DIR,
               "c_sources": [s for s in sources if s.endswith(".c")]}
    return {name: env.get_template(f"host/{name}.j2").render(context) for name in HOST_BUILD_FILES}


def _manifest(model: Model, library: CLibrary, options: CompileOptions) -> dict:
    analysis = summarize(model)
    return {
        "format": MANIFEST_FORMAT,
        "format_version": MANIFEST_VERSION,
        "tool_version": __version__,
        "model_name": model.name,
        "c_name": library.c_name,
        "target": options.target,
        "board": None,
        "quantization": None,
        "sparse": options.sparse,
        "source": None if model.source is None else asdict(model.source),
        "summary": {**library.figures, "parameters": analysis["parameters"]["stored"],
                    "synapses": analysis["synapses"]},
    }
