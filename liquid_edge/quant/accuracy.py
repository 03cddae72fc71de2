"""The quantized model against the float64 reference: per-output SQNR and max error, and the task metric."""

from __future__ import annotations

import numpy as np

from liquid_edge import reference
from liquid_edge.data import Sequences
from liquid_edge.ir import Model


def sqnr_db(reference_values: np.ndarray, quantized: np.ndarray) -> float:
    """10 log10(signal power / error power); inf when they are equal."""
    noise = float(np.sum((quantized - reference_values) ** 2))
    signal = float(np.sum(reference_values ** 2))
    if noise == 0:
        return float("inf")
    return 10.0 * np.log10(signal / noise) if signal > 0 else float("-inf")


def classification_accuracy(outputs: np.ndarray, labels: np.ndarray) -> float | None:
    """Accuracy of the argmax of the last step (labels per sequence) or of every step (labels per step)."""
    labels = np.asarray(labels)
    if labels.ndim == 1 and labels.shape[0] == outputs.shape[0]:
        predicted = outputs[:, -1].argmax(axis=-1)
    elif labels.shape == outputs.shape[:2]:
        predicted = outputs.argmax(axis=-1)
    else:
        return None
    return float(np.mean(predicted == labels))


def quantization_error(model: Model, quantized: np.ndarray, sequences: Sequences) -> dict:
    """The ``quantization`` section of ``verify --json`` (outputs of the integer model vs float64 reference)."""
    float_outputs, _ = reference.run(model, sequences.x, sequences.dt)
    per_output = [{"output": o, "sqnr_db": _json_number(sqnr_db(float_outputs[..., o], quantized[..., o])),
                   "max_abs_error": float(np.max(np.abs(quantized[..., o] - float_outputs[..., o])))}
                  for o in range(quantized.shape[-1])]
    section = {"against": "float64 reference", "sqnr_db": _json_number(sqnr_db(float_outputs, quantized)),
               "max_abs_error": float(np.max(np.abs(quantized - float_outputs))), "outputs": per_output}
    if sequences.y is not None:
        section["accuracy"] = {"quantized": classification_accuracy(quantized, sequences.y),
                               "float": classification_accuracy(float_outputs, sequences.y)}
    return section


def _json_number(value: float) -> float | None:
    """JSON has no Inf: an error-free output reports null SQNR."""
    return value if np.isfinite(value) else None
