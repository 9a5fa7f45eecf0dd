"""Fitted results do not change by accident: outputs compared with stored ones, and old pickles load.

``tests/data/fit_regression.npz`` holds the outputs of each configuration of
``tests/data/make_fit_regression.py`` (the default regressor, the paper's
estimator, deep function tags, key/value domain tags, tuned domain tags, a
classifier and ``LLMEmbedding``) on the suite's tiny model, fitted in float32
with one thread.  On the torch version and CPU capability that wrote them the
outputs must be equal bit for bit; elsewhere other kernels round
differently, and they must agree within the dtype's tolerance.  A change meant
to change fitted results rewrites the file with that script.

``fitted_regressor.pkl``, ``fitted_embedding.pkl`` and ``fitted.tags`` were
written by sktag 0.4: they must still load, and predict what this version
predicted with them when the outputs were stored.
"""

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tol

DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("make_fit_regression", DATA / "make_fit_regression.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)

STORED = np.load(DATA / "fit_regression.npz")
#: the stored outputs were computed by this torch on this kind of CPU: then they must be equal bit for bit
SAME_KERNELS = (str(STORED["torch_version"]) == torch.__version__
                and str(STORED["cpu_capability"]) == torch.backends.cpu.get_cpu_capability())


def assert_same(actual, name):
    expected = STORED[name]
    if SAME_KERNELS and torch.get_num_threads() == 1:
        np.testing.assert_array_equal(actual, expected, err_msg=f"{name}: fitted outputs changed")
    else:
        np.testing.assert_allclose(actual, expected, **tol(torch.float32, scale=np.abs(expected).max()),
                                   err_msg=f"{name}: fitted outputs changed beyond rounding")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", list(gen.CASES))
def test_fitted_outputs_are_the_stored_ones(name, tiny_model):
    _, out = gen.fit_case(name, tiny_model)
    assert_same(out, name)


def _load(name, model):
    with open(DATA / name, "rb") as f:
        est = pickle.load(f)
    return est.set_params(model=model)


def test_a_regressor_pickled_by_an_earlier_version_predicts_as_it_did(tiny_model):
    est = _load("fitted_regressor.pkl", tiny_model)
    X, _, _ = gen.regression_data()
    assert_same(est.predict(X), "file_fitted_regressor")


def test_an_embedding_pickled_by_an_earlier_version_transforms_as_it_did(tiny_model):
    est = _load("fitted_embedding.pkl", tiny_model)
    X, _, _ = gen.regression_data()
    assert_same(est.transform(X), "file_fitted_embedding")
    np.testing.assert_array_equal(STORED["file_fitted_embedding"], STORED["embedding"])  # nothing to fit


def test_a_tagset_saved_by_an_earlier_version_rebuilds_the_regressor(tiny_model):
    from sktag import TagRegressor

    est = TagRegressor.from_tags(DATA / "fitted.tags", "TagRegressor", model=tiny_model)
    X, _, _ = gen.regression_data()
    assert_same(est.predict(X), "file_fitted_regressor")  # the tags of the pickled fit
