#!/usr/bin/env bash
# Install everything, then fit a TagRegressor on ESOL and compare it with baselines.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(bash scripts/install.sh | tail -n 1)
exec "$VENV/bin/python" -m sktag.demo "$@"
