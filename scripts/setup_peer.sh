#!/usr/bin/env bash
# Install the benchmarks' peer, Cellpose 3.1 (the `peer` extra of pyproject.toml), into .venv without
# touching numpy: cellpose 3.1.1.3 declares numpy<2.1, but imports and trains with the numpy the project
# runs (2.x), so it is installed without its declared dependencies, and those it really uses are named
# here. Only benchmarks/ uses it (the peer methods cp and cp10 of the accuracy benchmark); the package
# never imports it. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" --no-deps "cellpose==3.1.1.3"
"${PIP[@]}" fastremap fill-voids numba natsort roifile
.venv/bin/python -c "import cellpose.train, cellpose.models, numpy; print('setup_peer: ok (cellpose 3.1, numpy', numpy.__version__ + ')')"
