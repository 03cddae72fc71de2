"""Parity of compiled code with what it must compute: the same sequences through the expectation and each backend.

* :func:`expected_outputs` says what every backend must reproduce. For a float build it is the float64
  reference run on the IR saved in ``OUT/model`` (compared within a tolerance); a quantized build returns the
  integer emulator's outputs there with ``bit_exact=True`` (compared for equality).
* :func:`compare` gives per-output max abs error and RMSE and the first (sequence, step, output) outside the
  tolerance; :func:`verify` runs the backends and assembles the report (the ``--json`` of ``liquid-edge verify``).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liquid_edge import ir_io, reference
from liquid_edge.compile import MODEL_DIR, read_manifest
from liquid_edge.data import Sequences, load_sequences, random_sequences
from liquid_edge.errors import ConfigError
from liquid_edge.output import progress
from liquid_edge.report.records import record_verification
from liquid_edge.runners import BACKENDS, Backend

DEFAULT_SEQUENCES = 4
DEFAULT_STEPS = 200
ALL_BACKENDS = "all"


@dataclass(frozen=True)
class Expected:
    """What the backends must reproduce: ``outputs`` (N, T, O); ``bit_exact`` asks for equality."""

    outputs: np.ndarray
    bit_exact: bool
    label: str


def expected_outputs(out_dir: Path, manifest: dict, sequences: Sequences) -> Expected:
    """The float64 reference of the saved IR, from a zero state (float builds); for a quantized build, the
    integer emulator through the float API the backends drive (bit-exact)."""
    if manifest.get("quantization"):
        from liquid_edge.quant import Emulator, load

        emulator = Emulator(load(Path(out_dir) / MODEL_DIR))
        return Expected(emulator.run(sequences.x, sequences.dt).astype(np.float64), bit_exact=True,
                        label=f"{manifest['quantization']['scheme']} integer emulator")
    model = ir_io.load(Path(out_dir) / MODEL_DIR)
    outputs, _ = reference.run(model, sequences.x, sequences.dt)
    return Expected(outputs, bit_exact=False, label="float64 reference")


def verification_sequences(manifest: dict, data: Path | None = None, count: int | None = None,
                           steps: int | None = None, seed: int = 0) -> Sequences:
    """The data file's sequences (the first ``count`` and ``steps`` when given), else random irregular-dt ones."""
    input_size = manifest["summary"]["input_size"]
    if data is not None:
        return load_sequences(data, input_size).take(count, steps)
    return random_sequences(input_size, count or DEFAULT_SEQUENCES, steps or DEFAULT_STEPS, seed=seed)


def resolve_backends(on: str, manifest: dict) -> list[Backend]:
    """``--on`` to backends: a registered name, or ``all`` (every backend that supports this output)."""
    if on == ALL_BACKENDS:
        return [b for b in BACKENDS.values() if b.supports(manifest)]
    if on not in BACKENDS:
        raise ConfigError(f"unknown backend '{on}'", f"use one of {', '.join([*BACKENDS, ALL_BACKENDS])}")
    backend = BACKENDS[on]
    if not backend.supports(manifest):
        raise ConfigError(f"the {on} backend cannot run this output (target {manifest['target']})",
                          "compile for a target it supports, or use --on host")
    return [backend]


def compare(name: str, expected: Expected, actual: np.ndarray, tolerance: float) -> dict:
    """Metrics of ``actual`` against ``expected``; a NaN or Inf where the expectation is finite always fails."""
    if actual.shape != expected.outputs.shape:
        raise ConfigError(f"the {name} backend returned outputs shaped {actual.shape}, "
                          f"expected {expected.outputs.shape}")
    error = np.abs(actual - expected.outputs)
    error[~np.isfinite(error)] = np.inf
    exceeded = ~(error == 0) if expected.bit_exact else ~(error <= tolerance)
    first = np.argwhere(exceeded)
    first_failure = None
    if len(first):
        s, t, o = (int(v) for v in first[0])
        first_failure = {"sequence": s, "step": t, "output": o, "expected": float(expected.outputs[s, t, o]),
                         "actual": float(actual[s, t, o]), "error": _finite_or_none(error[s, t, o])}
    return {
        "backend": name,
        "passed": not len(first),
        "bit_exact": expected.bit_exact,
        "tolerance": 0.0 if expected.bit_exact else tolerance,
        "sequences": int(actual.shape[0]),
        "steps": int(actual.shape[1]),
        "max_abs_error": _finite_or_none(error.max()),
        "rmse": _finite_or_none(np.sqrt(np.mean(error ** 2))),
        "outputs": [{"output": o, "max_abs_error": _finite_or_none(error[..., o].max()),
                     "rmse": _finite_or_none(np.sqrt(np.mean(error[..., o] ** 2)))}
                    for o in range(actual.shape[2])],
        "exceeded": int(np.count_nonzero(exceeded)),
        "first_failure": first_failure,
    }


def _finite_or_none(value: float) -> float | None:
    """JSON has no Inf: a non-finite error is reported as null (and fails)."""
    return float(value) if np.isfinite(value) else None


def verify(out_dir: Path, on: str = "host", data: Path | None = None, count: int | None = None,
           steps: int | None = None, tolerance: float | None = None, save: Path | None = None) -> dict:
    """Run the expectation and the chosen backends on the same sequences; the report of ``liquid-edge verify``."""
    out_dir = Path(out_dir)
    if tolerance is not None and not tolerance >= 0:
        raise ConfigError(f"tolerance must be a non-negative number, got {tolerance}")
    manifest = read_manifest(out_dir)
    backends = resolve_backends(on, manifest)
    sequences = verification_sequences(manifest, data, count, steps)
    shape = f"{sequences.count} sequence(s) x {sequences.steps} steps"
    progress(f"verify: {manifest['c_name']}, {shape} from {sequences.origin}")
    started = time.monotonic()
    expected = expected_outputs(out_dir, manifest, sequences)
    progress(f"verify: {expected.label} done ({time.monotonic() - started:.1f} s)")
    results, runs = [], []
    for backend in backends:
        progress(f"verify: running on {backend.name}")
        started = time.monotonic()
        run = backend.run(out_dir, manifest, sequences)
        progress(f"verify: {run.name} done ({time.monotonic() - started:.1f} s)")
        runs.append(run)
        results.append(compare(run.name, expected, run.outputs,
                               backend.float_tolerance if tolerance is None else tolerance))
        record_verification(out_dir, file_stem(run.name), results[-1], sequences.origin, expected.label,
                            sequences.x, sequences.dt, expected.outputs, run.outputs)
    if save is not None:
        save_arrays(Path(save), sequences, expected, runs)
    extra = {}
    if manifest.get("quantization"):
        from liquid_edge.quant.accuracy import quantization_error

        extra["quantization"] = quantization_error(ir_io.load(out_dir / MODEL_DIR), expected.outputs, sequences)
    return {
        "passed": all(r["passed"] for r in results),
        "out_dir": str(out_dir),
        "model_name": manifest["model_name"],
        "c_name": manifest["c_name"],
        "target": manifest["target"],
        "data": sequences.origin,
        "expected": expected.label,
        "results": results,
        **extra,
    }


def save_arrays(directory: Path, sequences: Sequences, expected: Expected, runs: list) -> None:
    """``inputs.npy``, ``dt.npy`` (ones when the data has none), ``reference.npy`` and ``<backend>.npy``."""
    directory.mkdir(parents=True, exist_ok=True)
    dt = np.ones(sequences.x.shape[:2]) if sequences.dt is None else sequences.dt
    arrays = {"inputs": sequences.x, "dt": dt, "reference": expected.outputs}
    arrays.update({file_stem(run.name): run.outputs for run in runs})
    for stem, array in arrays.items():
        partial = directory / f".{stem}.npy.partial"
        with partial.open("wb") as handle:
            np.save(handle, array)
        os.replace(partial, directory / f"{stem}.npy")


def file_stem(backend_name: str) -> str:
    """A backend label as a file name: ``qemu:cortex-m4`` -> ``qemu_cortex-m4``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", backend_name).strip("_.") or "backend"
