"""Fixtures shared by the test modules."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from liquid_edge.loaders.config import sidecar_path
from models import Config, build


@dataclass(frozen=True)
class Checkpoint:
    path: Path               # the checkpoint file
    module: torch.nn.Module  # the ncps model it was saved from (float32, eval mode)


def sidecar_settings(config: Config) -> dict:
    """What a sidecar says for ``config``: mode, activation (dense only) and the wiring kind (wired only)."""
    settings = dict(config.options)
    if config.wiring is not None:
        settings["wiring"] = config.wiring[0]
    return settings


@pytest.fixture
def write_checkpoint(tmp_path):
    """``write_checkpoint(config, seed=0, whole_module=False)`` -> :class:`Checkpoint` in tmp_path.

    The default is ``torch.save(model.state_dict())`` plus the sidecar ``<file>.json``; ``whole_module=True``
    saves ``torch.save(model)`` (which carries its settings) and no sidecar.
    """

    def write(config: Config, seed: int = 0, whole_module: bool = False) -> Checkpoint:
        module = build(config, seed)
        path = tmp_path / f"{config.id}-{seed}{'-module' if whole_module else ''}.pt"
        torch.save(module if whole_module else module.state_dict(), path)
        if not whole_module:
            sidecar_path(path).write_text(json.dumps(sidecar_settings(config)))
        return Checkpoint(path, module)

    return write


def pytest_sessionfinish(session, exitstatus):
    """In CI every tool is installed, so a skipped test means a missing install step: fail instead of hiding it."""
    if os.environ.get("CI") != "true" or exitstatus != 0:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; scripts/setup.sh must install what they need",
                            red=True)
        session.exitstatus = 1
