#!/usr/bin/env bash
# The project's test command: set up (idempotent), then run the whole test suite on all cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 -m pytest -n "${PYTEST_WORKERS:-auto}" "$@"
