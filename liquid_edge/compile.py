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
from liquid_edge.firmware import add_firmware
from liquid_edge.ir import Model
from liquid_edge.targets import resolve_target

HOST_TARGET = "host"
MANIFEST_NAME = "liquid_edge.json"
MANIFEST_FORMAT = "liquid-edge output"
MANIFEST_VERSION = 1
MODEL_DIR = "model"
SOURCE_DIR = "src"
HOST_BUILD_FILES = ("Makefile", "CMakeLists.txt")


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
    calibration_method: str = "percentile"
    state_bits: int = 16


def compile_model(model: Model, out_dir: Path, options: CompileOptions = CompileOptions()) -> dict:
    """Write the output folder for ``model`` and return its manifest."""
    out_dir = Path(out_dir)
    _check_target(options)
    _check_destination(out_dir, options.force)
    c_name = c_identifier(options.name or model.name)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.resolve().name}.", suffix=".staging",
                                    dir=out_dir.resolve().parent))
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
        _move_into_place(staging, out_dir)
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

    quantized = quantize_from_source(model, options.quantize, options.calibration, state_bits=options.state_bits,
                                     method=options.calibration_method)
    quant_model.save(quantized, model_dir)
    dsp = options.target != HOST_TARGET and resolve_target(options.target, options.board).core.dsp
    return emit_quantized_library(quantized, c_name, dsp=dsp), quant_model.describe(quantized) | {"dsp_kernels": dsp}


def _check_target(options: CompileOptions) -> None:
    """Fail before anything is written: host takes no board, other targets must name a known core (and board)."""
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
