"""QEMU backend: the parity firmware of the compiled target, run under qemu-system-arm.

The test sequences and the expected outputs (what ``verify`` compares with, rounded to float32) are compiled
into the image (``parity_data.c``, constant in flash). The image checks every output itself and prints every
output and final state as raw hex bit patterns; this module reads those back exactly, so ``verify`` computes its
metrics from the numbers the target produced. Sequences that do not fit the board's flash are split over several images.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Callable

import numpy as np

from liquid_edge import firmware
from liquid_edge.data import Sequences
from liquid_edge.elf_size import memory_table
from liquid_edge.errors import ConfigError, RunError, ToolMissingError
from liquid_edge.output import Meter
from liquid_edge.runners.base import BackendRun
from liquid_edge.target_catalog import Target, load_catalog

QEMU = "qemu-system-arm"
QEMU_INSTALL_HINT = "apt-get install --no-install-recommends qemu-system-arm"
TIMEOUT_ENV = "LIQUID_EDGE_QEMU_TIMEOUT"
DEFAULT_TIMEOUT_S = 120.0
#: Flash kept free besides the application image when packing sequences (the parity main is a little larger).
_FLASH_MARGIN = 8 * 1024


def unsupported(manifest: dict) -> str | None:
    """Why QEMU cannot run this output (None: it can): a host build, or a board that QEMU does not emulate."""
    if not manifest.get("firmware"):
        return f"it is compiled for {manifest.get('target', 'host')}, not for a Cortex-M board"
    board = firmware.target_of(manifest).board
    if board.qemu_machine is None:
        emulated = sorted(b.name for b in load_catalog().boards.values() if b.qemu_machine is not None)
        return (f"board {board.name} is not emulated by QEMU (emulated boards: {', '.join(emulated)}; "
                "see 'liquid-edge targets')")
    return None


def run(out_dir: Path, manifest: dict, sequences: Sequences) -> BackendRun:
    out_dir = Path(out_dir)
    target = firmware.target_of(manifest)
    if target.board.qemu_machine is None:
        raise ConfigError(f"board {target.board.name} is not emulated by QEMU",
                          "compile for a board with a [qemu] machine (see 'liquid-edge targets')")
    from liquid_edge.parity import expected_outputs  # verify imports the backend registry, hence here

    library = firmware.library_of(out_dir, manifest)
    expected = expected_outputs(out_dir, manifest, sequences)
    # The image checks itself too: bit-exact builds for equality, float builds within verify's default tolerance.
    data = firmware.ParityData(sequences.x, sequences.dt, expected.outputs, atol=expected.tolerance,
                               exact=expected.bit_exact)
    fw_dir = firmware.firmware_dir(out_dir)
    name = f"qemu:{target.core.name}"
    meter = Meter(f"verify: {name}", sequences.count, "sequences")
    finished = 0

    def count_sequences(line: str) -> None:
        nonlocal finished
        if line.startswith("S "):  # the final state closes a sequence
            finished += 1
            meter.update(finished)

    outputs, states = [], []
    for chunk in _chunks(fw_dir, target, data):
        part = data.select(chunk)
        firmware.write_parity_program(fw_dir, library, target, part)
        elf = firmware.build(fw_dir, "parity")
        _, console = run_image(elf, target.board.qemu_machine, timeout(), on_line=count_sequences)
        chunk_outputs, chunk_states = parse_console(console, part.expected.shape, manifest["summary"]["state_size"])
        outputs.append(chunk_outputs)
        states.append(chunk_states)
    return BackendRun(name, np.concatenate(outputs), np.concatenate(states))


def timeout() -> float:
    value = os.environ.get(TIMEOUT_ENV, "")
    try:
        return float(value) if value else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ConfigError(f"{TIMEOUT_ENV}={value!r} is not a number of seconds") from None


def run_image(elf: Path, machine: str, timeout_s: float, extra_args: tuple[str, ...] = (),
              on_line: Callable[[str], None] | None = None) -> tuple[int, str]:
    """Run a firmware image to its semihosting exit; return (exit code, console text). Never hangs: the image is
    stopped once it has printed nothing for ``timeout_s`` seconds (a long run that keeps printing goes on).
    ``on_line`` sees each console line as it arrives."""
    if shutil.which(QEMU) is None:
        raise ToolMissingError(f"{QEMU} is not installed", f"install it: {QEMU_INSTALL_HINT}")
    command = [QEMU, "-M", machine, "-display", "none", "-monitor", "none", "-serial", "stdio",
               "-semihosting-config", "enable=on,target=native", *extra_args, "-kernel", str(elf)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    lines: queue.Queue = queue.Queue()
    # Semihosting text arrives on QEMU's stderr, UART text on its stdout: one reader thread per pipe.
    texts: dict[int, list[str]] = {1: [], 2: []}
    for key, pipe in ((1, process.stdout), (2, process.stderr)):
        threading.Thread(target=_read_lines, args=(pipe, key, lines), daemon=True).start()
    open_pipes = len(texts)
    try:
        while open_pipes:
            try:
                key, line = lines.get(timeout=timeout_s)
            except queue.Empty:
                raise RunError(f"{elf.name} printed nothing for {timeout_s:g} s under {QEMU} -M {machine}",
                               f"the firmware hangs; if it only computes for long between lines, set "
                               f"{TIMEOUT_ENV} to more seconds") from None
            if line is None:
                open_pipes -= 1
                continue
            texts[key].append(line)
            if on_line is not None:
                on_line(line)
        return process.wait(), "".join(texts[1]) + "".join(texts[2])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _read_lines(pipe, key: int, lines: queue.Queue) -> None:
    with pipe:
        for line in pipe:
            lines.put((key, line))
    lines.put((key, None))


def parse_console(text: str, expected_shape: tuple[int, int, int], state_size: int,
                  integer_outputs: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Read the Y (outputs) and S (final state) lines of a parity run back into float64 arrays.

    Outputs are float32 bit patterns, or with ``integer_outputs`` (an integer API under test) 32-bit two's
    complement integers; states are always float32."""
    sequences, steps, width = expected_shape
    outputs = np.full((sequences, steps, width), np.nan)
    states = np.full((sequences, state_size), np.nan)
    reported = np.zeros((sequences, steps), dtype=bool)
    finished = False
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "fault:":
            raise RunError(f"the parity firmware stopped with '{line.strip()}'",
                           "check that the model's scratch bytes plus call frames fit the board's stack_size; if "
                           "they do, the generated code misbehaves on this core")
        if fields[:2] == ["qemu:", "fatal:"]:
            # e.g. "Lockup: can't escalate 3 to HardFault": a fault while the stack is unusable (an overflow).
            raise RunError(f"the parity firmware crashed the emulated core ('{line.strip()}')",
                           "a lockup usually means the stack overflowed: compare the model's scratch bytes with "
                           "the board's stack_size")
        if fields[0] == "Y" and len(fields) == 3 + width:
            words = fields[3:]
            outputs[int(fields[1]), int(fields[2])] = _integers(words) if integer_outputs else _floats(words)
            reported[int(fields[1]), int(fields[2])] = True
        elif fields[0] == "S" and len(fields) == 2 + state_size:
            states[int(fields[1])] = _floats(fields[2:])
        elif fields[0] == "E":
            finished = True
    missing = int((~reported).sum())
    if not finished or missing:
        raise RunError(f"the parity firmware ended early ({sequences * steps - missing} of {sequences * steps} "
                       "steps reported)",
                       "look at the console output with 'make -C OUT/firmware run-parity'")
    return outputs, states


def _floats(hex_words: list[str]) -> np.ndarray:
    return np.array([int(word, 16) for word in hex_words], dtype=np.uint32).view(np.float32).astype(np.float64)


def _integers(hex_words: list[str]) -> np.ndarray:
    return np.array([int(word, 16) for word in hex_words], dtype=np.uint32).view(np.int32).astype(np.float64)


def _chunks(fw_dir: Path, target: Target, data: firmware.ParityData) -> list[slice]:
    """Split the sequences into images that fit the board's flash next to the firmware itself."""
    app = memory_table(firmware.build(fw_dir, "app"), firmware.STATE_SYMBOL)[-1]
    budget = target.board.flash.length - app.flash - _FLASH_MARGIN
    per_image = budget // data.bytes_per_sequence
    if per_image < 1:
        raise ConfigError(f"one test sequence needs {data.bytes_per_sequence:,} bytes of flash but board "
                          f"{target.board.name} has {max(budget, 0):,} left next to the firmware",
                          "verify with fewer steps per sequence, or pick a board with more flash")
    count = data.inputs.shape[0]
    return [slice(start, start + per_image) for start in range(0, count, per_image)]
