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
    ``unsupported(manifest)`` says why this backend cannot run that output, or None when it can (``verify --on
    all`` runs every backend that can and reports the others with that reason).
    """

    name: str
    run: Callable[[Path, dict, Sequences], BackendRun]
    unsupported: Callable[[dict], str | None]
