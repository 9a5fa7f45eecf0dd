"""The training loop (``sktag._fit.training``): early-stopping splits, non-finite losses,
interrupts through :class:`sktag.Callback`, and determinism."""

import copy
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

import sktag
from conftest import TEXT, Y_CLF, assert_fit_rejects, small_clf, small_reg, unchanged

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# =================================================== early-stopping splits
FIT_CASES = [
    # id, estimator, kwargs, X, y, exception, message
    ("one-sample-early-stopping", "reg", {"early_stopping": True}, ["a"], [1.0],
     ValueError, r"early_stopping needs at least one training and two validation samples; with 1 "
                 r"samples and validation_fraction=0\.1"),
    ("few-samples-early-stopping", "clf", {"early_stopping": True}, ["a", "b", "c", "d"],
     [0, 1, 0, 1], ValueError,
     r"early_stopping needs at least one training and two validation samples; with 4 samples"),
    ("few-samples-stratified-split", "clf", {"early_stopping": True, "validation_fraction": 0.3},
     ["a", "b", "c", "d", "e", "f"], [0, 1, 2, 0, 1, 2], ValueError,
     r"Cannot hold out a stratified validation set of 2 samples: .*number of classes = 3"),
]


@pytest.mark.parametrize("case", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_fit_rejects_bad_input_without_touching_it(case, tiny_model):
    assert_fit_rejects(case, tiny_model)


# ======================================================== numerical safety
def test_non_finite_loss_stops_training(tiny_model):
    X, y = TEXT, np.arange(8.0)
    # the paper's training (gradient-trained head on the function tag's state): a closed-form head
    # on normalised hidden states never sees a non-finite loss
    est = small_reg(tiny_model, learning_rate_init=1e30, max_iter=6, readout="tag", head_init="random",
               head_update="gradient")
    with unchanged(X, y), pytest.raises(
            FloatingPointError,
            match=r"The training loss became (inf|nan|-inf) in epoch \d+; the weights of the last finite "
                  r"epoch were kept\. Lower learning_rate_init \(now 1e\+30\) or check the targets"):
        est.fit(X, y)
    assert est.n_iter_ >= 1 and len(est.loss_curve_) == est.n_iter_
    assert all(np.isfinite(est.loss_curve_))
    assert all(torch.isfinite(p).all() for p in est.module_.parameters())
    assert np.isfinite(est.predict(X)).all()
    # non-finite in the first epoch (2 batches: the first step blows up the second): nothing was
    # learned, so the estimator is left as it was, unfitted
    fresh = clone(est).set_params(batch_size=4)
    with unchanged(X, y), pytest.raises(FloatingPointError, match=r"in epoch 1; nothing was learned, so the "
                                                                  r"estimator is left as it was"):
        fresh.fit(X, y)
    assert not hasattr(fresh, "module_") and not hasattr(fresh, "loss_curve_")


# ============================================== interruption, resumption
class _InterruptAfterBatch(sktag.Callback):
    """Raise ``KeyboardInterrupt`` (as Ctrl-C would) after the optimizer step of batch ``n`` of the fit."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def on_batch_end(self, estimator, batch_rows, loss):
        self.seen += 1
        if self.seen == self.n:
            raise KeyboardInterrupt

class _InterruptAtEpoch(sktag.Callback):
    """Raise ``KeyboardInterrupt`` when epoch ``epoch`` (counted over the estimator's life) begins."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, estimator, epoch):
        if epoch == self.epoch:
            raise KeyboardInterrupt

@pytest.mark.parametrize("early_stopping", [False, True])
def test_interrupt_keeps_best_weights_then_warm_start(tiny_model, length_task, early_stopping):
    X, y = length_task[0][:20], length_task[1][:20]
    # without early stopping 20 rows: 3 batches of 8/8/4; with it 2 of them are held out: 3 of 8/8/2
    kw = dict(max_iter=6, batch_size=8, early_stopping=early_stopping, n_iter_no_change=10)
    est = small_reg(tiny_model, callbacks=[_InterruptAfterBatch(7)], **kw)  # 1st batch of epoch 3
    kept = "the best validation epoch so far" if early_stopping else "the last complete epoch"
    with pytest.warns(UserWarning, match=rf"fit was interrupted after 2 complete epochs; the estimator "
                                         rf"keeps the weights of {kept}"):
        assert est.fit(X, y) is est
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    # the weights kept are those of a fit that stopped after epoch 2 (which keeps the last epoch's
    # weights, or with early stopping the best validation epoch's, epoch 0 included)
    reference = small_reg(tiny_model, **{**kw, "max_iter": 2}).fit(X, y)
    assert reference.loss_curve_ == est.loss_curve_
    assert reference.validation_scores_ == est.validation_scores_
    assert reference.best_epoch_ == est.best_epoch_
    np.testing.assert_array_equal(est.predict(X), reference.predict(X))
    first_losses = list(est.loss_curve_)

    est.set_params(warm_start=True, max_iter=2, callbacks=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    assert est.n_iter_ == 4 and len(est.loss_curve_) == 4
    assert est.loss_curve_[:2] == first_losses
    assert np.isfinite(est.predict(X)).all()

@pytest.mark.parametrize("where", ["mid-epoch", "epoch-begin"])
def test_interrupt_mid_epoch_of_warm_start_keeps_previous_weights(tiny_model, length_task, where):
    X, y = length_task[0][:16], length_task[1][:16]  # 2 batches of 8 per epoch
    est = small_reg(tiny_model, max_iter=2, batch_size=8).fit(X, y)
    before = est.predict(X)
    state = copy.deepcopy(est.module_.state_dict())
    # after one optimizer step of epoch 3, or as epoch 3 begins
    cb = _InterruptAfterBatch(1) if where == "mid-epoch" else _InterruptAtEpoch(3)
    est.set_params(warm_start=True, callbacks=[cb])
    with pytest.warns(UserWarning, match="interrupted after 2 complete epochs"):
        est.fit(X, y)
    assert est.n_iter_ == 2 and len(est.loss_curve_) == 2
    for k, v in est.module_.state_dict().items():
        assert torch.equal(v, state[k]), k
    np.testing.assert_array_equal(est.predict(X), before)

@pytest.mark.parametrize("where", ["mid-epoch", "epoch-begin"])
def test_interrupt_in_first_epoch_reraises(tiny_model, where):
    cb = _InterruptAfterBatch(1) if where == "mid-epoch" else _InterruptAtEpoch(1)
    clf = small_clf(tiny_model, batch_size=4, callbacks=[cb])
    with pytest.raises(KeyboardInterrupt):
        clf.fit(TEXT, Y_CLF)
    # nothing was learned: the estimator stays unfitted
    assert not hasattr(clf, "module_")
    with pytest.raises(NotFittedError):
        clf.predict(TEXT)
    # and a fitted one keeps its fit
    fitted = small_clf(tiny_model, batch_size=4).fit(TEXT, Y_CLF)
    proba = fitted.predict_proba(TEXT)
    fitted.set_params(callbacks=[_InterruptAfterBatch(1) if where == "mid-epoch" else _InterruptAtEpoch(1)])
    with pytest.raises(KeyboardInterrupt):
        fitted.fit(TEXT, Y_CLF[::-1])
    np.testing.assert_array_equal(fitted.predict_proba(TEXT), proba)
    assert fitted.n_iter_ == 2


# ============================================================ determinism
def test_same_random_state_is_bitwise_identical(make_reg, length_task):
    X, y = length_task[0][:16], length_task[1][:16]
    p1 = make_reg(max_iter=2, batch_size=8).fit(X, y).predict(X)
    p2 = make_reg(max_iter=2, batch_size=8).fit(X, y).predict(X)
    assert p1.tobytes() == p2.tobytes()
    p3 = make_reg(max_iter=2, batch_size=8, random_state=1).fit(X, y).predict(X)
    assert not np.array_equal(p1, p3)


# ============================================================ sample weights
def test_zero_weight_rows_count_exactly_as_absent_rows(tiny_model, length_task):
    X, y = length_task[0][:40], length_task[1][:40]
    sw = np.ones(len(X))
    sw[::3] = 0.0
    keep = sw > 0
    kw = dict(max_iter=3, batch_size=8)
    weighted = small_reg(tiny_model, **kw).fit(X, y, sample_weight=sw)
    absent = small_reg(tiny_model, **kw).fit([x for x, k in zip(X, keep) if k], y[keep])
    assert weighted.loss_curve_ == absent.loss_curve_
    np.testing.assert_array_equal(weighted.predict(X), absent.predict(X))


class _Recorder(sktag.Callback):
    def __init__(self):
        self.calls = []

    def on_epoch_begin(self, estimator, epoch):
        self.calls.append(("begin", epoch))

    def on_batch_end(self, estimator, batch_rows, loss):
        assert torch.isfinite(loss) and loss.ndim == 0
        self.calls.append(("batch", len(batch_rows)))

    def on_epoch_end(self, estimator, epoch, history):
        assert history.n_iter == epoch and len(history.loss_curve) == epoch
        self.calls.append(("end", epoch))


def test_callbacks_see_every_epoch_and_batch(tiny_model):
    rec = _Recorder()
    est = small_clf(tiny_model, batch_size=4, callbacks=[rec]).fit(TEXT, Y_CLF)
    assert rec.calls == [("begin", 1), ("batch", 4), ("batch", 4), ("end", 1),
                         ("begin", 2), ("batch", 4), ("batch", 4), ("end", 2)]
    assert est.n_iter_ == 2 and len(est.epoch_times_) == 2
    with pytest.raises(ValueError, match="callbacks must be sktag Callback instances"):
        small_clf(tiny_model, callbacks=[object()]).fit(TEXT, Y_CLF)


class _StopAfter(sktag.Callback):
    """Asks the loop to stop at the end of epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, estimator, epoch, history):
        if epoch == self.epoch:
            history.stop_training = True


@pytest.mark.parametrize("early_stopping", [False, True])
def test_a_callback_stops_the_fit_after_the_epoch(tiny_model, length_task, early_stopping):
    X, y = length_task
    kw = dict(max_iter=5, n_iter_no_change=10, early_stopping=early_stopping, validation_fraction=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a requested stop is no failure to converge
        stopped = small_reg(tiny_model, callbacks=[_StopAfter(2)], **kw).fit(X, y)
    assert stopped.n_iter_ == 2 and len(stopped.loss_curve_) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        two = small_reg(tiny_model, **{**kw, "max_iter": 2}).fit(X, y)  # the same two epochs, run out
    np.testing.assert_array_equal(stopped.predict(X), two.predict(X))
    # a warm start begins without the earlier request
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        stopped.set_params(warm_start=True, callbacks=None, max_iter=2).fit(X, y)
    assert stopped.n_iter_ == 4
