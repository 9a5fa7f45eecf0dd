"""benchmarks.speed end to end on a tiny random Llama: the epoch split of ``--profile`` adds up."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_profile_splits_an_epoch_into_tag_steps_and_the_rest(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, "-m", "benchmarks.speed", "--random-llama", "tiny", "--device", "cpu",
           "--quick", "--rows", "48", "--batch-size", "8", "--variants", "cached,cached_b512", "--profile",
           "--no-predict", "--threads", "1", "--domain", "Text", "--out", str(tmp_path)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (saved,) = tmp_path.glob("speed-*.json")
    res = json.loads(saved.read_text())
    assert [f["variant"] for f in res["fits"]] == ["cached", "cached_b512"]
    assert res["fits"][0]["params"]["batch_size"] == 8 and res["fits"][1]["params"]["batch_size"] == 512
    ph = res["profile"]["phases"]
    # 48 rows, a tenth held out for validation, batches of 8 -> 6 tag steps
    assert ph["steps"] == 6
    assert ph["tag_steps_s"] > 0 and ph["rest_s"] > 0
    assert ph["tag_steps_s"] + ph["rest_s"] == pytest.approx(ph["host_epoch_s"], rel=0.05, abs=0.05)
    assert res["profile"]["profile_rows"] == 48 and "Self CPU" in res["profile"]["table_cpu"]
    md = saved.with_suffix(".md").read_text()
    assert "## Where an epoch goes" in md and "6 tag steps" in md
