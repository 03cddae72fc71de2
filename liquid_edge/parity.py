"""Parity of compiled code with what it must compute: the same sequences through the expectation and each backend.

* :func:`expected_outputs` says what every backend must reproduce. For a float build it is the float64
  reference run on the IR saved in ``OUT/model``, compared within a tolerance derived from the float32 noise
  floor of the model on these sequences (:func:`noise_floor`); a quantized build returns the integer
  emulator's outputs there with ``bit_exact=True`` (compared for equality).
* :func:`compare` gives per-output max abs error and RMSE and the first (sequence, step, output) outside the
  tolerance; :func:`verify` runs the backends and assembles the report (the ``--json`` of ``liquid-edge verify``).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from liquid_edge import ir_io, reference
from liquid_edge.compiler import MODEL_DIR, read_manifest
from liquid_edge.data import Sequences, check_shape, load_sequences, random_sequences
from liquid_edge.errors import ConfigError, ToolMissingError
from liquid_edge.ir import Model
from liquid_edge.output import progress
from liquid_edge.reporting.records import record_verification
from liquid_edge.runners import BACKENDS, Backend

DEFAULT_SEQUENCES = 4
DEFAULT_STEPS = 200
ALL_BACKENDS = "all"
#: The default tolerance of a float build is NOISE_FLOOR_FACTOR times the float32 noise floor of the model on
#: the verification data, and at least MIN_FLOAT_TOLERANCE (docs/numerics-float.md measures both choices).
NOISE_FLOOR_FACTOR = 4
MIN_FLOAT_TOLERANCE = 1e-5
NOISE_FLOOR_BASIS = f"float32 noise floor x {NOISE_FLOOR_FACTOR}"
USER_BASIS = "user"
BIT_EXACT_BASIS = "bit-exact"
#: A noise floor above this share of the largest |output| means that float32 rounding alone changes the results
#: (a recurrence that amplifies rounding, e.g. a model run far beyond its training length): then no tolerance
#: separates faults from rounding, and verify says so.
AMPLIFIED_SHARE = 0.01
#: Written into a --save folder: the files of our previous save, which a new save may replace.
SAVE_MARKER = ".liquid-edge-verify.json"


@dataclass(frozen=True)
class Expected:
    """What the backends must reproduce: ``outputs`` (N, T, O); ``bit_exact`` asks for equality, else the outputs
    may differ by ``tolerance``, derived from ``noise_floor`` (see :func:`noise_floor`)."""

    outputs: np.ndarray
    bit_exact: bool
    label: str
    noise_floor: float | None = None

    @property
    def tolerance(self) -> float:
        """The default max abs error: NOISE_FLOOR_FACTOR x the noise floor, at least MIN_FLOAT_TOLERANCE (0 for a
        bit-exact build). A fault (a wrong weight, a wrong state) moves outputs far more than rounding does."""
        if self.bit_exact:
            return 0.0
        return max(MIN_FLOAT_TOLERANCE, NOISE_FLOOR_FACTOR * (self.noise_floor or 0.0))

    @property
    def tolerance_basis(self) -> str:
        return BIT_EXACT_BASIS if self.bit_exact else NOISE_FLOOR_BASIS


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
    return Expected(outputs, bit_exact=False, label="float64 reference",
                    noise_floor=noise_floor(model, sequences, outputs))


def noise_floor(model: Model, sequences: Sequences, reference64: np.ndarray) -> float:
    """Max |float32 evaluation - float64 reference| of the same formulas on these sequences: how far float32
    arithmetic alone lands from the reference, for this model's weights and this data's scale. Outputs that
    overflow in float32 are left out (they tell nothing about rounding)."""
    reference32, _ = reference.run(model, sequences.x, sequences.dt, dtype=np.float32)
    error = np.abs(reference32 - reference64)
    finite = error[np.isfinite(error)]
    return float(finite.max()) if finite.size else 0.0


def verification_sequences(manifest: dict, data: Path | None = None, count: int | None = None,
                           steps: int | None = None, seed: int = 0) -> Sequences:
    """The data file's sequences (the first ``count`` and ``steps`` when given), else random irregular-dt ones."""
    input_size = manifest["summary"]["input_size"]
    check_shape(count, steps)
    if data is not None:
        return load_sequences(data, input_size).take(count, steps)
    return random_sequences(input_size, DEFAULT_SEQUENCES if count is None else count,
                            DEFAULT_STEPS if steps is None else steps, seed=seed)


def resolve_backends(on: str, manifest: dict) -> tuple[list[Backend], list[dict]]:
    """``--on`` to backends: a registered name, or ``all`` (every backend that can run this output). Returns the
    backends to run and those ``all`` skips, as ``{"backend", "reason"}``."""
    if on == ALL_BACKENDS:
        reasons = {name: backend.unsupported(manifest) for name, backend in BACKENDS.items()}
        return ([BACKENDS[name] for name, reason in reasons.items() if reason is None],
                [{"backend": name, "reason": reason} for name, reason in reasons.items() if reason is not None])
    if on not in BACKENDS:
        raise ConfigError(f"unknown backend '{on}'", f"use one of {', '.join([*BACKENDS, ALL_BACKENDS])}")
    reason = BACKENDS[on].unsupported(manifest)
    if reason is not None:
        raise ConfigError(f"the {on} backend cannot run this output: {reason}",
                          "compile for a target it runs, listed by 'liquid-edge targets'; or use --on host")
    return [BACKENDS[on]], []


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
    backends, skipped = resolve_backends(on, manifest)
    for entry in skipped:
        progress(f"verify: skipping {entry['backend']}: {entry['reason']}")
    sequences = verification_sequences(manifest, data, count, steps)
    if save is not None:
        check_save_folder(Path(save), ["inputs", "dt", "reference"])
    shape = f"{sequences.count} sequence(s) x {sequences.steps} steps"
    progress(f"verify: {manifest['c_name']}, {shape} from {sequences.origin}")
    started = time.monotonic()
    expected = expected_outputs(out_dir, manifest, sequences)
    progress(f"verify: {expected.label} done ({time.monotonic() - started:.1f} s)")
    _warn_when_rounding_dominates(expected)
    basis = expected.tolerance_basis if tolerance is None or expected.bit_exact else USER_BASIS
    tolerance = expected.tolerance if tolerance is None else tolerance
    results, runs = [], []
    for backend in backends:
        progress(f"verify: running on {backend.name}")
        started = time.monotonic()
        try:
            run = backend.run(out_dir, manifest, sequences)
        except ToolMissingError as missing:
            # --on all verifies on what this machine has; a backend asked for by name must run.
            if on != ALL_BACKENDS or (not results and backend is backends[-1]):
                raise
            progress(f"verify: skipping {backend.name}: {missing.one_line()}")
            skipped.append({"backend": backend.name, "reason": missing.one_line()})
            continue
        progress(f"verify: {run.name} done ({time.monotonic() - started:.1f} s)")
        runs.append(run)
        results.append(compare(run.name, expected, run.outputs, tolerance) | {"tolerance_basis": basis})
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
        "float32_noise_floor": expected.noise_floor,
        "results": results,
        "skipped": skipped,
        **extra,
    }


def _warn_when_rounding_dominates(expected: Expected) -> None:
    scale = float(np.max(np.abs(expected.outputs), initial=0.0))
    if expected.noise_floor is not None and expected.noise_floor > AMPLIFIED_SHARE * scale:
        progress(f"verify: warning: float32 rounding alone moves the outputs by up to {expected.noise_floor:.2g} "
                 f"(largest |output| {scale:.2g}): the model amplifies rounding on this data, so the default "
                 "tolerance cannot separate faults from it; verify on shorter sequences or typical data")


def save_arrays(directory: Path, sequences: Sequences, expected: Expected, runs: list) -> None:
    """``inputs.npy``, ``dt.npy`` (ones when the data has none), ``reference.npy`` and ``<backend>.npy``, and
    SAVE_MARKER listing them (the files a later save may replace)."""
    dt = np.ones(sequences.x.shape[:2]) if sequences.dt is None else sequences.dt
    arrays = {"inputs": sequences.x, "dt": dt, "reference": expected.outputs}
    arrays.update({file_stem(run.name): run.outputs for run in runs})
    check_save_folder(directory, list(arrays))
    names = [f"{stem}.npy" for stem in arrays]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        # The marker first: files of an interrupted save are still recognised as ours.
        ours = {name for name in _previous_save(directory) if (directory / name).exists()} | set(names)
        (directory / SAVE_MARKER).write_text(json.dumps({"files": sorted(ours)}) + "\n")
        for stem, array in arrays.items():
            partial = directory / f".{stem}.npy.partial"
            with partial.open("wb") as handle:
                np.save(handle, array)
            os.replace(partial, directory / f"{stem}.npy")
    except OSError as exc:
        raise ConfigError(f"cannot save the arrays in {directory}: {exc.strerror or exc}",
                          "pass a writable folder to --save") from None


def check_save_folder(directory: Path, stems: list[str]) -> None:
    """--save writes into a new folder or next to other files, never over a file it did not write."""
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--save {directory} exists and is not a folder", "pass a new or existing folder")
    clashes = sorted(f"{stem}.npy" for stem in stems if (directory / f"{stem}.npy").exists()
                     and f"{stem}.npy" not in _previous_save(directory))
    if clashes:
        raise ConfigError(f"--save {directory} already holds {', '.join(clashes)}, not written by liquid-edge verify",
                          "pass another folder to --save, or move those files")


def _previous_save(directory: Path) -> set[str]:
    """The files a previous save listed in its marker (none when there is no readable marker)."""
    try:
        files = json.loads((directory / SAVE_MARKER).read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {name for name in files if isinstance(name, str)} if isinstance(files, list) else set()


def file_stem(backend_name: str) -> str:
    """A backend label as a file name: ``qemu:cortex-m4`` -> ``qemu_cortex-m4``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", backend_name).strip("_.") or "backend"
