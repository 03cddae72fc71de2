#!/usr/bin/env python3
"""Train the BasicMotions classifiers (smartwatch IMU: 6 channels x 100 steps, 4 activities) into ./models.

    python examples/basic_motions/train.py      # about a minute on one core
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training import ModelSpec, Task, run  # noqa: E402

# The raw accelerometer/gyroscope values reach +-30 with channel deviations of 2-7: the models train on
# standardized channels and the standardization is folded into their first layer. With 40 training sequences,
# the loss covers the second half of each sequence (see ModelSpec.loss_steps).
TASK = Task("basic_motions", "motions", (
    ModelSpec("ncp", wired_units=20, epochs=300, logit_scale=5.0, standardize=True, loss_steps=50),
    ModelSpec("dense", units=32, backbone_units=64, epochs=300, standardize=True, loss_steps=50),
))

if __name__ == "__main__":
    run(TASK, Path(__file__).resolve().parent / "models")
