"""benchmarks/accuracy.py: every Tag-LLM row runs with the data set's settings."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LLM_KEYS = ["tag_default", "tag_deep", "tag_text", "tag_untrained_domain", "tag_paper", "llm_embedding",
            "llm_embedding_pretrained", "stack"]


@pytest.fixture(scope="module")
def acc():
    sys.path.insert(0, str(ROOT / "benchmarks"))  # accuracy.py imports accuracy_data beside it
    try:
        spec = importlib.util.spec_from_file_location("accuracy", ROOT / "benchmarks" / "accuracy.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return mod


@pytest.mark.parametrize("mode", ["quick", "medium", "standard", "full"])
@pytest.mark.parametrize("dataset", ["esol", "davis"])
def test_every_tag_llm_row_gets_the_data_sets_settings(acc, mode, dataset):
    from sktag.benchmark import make_model

    # DAVIS's Tag-LLM rows run at davis_max_length (128 in standard mode); a row left out of the table of
    # settings silently ran at 512 tokens, four times the cost and not the setting its label claims
    cfg = dict(acc.MODES[mode], stack_datasets=["esol", "davis"], paper_datasets=["esol", "davis"])
    models, params = acc.models_for(dataset, "regression", LLM_KEYS, cfg)
    assert sorted(models) == sorted(LLM_KEYS)
    want = cfg["davis_max_length"] if dataset == "davis" else 512
    for key in LLM_KEYS:
        p = params[key]
        length = {"llm_embedding": "embedding__max_length", "llm_embedding_pretrained": "embedding__max_length",
                  "stack": "tag__max_length"}.get(key, "max_length")
        assert p[length] == want, key
        if key.startswith("tag_") and cfg.get("max_iter"):
            assert p["max_iter"] == (cfg["paper_epochs"] if key == "tag_paper" else cfg["max_iter"]), key
        model = models[key] if hasattr(models[key], "set_params") else make_model(models[key], "regression")
        model.set_params(**p)  # every name is a parameter of that model
