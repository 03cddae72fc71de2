#!/usr/bin/env python3
"""Train the irregularly sampled ItalyPowerDemand classifier (12 of the 24 hourly readings of a day, at random
hours, with the hours elapsed since the previous reading as ``dt``) into ./models.

    python examples/italy_power_demand_irregular/train.py      # about ten seconds on one core
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training import ModelSpec, Task, run  # noqa: E402

# The NCP of examples/italy_power_demand, fed the elapsed time; "ncp_no_dt" is the same model trained and
# evaluated with dt = 1 everywhere: the difference is what the elapsed-time input carries. With 12 readings and
# 67 training days both overfit, so this task trains gentler (half the learning rate, softer logits).
TASK = Task("italy_power_demand_irregular", "hours", (
    ModelSpec("ncp", wired_units=16, epochs=200, learning_rate=0.005, logit_scale=2.0),
    ModelSpec("ncp_no_dt", wired_units=16, epochs=200, learning_rate=0.005, logit_scale=2.0, ignore_dt=True),
))

if __name__ == "__main__":
    run(TASK, Path(__file__).resolve().parent / "models")
