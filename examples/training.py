"""Train the example classifiers with ncps: one NCP-wired CfC (AutoNCP) and one dense CfC per dataset.

The class is read from the model's output at the last step: the motor neurons of the NCP, the projection of the
dense CfC. Training is full-batch Adam with a fixed number of epochs and fixed seeds (no early stopping on the test
split), so a rerun on the same machine and versions of torch and ncps gives the same checkpoints. On another CPU,
float rounding in PyTorch's kernels can differ, and a few hundred epochs of Adam amplify it: the weights then
differ and the test accuracy moves by a few tenths of a point. The committed checkpoints are the reference.

Every model is saved as ``models/<name>.pt`` (the ``state_dict``) and the loader's sidecar ``models/<name>.pt.json``
(what the tensors cannot tell: the CfC mode, the backbone activation of dense models, the wiring kind, and the model
name that prefixes the generated C), and its figures go to ``models/metrics.json``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

EXAMPLES = Path(__file__).resolve().parent
DATA = EXAMPLES / "data"


@dataclass(frozen=True)
class ModelSpec:
    name: str                   # file stem of the checkpoint
    wired_units: int = 0        # > 0: AutoNCP with this many neurons, the class outputs being its motor neurons
    units: int = 32             # dense CfC hidden units
    backbone_units: int = 64
    epochs: int = 300
    learning_rate: float = 0.01
    # Motor neurons of a default-mode CfC stay in (-1, 1); scaling them before the softmax lets the loss reach
    # confident predictions without changing the arg-max, which is all the classifier reads.
    logit_scale: float = 1.0
    # Train on per-channel standardized inputs, then fold the standardization into the first layer, so the
    # checkpoint reads the archive's raw values (what the firmware is fed).
    standardize: bool = False
    # Feed every step as if it were one time unit after the previous one, although the data has elapsed times:
    # the ablation that measures what the elapsed-time input is worth on irregularly sampled data.
    ignore_dt: bool = False
    # Apply the loss to the outputs of the last ``loss_steps`` steps, not only the final one: more gradient signal
    # per sequence on tiny training sets, and a prediction that holds steady near the end of a sequence.
    loss_steps: int = 1
    seed: int = 0


@dataclass(frozen=True)
class Task:
    dataset: str                # fixture stem in examples/data
    prefix: str                 # model names are <prefix>_<spec name>: short, they prefix every C symbol
    models: tuple[ModelSpec, ...]


@dataclass(frozen=True)
class Split:
    x: np.ndarray               # (N, T, I) float32
    y: np.ndarray               # (N,) class index
    dt: np.ndarray | None       # (N, T) elapsed times, or None (every step 1 apart)


def load_split(dataset: str, split: str) -> Split:
    with np.load(DATA / f"{dataset}_{split}.npz", allow_pickle=False) as npz:
        dt = npz["dt"].astype(np.float32) if "dt" in npz.files else None
        return Split(npz["x"].astype(np.float32), npz["y"].astype(np.int64), dt)


def build(spec: ModelSpec, input_size: int, classes: int) -> torch.nn.Module:
    from ncps.torch import CfC
    from ncps.wirings import AutoNCP

    torch.manual_seed(spec.seed)
    np.random.seed(spec.seed)
    if spec.wired_units:
        return CfC(input_size, AutoNCP(spec.wired_units, classes, seed=spec.seed), batch_first=True)
    return CfC(input_size, spec.units, proj_size=classes, batch_first=True, backbone_units=spec.backbone_units,
               backbone_layers=1, activation="lecun_tanh", mode="default")


def sidecar(task: Task, spec: ModelSpec) -> dict:
    """What the loader needs besides the tensors (see docs/loading.md)."""
    settings = {"name": f"{task.prefix}_{spec.name}", "mode": "default"}
    if spec.wired_units:
        return settings | {"wiring": "AutoNCP"}
    return settings | {"activation": "lecun_tanh"}


def sequence_outputs(model: torch.nn.Module, x: torch.Tensor, dt: torch.Tensor | None) -> torch.Tensor:
    """(N, T, outputs). With elapsed times the cell is stepped here with ``dt`` shaped (N, 1): ncps's own loop
    squeezes batched time spans to (N,), which broadcasts against the units instead of the samples."""
    if dt is None:
        return model(x)[0]
    state = torch.zeros(x.shape[0], model.state_size)
    outputs = []
    for t in range(x.shape[1]):
        out, state = model.rnn_cell(x[:, t], state, dt[:, t:t + 1])
        outputs.append(model.fc(out))
    return torch.stack(outputs, dim=1)


def model_inputs(spec: ModelSpec, split: Split) -> tuple[torch.Tensor, torch.Tensor | None]:
    dt = None if split.dt is None or spec.ignore_dt else torch.from_numpy(split.dt)
    return torch.from_numpy(split.x), dt


def accuracy(model: torch.nn.Module, spec: ModelSpec, split: Split) -> float:
    with torch.no_grad():
        predicted = sequence_outputs(model, *model_inputs(spec, split))[:, -1].argmax(dim=1).numpy()
    return float(np.mean(predicted == split.y))


def first_layers(model: torch.nn.Module) -> list[tuple[torch.nn.Linear, torch.Tensor | None]]:
    """The linear layers that read the raw input, each with the sparsity mask ncps applies to it: the backbone's
    first layer, or the four heads of an NCP's first wiring layer (no backbone; only ff1/ff2 are masked)."""
    cell = model.rnn_cell
    if hasattr(cell, "layer_0"):
        first = cell.layer_0
        mask = first.sparsity_mask
        return [(first.ff1, mask), (first.ff2, mask), (first.time_a, None), (first.time_b, None)]
    return [(cell.backbone[0], None)]


def fold_standardization(model: torch.nn.Module, mean: np.ndarray, std: np.ndarray) -> None:
    """Make ``model(x)`` equal the trained ``model((x - mean) / std)``: each first layer reads ``[x, h]``, and
    ``W[:, :I] (x - m) / s = (W[:, :I] / s) x - (W[:, :I] / s) m``, with ``W`` masked as ncps uses it."""
    inputs = len(mean)
    scale = torch.from_numpy(1.0 / std.astype(np.float32))
    shift = torch.from_numpy(mean.astype(np.float32))
    with torch.no_grad():
        for layer, mask in first_layers(model):
            layer.weight[:, :inputs] *= scale
            used = layer.weight if mask is None else layer.weight * mask
            layer.bias -= used[:, :inputs] @ shift


def train_one(spec: ModelSpec, train: Split) -> torch.nn.Module:
    model = build(spec, train.x.shape[2], int(train.y.max()) + 1)
    mean, std = train.x.mean(axis=(0, 1)), train.x.std(axis=(0, 1))
    if spec.standardize:
        train = Split((train.x - mean) / std, train.y, train.dt)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, spec.epochs)
    (inputs, dt), targets = model_inputs(spec, train), torch.from_numpy(train.y)
    model.train()
    for epoch in range(spec.epochs):
        optimizer.zero_grad()
        logits = sequence_outputs(model, inputs, dt)[:, -spec.loss_steps:] * spec.logit_scale
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 targets.repeat_interleave(logits.shape[1]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        if (epoch + 1) % 50 == 0:
            print(f"  {spec.name}: epoch {epoch + 1}/{spec.epochs}, loss {loss.item():.4f}", file=sys.stderr)
    model.eval()
    if spec.standardize:
        fold_standardization(model, mean, std)
    return model


def run(task: Task, output: Path) -> dict:
    """Train every model of a task, save checkpoints and metrics into ``output``; return the metrics."""
    torch.set_num_threads(1)
    train, test = load_split(task.dataset, "train"), load_split(task.dataset, "test")
    output.mkdir(parents=True, exist_ok=True)
    metrics = {}
    for spec in task.models:
        started = time.perf_counter()
        model = train_one(spec, train)
        seconds = time.perf_counter() - started
        torch.save(model.state_dict(), output / f"{spec.name}.pt")
        (output / f"{spec.name}.pt.json").write_text(json.dumps(sidecar(task, spec), indent=2) + "\n")
        metrics[spec.name] = {
            "train_accuracy": accuracy(model, spec, train),
            "test_accuracy": accuracy(model, spec, test),
            "test_sequences": int(len(test.y)),
            "parameters": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),  # not the masks
            "training_seconds": round(seconds, 1),
            "spec": asdict(spec),
            "versions": {"torch": torch.__version__, "ncps": _version("ncps")},
        }
        print(f"{spec.name}: train {metrics[spec.name]['train_accuracy']:.3f}, "
              f"test {metrics[spec.name]['test_accuracy']:.3f} ({seconds:.0f} s)", file=sys.stderr)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _version(package: str) -> str:
    import importlib.metadata

    return importlib.metadata.version(package)
