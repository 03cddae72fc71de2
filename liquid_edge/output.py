"""Shared output helpers: aligned tables for people, JSON for machines, progress on stderr."""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Iterable, Sequence

import click
import numpy as np


def _to_jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_to_jsonable))


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-align text columns, right-align numeric ones."""
    rows = [[_cell(v) for v in row] for row in rows]
    numeric = [all(_is_number(r[i]) for r in rows) and rows != [] for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:,.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def progress(message: str) -> None:
    """One progress line on stderr (stdout stays clean for --json)."""
    click.echo(message, err=True)


class Meter:
    """Progress of long work, ``label: done of total unit``, at most one line every ``interval`` seconds: short
    work prints nothing, long work shows it is moving."""

    def __init__(self, label: str, total: int, unit: str, interval: float = 2.0):
        self.label, self.total, self.unit, self.interval = label, total, unit, interval
        self._last = time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            progress(f"{self.label}: {done:,} of {self.total:,} {self.unit}")


def stderr_is_terminal() -> bool:
    return sys.stderr.isatty()
