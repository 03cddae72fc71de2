#!/usr/bin/env bash
# The main job on a fresh machine: set up (idempotent), then run the end-to-end demo on the committed example
# models and data: float32 and int8 builds for a Cortex-M4, each verified under QEMU over the test split, with the
# accuracy computed from the firmware's outputs, flash, RAM and instructions per step. Offline; a few minutes.
#   bash scripts/demo.sh [--quick] [--json] [-o DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec liquid-edge demo "$@"
