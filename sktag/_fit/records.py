"""The records one fit builds: what was given, what is trained, how the run goes.

A fit of :class:`~sktag.TagRegressor` or :class:`~sktag.TagClassifier` fills a
:class:`FitState` step by step (see :mod:`sktag._fit.base`): the validated inputs
(:class:`FitInputs`, from ``check_fit_input``), the model being trained
(:class:`FitModel`, from ``initialize_layout``) and the run's bookkeeping
(:class:`FitRun`: rows, split, prefix cache, optimiser, history).  A domain-tag
pretrainer's fit is a :class:`PretrainState`.  Callbacks see either as
``estimator.fit_state_`` while the estimator trains, with ``module``,
``optimizer`` and ``history`` as its common face.  Every record is built by
keyword; nothing rides along in an untyped side channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # (annotations only: no import at run time)
    from .._forward.encoding import EncodedRow, TagLayout
    from .._forward.module import TagModule
    from .._forward.readouts import Readout
    from .._forward.states import StateSource
    from ..backbone import Backbone
    from .tasks import ClassificationTask, RegressionTask
    from .training import History


@dataclass(kw_only=True)
class FitInputs:
    """The validated inputs of one fit (``check_fit_input``).

    ``columns``, ``names`` and ``labels`` are the string columns, their
    names and the row labels of ``X``; ``targets`` and ``weights`` the
    task's encoded targets and row weights.  An estimator rebuilt from a
    TagSet has no rows (``columns``, ``targets`` and ``weights`` are None)
    and a fixed ``readout``, the saved one.
    """

    columns: list | None
    names: list | None
    labels: list | None
    column_domains: list
    task: RegressionTask | ClassificationTask
    task_state: dict
    targets: np.ndarray | None
    weights: np.ndarray | None
    backbone: Backbone
    rng: np.random.RandomState | None = None
    continuing: bool = False
    incremental: bool = False
    readout: Readout | None = None


@dataclass(kw_only=True)
class FitModel:
    """The model being trained (``initialize_layout``), and what a prediction with it depends on.

    ``module`` holds the tags and the head; ``head_alpha`` is the penalty of
    the head's closed form once it is solved.
    """

    layout: TagLayout
    module: TagModule
    readout: Readout
    isolate: bool
    canonicalize: bool
    domain_tags_digest: str | None = None
    head_alpha: float | None = None


@dataclass(kw_only=True)
class FitRun:
    """The run's bookkeeping: encoded rows, the validation split, the prefix cache, the optimiser.

    ``targets_t`` and ``weights_t`` are the targets and weights on the
    backbone's device (made once per fit by the first training step);
    ``batch_size`` is the one the training loop ended with and
    ``fit_time`` the seconds it trained.
    """

    history: History
    rows: list[EncodedRow] | None = None
    train_idx: np.ndarray | None = None
    val_idx: np.ndarray | None = None
    source: StateSource | None = None
    optimizer: torch.optim.Optimizer | None = None
    targets_t: torch.Tensor | None = None
    weights_t: torch.Tensor | None = None
    batch_size: int | None = None
    fit_time: float = 0.0


@dataclass(kw_only=True)
class FitState:
    """One fit of a Tag-LLM estimator in progress: its three records.

    ``module``, ``optimizer`` and ``history`` are what callbacks usually
    need (``estimator.fit_state_.module``).
    """

    inputs: FitInputs
    model: FitModel | None = None
    run: FitRun | None = None

    @property
    def module(self) -> TagModule:
        """The tags and head being trained."""
        return self.model.module

    @property
    def optimizer(self) -> torch.optim.Optimizer | None:
        """The optimiser of the training loop."""
        return self.run.optimizer

    @property
    def history(self) -> History:
        """The loss curve, validation scores and stopping counters so far."""
        return self.run.history


@dataclass(kw_only=True)
class PretrainState:
    """One fit of a domain-tag pretrainer in progress.

    ``module`` holds the tag being learned (a :class:`~sktag._pretrain.base.PretrainModule`);
    ``initial`` is the untrained tag (kept as ``initial_tag_``); ``objective``
    the pretraining objective's per-batch step and its fitted attributes.
    """

    strings: list
    backbone: Backbone
    module: torch.nn.Module
    history: History
    initial: torch.Tensor
    rng: np.random.RandomState
    continuing: bool = False
    objective: object = None  # the pretrainer's Objective (sktag._pretrain.base)
    optimizer: torch.optim.Optimizer | None = None
    fit_time: float = 0.0
