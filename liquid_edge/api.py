"""The public Python API; each function mirrors a CLI command."""

from __future__ import annotations

from pathlib import Path

from liquid_edge.ir import Model


def load(path: str | Path, *, module: str | None = None, mode: str | None = None,
         activation: str | None = None, cli: bool = False) -> Model:
    """Load a checkpoint (state_dict or whole-module pickle, read without executing code) into the IR.
    ``cli`` is for the command line: messages then name ``mode`` and ``activation`` as its options."""
    from liquid_edge.loaders import load_model

    return load_model(Path(path), module=module, mode=mode, activation=activation, cli=cli)


def inspect(model: Model) -> dict:
    """Architecture, parameter count, synapses, MACs per step (dense and sparse), state and I/O sizes."""
    from liquid_edge.analysis import summarize

    return summarize(model)
