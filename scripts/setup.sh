#!/usr/bin/env bash
# Install everything liquid-edge, its tests and its demo need on a fresh Debian machine. Idempotent.
#   - Debian: the Arm cross compiler, newlib and QEMU (only when missing; needs root or sudo)
#   - Python: the CPU build of PyTorch first (an open range would pull a multi-GB CUDA build), then
#     liquid-edge itself in editable mode with the test extras.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v arm-none-eabi-gcc >/dev/null || need_apt+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need_apt+=(qemu-system-arm)
command -v clang >/dev/null || need_apt+=(clang)
# The generated projects build with make or CMake; the tests build both ways.
command -v make >/dev/null || need_apt+=(make)
command -v cmake >/dev/null || need_apt+=(cmake)
[ -d /usr/lib/arm-none-eabi/newlib ] || need_apt+=(libnewlib-arm-none-eabi)
# Headless browser: the report test opens the generated HTML in it.
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${need_apt[*]}" >&2
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "setup: installing torch 2.13.0 (CPU)" >&2
    "$PYTHON" -m pip install -q torch==2.13.0
fi
extras=${LIQUID_EDGE_EXTRAS:-test}
if ! "$PYTHON" -c "import liquid_edge, ncps, unicorn, xdist, matplotlib, elftools, sklearn" 2>/dev/null \
   || [ "$("$PYTHON" -c 'import liquid_edge, pathlib; print(pathlib.Path(liquid_edge.__file__).resolve().parent.parent)')" != "$(pwd -P)" ]; then
    echo "setup: installing liquid-edge[$extras] (editable)" >&2
    "$PYTHON" -m pip install -q -e ".[$extras]"
fi
