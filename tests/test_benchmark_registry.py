"""The registry of named benchmark models: one entry per model, and the views derived from it."""

import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.dummy import DummyRegressor

from sktag.benchmark import DEFAULT_MODELS, LLM_MODELS, MODELS, compare, make_model
from sktag.benchmark._models import uses_llm
from sktag.benchmark._registry import SMILES_MODELS, ModelContext, register_model, unregister_model


@pytest.fixture
def median_model():
    """A named model registered for one test, then removed."""
    entry = register_model("median", "Dummy (median)", lambda ctx: DummyRegressor(strategy="median"))
    yield entry
    if "median" in MODELS:
        unregister_model("median")


def test_the_views_are_those_of_the_built_in_models():
    assert DEFAULT_MODELS == ["tag", "llm_embedding_pretrained", "hybrid", "rf_morgan_counts", "hgb_descriptors",
                              "dummy"]
    assert set(LLM_MODELS) | set(SMILES_MODELS) | set(DEFAULT_MODELS) <= set(MODELS)
    assert "stack_classical" in SMILES_MODELS and "stack_classical" not in LLM_MODELS


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("smiles_column", [None, "smiles"])
def test_every_named_model_builds_and_says_what_it_needs(task, smiles_column, tiny_model):
    for name in MODELS:
        est = make_model(name, task, model=tiny_model, smiles_column=smiles_column, random_state=3)
        assert isinstance(est, BaseEstimator), name
        clone(est)  # an unfitted scikit-learn estimator
        assert uses_llm(est) == (name in LLM_MODELS), name  # the flag matches what the builder makes
        is_clf = task == "classification"
        assert is_clf == (getattr(est, "_estimator_type", None) == "classifier"
                          or est.__sklearn_tags__().estimator_type == "classifier"), name


def test_a_registered_model_runs_by_name(median_model):
    from sktag.datasets import load_esol

    X, y = load_esol(return_X_y=True)
    assert median_model.name in MODELS and median_model.name not in DEFAULT_MODELS + LLM_MODELS
    res = compare(X[:40], y[:40], models=["median", "dummy"], cv=2, random_state=0)
    assert res.models == ["median", "dummy"]
    f = res.folds
    assert len(f[f["model"] == "median"]) == 2 and f["error"].isna().all()


def test_names_are_taken_once_unless_replaced(median_model):
    with pytest.raises(ValueError, match="registered already"):
        register_model("median", "again", lambda ctx: DummyRegressor())
    register_model("median", "Dummy (median), smiles", median_model.build, smiles=True, default=True, replace=True)
    assert MODELS["median"].endswith("smiles") and "median" in SMILES_MODELS and DEFAULT_MODELS[-1] == "median"
    unregister_model("median")
    assert "median" not in MODELS and "median" not in DEFAULT_MODELS + SMILES_MODELS
    with pytest.raises(ValueError, match="no model named"):
        unregister_model("median")
    with pytest.raises(TypeError, match="build must be callable"):
        register_model("broken", "no builder", None)
    with pytest.raises(ValueError, match="unknown model"):
        make_model("median", "regression")


def test_the_context_builds_the_shared_pieces():
    ctx = ModelContext("classification", model="m", domains="SMILES", smiles_column="smiles", random_state=7)
    assert ctx.classification and ctx.tag(max_iter=2).get_params()["max_iter"] == 2
    assert ctx.hybrid(llm=None).get_params()["smiles_column"] == "smiles"
    assert ctx.smiles_features(DummyRegressor()).transformers[0][2] == ["smiles"]
