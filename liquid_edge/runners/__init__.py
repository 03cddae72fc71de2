"""Execution backends of ``liquid-edge verify``: name -> :class:`Backend`.

A backend module registers itself here with one line. ``verify --on NAME`` looks the name up; ``--on all`` runs
every backend whose ``unsupported(manifest)`` gives no reason against the output folder.
"""

from __future__ import annotations

from liquid_edge.runners import host, qemu
from liquid_edge.runners.base import Backend, BackendRun

BACKENDS: dict[str, Backend] = {
    "host": Backend("host", host.run, unsupported=lambda manifest: None),
    "qemu": Backend("qemu", qemu.run, unsupported=qemu.unsupported),
}

__all__ = ["BACKENDS", "Backend", "BackendRun"]
