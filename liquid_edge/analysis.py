"""Architecture, parameter, synapse and MAC figures of a model (what ``liquid-edge inspect`` reports).

Counting rules (also in docs/loading.md):

* parameters: every weight, bias, ``w_tau`` and ``A`` of the IR; sparsity masks are not parameters. "stored" is
  what the checkpoint holds, "effective" leaves out the weights under a zero mask entry;
* synapses: the set entries of the wired cells' sparsity masks (one mask per layer, shared by ff1 and ff2,
  including ncps's all-ones block from a layer to itself); ``None`` for dense models;
* MACs per step: one multiply-accumulate per weight of every linear layer run in a step: backbone layers, the
  CfC heads, the LSTM input and recurrent maps and the output projection. "sparse" skips masked-out weights.
  Element-wise work (activations, the gate arithmetic, ``time_a * dt``) is not counted.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from liquid_edge.ir import CfCCell, Linear, Model


def summarize(model: Model) -> dict:
    """A JSON-ready description of ``model``: architecture, sizes, parameters, synapses, MACs per step."""
    layers = [_layer_figures(name, layer) for name, layer in model.linears()]
    stored = sum(row["parameters"] for row in layers) + sum(_time_constant_count(cell) for cell in model.cells)
    masked_out = sum(row["masked_out"] for row in layers)
    synapses = [_synapse_count(cell) for cell in model.cells]
    return {
        "name": model.name,
        "source": None if model.source is None else asdict(model.source),
        "architecture": {
            "kind": model.kind,
            "mode": model.mode,
            "wiring": None if model.wiring is None else model.wiring.kind,
            "cells": [_cell_summary(name, cell, count)
                      for name, cell, count in zip(_cell_names(model), model.cells, synapses)],
            "mixed_memory": model.memory is not None,
            "projection": None if model.projection is None else {
                "in": model.projection.in_features, "out": model.projection.out_features},
        },
        "input_size": model.input_size,
        "output_size": model.output_size,
        "hidden_size": model.hidden_size,
        "state_size": model.state_size,
        "parameters": {"stored": stored, "effective": stored - masked_out},
        "synapses": None if model.wiring is None else sum(synapses),
        "macs_per_step": {"dense": sum(row["macs_dense"] for row in layers),
                          "sparse": sum(row["macs_sparse"] for row in layers)},
        "layers": layers,
    }


def _cell_names(model: Model) -> tuple[str, ...]:
    return model.wiring.layer_names if model.wiring is not None else ("cfc",)


def _cell_summary(name: str, cell: CfCCell, synapses: int | None) -> dict:
    return {
        "name": name,
        "input_size": cell.input_size,
        "units": cell.units,
        "backbone_units": [layer.out_features for layer in cell.backbone],
        "activation": cell.activation if cell.backbone else None,
        "synapses": synapses,
    }


def _synapse_count(cell: CfCCell) -> int | None:
    return None if cell.ff1.mask is None else int(np.count_nonzero(cell.ff1.mask))


def _time_constant_count(cell: CfCCell) -> int:
    return 0 if cell.mode != "pure" else cell.w_tau.size + cell.A.size


def _layer_figures(name: str, layer: Linear) -> dict:
    return {
        "name": name,
        "in": layer.in_features,
        "out": layer.out_features,
        "parameters": layer.parameter_count,
        "masked_out": layer.dense_macs - layer.sparse_macs,
        "macs_dense": layer.dense_macs,
        "macs_sparse": layer.sparse_macs,
    }
