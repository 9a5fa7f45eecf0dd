"""benchmarks.cheap_kernels end to end on a tiny model (torch.compile skipped: it takes minutes)."""

import json

import pytest
import torch

from sktag.testing import make_tiny_model

pytestmark = pytest.mark.skipif(
    not hasattr(getattr(getattr(torch, "ao", None), "quantization", None), "quantize_dynamic"),
    reason="torch.ao.quantization.quantize_dynamic is not available")


def test_cheap_kernels_smoke(tmp_path):
    from benchmarks import cheap_kernels as mod

    # a model of its own: the script quantises the shared float32 backbone of --model in place
    model = make_tiny_model(tmp_path / "model")
    res = mod.main(["--model", model, "--n", "16", "--max-molecules", "60", "--skip-compile", "--repeats", "1",
                    "--threads", "1", "--sensitivity", "--out", str(tmp_path / "out")])

    files = sorted((tmp_path / "out").iterdir())
    assert [f.suffix for f in files] == [".json", ".md"]
    assert files[0].name.startswith("cheap_kernels_") and files[0].stem == files[1].stem
    saved = json.loads(files[0].read_text())
    speed = {r["variant"]: r for r in saved["speed"]}
    assert speed["float32 eager"]["rel_norm_error"] == 0 and speed["float32 eager"]["std_rms_error"] == 0
    for name in ("int8 per-tensor", "int8 per-channel"):
        assert speed[name]["rel_norm_error"] > 0 and speed[name]["std_rms_error"] > 0
    assert not any("compiled" in name for name in speed)
    assert {r["only"] for r in saved["sensitivity"]} == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                          "up_proj", "down_proj"}
    acc = {r["features"]: r for r in saved["accuracy"]}
    assert len(acc["float32"]["rmse"]) == 5 and "diff_mean" in acc["int8 per-channel"]
    assert acc["int8 per-channel"]["rmse"] != acc["float32"]["rmse"]  # the int8 features really were int8
    assert set(saved["decision"]) >= {"int8 per-tensor", "int8 per-channel"}
    text = files[1].read_text()
    for heading in ("## Speed", "## Distortion", "## Sensitivity", "## Accuracy", "## Decision"):
        assert heading in text
    assert res["files"] == [str(f) for f in files]
