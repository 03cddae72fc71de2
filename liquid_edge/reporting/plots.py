"""The report's figures, drawn with matplotlib's Agg backend (no display needed) and returned as PNG bytes."""

from __future__ import annotations

import io

import numpy as np

from liquid_edge.errors import ToolMissingError

MAX_TRACED_OUTPUTS = 8


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ToolMissingError("matplotlib is not installed, so the report cannot draw its figures",
                               "pip install 'liquid-edge[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(figure)
    return buffer.getvalue()


def traces(expected: np.ndarray, actual: np.ndarray, expected_label: str, actual_label: str,
           float_reference: np.ndarray | None = None) -> bytes:
    """Each output of one sequence over time: what the backend produced against what it must reproduce.

    ``expected``/``actual``/``float_reference`` are (T, O); the float reference is drawn too for quantized builds,
    where the expectation is the integer emulator."""
    plt = _pyplot()
    outputs = min(expected.shape[1], MAX_TRACED_OUTPUTS)
    figure, axes = plt.subplots(outputs, 1, figsize=(8, 1.6 * outputs + 0.6), sharex=True, squeeze=False)
    steps = np.arange(expected.shape[0])
    for o, axis in enumerate(axes[:, 0]):
        if float_reference is not None:
            axis.plot(steps, float_reference[:, o], color="0.6", linewidth=3, label="float64 reference")
        axis.plot(steps, expected[:, o], color="tab:blue", linewidth=1.6, label=expected_label)
        axis.plot(steps, actual[:, o], color="tab:orange", linewidth=0, marker="o", markersize=3, label=actual_label)
        axis.set_ylabel(f"output {o}")
        axis.grid(alpha=0.3)
    axes[0, 0].legend(loc="lower right", bbox_to_anchor=(1.0, 1.02), fontsize=8, ncol=3, frameon=False)
    axes[-1, 0].set_xlabel("step")
    return _png(figure)


def error_histogram(errors: np.ndarray, label: str) -> bytes:
    """Distribution of |actual - expected| over every output of every step (log axis; exact zeros counted apart)."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 3))
    errors = np.abs(errors[np.isfinite(errors)]).ravel()
    nonzero = errors[errors > 0]
    zeros = errors.size - nonzero.size
    if nonzero.size:
        low, high = np.log10(nonzero.min()), np.log10(nonzero.max())
        axis.hist(nonzero, bins=np.logspace(low, high + 1e-9, 40) if high > low else 10, color="tab:orange")
        axis.set_xscale("log")
    else:
        axis.text(0.5, 0.5, "every value identical: bit-exact", transform=axis.transAxes, ha="center", fontsize=12)
        axis.set_xticks([])
        axis.set_yticks([])
    axis.set_xlabel("absolute error")
    axis.set_ylabel("values")
    axis.set_title(f"{label}: {errors.size:,} values, {zeros:,} exactly equal", fontsize=10)
    axis.grid(alpha=0.3)
    return _png(figure)


def tensor_errors(names: list[str], rmse: list[float], max_abs: list[float]) -> bytes:
    """RMSE and max abs error of each quantized tensor against the float reference."""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(8, 0.45 * len(names) + 1.2))
    rows = np.arange(len(names))
    axis.barh(rows - 0.2, max_abs, height=0.4, color="tab:red", label="max abs error")
    axis.barh(rows + 0.2, rmse, height=0.4, color="tab:blue", label="RMSE")
    axis.set_yticks(rows, names)
    axis.invert_yaxis()
    axis.set_xlabel("error against the float64 reference")
    axis.legend(fontsize=8)
    axis.grid(alpha=0.3, axis="x")
    return _png(figure)
