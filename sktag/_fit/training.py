"""The one training loop of sktag (function tags, heads, domain-tag pretraining).

:class:`TrainingLoop` runs epochs of mini-batches over a :class:`FitData`
record; what one batch computes is a ``step(batch_rows) -> (loss_sum,
weight_sum)`` callable supplied by the estimator, so the loop knows nothing
of tags, heads or tasks.  It owns the bookkeeping scikit-learn's MLP keeps:
the loss curve, validation scores, early stopping with best-state restore,
and also what a long fit on a shared machine needs: rollback on a
non-finite loss, ``batch_size="auto"`` halving on CUDA out-of-memory,
``KeyboardInterrupt`` handling and per-epoch timings.  :meth:`TrainingLoop.run`
returns an :class:`Outcome` — how the run ended and whether its state is kept
— and the fit, having committed what it keeps, calls
:meth:`Outcome.conclude` for the error or warning that goes with it.

The loss of an epoch is ``Σ wᵢ lᵢ / Σ wᵢ`` over the whole training set: each
batch's summed weighted loss is scaled by the same constant, so a row's
weight counts the same whichever batch it lands in.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from .._forward.engine import length_batches
from .._runtime.report import progress, user_stacklevel

#: Whether an interrupted fit raises ``KeyboardInterrupt`` instead of keeping its best epoch (see
#: :func:`interrupts_abort`).
_INTERRUPTS_ABORT = contextvars.ContextVar("sktag_interrupts_abort", default=False)


@contextlib.contextmanager
def interrupts_abort():
    """Within this context, a Ctrl-C during a fit is never turned into a fitted model.

    On its own, an estimator treats ``KeyboardInterrupt`` between epochs as
    scikit-learn's MLP does: it keeps the best (or last complete) epoch and
    warns, so that an interactive user keeps what was learned.  A larger run
    that records fits as finished (:func:`sktag.benchmark.compare`) must not
    keep a fit cut short: inside this context the estimator is left as it
    was and the ``KeyboardInterrupt`` propagates.
    """
    token = _INTERRUPTS_ABORT.set(True)
    try:
        yield
    finally:
        _INTERRUPTS_ABORT.reset(token)


class Callback:
    """Hooks into a fit (skorch style); override what you need.

    Pass instances through the ``callbacks`` parameter of the estimators and
    of :class:`~sktag.DomainTagPretrainer`.  Every hook receives the
    estimator being fitted first.  While it trains, the fit in progress is
    ``estimator.fit_state_`` (``.module`` holds the tags and head being
    trained, ``.optimizer`` the optimiser, ``.history`` the loss curve and
    scores so far); it is removed when ``fit`` returns, and the fitted
    attributes are set only then.

    To end a fit early, a hook sets ``history.stop_training = True``
    (``on_epoch_end`` receives the history; any hook reaches it as
    ``estimator.fit_state_.history``): the loop stops after the current
    epoch, keeps the best validation epoch with early stopping (else the
    last epoch) and fits the final head as after any other last epoch,
    without a convergence warning.  Raising ``KeyboardInterrupt`` from a
    hook stops the fit as a Ctrl-C would (mid-epoch, with a warning).

    Examples
    --------
    >>> from sktag import Callback
    >>> class StopAtLoss(Callback):
    ...     def __init__(self, threshold):
    ...         self.threshold = threshold
    ...     def on_epoch_end(self, estimator, epoch, history):
    ...         if history.loss_curve[-1] < self.threshold:
    ...             history.stop_training = True
    >>> StopAtLoss(0.1).threshold
    0.1
    """

    def on_train_begin(self, estimator):
        """Call before the first epoch (after the head's closed-form start).

        Parameters
        ----------
        estimator : BaseEstimator
            The estimator being fitted.
        """

    def on_epoch_begin(self, estimator, epoch):
        """Call before each epoch.

        Parameters
        ----------
        estimator : BaseEstimator
            The estimator being fitted.
        epoch : int
            The epoch about to run, counted from 1 over the estimator's life.
        """

    def on_batch_begin(self, estimator, batch_rows):
        """Call before the forward pass of each batch.

        Parameters
        ----------
        estimator : BaseEstimator
            The estimator being fitted.
        batch_rows : ndarray of int
            The batch's row indices into ``X``.
        """

    def on_batch_end(self, estimator, batch_rows, loss):
        """Call after the optimiser step of each batch.

        Parameters
        ----------
        estimator : BaseEstimator
            The estimator being fitted (its weights have just moved).
        batch_rows : ndarray of int
            The rows (indices into ``X``) the step was trained on.
        loss : float
            The batch's scaled loss.
        """

    def on_epoch_end(self, estimator, epoch, history):
        """Call after each epoch and its bookkeeping.

        Parameters
        ----------
        estimator : BaseEstimator
            The estimator being fitted.
        epoch : int
            The epoch that ended, counted from 1 over the estimator's life.
        history : object
            The fit's bookkeeping, up to date: ``loss_curve``,
            ``validation_scores``, ``best_loss``, ... (exposed as
            ``loss_curve_`` etc. once the fit ends).
        """

    def on_train_end(self, estimator, history):
        """Call after the last epoch, before the fitted attributes are set.

        Not called when the fit stops on a non-finite loss.

        Parameters
        ----------
        estimator : BaseEstimator
            The estimator being fitted.
        history : object
            The fit's bookkeeping (loss curve, validation scores, best epoch).
        """


#: The hooks a callback must have.
HOOKS = tuple(name for name in vars(Callback) if name.startswith("on_"))


def check_callbacks(callbacks):
    """Every entry of ``callbacks`` has every hook of :class:`Callback` (a subclass has)."""
    for cb in callbacks or ():
        if not all(callable(getattr(cb, h, None)) for h in HOOKS):
            raise ValueError(f"callbacks must be sktag Callback instances, got {cb!r}.")


@dataclass
class FitData:
    """What the loop iterates over: row indices, row lengths, the weight total."""

    train_idx: np.ndarray
    val_idx: np.ndarray
    lengths: np.ndarray
    weight_total: float


@dataclass
class History:
    """Bookkeeping of a fit; the estimator exposes it as ``loss_curve_`` etc."""

    early_stopping: bool
    loss_curve: list = field(default_factory=list)
    validation_scores: list | None = None
    best_loss: float = np.inf
    best_validation_score: float | None = None
    best_epoch: int | None = None
    n_iter: int = 0
    t: int = 0
    epoch_times: list = field(default_factory=list)
    no_improvement_count: int = 0
    #: set to True by a callback to end the fit after the current epoch (:class:`Callback`)
    stop_training: bool = False

    def __post_init__(self):
        if self.early_stopping and self.validation_scores is None:
            self.validation_scores = []
            self.best_validation_score = -np.inf


@dataclass(kw_only=True)
class Outcome:
    """How a run of the :class:`TrainingLoop` ended, and what the fit does about it.

    ``keep`` says whether the fitted state is committed (False: the
    estimator stays as it was); ``error`` is the :class:`FloatingPointError`
    of a non-finite loss (the last finite epoch is kept when something was
    learned).  :meth:`conclude` raises or warns accordingly once the fitted
    state is committed.
    """

    converged: bool = False
    interrupted: bool = False
    stopped: bool = False  # a callback asked the loop to stop (History.stop_training)
    error: FloatingPointError | None = None
    keep: bool = True
    n_iter: int = 0
    kept_best: bool = False

    def conclude(self, warn_not_converged=None) -> None:
        """Raise the error of a non-finite loss, or warn about an interrupt or ``max_iter``.

        Parameters
        ----------
        warn_not_converged : callable or None
            Called without arguments when ``max_iter`` ended the run.
        """
        if self.error is not None:
            raise self.error
        if self.interrupted:
            kept = "the best validation epoch so far" if self.kept_best else "the last complete epoch"
            warnings.warn(f"fit was interrupted after {self.n_iter} complete epochs; the estimator keeps the "
                          f"weights of {kept} and can be used, or trained further with warm_start=True.",
                          UserWarning, stacklevel=user_stacklevel())
        elif not (self.converged or self.stopped) and warn_not_converged is not None:
            warn_not_converged()


class TrainingLoop:
    """Epochs of mini-batch steps with sklearn-MLP-style stopping; :meth:`run` says how they ended.

    Parameters
    ----------
    estimator : BaseEstimator
        The estimator being fitted: what callbacks receive.
    module : torch.nn.Module
        What is trained: its ``state_dict`` is what is restored (best
        epoch, rollback).
    optimizer : torch.optim.Optimizer
    history : History
        The bookkeeping the loop updates.
    max_iter, n_iter_no_change, tol, early_stopping
        As in :class:`sklearn.neural_network.MLPRegressor`.
    batch_size : int
    auto_batch : bool
        Halve ``batch_size`` and redo the epoch on CUDA out-of-memory.
    verbose : int
    callbacks : sequence of Callback
    desc : str
        Label of the progress bar.
    """

    def __init__(self, estimator, *, module, optimizer, history, max_iter, batch_size, n_iter_no_change=10,
                 tol=1e-4, early_stopping=False, auto_batch=False, verbose=0, callbacks=(), desc="fit"):
        self.estimator = estimator
        self.module, self.optimizer, self.history = module, optimizer, history
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.early_stopping = early_stopping
        self.auto_batch = auto_batch
        self.verbose = verbose
        self.callbacks = list(callbacks or ())
        self.desc = desc
        self.best_state = None

    def _state(self):
        return copy.deepcopy(self.module.state_dict())

    def _notify(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(self.estimator, *args)

    # ------------------------------------------------------------ one epoch
    def run_epoch(self, data, step, rng):
        """One pass over the training rows; returns the summed weighted loss."""
        device = next(self.module.parameters()).device
        total = torch.zeros((), dtype=torch.float64, device=device)
        scale = len(data.train_idx) / (data.weight_total * self.batch_size)
        batches = length_batches(data.train_idx, data.lengths, self.batch_size, rng)
        for b in progress(batches, self.verbose > 1, desc="batches", leave=False):
            self._notify("on_batch_begin", b)
            loss_sum, _ = step(b)
            loss = loss_sum * scale
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total = total + loss_sum.detach().double().to(device)
            self._notify("on_batch_end", b, loss.detach())
        return total

    def _epoch_with_oom_retry(self, data, step, rng):
        start, start_opt = self._state(), copy.deepcopy(self.optimizer.state_dict())
        while True:
            try:
                return self.run_epoch(data, step, rng), start
            except torch.cuda.OutOfMemoryError:
                if not self.auto_batch or self.batch_size == 1:
                    raise
                self.batch_size //= 2
                self.module.load_state_dict(start)
                self.optimizer.load_state_dict(start_opt)
                torch.cuda.empty_cache()
                warnings.warn(f"CUDA out of memory; batch_size='auto' retries with {self.batch_size}.",
                              UserWarning, stacklevel=user_stacklevel())

    # ------------------------------------------------------- bookkeeping
    def _update_no_improvement_count(self, epoch_loss, score):
        """MLP's rule: improvement means beating the best by more than ``tol``."""
        history = self.history
        if self.early_stopping:
            improved = score > history.best_validation_score + self.tol
            if score > history.best_validation_score:
                history.best_validation_score = score
                history.best_epoch = history.n_iter
                self.best_state = self._state()
        else:
            improved = epoch_loss < history.best_loss - self.tol
        history.best_loss = min(history.best_loss, epoch_loss)
        history.no_improvement_count = 0 if improved else history.no_improvement_count + 1

    def _record_epoch(self, data, epoch_loss, score, seconds):
        history = self.history
        history.epoch_times.append(seconds)
        history.n_iter += 1
        history.t += len(data.train_idx)
        history.loss_curve.append(epoch_loss)
        if self.early_stopping:
            history.validation_scores.append(score)
        self._update_no_improvement_count(epoch_loss, score)

    def _check_finite(self, epoch_loss, start):
        if np.isfinite(epoch_loss):
            return
        self.module.load_state_dict(start)
        lr = self.optimizer.param_groups[0]["lr"]
        kept = ("the weights of the last finite epoch were kept" if self.history.n_iter
                else "nothing was learned, so the estimator is left as it was")
        raise FloatingPointError(f"The training loss became {epoch_loss} in epoch {self.history.n_iter + 1}; "
                                 f"{kept}. Lower learning_rate_init (now {lr}) or check the targets.")

    # ------------------------------------------------------------- the run
    def epochs(self, data, step, rng, validate=None, after_epoch=None):
        """Train until ``max_iter`` epochs, convergence or interruption; returns an :class:`Outcome`.

        ``validate()`` returns the validation score (higher is better); with
        early stopping it is also taken once before the first epoch, so that
        the starting weights (epoch 0 of a fresh fit) can be the best.
        ``after_epoch()`` runs after each epoch's steps, before validation
        (the estimators re-solve a closed-form head there).
        """
        outcome, history = Outcome(kept_best=self.early_stopping), self.history
        history.stop_training = False  # a request of an earlier fit (warm start) does not carry over
        if self.early_stopping and validate is not None:
            # the starting weights compete too (epoch 0 of a fresh fit, or where a warm start begins);
            # a new run scores a new validation split, so earlier scores are not compared with it
            history.best_validation_score = float(validate())
            history.best_epoch = history.n_iter
            history.no_improvement_count = 0
            self.best_state = self._state()
        show = self.verbose > 0
        bar = progress(range(self.max_iter), show, desc=self.desc, unit="epoch")
        start = self._state()
        try:
            for _ in bar:
                self._notify("on_epoch_begin", history.n_iter + 1)
                t0 = time.perf_counter()
                total, start = self._epoch_with_oom_retry(data, step, rng)
                epoch_loss = float(total) / data.weight_total  # the one host-device sync per epoch
                self._check_finite(epoch_loss, start)
                if after_epoch is not None:
                    after_epoch()
                score = float(validate()) if self.early_stopping else None
                self._record_epoch(data, epoch_loss, score, time.perf_counter() - t0)
                if show:
                    post = {"loss": f"{epoch_loss:.4f}"}
                    if score is not None:
                        post["val"] = f"{score:.4f}"
                    bar.set_postfix(post)
                self._notify("on_epoch_end", history.n_iter, history)
                start = self._state()
                if history.no_improvement_count >= self.n_iter_no_change:
                    outcome.converged = True
                    break
                if history.stop_training:
                    outcome.stopped = True
                    break
        except KeyboardInterrupt:
            # never keep a half-finished epoch: the best epoch so far, else
            # the weights the interrupted epoch started from
            self.module.load_state_dict(self.best_state if self.best_state is not None else start)
            outcome.interrupted = True
        else:
            if self.early_stopping and self.best_state is not None:
                self.module.load_state_dict(self.best_state)
        outcome.n_iter = history.n_iter
        return outcome

    def run(self, data, step, rng, *, continuing, validate=None, after_epoch=None) -> Outcome:
        """The training phase of a fit: the callbacks' begin and end around :meth:`epochs`.

        A non-finite loss ends the run with ``outcome.error``; the fitted
        state is kept (``outcome.keep``) only when something was learned
        (the last finite epoch).  An interrupt before the first complete
        epoch of a fresh fit re-raises ``KeyboardInterrupt`` (the estimator
        stays as it was); a later one keeps the best (or last complete)
        epoch, unless the fit runs inside :func:`interrupts_abort` (then it,
        too, re-raises).

        Parameters
        ----------
        data : FitData
        step : callable
            ``step(batch_rows) -> (loss_sum, weight_sum)``.
        rng : numpy.random.RandomState
            Shuffles the batches.
        continuing : bool
            The run continues a fitted model (warm start, ``partial_fit``).
        validate, after_epoch : callable or None
            As in :meth:`epochs`.

        Returns
        -------
        Outcome
        """
        self._notify("on_train_begin")
        try:
            outcome = self.epochs(data, step, rng, validate, after_epoch)
        except FloatingPointError as exc:
            return Outcome(error=exc, keep=self.history.n_iter > 0 or continuing, n_iter=self.history.n_iter)
        if outcome.interrupted and (_INTERRUPTS_ABORT.get() or (self.history.n_iter == 0 and not continuing)):
            raise KeyboardInterrupt  # nothing learned, or a cut-short fit is not wanted: nothing changes
        self._notify("on_train_end", self.history)
        return outcome


@contextlib.contextmanager
def in_training(estimator, state):
    """``estimator.fit_state_`` is ``state`` within this context (what callbacks see), and gone after it."""
    estimator.fit_state_ = state
    try:
        yield state
    finally:
        del estimator.fit_state_
