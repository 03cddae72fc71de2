"""Execution backends of ``liquid-edge verify``: name -> :class:`Backend`.

A backend module registers itself here with one line. ``verify --on NAME`` looks the name up; ``--on all`` runs
every backend whose ``supports(manifest)`` is true for the output folder.
"""

from __future__ import annotations

from liquid_edge.runners import host, qemu
from liquid_edge.runners.base import Backend, BackendRun

BACKENDS: dict[str, Backend] = {
    "host": Backend("host", host.run, supports=lambda manifest: True, float_tolerance=1e-5),
    "qemu": Backend("qemu", qemu.run, supports=qemu.supports, float_tolerance=qemu.FLOAT_TOLERANCE),
}

__all__ = ["BACKENDS", "Backend", "BackendRun"]
