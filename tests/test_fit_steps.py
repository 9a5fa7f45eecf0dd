"""The fit steps of the Tag-LLM estimators (``sktag._fit.base``): their order, and subclasses that override them."""

import numpy as np
import pytest
import torch

from sktag import Callback, TagClassifier, TagRegressor
from conftest import SMALL, SMILES, Y_SMILES

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

STEPS = ["check_fit_input", "initialize_layout", "encode_rows", "initialize_states", "initialize_head",
         "build_optimizer", "fit_loop", "finish_head", "commit_fit"]


def _logging(cls):
    """A subclass of ``cls`` that logs each fit step it enters, then runs it."""
    def make(name):
        def step(self, *args, **kwargs):
            self.log.append(name)
            return getattr(cls, name)(self, *args, **kwargs)
        return step

    return type(f"Logged{cls.__name__}", (cls,), {"log": None, **{name: make(name) for name in STEPS}})


@pytest.mark.parametrize("cls", [TagRegressor, TagClassifier])
def test_fit_runs_every_step_once_in_order(tiny_model, cls):
    Est = _logging(cls)
    est = Est(model=tiny_model, **{**SMALL, "domains": "SMILES"})
    est.log = []
    est.fit(SMILES, Y_SMILES if cls is TagRegressor else (Y_SMILES > 0).astype(int))
    assert est.log == STEPS


class _Seen(Callback):
    def on_train_begin(self, estimator):
        state = estimator.fit_state_
        self.optimizer = state.optimizer
        self.head = state.module.head.linear.weight.detach().clone()
        self.tag = state.module.function_tag.detach().clone()


def test_a_subclass_trains_with_its_own_optimizer(tiny_model):
    class SGDRegressor(TagRegressor):
        def build_optimizer(self, state):
            return torch.optim.SGD([state.module.function_tag], lr=0.5)

    seen = _Seen()
    reg = SGDRegressor(model=tiny_model, callbacks=[seen], **{**SMALL, "domains": "SMILES"}).fit(SMILES, Y_SMILES)
    assert isinstance(seen.optimizer, torch.optim.SGD)
    ref = TagRegressor(model=tiny_model, **{**SMALL, "domains": "SMILES"}).fit(SMILES, Y_SMILES)
    assert not torch.equal(reg.module_.function_tag, ref.module_.function_tag)


def test_a_subclass_train_step_is_the_one_trained(tiny_model):
    class Counting(TagRegressor):
        batches = 0

        def train_step(self, state, batch_rows):
            type(self).batches += 1
            loss, weight = super().train_step(state, batch_rows)
            return loss * 0.0, weight  # no gradient: the function tag stays where it started

    seen = _Seen()
    reg = Counting(model=tiny_model, alpha=0.0, callbacks=[seen], **{**SMALL, "domains": "SMILES",
                                                                     "batch_size": 4}).fit(SMILES, Y_SMILES)
    assert Counting.batches == reg.n_iter_ * int(np.ceil(len(SMILES) / 4))
    assert reg.loss_curve_ == [0.0] * reg.n_iter_
    torch.testing.assert_close(reg.module_.function_tag.detach(), seen.tag, rtol=0, atol=0)


def test_a_subclass_initial_head_is_where_training_starts(tiny_model):
    class ZeroHead(TagRegressor):
        def initialize_head(self, state):
            head = state.module.head
            head.set_weights(torch.full_like(head.linear.weight, 0.25), torch.zeros_like(head.linear.bias))

    seen = _Seen()
    ZeroHead(model=tiny_model, callbacks=[seen], head_update="gradient",
             **{**SMALL, "domains": "SMILES"}).fit(SMILES, Y_SMILES)
    assert torch.all(seen.head == 0.25)
