"""The records one fit builds (``sktag._fit.records``): built by keyword, with the common face callbacks read."""

import dataclasses

import numpy as np
import pytest
import torch

from sktag._fit.records import FitInputs, FitModel, FitRun, FitState, PretrainState
from sktag._fit.training import History

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _inputs(**kw):
    fields = dict(columns=None, names=None, labels=None, column_domains=["Text"], task=object(), task_state={},
                  targets=None, weights=None, backbone=object())
    return FitInputs(**{**fields, **kw})


@pytest.mark.parametrize("record", [FitInputs, FitModel, FitRun, FitState, PretrainState])
def test_every_record_is_built_by_keyword_only(record):
    fields = dataclasses.fields(record)
    assert fields and all(f.kw_only for f in fields)
    with pytest.raises(TypeError, match="positional"):
        record(*[None] * len(fields))


def test_a_fit_input_positional_call_is_refused_even_with_every_field():
    with pytest.raises(TypeError):
        FitInputs(None, None, None, ["Text"], object(), {}, None, None, object())
    inputs = _inputs()
    assert (inputs.rng, inputs.continuing, inputs.incremental, inputs.readout) == (None, False, False, None)


def test_a_fit_run_starts_with_nothing_but_its_history():
    history = History(False)
    run = FitRun(history=history)
    assert run.history is history
    assert (run.rows, run.train_idx, run.val_idx, run.source, run.optimizer) == (None,) * 5
    assert (run.targets_t, run.weights_t, run.batch_size, run.fit_time) == (None, None, None, 0.0)
    with pytest.raises(TypeError):
        FitRun()  # the history is required


def test_fit_state_module_optimizer_and_history_are_those_of_its_records():
    module = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    history = History(True)
    model = FitModel(layout=object(), module=module, readout=object(), isolate=False, canonicalize=True)
    assert model.domain_tags_digest is None and model.head_alpha is None
    state = FitState(inputs=_inputs(), model=model, run=FitRun(history=history, optimizer=optimizer))
    assert state.module is module and state.optimizer is optimizer and state.history is history
    state.run = FitRun(history=History(False))  # the properties read the records as they are now
    assert state.optimizer is None and state.history is state.run.history and state.history is not history


def test_fit_state_has_no_model_or_run_before_the_steps_that_make_them():
    state = FitState(inputs=_inputs())
    assert state.model is None and state.run is None
    with pytest.raises(AttributeError):
        _ = state.module
    with pytest.raises(AttributeError):
        _ = state.history


def test_a_pretrain_state_holds_what_the_pretrainer_fit_needs():
    history = History(False)
    state = PretrainState(strings=["CC"], backbone=object(), module=torch.nn.Linear(1, 1), history=history,
                          initial=torch.zeros(2, 4), rng=np.random.RandomState(0))
    assert state.history is history and state.optimizer is None
    assert (state.continuing, state.objective, state.fit_time) == (False, None, 0.0)
