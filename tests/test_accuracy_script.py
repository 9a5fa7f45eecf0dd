"""benchmarks.accuracy: every Tag-LLM row runs with the data set's settings."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LLM_KEYS = ["tag_default", "tag_deep", "tag_text", "tag_untrained_domain", "tag_paper", "llm_embedding",
            "llm_embedding_pretrained", "stack"]


@pytest.fixture(scope="module")
def acc():
    from benchmarks import accuracy

    return accuracy


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


def test_domain_tags_rows_get_the_tags_and_the_data_sets_settings(acc, capsys):
    from sktag import LLMEmbedding, TagRegressor

    path = ROOT / "sktag" / "pretrained_tags" / "smollm2-135m_smiles.safetensors"
    with pytest.raises(SystemExit):  # the two rows have no tags without --domain-tags
        acc.parse_args(["--models", "tag_dtag", "llm_embedding"])
    assert "need --domain-tags PATH" in capsys.readouterr().err
    args = acc.parse_args(["--models", "tag_dtag", "llm_embedding_dtag", "--domain-tags", str(path)])
    tags, note = acc.load_domain_tags(args.domain_tags)
    assert str(path) in note and "sha256" in note
    cfg = dict(acc.MODES["standard"])
    models, params = acc.models_for("davis", "regression", args.models, cfg, tags, "my-backbone")
    tag, emb = models["tag_dtag"], models["llm_embedding_dtag"].named_steps["embedding"]
    assert isinstance(tag, TagRegressor) and isinstance(emb, LLMEmbedding)
    assert tag.domain_tags is tags and emb.domain_tags is tags  # the loaded TagSet: checkpoint keys see its content
    assert tag.model == emb.model == "my-backbone" and tag.random_state == 0
    assert tag.domains == emb.domains == {"drug": "SMILES", "target": "Protein"}  # DAVIS: drug and protein columns
    assert params["tag_dtag"]["max_length"] == params["llm_embedding_dtag"]["embedding__max_length"] == 128
    rows = [{"model": k, "dataset": "esol", "RMSE": 1.0, "error": None} for k in args.models]
    table = acc.summary_table(rows, ["esol"], args.models)
    assert "Tag-LLM defaults + --domain-tags" in table and "LLMEmbedding with --domain-tags" in table
