"""benchmarks.hybrid: the design rule and one split on a tiny model (the script itself runs for an hour)."""

import warnings

import numpy as np
import pytest

pytest.importorskip("rdkit")


@pytest.fixture(scope="module")
def script():
    from benchmarks import hybrid

    return hybrid


def test_the_rule_takes_the_simplest_design_within_one_standard_error(script):
    inner = {"llm+hgb+rf:linear": [0.80, 0.90, 0.85], "llm+hgb:linear": [0.82, 0.91, 0.86],
             "llm+hgb:mean": [0.84, 0.92, 0.86], "hgb+rf:mean": [1.00, 1.10, 1.05]}
    assert script.choose(inner, greater=False) == "llm+hgb:mean"  # two bases, mean, within one SE of the best
    assert script.choose({k: [-v for v in vals] for k, vals in inner.items()}, greater=True) == "llm+hgb:mean"
    assert script.choose({"llm+hgb+rf:linear": [0.5, 0.5, 0.5], "hgb+rf:mean": [0.9, 0.9, 0.9]},
                         greater=False) == "llm+hgb+rf:linear"


def test_one_split_with_a_custom_llm_base_model(script, tiny_model, monkeypatch):
    """Every row of the report from one hybrid fit; the LLM base model is named the same whatever it is."""
    from sktag._forward.prefix_store import PrefixStore
    from sktag.datasets import load_esol
    from sktag.hybrid import default_classical_models, default_llm_model

    make = script.make_hybrid

    def small(name, task, threads):  # the tiny model as an LLM estimator of its own, 5-tree forests, 3 folds
        return make(name, task, threads).set_params(
            llm=default_llm_model(task, model=tiny_model), cv=3,
            classical=default_classical_models(task, random_state=0, n_estimators=5))

    monkeypatch.setattr(script, "make_hybrid", small)
    X, y = load_esol(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = script.run_split("esol", X[:60], y[:60], "regression", np.arange(45), np.arange(45, 60), 0, 1,
                               PrefixStore(2**28))
    singles = ["llm_embedding_pretrained", "hgb_descriptors", "rf_morgan_counts"]
    assert set(singles) <= set(rec["test"]) and rec["chosen"] in rec["inner"]
    assert len(rec["inner"]) == 8 and all(len(v) == 3 for v in rec["inner"].values())
    assert rec["test"]["hybrid_chosen"] == rec["test"][rec["chosen"]]
    rmse = np.sqrt(np.mean((np.asarray(rec["pred"]["hgb_descriptors"]) - y[45:60]) ** 2))
    assert rec["test"]["hgb_descriptors"] == pytest.approx(rmse)
