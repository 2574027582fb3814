#!/usr/bin/env bash
# Set everything up, then check the package's layers (import-linter) and run the test suite
# (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/lint-imports --no-logo
exec .venv/bin/python -m pytest "$@"
