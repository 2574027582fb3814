#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine (or re-check a set-up one): system
# libraries for Qt/napari under Xvfb, a virtual environment in .venv, and the
# package with its test dependencies. CPU-only machines get the CPU build of
# PyTorch through constraints-cpu.txt; set LAZYLABELS_CONSTRAINTS to another
# file (or to an empty string) to choose your own torch, e.g. a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES="xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libgl1 libegl1 libxkbcommon-x11-0 \
libxcb-cursor0 libfontconfig1 libdbus-1-3 libxcb-render-util0 libxcb-image0 libxcb-shape0 libxcb-randr0"
missing=""
if command -v dpkg >/dev/null 2>&1; then
  for p in $SYSTEM_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
fi
if [ -n "$missing" ]; then
  echo "setup: installing system packages:$missing"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
CONSTRAINTS="${LAZYLABELS_CONSTRAINTS-constraints-cpu.txt}"
PIP_ARGS=(-q --disable-pip-version-check)
[ -n "$CONSTRAINTS" ] && PIP_ARGS+=(-c "$CONSTRAINTS")
echo "setup: installing napari-lazylabels and its dependencies into .venv"
.venv/bin/python -m pip install "${PIP_ARGS[@]}" --upgrade pip 2>&1 | grep -v -E "^WARNING: Location|^$" || true
.venv/bin/python -m pip install "${PIP_ARGS[@]}" -e ".[testing]" 2>&1 | grep -v -E "^WARNING: Location|^$" || true
.venv/bin/python -c "import napari_lazylabels, torch; print('setup: ok (torch', torch.__version__ + ')')"
