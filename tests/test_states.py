"""Readout states of a data set (``sktag._forward.states.StateSource``): the prefix cache, then the function-tag step."""

import warnings

import numpy as np
import pytest
import torch

from conftest import SHORT_SMILES as STRINGS
from conftest import encoded_rows as _rows
from conftest import tol
from sktag._forward import cache as _cache
from sktag._forward.encoding import TagLayout
from sktag._forward.module import TagModule
from sktag._forward.readouts import make_readout
from sktag._forward.states import StateSource
from sktag.exceptions import PerformanceWarning

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TAG_LENGTHS = (3, 4)  # one domain tag of 3 vectors, a function tag of 4


@pytest.fixture
def readout(backbone):
    return make_readout("pooled", backbone.hidden_widths(), [1, 2])


def _module(backbone, readout, tune_domain_tags=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    d = backbone.hidden_size
    return TagModule([torch.randn(TAG_LENGTHS[0], d, generator=g)], torch.randn(TAG_LENGTHS[1], d, generator=g),
                     readout.n_features, 1, tune_domain_tags=tune_domain_tags)


def _source(backbone, readout, batch_size=2, verbose=0):
    rows = _rows(backbone, [STRINGS], TAG_LENGTHS)
    layout = TagLayout(("d0",), TAG_LENGTHS[:1], TAG_LENGTHS[1])  # the layout of encoded_rows
    return StateSource(backbone, rows, layout, readout.needs, False, batch_size, verbose)


def test_cached_and_recomputed_prefixes_give_the_same_features(backbone, readout):
    module = _module(backbone, readout)
    idx = np.arange(len(STRINGS))
    cached, plain = _source(backbone, readout), _source(backbone, readout, batch_size=3)
    cached.cache(idx, module, "auto")
    assert cached.store is not None and cached.cache_location == "memory"
    assert cached.cache_bytes == _cache.PrefixCache.nbytes(backbone, cached.lengths.sum()) > 0
    assert plain.store is None and plain.cache_location is None and plain.cache_bytes == 0
    F_cached = cached.features(module, readout, idx)
    F_plain = plain.features(module, readout, idx)
    assert F_cached.shape == (len(STRINGS), readout.n_features) and F_cached.dtype == np.float64
    np.testing.assert_allclose(F_cached, F_plain, **tol(torch.float32, scale=float(np.abs(F_plain).max())))


def test_features_are_nan_outside_the_rows_asked_for(backbone, readout):
    module = _module(backbone, readout)
    F = _source(backbone, readout).features(module, readout, [3, 0])
    assert np.isfinite(F[[0, 3]]).all() and np.isnan(F[[1, 2, 4]]).all()


def test_no_cache_false_keeps_nothing_and_says_nothing(backbone, readout, capsys):
    source = _source(backbone, readout, verbose=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        source.cache(np.arange(len(STRINGS)), _module(backbone, readout), False)
    assert source.store is None and source.cache_location is None
    assert "recomputing prefixes every batch" in capsys.readouterr().out  # verbose says so, quietly


def test_without_room_auto_warns_and_a_number_budget_does_not(backbone, readout, monkeypatch, capsys):
    monkeypatch.setattr(_cache, "memory_budget", lambda spec, device: 10)
    monkeypatch.setattr(_cache, "DISK_MARGIN", 2**62)
    module = _module(backbone, readout)
    idx = np.arange(len(STRINGS))
    source = _source(backbone, readout)
    with pytest.warns(PerformanceWarning, match=r"> budget 10 B.*too little.*recomputing the prefixes every batch"):
        source.cache(idx, module, "auto")
    assert source.store is None and source.cache_bytes == 0
    quiet = _source(backbone, readout)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        quiet.cache(idx, module, 10)
    assert quiet.store is None and capsys.readouterr().out == ""


def test_tuned_domain_tags_run_the_whole_sequence_with_their_gradient(backbone, readout):
    """With tuned domain tags the prefix is no constant: under autograd every batch runs whole, and the gradient
    reaches the domain tags; a cache made before the tags moved is not read then."""
    module = _module(backbone, readout, tune_domain_tags=True)
    assert module.tunes_domain_tags()
    source = _source(backbone, readout)
    rows = [0, 3, 4]
    source.cache(np.arange(len(STRINGS)), module, "auto")
    assert source.store is not None
    with torch.no_grad():
        before = source.states(module, rows).tag[0].clone()  # from the cache
        module.domain_tags[0].add_(1.0)
        stale = source.states(module, rows).tag[0]  # still the cache: made with the old tags
    torch.testing.assert_close(stale, before, rtol=0, atol=0)
    states = source.states(module, rows)
    assert not torch.allclose(states.tag[0].detach(), before)  # the moved tags, run in full
    states.tag[0].sum().backward()
    assert module.domain_tags[0].grad.abs().sum() > 0 and module.function_tag.grad.abs().sum() > 0
    fresh = _source(backbone, readout)  # no cache: the prefix computed with the current tags
    with torch.no_grad():
        torch.testing.assert_close(fresh.states(module, rows).tag[0], states.tag[0].detach(), **tol(torch.float32))


def test_frozen_domain_tags_give_the_function_tag_alone_its_gradient(backbone, readout):
    module = _module(backbone, readout)
    assert not module.tunes_domain_tags()
    states = _source(backbone, readout).states(module, [1, 2])
    (states.tag[0].sum() + states.pooled.sum()).backward()
    assert module.function_tag.grad.abs().sum() > 0 and module.domain_tags[0].grad is None


def test_no_cache_and_cached_paths_give_same_model(make_reg, length_task):
    X, y = length_task
    a = make_reg(max_iter=2, prefix_cache="auto").fit(X, y)
    b = make_reg(max_iter=2, prefix_cache=False).fit(X, y)
    assert a.prefix_cache_bytes_ > 0 and b.prefix_cache_bytes_ == 0
    assert a.prefix_cache_location_ == "memory" and b.prefix_cache_location_ is None
    np.testing.assert_allclose(a.predict(X), b.predict(X), **tol(scale=np.std(y)))
