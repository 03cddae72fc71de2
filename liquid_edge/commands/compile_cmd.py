"""``liquid-edge compile MODEL -o OUT``: the C library, the host build files, the IR copy and the manifest."""

from __future__ import annotations

from pathlib import Path

import click

from liquid_edge import api
from liquid_edge.commands.inspect_cmd import model_options
from liquid_edge.compiler import HOST_TARGET
from liquid_edge.firmware import format_firmware
from liquid_edge.output import format_table, print_json
from liquid_edge.quant.calibration import METHODS
from liquid_edge.quant.qmodel import SCHEMES


@click.command("compile")
@model_options
@click.option("--target", default=HOST_TARGET, show_default=True,
              help="Where the code runs: host, or a core/board listed by 'liquid-edge targets'.")
@click.option("--board", help="Board of the target core (default: the core's default board).")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path),
              help="Output folder (new, empty, or a previous output with --force). "
                   "Default: MODEL's name, target and scheme in the current folder, e.g. ./ncp-cortex-m4-int8.")
@click.option("--name", help="Model name in the C code (sanitized into the prefix of every symbol).")
@click.option("--dense", is_flag=True, help="Do not exploit NCP sparsity (store and multiply masked weights).")
@click.option("--force", is_flag=True, help="Replace a previous liquid-edge output in OUT.")
@click.option("--quantize", type=click.Choice(SCHEMES),
              help="Integer build: int8 (8-bit activations), a16w8 (16-bit activations) or pow2 (shift-only, "
                   "for cores without a fast multiplier); weights are int8 in every scheme.")
@click.option("--calibration", metavar="FILE|random",
              help="Sequences (.npz/.npy/.csv) whose full rollouts set the ranges of a quantized build; "
                   "'random' calibrates on random inputs (with a warning).")
@click.option("--calibration-method", type=click.Choice(METHODS),
              help="Range of each tensor: largest |value| (minmax) or its 99.99th percentile (the default).")
@click.option("--state-bits", type=click.Choice(["8", "16"]),
              help="Bits of each recurrent state value in a quantized build (default 16).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def command(model_path: Path, module_path: str | None, mode: str | None, activation: str | None, target: str,
            board: str | None, out_dir: Path, name: str | None, dense: bool, force: bool, quantize: str | None,
            calibration: str | None, calibration_method: str | None, state_bits: str | None, as_json: bool) -> None:
    """Compile MODEL into dependency-free C99 in OUT (and a firmware project for Cortex-M targets)."""
    model = api.load(model_path, module=module_path, mode=mode, activation=activation, cli=True)
    if out_dir is None:
        out_dir = default_output_dir(model_path, target, board, quantize)
    manifest = api.compile(model, out_dir, target=target, board=board, name=name, sparse=not dense, force=force,
                           quantize=quantize, calibration=calibration, calibration_method=calibration_method,
                           state_bits=None if state_bits is None else int(state_bits))
    if as_json:
        print_json(manifest)
    else:
        click.echo(format_manifest(out_dir, manifest))


def default_output_dir(model_path: Path, target: str, board: str | None, quantize: str | None) -> Path:
    """``./<checkpoint stem>-<target or board>[-<scheme>]``: one folder per build, so builds never collide."""
    parts = [Path(model_path).stem, board or target, quantize or ""]
    return Path("-".join(p for p in parts if p))


def format_manifest(out_dir: Path, manifest: dict) -> str:
    s = manifest["summary"]
    macs = f"{s['executed_macs_per_step']:,} executed ({s['dense_macs_per_step']:,} dense"
    macs += f", {s['sparse_macs_per_step']:,} with sparsity)"
    rows = [
        ("output", str(out_dir)),
        ("C name", manifest["c_name"]),
        ("target", manifest["target"] + (f" ({manifest['board']})" if manifest["board"] else "")),
        ("arithmetic", _arithmetic(manifest.get("quantization"))),
        ("inputs / outputs", f"{s['input_size']} / {s['output_size']}"),
        ("state", f"{s['state_size']} values ({s['state_bytes']:,} bytes per instance)"),
        ("weights", f"{s['weight_bytes']:,} bytes (const)"),
        ("scratch", f"{s['scratch_bytes']:,} bytes (stack)"),
        ("MACs/step", macs),
        ("files", f"{len(manifest['files'])} (see {out_dir / 'liquid_edge.json'})"),
    ]
    text = format_table(("property", "value"), rows)
    if manifest.get("firmware"):
        text += "\n\n" + format_firmware(manifest["firmware"])
    return text


def _arithmetic(quantization: dict | None) -> str:
    if not quantization:
        return "float32"
    q = quantization
    return (f"{q['scheme']}: int{q['weight_bits']} weights, {q['act_bits']}-bit activations, "
            f"{q['state_bits']}-bit state (calibrated on {q['calibration']['data']}, {q['calibration']['method']})")
