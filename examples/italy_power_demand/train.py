#!/usr/bin/env python3
"""Train the ItalyPowerDemand classifiers (one day of hourly demand, 24 steps: October-March or April-September)
into ./models.

    python examples/italy_power_demand/train.py      # about ten seconds on one core
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training import ModelSpec, Task, run  # noqa: E402

# The archive's series are already z-normalized per day, so the models read them as they are.
TASK = Task("italy_power_demand", "power", (
    ModelSpec("ncp", wired_units=16, epochs=200, logit_scale=5.0),
    ModelSpec("dense", units=32, backbone_units=64, epochs=200),
))

if __name__ == "__main__":
    run(TASK, Path(__file__).resolve().parent / "models")
