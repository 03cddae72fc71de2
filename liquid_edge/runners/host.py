"""Host backend: build the generated library as a shared object with the system C compiler, drive it via ctypes.

The compiler is ``cc`` unless ``CC`` names another one. The shared object goes to ``OUT/build/host/`` and is
rebuilt only when the sources change. Inputs and outputs cross the boundary as float32, exactly what the C API
takes; sequences are run one ``NAME_run`` call each, from the state given (zero by default).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from liquid_edge.data import Sequences
from liquid_edge.errors import BuildError, ToolMissingError
from liquid_edge.runners.base import BackendRun

HOST_CFLAGS = ("-std=c99", "-O2", "-fPIC", "-shared")
_SHARED_SUFFIX = ".dylib" if sys.platform == "darwin" else ".so"


def c_compiler() -> list[str]:
    """The host C compiler command (``CC`` may carry flags, e.g. ``CC="clang -m64"``)."""
    command = shlex.split(os.environ.get("CC", "cc")) or ["cc"]
    if shutil.which(command[0]) is None:
        raise ToolMissingError(f"the C compiler '{command[0]}' is not installed",
                               "install one (Debian: apt-get install gcc) or point CC at it")
    return command


def build_shared_library(sources: list[Path], build_dir: Path, stem: str,
                         extra_flags: tuple[str, ...] = ()) -> Path:
    """Compile and link ``sources`` into ``build_dir/lib<stem>-<hash>.so`` unless that file exists.

    The hash covers the compiler command and the sources, so a changed library gets a new path: a process that
    already loaded the old one (dlopen caches by path) loads the new one instead of the stale copy.
    """
    command = [*c_compiler(), *HOST_CFLAGS, *extra_flags]
    digest = hashlib.sha256("\0".join(command).encode())
    for source in sources:
        digest.update(source.read_bytes())
    output = build_dir / f"lib{stem}-{digest.hexdigest()[:12]}{_SHARED_SUFFIX}"
    if output.is_file():
        return output
    build_dir.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")  # concurrent builds never share it
    command += [*map(str, sources), "-o", str(partial), "-lm"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr.strip())
        raise BuildError(f"the host build failed: {first}", f"command: {' '.join(command)}")
    partial.replace(output)
    return output


class CModel:
    """ctypes binding of one generated library (``c_name``) inside a loaded shared object."""

    def __init__(self, library: ctypes.CDLL, c_name: str, input_size: int, output_size: int, state_size: int):
        self.input_size, self.output_size, self.state_size = input_size, output_size, state_size
        floats = ctypes.POINTER(ctypes.c_float)
        self._state_type = ctypes.c_float * state_size  # NAME_state_t is exactly one float array
        self._run = getattr(library, f"{c_name}_run")
        self._run.argtypes = [ctypes.c_void_p, floats, floats, ctypes.c_size_t, floats]
        self._run.restype = None
        self._set_state = getattr(library, f"{c_name}_set_state")
        self._set_state.argtypes = [ctypes.c_void_p, floats]
        self._get_state = getattr(library, f"{c_name}_get_state")
        self._get_state.argtypes = [ctypes.c_void_p, floats]
        self._reset = getattr(library, f"{c_name}_reset")
        self._reset.argtypes = [ctypes.c_void_p]

    def run(self, x: np.ndarray, dt: np.ndarray | None = None,
            initial_state: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Run sequences ``x`` (N, T, I) with ``dt`` (N, T) or None; returns outputs (N, T, O), states (N, S)."""
        n, steps, _ = x.shape
        x32 = np.ascontiguousarray(x, dtype=np.float32)
        dt32 = None if dt is None else np.ascontiguousarray(dt, dtype=np.float32)
        init32 = None if initial_state is None else np.ascontiguousarray(
            np.broadcast_to(initial_state, (n, self.state_size)), dtype=np.float32)
        outputs = np.empty((n, steps, self.output_size), dtype=np.float32)
        states = np.empty((n, self.state_size), dtype=np.float32)
        state = self._state_type()
        for i in range(n):
            if init32 is None:
                self._reset(ctypes.byref(state))
            else:
                self._set_state(ctypes.byref(state), _pointer(init32[i]))
            self._run(ctypes.byref(state), _pointer(x32[i]), None if dt32 is None else _pointer(dt32[i]), steps,
                      _pointer(outputs[i]))
            self._get_state(ctypes.byref(state), _pointer(states[i]))
        return outputs.astype(np.float64), states.astype(np.float64)


def _pointer(array: np.ndarray):
    return array.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def load_library(path: Path) -> ctypes.CDLL:
    return ctypes.CDLL(str(path.resolve()))


def library_for(out_dir: Path, manifest: dict) -> CModel:
    """Build (if needed) and bind the float library of a compiled output folder."""
    c_name = manifest["c_name"]
    sources = sorted((out_dir / "src").glob("*.c"))
    library = build_shared_library(sources, out_dir / "build" / "host", c_name)
    summary = manifest["summary"]
    return CModel(load_library(library), c_name, summary["input_size"], summary["output_size"],
                  summary["state_size"])


def run(out_dir: Path, manifest: dict, sequences: Sequences) -> BackendRun:
    outputs, states = library_for(out_dir, manifest).run(sequences.x, sequences.dt)
    return BackendRun("host", outputs, states)
