#!/usr/bin/env bash
# Install everything, then run the default test suite (integration tests on the
# real default model included; CUDA tests skip without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(bash scripts/install.sh "[test,distributed,bench]" | tail -n 1)
export HF_HUB_OFFLINE=1
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$@"
