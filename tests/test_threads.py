"""The torch thread policy (``sktag._runtime.threads``) in this process and in joblib workers."""

import os

import numpy as np
import pytest
import torch
from joblib import Parallel, cpu_count, delayed, parallel_config

from sktag import TagRegressor, load_backbone
from sktag._runtime.threads import effective_n_threads, thread_limit, torch_threads


@pytest.fixture
def no_env_limit(monkeypatch):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def restore_torch_threads():
    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)


def test_positive_n_threads_is_taken_as_is(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert effective_n_threads(3) == 3  # explicit beats the limit, as in scikit-learn


def test_none_honours_the_environment_limit_read_at_call_time(monkeypatch, restore_torch_threads):
    torch.set_num_threads(2)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert effective_n_threads(None) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # nested OpenMP list: the first level counts
    monkeypatch.setenv("MKL_NUM_THREADS", "3")
    assert thread_limit() == 3
    assert effective_n_threads(None) == 2  # never raises torch's own count


def test_none_without_limit_caps_at_the_cpus(no_env_limit, restore_torch_threads):
    torch.set_num_threads(cpu_count() + 3)
    assert effective_n_threads(None) == cpu_count()
    torch.set_num_threads(1)
    assert effective_n_threads(None) == 1


def test_negative_n_threads_counts_down_from_the_limit(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    assert effective_n_threads(-1) == 4
    assert effective_n_threads(-2) == 3
    assert effective_n_threads(-10) == 1


@pytest.mark.parametrize("bad", [0, 1.5, "2", True])
def test_invalid_n_threads(bad):
    with pytest.raises(ValueError, match="n_threads"):
        effective_n_threads(bad)


def test_torch_threads_sets_and_restores(restore_torch_threads):
    torch.set_num_threads(2)
    with torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError, match="boom"):
        with torch_threads(1):
            raise RuntimeError("boom")
    assert torch.get_num_threads() == 2


def _threads_in_worker(start):
    """Run in a worker: start torch at ``start`` threads, then enter the policy."""
    torch.set_num_threads(start)  # as if torch had started before the worker's limit was set
    with torch_threads(None) as n:
        x = torch.randn(64, 64)
        x @ x  # some torch work under the policy
        inside = torch.get_num_threads()
    return {"pid": os.getpid(), "env": os.environ.get("OMP_NUM_THREADS"), "n": n, "inside": inside,
            "after": torch.get_num_threads()}


@pytest.mark.distributed
@pytest.mark.parametrize("inner", [None, 1])
def test_loky_workers_use_their_share_of_threads(inner):
    """Two loky workers: each runs torch with the inner limit joblib gave it."""
    if inner is None:  # joblib's own rule: the parent's variable, else cpu_count() // n_jobs
        expected = int(os.environ.get("OMP_NUM_THREADS", max(cpu_count() // 2, 1)))
    else:
        expected = inner
    with parallel_config(backend="loky", inner_max_num_threads=inner):
        out = Parallel(n_jobs=2)(delayed(_threads_in_worker)(expected + 1) for _ in range(4))
    assert {o["env"] for o in out} == {str(expected)}
    assert all(o["n"] == expected and o["inside"] == expected for o in out), out
    assert all(o["after"] == expected + 1 for o in out), out  # restored on exit
    assert len({o["pid"] for o in out}) >= 1


class ThreadProbe(TagRegressor):
    """Records torch's thread count while the backbone's layers run inside ``fit``."""

    def fit(self, X, y, **kw):
        seen = []
        torch.set_num_threads(thread_limit() + 1)  # as if torch had started before the worker's limit
        bb = load_backbone(self.model, device=self.device, dtype=self.dtype)
        hooks = [layer.register_forward_pre_hook(lambda *a: seen.append(torch.get_num_threads()))
                 for layer in bb.model.model.layers]
        try:
            super().fit(X, y, **kw)
        finally:
            for h in hooks:
                h.remove()
        self.seen_threads_ = seen
        return self


def _max_threads_seen(est, X, y):
    return float(max(est.seen_threads_))


@pytest.mark.distributed
def test_grid_search_fits_use_the_worker_limit(tiny_model):
    from sklearn.model_selection import GridSearchCV

    rng = np.random.RandomState(0)
    X = ["".join(rng.choice(list("CNOcn"), size=rng.randint(2, 12))) for _ in range(24)]
    y = np.array([len(s) for s in X], dtype=float)
    est = ThreadProbe(model=tiny_model, domains="Text", tag_length=3, max_iter=1, device="cpu",
                      dtype="float32", random_state=0)
    with parallel_config(backend="loky", inner_max_num_threads=1):
        gs = GridSearchCV(est, {"tag_length": [2, 3]}, cv=2, n_jobs=2, scoring=_max_threads_seen,
                          refit=False).fit(X, y)
    seen = [gs.cv_results_[f"split{k}_test_score"] for k in range(2)]
    assert np.all(np.concatenate(seen) == 1.0), gs.cv_results_
