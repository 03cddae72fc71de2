"""The wheel carries the asset folders, and an installed copy finds them and compiles from them."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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


def test_installed_copy_finds_its_assets_and_compiles(installed_copy, tmp_path):
    # Run from a folder outside the checkout so nothing resolves to the source tree.
    script = (
        "import liquid_edge, liquid_edge.assets as a, sys\n"
        "assert liquid_edge.__file__.startswith(sys.argv[1]), liquid_edge.__file__\n"
        "for name in ('codegen', 'firmware_templates', 'targets'):\n"
        "    assert str(a.asset_dir(name)).startswith(sys.argv[1]), a.asset_dir(name)\n"
        "from liquid_edge.target_catalog import resolve_target\n"
        "print(resolve_target('cortex-m4', None).core.name)\n"
    )
    env = {"PYTHONPATH": str(installed_copy), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script, str(installed_copy)], cwd=tmp_path, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "cortex-m4"
