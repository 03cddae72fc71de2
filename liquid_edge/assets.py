"""Locate the asset folders (codegen/, firmware_templates/, targets/, and the demo's examples/).

In a wheel they live in ``liquid_edge/_assets/<name>``; in a source checkout (or an editable install) they are
the top-level folders of the repository, next to the package.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from liquid_edge.errors import LiquidEdgeError

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def asset_dir(name: str) -> Path:
    for candidate in (_PACKAGE_DIR / "_assets" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise LiquidEdgeError(
        f"the asset folder '{name}' is missing from this installation",
        "reinstall liquid-edge: pip install --force-reinstall liquid-edge",
    )
