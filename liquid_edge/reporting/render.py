"""Write a :class:`~liquid_edge.reporting.collect.Report` as one self-contained HTML file (figures as data URIs) or as
Markdown with its figures as PNG files in ``<stem>_files/`` beside it. Files appear whole or not at all."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from pathlib import Path

import jinja2

from liquid_edge.errors import LiquidEdgeError
from liquid_edge.output import _cell
from liquid_edge.reporting.collect import Report

FORMATS = ("html", "md")


def format_for(path: Path, requested: str | None) -> str:
    """``--format`` when given, else the suffix of the output file (.md, .markdown -> md; anything else html)."""
    if requested is not None:
        return requested
    return "md" if path.suffix.lower() in (".md", ".markdown") else "html"


def write(report: Report, path: Path, fmt: str) -> list[Path]:
    """Write the report; return the files written (the page first). The page replaces only a regular file (a
    symlink to one is followed); what cannot be written is a one-line error and leaves no partial file."""
    path = Path(path)
    if path.is_symlink() and path.is_file():
        path = path.resolve()
    if path.exists() and not path.is_file():
        raise LiquidEdgeError(f"the report page {path} exists and is not a regular file",
                              "pass a file name for the page with -o")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "html":
            _replace(path, render_html(report).encode())
            return [path]
        figures_dir = _write_figures(report, path)
        _replace(path, render_markdown(report, figures_dir.name).encode())
    except OSError as exc:
        raise LiquidEdgeError(f"cannot write the report page {path}: {exc.strerror or exc}",
                              "pass -o a path in a folder you can write to") from None
    return [path, *sorted(figures_dir.iterdir())]


def _write_figures(report: Report, path: Path) -> Path:
    """The PNG files of a Markdown page, in ``<stem>_files/`` beside it, replaced whole."""
    figures_dir = path.with_name(f"{path.stem}_files")
    staging = Path(tempfile.mkdtemp(prefix=f".{path.stem}_files.", dir=path.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the figures are as readable as the page
        for section in report.sections:
            for figure in section.figures:
                (staging / f"{figure.stem}.png").write_bytes(figure.png)
        if figures_dir.exists():
            shutil.rmtree(figures_dir)
        os.replace(staging, figures_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return figures_dir


def _replace(path: Path, content: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(content)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def render_html(report: Report) -> str:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("liquid_edge.reporting", "templates"),
                                     autoescape=True, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(base64=lambda data: base64.b64encode(data).decode("ascii"),
                               cell_text=_cell, cell_class=_cell_class)
    return environment.get_template("report.html.j2").render(report=report)


def _cell_class(value) -> str:
    if value == "FAIL":
        return "fail"
    if value == "pass":
        return "pass"
    return "num" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def render_markdown(report: Report, figures_dir: str) -> str:
    lines = [f"# {report.title}", "", report.subtitle, ""]
    for section in report.sections:
        lines += [f"## {section.title}", ""]
        for note in section.notes:
            lines += [note, ""]
        for table in section.tables:
            lines.append("| " + " | ".join(table.headers) + " |")
            lines.append("|" + "|".join("---:" if _cell_class(table.rows[0][i] if table.rows else "") == "num"
                                        else "---" for i in range(len(table.headers))) + "|")
            lines += ["| " + " | ".join(_cell(v).replace("|", "\\|") for v in row) + " |" for row in table.rows]
            lines.append("")
        for figure in section.figures:
            lines += [f"![{figure.caption}]({figures_dir}/{figure.stem}.png)", "", f"*{figure.caption}*", ""]
    return "\n".join(lines)
