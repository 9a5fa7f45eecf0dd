"""Readouts and closed-form heads: what the pooled readout and the closed-form start compute."""

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import tol
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV

from sktag import Callback, TagRegressor, _engine
from sktag._forward.encoding import TagLayout, layout_rows
from sktag._forward.readouts import Needs, Readout
from sktag._forward.taginit import init_tag
from sktag.backbone import load_backbone

TEXT = ["CCNO", "CN", "CONN", "NNC", "OOCN", "NC", "CCN", "NCOO", "OCN", "CCO", "NNO", "OOC", "CNCN", "OONN"]
Y = np.array([s.count("N") / len(s) for s in TEXT])


class Snapshot(Callback):
    """Keeps the module as it is when the first epoch begins (after the closed-form start)."""

    def on_epoch_begin(self, estimator, epoch):
        if epoch == 1:
            self.state = copy.deepcopy(estimator.fit_state_.module.state_dict())


def test_closed_form_start_equals_a_ridge_fitted_by_hand(tiny_model):
    snap = Snapshot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = TagRegressor(model=tiny_model, domains="Text", tag_length=2, max_iter=1, early_stopping=False,
                           random_state=0, callbacks=[snap]).fit(TEXT, Y)
    est.module_.load_state_dict(snap.state)  # back to the start: initial tags, closed-form head
    F = est.transform(TEXT)
    head = est.module_.head
    mean, scale = F.mean(axis=0), F.std(axis=0)
    np.testing.assert_allclose(head.mean.cpu().numpy(), mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(head.scale.cpu().numpy(), np.where(scale > 1e-6, scale, 1), rtol=1e-4, atol=1e-6)
    Z = (F - head.mean.cpu().numpy()) / head.scale.cpu().numpy()
    ridge = RidgeCV(alphas=np.logspace(-2, 5, 22)).fit(Z, (Y - est.y_mean_[0]) / est.y_scale_[0])
    np.testing.assert_allclose(head.linear.weight.detach().cpu().numpy()[0], ridge.coef_, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(head.linear.bias.detach().cpu().numpy()[0], ridge.intercept_, atol=1e-4)
    # and the function tag was still the init rule's
    init = init_tag(est.get_backbone(), "mean", 2)
    torch.testing.assert_close(est.module_.function_tag.detach().cpu(), init)


class Wreck(Callback):
    """Zeroes the head after every step: every trained epoch predicts a constant, worse than the start."""

    def on_batch_end(self, estimator, batch_rows, loss):
        with torch.no_grad():
            estimator.fit_state_.module.head.linear.weight.zero_()


def test_epoch_0_is_restorable(tiny_model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = TagRegressor(model=tiny_model, domains="Text", tag_length=2, max_iter=3, validation_fraction=0.3,
                           n_iter_no_change=3, head_update="gradient", random_state=0,
                           callbacks=[Wreck()]).fit(TEXT, Y)
    assert est.best_epoch_ == 0 and est.n_iter_ == 3
    assert est.best_validation_score_ > max(est.validation_scores_)
    init = init_tag(est.get_backbone(), "mean", 2)
    torch.testing.assert_close(est.module_.function_tag.detach().cpu(), init)  # the start, restored
    assert est.module_.head.linear.weight.abs().sum() > 0  # with its closed-form head


@pytest.mark.parametrize("isolate", [False, True])
def test_cached_pooled_states_equal_those_of_a_full_forward(tiny_model, isolate):
    bb = load_backbone(tiny_model, device="cpu", dtype="float32")
    tok = bb.tokenizer
    cols = [TEXT[:5], TEXT[5:10]]
    layout = TagLayout(("a", "b"), (3, 2), 4)
    rows = layout_rows([tok(c, add_special_tokens=False)["input_ids"] for c in cols], layout)
    table = torch.randn(int(layout.offsets[-1]), bb.hidden_size, generator=torch.Generator().manual_seed(0))
    layers = (0, 1, 2)
    pbatch = _engine.collate(rows)
    needs = Needs(tag_layers=(2,), pooled_layers=layers)
    _, pooled_prefix = _engine.prefix_pass(bb, pbatch, table, isolate, needs)
    pooled_prefix = pooled_prefix[:, 0]  # one group: all data tokens
    fbatch = _engine.collate(rows, tail=layout.function_slots)
    with torch.no_grad():
        pooled_full = _engine.full_states(bb, fbatch, table, isolate, needs).pooled[:, 0]
    torch.testing.assert_close(pooled_prefix, pooled_full, **tol(torch.float32))
    # by hand: the mean over each row's data tokens of the model's hidden states, row by row
    with torch.no_grad():
        for i, r in enumerate(rows):
            single = _engine.collate([r])
            hs = _engine.hidden_states(bb, single, table, list(layers), isolate)
            data = torch.as_tensor(r.slot < 0)
            expect = torch.cat([h[0][data].mean(dim=0) for h in hs])
            torch.testing.assert_close(pooled_prefix[i], expect, **tol(torch.float32))


# ------------------------------------------------ a new readout is one class, here in the test file
class SegmentReadout(Readout):
    """Each column's last-token state at layer 1 and the function tag's states at layer 1 and the last.

    Everything a readout is: its needs, its features, their names.  Defining the class registers it
    (``readout="segments_test"``); nothing else in sktag knows of it.
    """

    name = "segments_test"

    @property
    def needs(self):
        return Needs(tag_layers=(1, self.n_layers), pooled_layers=(1,), per_segment=True, pooling="last")

    def features(self, states):
        tag = torch.cat(states.tag, dim=1).float()
        return torch.cat([tag, states.pooled.flatten(1).float().to(tag.device)], dim=1)

    def feature_names(self):
        return self._tag_names() + self._pooled_names()


def test_a_readout_defined_in_a_test_file_works_end_to_end(tiny_model, tmp_path):
    df = pd.DataFrame({"a": TEXT, "b": TEXT[::-1]})
    kw = dict(model=tiny_model, domains={"a": "Text", "b": "Text"}, tag_length=2, max_iter=2, random_state=0,
              early_stopping=False, readout=SegmentReadout)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = TagRegressor(**kw).fit(df, Y)
        by_name = TagRegressor(**{**kw, "readout": "segments_test"}).fit(df, Y)
        cached_off = TagRegressor(**{**kw, "prefix_cache": False}).fit(df, Y)
    names = est.get_feature_names_out()
    assert len(names) == est.transform(df).shape[1] == 2 * 32 + 2 * 32  # 2 tag layers, 2 segments
    assert names[0] == "function_tag_L1_0" and names[-1] == "data_seg2_L1_last_31"
    assert est.readout_ == "segments_test" and est.module_.head.linear.in_features == 128
    pred = est.predict(df)
    np.testing.assert_array_equal(by_name.predict(df), pred)
    np.testing.assert_allclose(cached_off.predict(df), pred, **tol(scale=np.std(Y)))  # cached == uncached path
    # the per-segment states are the model's own: column b's block does not depend on column a's strings
    # when the segments are isolated
    iso = TagRegressor(**{**kw, "isolate_segments": True, "max_iter": 1}).fit(df, Y)
    F, G = iso.transform(df), iso.transform(df.assign(a=["NNNN"] * len(df)))
    np.testing.assert_allclose(F[:, -32:], G[:, -32:], **tol())
    assert not np.allclose(F[:, 64:96], G[:, 64:96])
    # saved and loaded with its own metadata
    est.save_tags(tmp_path / "seg.safetensors", name="Seg")
    back = TagRegressor.from_tags(tmp_path / "seg.safetensors", "Seg", model=tiny_model)
    assert back.readout_ == "segments_test"
    np.testing.assert_array_equal(back.predict(df), pred)
