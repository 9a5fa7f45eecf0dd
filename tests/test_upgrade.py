"""Objects pickled by earlier versions of sktag (``sktag._runtime.upgrade``): what they lack gets the value they behaved as."""

import pickle

import numpy as np
import pytest
import torch

from conftest import CNO, Y_CNO
from conftest import quick_reg
from sktag._forward.deep import DeepTable
from sktag._forward.module import TagModule
from sktag._runtime.upgrade import FITTED_DEFAULTS, RESIDUAL, upgrade_estimator, upgrade_module

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ------------------------------------------------------------------ estimators
def test_a_fitted_estimator_gets_the_defaults_it_lacks():
    module = object()
    state = upgrade_estimator({"module_": module, "alpha": 1})
    assert state == {"module_": module, "alpha": 1, "_domain_tags_digest": None, "head_alpha_": None}
    assert state["module_"] is module


def test_an_unfitted_estimator_is_left_as_it_is():
    state = {"alpha": 1, "model": "m"}
    assert upgrade_estimator(dict(state)) == state


def test_recorded_values_are_kept():
    state = upgrade_estimator({"module_": None, "head_alpha_": 0.5, "_domain_tags_digest": "abc"})
    assert state["head_alpha_"] == 0.5 and state["_domain_tags_digest"] == "abc"


def test_an_embedding_of_an_earlier_version_has_shallow_or_residual_domain_tags():
    state = upgrade_estimator({"layers_": [1, 2]})
    assert state == {"layers_": [1, 2], "deep_table_": None, "domain_tag_depth_": RESIDUAL}
    assert upgrade_estimator({"layers_": [1], "domain_tag_depth_": "kv"})["domain_tag_depth_"] == "kv"
    assert set(FITTED_DEFAULTS) == {"module_", "layers_"}


def test_an_estimator_pickled_without_the_new_attributes_unpickles_and_predicts(tiny_model):
    est = quick_reg(tiny_model).fit(CNO, Y_CNO)
    expected = est.predict(CNO)
    del est.head_alpha_, est._domain_tags_digest  # as sktag 0.3 wrote it
    back = pickle.loads(pickle.dumps(est))
    assert back.head_alpha_ is None and back._domain_tags_digest is None
    np.testing.assert_array_equal(back.predict(CNO), expected)


# ------------------------------------------------------------------ TagModule
def _module(**kw):
    return TagModule([torch.ones(2, 4)], torch.ones(3, 4), n_features=4, n_outputs=1, **kw)


def test_a_module_without_a_deep_mask_gets_none_and_tags_every_block():
    m = _module(deep_shape=(3, 4), deep_layers=(1,))
    del m._buffers["deep_mask"]  # as sktag 0.3 wrote it
    upgrade_module(m)
    assert "deep_mask" in m._buffers and m.deep_mask is None
    assert m.tagged_blocks() == (0, 1, 2) and m.function_deep() is m.deep_tag


def test_a_module_without_a_kind_is_residual_when_its_domain_tags_are_deep():
    deep = _module(domain_deep=[DeepTable(torch.zeros(2, 2, 4))])
    shallow = _module()
    for m in (deep, shallow):
        del m.__dict__["_deep_kind"]
        upgrade_module(m)
    assert deep._deep_kind == RESIDUAL and deep.deep_table().kind == "deep"
    assert shallow._deep_kind is None and shallow.deep_table() is None
    kv = _module(domain_deep=[DeepTable(torch.zeros(2, 2, 8), "kv")])
    upgrade_module(kv)  # a recorded kind is kept
    assert kv.domain_deep_kind == "kv"


def test_unpickling_upgrades_a_module_of_an_earlier_version():
    m = _module(deep_shape=(2, 4), domain_deep=[DeepTable(torch.zeros(2, 2, 4))])
    del m._buffers["deep_mask"], m.__dict__["_deep_kind"]
    back = pickle.loads(pickle.dumps(m))
    assert back.deep_mask is None and back.domain_deep_kind == "deep"
    assert torch.equal(back.tag_table(), m.tag_table())


def test_a_deep_module_pickled_without_a_kind_reads_as_residual(make_reg, length_task):
    """A TagModule pickled by sktag 0.3 records no kind of deep block: it is the residual kind, and a warm
    start from it keeps going."""
    X, y = length_task
    reg = make_reg(max_iter=1, domain_tag_depth="deep", tune_domain_tags=True, early_stopping=False).fit(X, y)
    del reg.module_._deep_kind  # as 0.3 wrote it
    reg = pickle.loads(pickle.dumps(reg))
    assert reg.module_.deep_table().kind == "deep" and reg.tagset().deep_kind("Text") == "deep"
    reg.set_params(warm_start=True).fit(X, y)
    assert reg.domain_tag_depth_ == "deep" and reg.n_iter_ == 2
