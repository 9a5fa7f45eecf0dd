#!/usr/bin/env bash
# Install everything, then fit a TagRegressor on ESOL and compare it with baselines.
set -euo pipefail
cd "$(dirname "$0")/.."
# the bench extra (matplotlib) makes the plots of sktag-benchmark / sktag.benchmark work too
VENV=$(bash scripts/install.sh "[bench]" | tail -n 1)
exec "$VENV/bin/python" -m sktag.demo "$@"
