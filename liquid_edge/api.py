"""The public Python API. Each function mirrors the CLI command of the same name, takes its options as keywords
and returns what the command's ``--json`` prints; problems raise :class:`liquid_edge.errors.LiquidEdgeError`
(the CLI prints those as one line). Notebooks and test suites drive the toolchain through it, no subprocess::

    import liquid_edge as le
    model = le.load("model.pt")
    le.compile(model, "out", target="cortex-m4", quantize="int8", calibration="data.npz")
    assert le.verify("out", on="all", data="test.npz")["passed"]
"""

from __future__ import annotations

from pathlib import Path

from liquid_edge.ir import Model

PathLike = str | Path


def load(path: PathLike, *, module: str | None = None, mode: str | None = None,
         activation: str | None = None, cli: bool = False) -> Model:
    """Load a checkpoint (state_dict or whole-module pickle, read without executing code) into the IR.
    ``cli`` is for the command line: messages then name ``mode`` and ``activation`` as its options."""
    from liquid_edge.loaders import load_model

    return load_model(Path(path), module=module, mode=mode, activation=activation, cli=cli)


def inspect(model: Model) -> dict:
    """Architecture, parameter count, synapses, MACs per step (dense and sparse), state and I/O sizes."""
    from liquid_edge.analysis import summarize

    return summarize(model)


def compile(model: Model | PathLike, out_dir: PathLike, *, target: str = "host", board: str | None = None,
            name: str | None = None, sparse: bool = True, force: bool = False, quantize: str | None = None,
            calibration: PathLike | None = None, calibration_method: str | None = None,
            state_bits: int | None = None) -> dict:
    """Compile ``model`` (the IR, or a checkpoint path loaded with :func:`load`'s defaults) into ``out_dir``;
    returns the manifest. ``quantize`` is a scheme (int8, a16w8, pow2) and then needs ``calibration``: a data
    file, or ``"random"``; ``calibration_method`` (default percentile) and ``state_bits`` (default 16) apply to
    quantized builds only."""
    from liquid_edge.compiler import CompileOptions, compile_model

    if not isinstance(model, Model):
        model = load(model)
    return compile_model(model, Path(out_dir), CompileOptions(
        target=target, board=board, name=name, sparse=sparse, force=force, quantize=quantize,
        calibration=None if calibration is None else str(calibration), calibration_method=calibration_method,
        state_bits=state_bits))


def verify(out_dir: PathLike, *, on: str = "host", data: PathLike | None = None, sequences: int | None = None,
           steps: int | None = None, tolerance: float | None = None, save: PathLike | None = None) -> dict:
    """Parity of the compiled code in ``out_dir`` with the reference (float builds) or the integer emulator
    (quantized builds, bit-exact); ``report["passed"]`` is the verdict."""
    from liquid_edge.parity import verify as run_verify

    return run_verify(Path(out_dir), on=on, data=None if data is None else Path(data), count=sequences,
                      steps=steps, tolerance=tolerance, save=None if save is None else Path(save))


def bench(out_dir: PathLike, *, steps: int | None = None) -> dict:
    """Executed instructions per step on the target core (deterministic), MACs, flash and RAM."""
    from liquid_edge.benchmark import DEFAULT_STEPS, bench as run_bench
    from liquid_edge.compiler import read_manifest

    return run_bench(Path(out_dir), read_manifest(Path(out_dir)), steps=DEFAULT_STEPS if steps is None else steps)


def report(out_dir: PathLike, page: PathLike, *, fmt: str | None = None) -> dict:
    """Write the report page of ``out_dir`` (HTML, or Markdown for a ``.md`` page or ``fmt="md"``); returns its
    figures, with ``files`` the paths written (the page first)."""
    from liquid_edge.reporting.collect import collect
    from liquid_edge.reporting.render import format_for, write

    collected = collect(Path(out_dir))
    written = write(collected, Path(page), format_for(Path(page), fmt))
    return dict(collected.data, files=[str(p) for p in written])


def targets() -> dict:
    """The cores and boards that ``compile`` accepts, with their features, memory maps and QEMU machines."""
    from liquid_edge.target_catalog import describe_catalog, load_catalog

    return describe_catalog(load_catalog())


def demo(output: PathLike | None = None, *, quick: bool = False) -> dict:
    """The main job on the shipped examples: float32 and int8 builds for a Cortex-M4, verified under QEMU."""
    from liquid_edge.demo_run import run

    return run(None if output is None else Path(output), quick=quick)
