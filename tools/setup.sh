#!/usr/bin/env bash
# Create .venv with the pinned lock (requirements/lock.txt), install the
# livescreen library (editable) and make btrack's C++ core loadable.
# Idempotent: a second run only checks. Needs python3.11, a C++ compiler and
# the package index (PyPI); no root.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
"$PYTHON" - <<'PY'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"tools/setup.sh: the lock is for Python 3.11, this is {sys.version.split()[0]}; "
             "set PYTHON=/path/to/python3.11")
PY
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch==2.13.0 in the lock resolves to the CPU build where one is on the
# package index path (as here); elsewhere add
#   --extra-index-url https://download.pytorch.org/whl/cpu   (or a CUDA index)
# The lock is complete (every transitive dependency pinned), so it is installed
# without re-resolving (--no-deps) and then checked for consistency.
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/lock.txt
.venv/bin/python -m pip check
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
.venv/bin/python tools/build_btrack.py
echo "tools/setup.sh: environment ready in .venv"
