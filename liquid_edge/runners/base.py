"""What every execution backend (host, QEMU, ...) provides and returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from liquid_edge.data import Sequences


@dataclass(frozen=True)
class BackendRun:
    """Outputs of compiled code for a batch of sequences.

    ``name`` labels the result in reports and names its ``--save`` file; it may be more specific than the backend
    (``qemu:cortex-m4``). ``outputs`` is (N, T, O), ``final_states`` (N, S), both float64 copies of what the C
    code produced.
    """

    name: str
    outputs: np.ndarray
    final_states: np.ndarray


@dataclass(frozen=True)
class Backend:
    """One way of running a compiled output folder.

    ``run(out_dir, manifest, sequences)`` returns a :class:`BackendRun` (zero initial state, the manifest's build).
    ``supports(manifest)`` tells whether this backend can run that output (``verify --on all`` runs every backend
    that does). ``float_tolerance`` is the default max abs error against the float64 reference for float builds.
    """

    name: str
    run: Callable[[Path, dict, Sequences], BackendRun]
    supports: Callable[[dict], bool]
    float_tolerance: float
