#!/usr/bin/env bash
# Build the documentation into docs/_build/html: warnings are errors, the API reference is checked by numpydoc (every
# public parameter described), the gallery's examples run (on a tiny random model; seconds each) and the docstrings'
# examples run as doctests (tests/test_doctests.py, on a tiny random model).  Extra arguments go to sphinx-build,
# e.g. -D plot_gallery=0 to skip running the gallery.  Uses the virtual environment of scripts/install.sh
# ($SKTAG_VENV, else .venv) and adds the "docs" extra to it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(bash scripts/install.sh "[docs,bench]" | tail -n 1)
export HF_HUB_OFFLINE=1 PYTHONHASHSEED=0
"$VENV/bin/python" tests/test_doctests.py
"$VENV/bin/python" -m sphinx -W --keep-going -b html -d docs/_build/doctrees docs docs/_build/html "$@"
echo "docs/_build/html/index.html"
