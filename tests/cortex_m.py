"""Helpers of the Cortex-M tests: compile a tests/models.py configuration for a core, run the CLI in-process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from liquid_edge.cli import main
from liquid_edge.compiler import CompileOptions, compile_model
from liquid_edge.loaders.ncps_layout import CfCOptions, build_cfc
from models import Config, build

needs_cross = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc missing")
needs_qemu = pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm missing")


def compile_for(config: Config, core: str, out_dir: Path, board: str | None = None, **options) -> dict:
    """Compile the seeded ncps model of ``config`` for ``core`` into ``out_dir``; return the manifest.
    ``options`` are further :class:`CompileOptions` fields (``quantize``, ``calibration``, ...)."""
    tensors = {key: value.detach().numpy() for key, value in build(config).state_dict().items()}
    model = build_cfc(tensors, CfCOptions(**config.options), config.id)
    return compile_model(model, out_dir, CompileOptions(target=core, board=board, **options))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run ``liquid-edge ARGV`` in this process; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as stop:
        main(list(argv))
    captured = capsys.readouterr()
    return stop.value.code, captured.out, captured.err


def run_cli_json(capsys, *argv: str) -> tuple[int, dict]:
    code, out, err = run_cli(capsys, *argv, "--json")
    assert out, err
    return code, json.loads(out)
