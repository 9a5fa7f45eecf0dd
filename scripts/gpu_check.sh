#!/usr/bin/env bash
# The CUDA check, one command, under 9 minutes on one H100/H200 (every step has a time limit; together 8.3 min):
#   1. the GPU (nvidia-smi, torch.cuda) and whether sktag imports (RDKit is optional);
#   2. the CUDA-marked tests (pytest -m cuda);
#   3. the tiny-model suite on the GPU (device="auto" picks CUDA there);
#   4. python -m benchmarks.speed on a randomly initialised ~1.1B Llama: samples/s, % of the measured matmul
#      rate and MFU for the default tag-step batch and for batch 512 (8x fewer steps), then one more epoch
#      split into tag steps and the rest (re-solve, validation) with CUDA events, and one epoch on 256 rows
#      under torch.profiler (kernel count, the device's busy share of the wall, the top operators),
#      written to $OUT when set, else benchmarks/results/.  (H200, 2026-11-30: all steps in 291 s.)
# Needs only the working tree and a Python with torch, transformers, scikit-learn, pandas and pytest: no
# pip install, no RDKit (SMILES tests skip), no model download.  A failing step does not stop the others;
# the summary at the end lists each step's exit code and the script exits non-zero if any failed.
#
#   bash scripts/gpu_check.sh
#   GPU_CHECK_DEVICE=cpu GPU_CHECK_SHAPE=tiny PYTHON=.venv/bin/python bash scripts/gpu_check.sh   # dry run on a CPU
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICE=${GPU_CHECK_DEVICE:-cuda}
SHAPE=${GPU_CHECK_SHAPE:-1b}
RESULTS=${OUT:-$PWD/benchmarks/results}
mkdir -p "$RESULTS"
LOG="$RESULTS/gpu_check.log"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
: >"$LOG"
START=$SECONDS
NAMES=()
CODES=()
TIMES=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit, record the exit code (124 = timed out)
    local name=$1 limit=$2 t0=$SECONDS rc
    shift 2
    echo "=== [$name] (limit ${limit} s) $*" | tee -a "$LOG"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    NAMES+=("$name")
    CODES+=("$rc")
    TIMES+=("$((SECONDS - t0))")
    echo "=== [$name] exit $rc after $((SECONDS - t0)) s" | tee -a "$LOG"
}

step gpu 30 bash -c "nvidia-smi || echo 'nvidia-smi: not available'; $PY - <<'EOF'
import importlib.util, platform, torch
print('python', platform.python_version(), 'torch', torch.__version__, 'CUDA', torch.version.cuda)
print('cuda available:', torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print('device 0:', torch.cuda.get_device_name(0), f'{p.total_memory / 2**30:.1f} GiB,', p.multi_processor_count, 'SMs')
print('rdkit installed:', importlib.util.find_spec('rdkit') is not None)
import sktag
print('sktag', sktag.__version__, 'imports')
EOF"

PER_TEST=()  # a per-test limit where pytest-timeout is installed
"$PY" -c "import pytest_timeout" 2>/dev/null && PER_TEST=(--timeout 60)

step cuda-tests 60 "$PY" -m pytest -q -p no:cacheprovider -rs -m cuda tests/

step tiny-suite 200 "$PY" -m pytest -p no:cacheprovider -rfEs -m "not integration" ${PER_TEST[@]+"${PER_TEST[@]}"} \
    tests/test_engine.py tests/test_cache.py tests/test_states.py tests/test_deep.py tests/test_device.py \
    tests/test_inference.py tests/test_estimators.py tests/test_training.py tests/test_backbone.py \
    tests/test_architectures.py tests/test_embedding.py tests/test_threads.py tests/test_optional_rdkit.py

# shellcheck disable=SC2086  # GPU_CHECK_SPEED_ARGS is a list of extra flags
step speed 210 "$PY" -m benchmarks.speed --device "$DEVICE" --random-llama "$SHAPE" --out "$RESULTS" \
    ${GPU_CHECK_SPEED_ARGS:---variants cached,cached_b512 --profile}

{
    echo
    echo "=== summary ($((SECONDS - START)) s in all; device $DEVICE; results in $RESULTS)"
    for i in "${!NAMES[@]}"; do
        status=ok
        [ "${CODES[$i]}" = 124 ] && status="TIMED OUT"
        [ "${CODES[$i]}" != 0 ] && [ "${CODES[$i]}" != 124 ] && status=FAILED
        printf '  %-11s exit %-3s %4s s  %s\n' "${NAMES[$i]}" "${CODES[$i]}" "${TIMES[$i]}" "$status"
    done
} | tee -a "$LOG"
for c in "${CODES[@]}"; do [ "$c" != 0 ] && exit 1; done
exit 0
