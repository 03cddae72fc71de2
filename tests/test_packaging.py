"""The wheel carries the asset folders and the demo's examples; an installed copy finds them and runs from them."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cortex_m import needs_cross, needs_qemu

REPO = Path(__file__).resolve().parent.parent
ASSET_FOLDERS = ("codegen", "firmware_templates", "targets")


@pytest.fixture(scope="module")
def installed_copy(tmp_path_factory) -> Path:
    """The built wheel, unpacked as site-packages would hold it (no dependencies installed)."""
    wheel_dir = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheel_dir), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = wheel_dir.glob("liquid_edge-*.whl")
    site = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def test_wheel_holds_every_asset_file(installed_copy):
    for folder in ASSET_FOLDERS:
        shipped = {p.relative_to(REPO / folder) for p in (REPO / folder).rglob("*") if p.is_file()
                   and "__pycache__" not in p.parts}
        unpacked = {p.relative_to(installed_copy / "liquid_edge" / "_assets" / folder)
                    for p in (installed_copy / "liquid_edge" / "_assets" / folder).rglob("*") if p.is_file()}
        assert shipped and shipped == unpacked, folder


def test_wheel_holds_what_the_demo_runs_on(installed_copy):
    from liquid_edge.demo_run import EXAMPLES

    examples = installed_copy / "liquid_edge" / "_assets" / "examples"
    for example in EXAMPLES:
        for model in example.models:
            for suffix in (".pt", ".pt.json"):
                assert (examples / example.dataset / "models" / f"{model}{suffix}").is_file(), (example, model)
        assert (examples / example.dataset / "models" / "metrics.json").is_file()
        for split in ("train", "test"):
            assert (examples / "data" / f"{example.dataset}_{split}.npz").is_file(), (example, split)


def _run_installed(installed_copy: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    """``python -m liquid_edge ARGV`` from the unpacked wheel, in a folder outside the checkout."""
    env = {"PYTHONPATH": str(installed_copy), "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True)


def test_installed_copy_finds_its_assets(installed_copy, tmp_path):
    script = (
        "import liquid_edge, liquid_edge.assets as a, sys\n"
        "assert liquid_edge.__file__.startswith(sys.argv[1]), liquid_edge.__file__\n"
        "for name in ('codegen', 'firmware_templates', 'targets', 'examples'):\n"
        "    assert str(a.asset_dir(name)).startswith(sys.argv[1]), a.asset_dir(name)\n"
    )
    result = _run_installed(installed_copy, tmp_path, "-c", script, str(installed_copy))
    assert result.returncode == 0, result.stderr


@needs_cross
@needs_qemu
def test_installed_copy_compiles_verifies_and_runs_the_demo(installed_copy, tmp_path):
    """From the wheel alone: compile a shipped checkpoint for a Cortex-M4 (firmware from the installed templates),
    verify it on the host, and run the quick demo on the shipped data under QEMU."""
    checkpoint = installed_copy / "liquid_edge" / "_assets" / "examples" / "italy_power_demand" / "models" / "ncp.pt"
    result = _run_installed(installed_copy, tmp_path, "-m", "liquid_edge", "compile", str(checkpoint),
                            "--target", "cortex-m4", "-o", "out", "--json")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "firmware" / "startup.c").is_file()
    result = _run_installed(installed_copy, tmp_path, "-m", "liquid_edge", "verify", "out", "--steps", "30")
    assert result.returncode == 0, result.stderr
    result = _run_installed(installed_copy, tmp_path, "-m", "liquid_edge", "demo", "--quick", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["passed"] is True
