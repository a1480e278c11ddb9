#!/usr/bin/env bash
# Run by Snakemake (--sdm conda) once after creating the btrack env: make
# btrack's C++ core loadable on this node (see tools/build_btrack.py; it does
# nothing when the bundled library already loads).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python "$here/../tools/build_btrack.py"
