"""Executed instructions per ``step`` on the target core, counted in-process with the unicorn emulator.

The application ELF of ``OUT/firmware`` is loaded as built (its segments at their addresses, ``.data``
initialized), ``NAME_reset`` is called once, then ``NAME_step`` once per sample of a fixed, seeded input sequence
with irregular elapsed times; a code hook counts every executed instruction of each call. Same image, same
inputs: the same count on every run. These are instruction counts, not cycles: a core's cycles per instruction
depend on its pipeline, memory wait states and caches. The peak stack use of a step is measured by painting the
stack before each call.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from elftools.elf.elffile import ELFFile

from liquid_edge import elf_size, firmware
from liquid_edge.data import Sequences, random_sequences
from liquid_edge.errors import BuildError, RunError, ToolMissingError
from liquid_edge.runners import qemu
from liquid_edge.target_catalog import Target

DEFAULT_STEPS = 32
UNICORN_METHOD = "executed instructions counted by the unicorn emulator, per translated block (not cycles)"
QEMU_METHOD = "executed instructions counted from QEMU's log of one-instruction blocks (not cycles)"
#: Where the emulator keeps the call's arguments and the return trap: outside every board's memory map.
_SCRATCH_BASE = 0x70000000
_SCRATCH_SIZE = 0x10000
_RETURN_ADDRESS = _SCRATCH_BASE  # the callee returns here; emulation stops at this address
_STACK_PAINT = 0xA5A5A5A5
_PAGE = 0x1000


@dataclass(frozen=True)
class StepCounts:
    per_step: list[int]        # executed instructions of each NAME_step call, in order
    stack_bytes: int | None    # peak stack use of one call (None: not measured by this method)
    outputs: np.ndarray        # (steps, outputs) what the emulated calls wrote, as float64


def bench(out_dir: Path, manifest: dict, steps: int = DEFAULT_STEPS, seed: int = 0) -> dict:
    """Instruction counts, MACs and memory figures of the compiled output folder (a Cortex-M target)."""
    out_dir = Path(out_dir)
    target = firmware.target_of(manifest)
    library = firmware.library_of(out_dir, manifest)
    elf = firmware.build(firmware.firmware_dir(out_dir), "app")
    memory = elf_size.memory_table(elf, firmware.STATE_SYMBOL)
    parts = {part.key: part for part in memory}
    summary = manifest["summary"]
    macs = {"dense": summary["dense_macs_per_step"], "sparse": summary["sparse_macs_per_step"],
            "executed": summary["executed_macs_per_step"]}
    report = {
        "target": target.core.name, "board": target.board.name, "c_name": library.c_name,
        "method": None, "steps_measured": 0, "instructions_per_step": None, "instructions_per_step_min": None,
        "instructions_per_step_max": None, "instructions_per_mac": None, "stack_bytes_per_step": None,
        "counting_unavailable": None, "macs_per_step": macs,
        "flash_bytes": parts["total"].flash, "ram_bytes": parts["total"].ram,
        "model_flash_bytes": parts["model_weights"].flash + parts["model_code"].flash,
        "model_ram_bytes": parts["model_ram"].ram,
        "memory": elf_size.as_json(memory),
    }
    data = random_sequences(summary["input_size"], 1, steps, seed=seed)
    if target.core.unicorn_cpu is not None:
        method = UNICORN_METHOD
        counts = count_step_instructions(elf, target, library.c_name, data.x[0], data.dt[0],
                                         summary["output_size"])
    elif target.board.qemu_machine is not None and shutil.which(qemu.QEMU) is not None:
        method = QEMU_METHOD
        counts = count_with_qemu_log(out_dir, manifest, target, library, data)
    else:
        report["counting_unavailable"] = (f"{target.core.name} has no in-process emulator model (its core file "
                                          f"names no unicorn_cpu) and board {target.board.name} "
                                          + ("is not emulated by QEMU" if target.board.qemu_machine is None
                                             else f"needs {qemu.QEMU}, which is not installed"))
        return report
    _check_outputs(out_dir, manifest, data, counts.outputs)
    mean = float(np.mean(counts.per_step))
    report.update({
        "method": method,
        "steps_measured": steps, "instructions_per_step": round(mean, 1),
        "instructions_per_step_min": min(counts.per_step), "instructions_per_step_max": max(counts.per_step),
        "instructions_per_mac": round(mean / macs["executed"], 2) if macs["executed"] else None,
        "stack_bytes_per_step": counts.stack_bytes,
    })
    return report


def _check_outputs(out_dir: Path, manifest: dict, data: Sequences, outputs: np.ndarray) -> None:
    """Counts are only meaningful if the emulated code computed the right thing: compare with what ``verify``
    expects (bit-exact builds: equality; float builds: within verify's default tolerance)."""
    from liquid_edge.parity import expected_outputs  # verify imports the backend registry, hence here

    expected = expected_outputs(out_dir, manifest, data)
    error = float(np.max(np.abs(outputs - expected.outputs[0]))) if outputs.size else 0.0
    allowed = expected.tolerance
    if not error <= allowed:
        raise RunError(f"the emulated {outputs.shape[0]} steps differ from the {expected.label} by {error:.3g} "
                       f"(more than {allowed:g}), so their instruction counts are not trustworthy",
                       "run 'liquid-edge verify OUT --on qemu' to find the failing step")


def count_step_instructions(elf_path: Path, target: Target, c_name: str, inputs: np.ndarray, dts: np.ndarray,
                            output_size: int) -> StepCounts:
    """Run ``NAME_reset`` once, then ``NAME_step`` per row of ``inputs``; count each call's instructions.

    Counting is per translated block, its Thumb instructions decoded once. An instruction of an IT block whose
    condition fails counts as executed (it still takes its issue slot); unicorn's per-instruction hook skips
    those, which is why a count with that hook comes out a few instructions lower."""
    try:
        import unicorn
        from unicorn import arm_const
    except ImportError:
        raise ToolMissingError("the unicorn package is not installed, so instructions cannot be counted",
                               "pip install 'liquid-edge[bench]'") from None
    cpu = getattr(arm_const, f"UC_CPU_ARM_{target.core.unicorn_cpu.upper().replace('-', '_')}")
    emu = unicorn.Uc(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_THUMB | unicorn.UC_MODE_MCLASS)
    emu.ctl_set_cpu_model(cpu)
    symbols = _load(emu, elf_path, target)
    for name in (f"{c_name}_reset", f"{c_name}_step", firmware.STATE_SYMBOL, "__stack_top__"):
        if name not in symbols:
            raise BuildError(f"{elf_path} has no symbol {name}", "rebuild the firmware from its generated project")
    emu.mem_map(_SCRATCH_BASE, _SCRATCH_SIZE)
    input_address = _SCRATCH_BASE + 0x100
    output_address = input_address + 4 * inputs.shape[1] + 16
    state_address = symbols[firmware.STATE_SYMBOL]
    stack_top = symbols["__stack_top__"]
    stack_size = target.board.stack_size
    if target.core.fpu:
        _enable_fpu(emu, arm_const)

    executed = 0
    block_sizes: dict[tuple[int, int], int] = {}

    def count_block(emu_, address, size, _):
        # A translated block always runs to its end here (no interrupts), so counting per block is exact and
        # far faster than a callback per instruction.
        nonlocal executed
        key = (address, size)
        if key not in block_sizes:
            block_sizes[key] = thumb_instruction_count(bytes(emu_.mem_read(address, size)))
        executed += block_sizes[key]

    emu.hook_add(unicorn.UC_HOOK_BLOCK, count_block)
    _call(emu, arm_const, symbols[f"{c_name}_reset"], stack_top, [state_address])
    per_step, stack_bytes, outputs = [], 0, []
    for row, dt in zip(np.asarray(inputs, dtype=np.float32), np.asarray(dts, dtype=np.float32)):
        emu.mem_write(input_address, row.tobytes())
        emu.mem_write(stack_top - stack_size, _STACK_PAINT.to_bytes(4, "little") * (stack_size // 4))
        dt_bits = int(np.float32(dt).view(np.uint32))
        executed = 0
        if target.core.hard_float:
            emu.reg_write(arm_const.UC_ARM_REG_S0, dt_bits)
            _call(emu, arm_const, symbols[f"{c_name}_step"], stack_top, [state_address, input_address,
                                                                        output_address])
        else:
            _call(emu, arm_const, symbols[f"{c_name}_step"], stack_top, [state_address, input_address, dt_bits,
                                                                        output_address])
        per_step.append(executed)
        outputs.append(np.frombuffer(bytes(emu.mem_read(output_address, 4 * output_size)), dtype=np.float32))
        stack_bytes = max(stack_bytes, _stack_used(emu.mem_read(stack_top - stack_size, stack_size)))
    return StepCounts(per_step, stack_bytes, np.array(outputs, dtype=np.float64))


def count_with_qemu_log(out_dir: Path, manifest: dict, target: Target, library: firmware.Library,
                        data: Sequences) -> StepCounts:
    """For cores unicorn does not model: run the bench driver under QEMU, one instruction per translation block,
    with every block execution logged; a step is what runs between a pair of ``le_bench_mark`` calls outside
    ``main``. The driver also measures the peak stack of a step. Built in a temporary copy of the project."""
    from liquid_edge.parity import expected_outputs  # verify imports the backend registry, hence here

    expected = expected_outputs(out_dir, manifest, data).outputs
    with tempfile.TemporaryDirectory(prefix="liquid-edge-bench-") as tmp:
        copy = Path(tmp)
        shutil.copytree(out_dir / "src", copy / "src")
        shutil.copytree(firmware.firmware_dir(out_dir), copy / "firmware", ignore=shutil.ignore_patterns("build"))
        firmware.write_bench_program(copy / "firmware", library, target,
                                     firmware.ParityData(data.x, data.dt, expected))
        elf = firmware.build(copy / "firmware", "bench")
        log = copy / "exec.log"
        _, console = qemu.run_image(elf, target.board.qemu_machine, qemu.timeout(),
                                    (*_one_instruction_per_block(), "-d", "exec,nochain", "-D", str(log)))
        outputs, _ = qemu.parse_console(console, expected.shape, manifest["summary"]["state_size"])
        ranges = _function_ranges(elf, ("le_bench_mark", "main"))
        per_step = _steps_in_log(log, ranges["le_bench_mark"], ranges["main"])
    stack = re.search(r"^K (\d+)$", console, re.MULTILINE)
    if len(per_step) != data.steps:
        raise RunError(f"the QEMU log of the bench driver shows {len(per_step)} steps, expected {data.steps}",
                       f"check that {qemu.QEMU} supports -d exec,nochain")
    return StepCounts(per_step, int(stack[1]) if stack else None, outputs[0])


def _one_instruction_per_block() -> tuple[str, ...]:
    # QEMU 8.1 replaced -singlestep by an accelerator property (and later removed -singlestep).
    version = subprocess.run([qemu.QEMU, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"version (\d+)\.(\d+)", version)
    if match and (int(match[1]), int(match[2])) >= (8, 1):
        return ("-accel", "tcg,one-insn-per-tb=on")
    return ("-singlestep",)


def _function_ranges(elf_path: Path, names: tuple[str, ...]) -> dict[str, range]:
    with open(elf_path, "rb") as handle:
        table = ELFFile(handle).get_section_by_name(".symtab")
        found = {sym.name: range(sym["st_value"] & ~1, (sym["st_value"] & ~1) + sym["st_size"])
                 for sym in table.iter_symbols() if sym.name in names and sym["st_info"]["type"] == "STT_FUNC"}
    missing = [name for name in names if name not in found]
    if missing:
        raise BuildError(f"{elf_path} has no function {', '.join(missing)}", "rebuild the bench driver")
    return found


def _steps_in_log(log: Path, mark: range, driver: range) -> list[int]:
    """Instructions per step from QEMU's ``Trace ... [cs_base/pc/flags/cflags] symbol`` lines: the marks come in
    pairs around each step; the driver's own instructions (argument set-up, the call) are left out."""
    per_step: list[int] = []
    inside = in_mark = False
    current = 0
    with open(log, errors="replace") as handle:
        for line in handle:
            if not line.startswith("Trace"):
                continue
            pc = int(line.split("[", 1)[1].split("/")[1], 16)
            if pc in mark:
                if not in_mark:  # the first instruction of a mark call
                    if inside:
                        per_step.append(current)
                    inside, current = not inside, 0
                in_mark = True
                continue
            in_mark = False
            if inside and pc not in driver:
                current += 1
    return per_step


def thumb_instruction_count(code: bytes) -> int:
    """Number of Thumb instructions in ``code``: a halfword starting 0b11101, 0b11110 or 0b11111 opens a
    32-bit instruction, any other is a 16-bit one."""
    count = offset = 0
    while offset < len(code):
        first = code[offset] | code[offset + 1] << 8
        offset += 4 if first >> 11 in (0b11101, 0b11110, 0b11111) else 2
        count += 1
    return count


def _load(emu, elf_path: Path, target: Target) -> dict[str, int]:
    """Map the board's flash and RAM, copy the ELF's loadable segments in; return the symbol addresses."""
    for region in (target.board.flash, target.board.ram):
        start = region.origin & ~(_PAGE - 1)
        emu.mem_map(start, -(-(region.end - start) // _PAGE) * _PAGE)
    with open(elf_path, "rb") as handle:
        elf = ELFFile(handle)
        for segment in elf.iter_segments():
            if segment["p_type"] == "PT_LOAD" and segment["p_filesz"]:
                # At its run address: .data starts out initialized, as after the reset handler's copy.
                emu.mem_write(segment["p_vaddr"], segment.data())
        table = elf.get_section_by_name(".symtab")
        return {sym.name: sym["st_value"] & ~1 for sym in table.iter_symbols() if sym.name}


def _enable_fpu(emu, arm_const) -> None:
    # What the reset handler does first: CPACR gives full access to coprocessors 10 and 11.
    emu.reg_write(arm_const.UC_ARM_REG_C1_C0_2, emu.reg_read(arm_const.UC_ARM_REG_C1_C0_2) | (0xF << 20))


def _call(emu, arm_const, function: int, stack_top: int, arguments: list[int]) -> None:
    import unicorn
    for register, value in zip((arm_const.UC_ARM_REG_R0, arm_const.UC_ARM_REG_R1, arm_const.UC_ARM_REG_R2,
                                arm_const.UC_ARM_REG_R3), arguments):
        emu.reg_write(register, value)
    emu.reg_write(arm_const.UC_ARM_REG_SP, stack_top)
    emu.reg_write(arm_const.UC_ARM_REG_LR, _RETURN_ADDRESS | 1)
    try:
        emu.emu_start(function | 1, _RETURN_ADDRESS)
    except unicorn.UcError as exc:
        pc = emu.reg_read(arm_const.UC_ARM_REG_PC)
        raise RunError(f"the emulated call at 0x{function:08x} stopped at pc 0x{pc:08x}: {exc}",
                       "an access outside the board's memory usually means the stack overflowed: compare the "
                       "model's scratch bytes with the board's stack_size") from None


def _stack_used(stack: bytes) -> int:
    words = np.frombuffer(bytes(stack), dtype=np.uint32)
    touched = np.flatnonzero(words != _STACK_PAINT)
    return 0 if touched.size == 0 else int((words.size - touched[0]) * 4)
