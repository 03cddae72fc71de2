"""Save and load the IR as plain data: ``<stem>.json`` (structure) + ``<stem>.npz`` (arrays, no pickle).

Compiled output folders carry the IR this way, so ``verify`` and ``report`` can run the reference without the
original checkpoint, and nothing ever unpickles code.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from liquid_edge.errors import ModelFormatError
from liquid_edge.ir import CfCCell, Linear, LSTMMemory, Model, Source, Wiring

FORMAT_VERSION = 1


def _linear_to_json(layer: Linear) -> dict:
    return {"bias": layer.bias is not None, "mask": layer.mask is not None}


def _cell_to_json(cell: CfCCell) -> dict:
    return {
        "input_size": cell.input_size, "units": cell.units, "mode": cell.mode, "activation": cell.activation,
        "backbone": [_linear_to_json(layer) for layer in cell.backbone],
        "heads": {name: _linear_to_json(layer) for name, layer in cell.heads().items()},
    }


def model_to_json(model: Model) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "kind": model.kind,
        "name": model.name,
        "input_size": model.input_size,
        "cells": [_cell_to_json(cell) for cell in model.cells],
        "wiring": None if model.wiring is None else {"kind": model.wiring.kind,
                                                      "layer_names": list(model.wiring.layer_names)},
        "memory": model.memory is not None,
        "projection": None if model.projection is None else _linear_to_json(model.projection),
        "source": None if model.source is None else vars(model.source),
    }


def save(model: Model, directory: Path, stem: str = "model") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{stem}.json").write_text(json.dumps(model_to_json(model), indent=2) + "\n")
    np.savez(directory / f"{stem}.npz", **dict(model.arrays()))


def load(directory: Path, stem: str = "model") -> Model:
    meta_path, arrays_path = directory / f"{stem}.json", directory / f"{stem}.npz"
    if not meta_path.is_file() or not arrays_path.is_file():
        raise ModelFormatError(f"{directory} holds no saved model ({stem}.json + {stem}.npz)",
                               "pass a folder written by 'liquid-edge compile'")
    try:
        meta = json.loads(meta_path.read_text())
        with np.load(arrays_path, allow_pickle=False) as npz:
            arrays = {key: npz[key].astype(np.float64) for key in npz.files}
    except (ValueError, OSError) as exc:
        raise ModelFormatError(f"cannot read the saved model in {directory}: {exc}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"{meta_path} has format version {meta.get('format_version')}, "
                               f"this liquid-edge reads {FORMAT_VERSION}", "recompile the model")

    def linear(prefix: str, spec: dict) -> Linear:
        try:
            return Linear(arrays[f"{prefix}.weight"],
                          arrays[f"{prefix}.bias"] if spec["bias"] else None,
                          arrays[f"{prefix}.mask"] if spec["mask"] else None)
        except KeyError as exc:
            raise ModelFormatError(f"tensor {exc.args[0]} is missing from {arrays_path}") from None

    cells = []
    for i, spec in enumerate(meta["cells"]):
        prefix = f"cells.{i}"
        heads = {name: linear(f"{prefix}.{name}", hspec) for name, hspec in spec["heads"].items()}
        pure = spec["mode"] == "pure"
        cells.append(CfCCell(
            input_size=spec["input_size"], units=spec["units"], mode=spec["mode"], activation=spec["activation"],
            backbone=tuple(linear(f"{prefix}.backbone.{j}", b) for j, b in enumerate(spec["backbone"])),
            w_tau=arrays.get(f"{prefix}.w_tau") if pure else None,
            A=arrays.get(f"{prefix}.A") if pure else None,
            **heads))
    memory = None
    if meta["memory"]:
        memory = LSTMMemory(linear("memory.input_map", {"bias": True, "mask": False}),
                            linear("memory.recurrent_map", {"bias": False, "mask": False}))
    wiring = meta["wiring"]
    return Model(
        name=meta["name"], input_size=meta["input_size"], cells=tuple(cells),
        wiring=None if wiring is None else Wiring(wiring["kind"], tuple(wiring["layer_names"])),
        memory=memory,
        projection=None if meta["projection"] is None else linear("projection", meta["projection"]),
        source=None if meta["source"] is None else Source(**meta["source"]),
        kind=meta["kind"],
    ).validate()
