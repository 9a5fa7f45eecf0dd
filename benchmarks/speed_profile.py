"""``speed.py --profile``: where an epoch's time goes (tag steps against the rest; kernels against host)."""

from __future__ import annotations

import time
import warnings

from benchmarks.speed_machine import _fitted, _sync
from sktag import Callback


class _PhaseClock(Callback):
    """A callback that splits each epoch into its tag steps and the rest (re-solve, validation).

    Device events on CUDA (no host synchronisation inside the epoch), host clocks elsewhere.
    """

    def __init__(self, device):
        import torch

        self.cuda = device.startswith("cuda")
        self._mark = (lambda: torch.cuda.Event(enable_timing=True)) if self.cuda else time.perf_counter
        self.epochs = []

    def _now(self):
        t = self._mark()
        if self.cuda:
            t.record()
        return t, time.perf_counter()

    def on_epoch_begin(self, estimator, epoch):
        self.begin, self.last, self.steps = self._now(), None, 0

    def on_batch_end(self, estimator, batch_rows, loss):
        self.last, self.steps = self._now(), self.steps + 1

    def on_epoch_end(self, estimator, epoch, history):
        end = self._now()
        if self.cuda:
            end[0].synchronize()
            span = lambda a, b: a[0].elapsed_time(b[0]) / 1e3  # noqa: E731
        else:
            span = lambda a, b: b[0] - a[0]  # noqa: E731
        self.epochs.append({"steps": self.steps, "tag_steps_s": span(self.begin, self.last),
                            "rest_s": span(self.last, end), "host_tag_steps_s": self.last[1] - self.begin[1],
                            "host_epoch_s": end[1] - self.begin[1]})


def run_profile(cfg, est, X, y, profile_rows=256):
    """Where an epoch's time goes: its phases on all rows, then kernels against host on a few rows.

    One more epoch of the cached fit (``warm_start``) with :class:`_PhaseClock`: the tag steps against
    the rest of the epoch (closed-form re-solve and validation).  Then one epoch on ``profile_rows`` rows
    under ``torch.profiler`` (few rows, since the profiler's own cost grows with every operator):
    ``device_busy_s`` sums every kernel's own time, so its share of the wall far under 1 means the device
    waits for the host (launches, Python, synchronisation).
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = cfg["device"].startswith("cuda")
    clock = _PhaseClock(cfg["device"])
    est.set_params(warm_start=True, max_iter=1, n_iter_no_change=2, callbacks=[clock])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    res = {"phases": clock.epochs[-1], "prefix_time_s": _fitted(est, "prefix_time_"),
           "rows": len(X), "profile_rows": min(profile_rows, len(X))}
    est.set_params(callbacks=None)
    Xs, ys = X[:profile_rows], y[:profile_rows]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    _sync(cfg["device"])
    t0 = time.perf_counter()
    with warnings.catch_warnings(), profile(activities=activities) as prof:
        warnings.simplefilter("ignore")
        est.fit(Xs, ys)
        _sync(cfg["device"])
    res["profile_wall_s"] = time.perf_counter() - t0
    res["profile_prefix_s"] = _fitted(est, "prefix_time_")
    res["profile_epoch_s"] = (_fitted(est, "epoch_times_") or [None])[-1]
    averages = prof.key_averages()
    if cuda:
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        res["n_kernels"] = len(kernels)
        res["device_busy_s"] = sum(e.self_device_time_total for e in kernels) / 1e6
        res["table"] = averages.table(sort_by="self_device_time_total", row_limit=15)
    res["table_cpu"] = averages.table(sort_by="self_cpu_time_total", row_limit=15)
    return res
