"""Scaling out: GPU policy, weightless pickles, device_map, Dask and Ray searches.

The policy tests are pure (monkeypatched worker state).  The cluster tests
(marked ``distributed``) start a 2-process Dask ``LocalCluster`` and a local
Ray instance, run a small ``GridSearchCV`` there and compare it with the same
search run sequentially.
"""

import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import SUITE_DTYPE, tol

from sktag import TagRegressor
from sktag.backbone import backbone_cache_info, load_backbone
from sktag.distributed import (
    ALLOW_SHARED_GPU_ENV,
    SharedGPUError,
    WorkerContext,
    check_worker_device,
    gpu_policy,
    needs_gpu,
    worker_context,
)

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ----------------------------------------------------------------- GPU policy
def test_needs_gpu():
    assert needs_gpu("cuda") and needs_gpu("cuda:1") and needs_gpu(torch.device("cuda", 0))
    assert not needs_gpu("cpu") and not needs_gpu(torch.device("cpu"))
    assert needs_gpu("cpu", device_map={"": 0})
    assert needs_gpu("cpu", device_map={"model.embed_tokens": "cpu", "lm_head": "cuda:1"})
    assert not needs_gpu("cuda", device_map={"": "cpu", "x": "disk"})
    assert not needs_gpu("cuda", device_map="cpu")
    assert needs_gpu("cpu", device_map="auto") == torch.cuda.is_available()
    assert needs_gpu("auto") == torch.cuda.is_available()


@pytest.mark.parametrize("kind", ["dask", "ray", "joblib", "multiprocessing"])
def test_policy_refuses_unassigned_gpu_in_worker(kind):
    ctx = WorkerContext(kind, detail="w1")
    reason = gpu_policy(True, ctx, {})
    assert reason is not None and kind in reason and ALLOW_SHARED_GPU_ENV in reason
    with pytest.raises(SharedGPUError, match="refuses to load the backbone on a GPU"):
        check_worker_device("cuda:0", context=ctx, environ={})


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_policy_escape_hatch(value):
    ctx = WorkerContext("joblib")
    assert gpu_policy(True, ctx, {ALLOW_SHARED_GPU_ENV: value}) is None
    assert gpu_policy(True, ctx, {ALLOW_SHARED_GPU_ENV: "0"}) is not None


def test_policy_allows_cpu_main_process_and_assignments():
    assert gpu_policy(False, WorkerContext("joblib"), {}) is None  # CPU: nothing to share
    assert gpu_policy(True, None, {}) is None  # main process
    assert gpu_policy(True, WorkerContext("dask", gpu_assigned=True), {}) is None
    assert gpu_policy(True, WorkerContext("ray", gpu_assigned=True), {}) is None
    cvd = {"CUDA_VISIBLE_DEVICES": "1"}
    assert gpu_policy(True, WorkerContext("dask", env_assignable=True), cvd) is None
    # joblib/ray workers inherit the parent's CUDA_VISIBLE_DEVICES: not an assignment
    assert gpu_policy(True, WorkerContext("joblib"), cvd) is not None
    assert gpu_policy(True, WorkerContext("ray"), cvd) is not None
    assert gpu_policy(True, WorkerContext("dask", env_assignable=True), {"CUDA_VISIBLE_DEVICES": ""}) is not None
    check_worker_device("cpu", context=WorkerContext("joblib"), environ={})  # no raise


def test_worker_context_detection(monkeypatch):
    assert worker_context() is None  # the test process is no worker

    class FakeWorker:
        address = "tcp://127.0.0.1:1"
        state = types.SimpleNamespace(total_resources={"GPU": 1})

    fake = types.SimpleNamespace(get_worker=lambda: FakeWorker())
    monkeypatch.setitem(sys.modules, "distributed", fake)
    ctx = worker_context()
    assert ctx.kind == "dask" and ctx.gpu_assigned and ctx.env_assignable
    FakeWorker.state = types.SimpleNamespace(total_resources={})
    assert not worker_context().gpu_assigned

    def no_worker():
        raise ValueError("No worker found")

    monkeypatch.setitem(sys.modules, "distributed", types.SimpleNamespace(get_worker=no_worker))
    loky = types.SimpleNamespace(_CURRENT_DEPTH=1)
    monkeypatch.setitem(sys.modules, "joblib.externals.loky.process_executor", loky)
    assert worker_context().kind == "joblib"
    loky._CURRENT_DEPTH = 0
    assert worker_context() is None


def test_estimator_checks_policy_before_loading(make_reg, monkeypatch, length_task):
    """get_backbone asks the policy; a refusal surfaces from fit."""
    import sktag._fit.backbone_access as mixins  # where BackboneMixin.get_backbone looks the policy up

    seen = []

    def fake_check(device, device_map=None):
        seen.append((device, device_map))
        raise SharedGPUError("refused")

    monkeypatch.setattr(mixins, "check_worker_device", fake_check)
    X, y = length_task
    with pytest.raises(SharedGPUError):
        make_reg(device="cpu").fit(X[:8], y[:8])
    assert seen == [(torch.device("cpu"), None)]


# ------------------------------------------------------- weights do not travel
def test_pickle_and_clone_carry_no_weights(make_reg, length_task):
    from sklearn.base import clone

    X, y = length_task
    est = make_reg(max_iter=1, device="cpu").fit(X[:16], y[:16])
    weights = sum(p.numel() * p.element_size() for p in est._backbone.model.parameters())
    blob = pickle.dumps(est)
    assert len(blob) < weights / 2
    back = pickle.loads(blob)
    assert "_backbone" not in back.__dict__
    np.testing.assert_allclose(back.predict(X[:5]), est.predict(X[:5]), rtol=1e-6, atol=1e-6)
    assert "_backbone" not in clone(est).__dict__


def test_backbone_cache_info_counts_real_loads(tiny_model):
    key_dtype = torch.float32 if SUITE_DTYPE == torch.bfloat16 else torch.bfloat16  # one the suite does not use
    info = backbone_cache_info()
    assert info["pid"] == os.getpid()
    before = {k: v for k, v in info["loads"].items() if k[0] == str(Path(tiny_model).resolve())
              and k[1] == str(key_dtype)}
    a = load_backbone(tiny_model, dtype=key_dtype, device="cpu")
    b = load_backbone(tiny_model, dtype=key_dtype, device="cpu")
    assert a is b
    after = backbone_cache_info()
    keys = [k for k in after["loads"] if k[0] == a.identity and k[1] == str(key_dtype) and k[4] == "None"]
    assert len(keys) == 1 and keys[0] in after["cached"]
    assert after["loads"][keys[0]] == before.get(keys[0], 0) + (0 if keys[0] in info["cached"] else 1)


# ------------------------------------------------------------------ device_map
@pytest.mark.parametrize("device_map", ["cpu", {"": "cpu"}])
def test_device_map_on_cpu_matches_default(make_reg, length_task, device_map):
    X, y = length_task
    ref = make_reg(max_iter=2, device="cpu").fit(X[:32], y[:32])
    est = make_reg(max_iter=2, device="cpu", device_map=device_map).fit(X[:32], y[:32])
    assert est._backbone is not ref._backbone  # its own cache entry
    assert est._backbone.device == torch.device("cpu")
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, **tol())
    np.testing.assert_allclose(est.predict(X[32:48]), ref.predict(X[32:48]), **tol(scale=np.std(y)))


# -------------------------------------------------------------------- clusters
def _pid(est, X, y):
    return float(os.getpid())


def _loads(est, X, y):
    """Real loads of the estimator's backbone in the process that scored it."""
    ident = est._backbone.identity
    return float(sum(n for k, n in backbone_cache_info()["loads"].items() if k[0] == ident))


def _search(tiny_model, n_jobs):
    from sklearn.model_selection import GridSearchCV, KFold

    est = TagRegressor(model=tiny_model, domains="Text", max_iter=2, batch_size=16,
                       learning_rate_init=1e-2, random_state=0, device="cpu")
    return GridSearchCV(est, {"tag_length": [1, 2]}, cv=KFold(2), n_jobs=n_jobs, error_score="raise",
                        scoring={"score": "r2", "pid": _pid, "loads": _loads}, refit="score")


def _split_values(search, name):
    res = search.cv_results_
    return np.concatenate([res[f"split{i}_test_{name}"] for i in range(search.n_splits_)])


@pytest.fixture(scope="module")
def search_data():
    rng = np.random.RandomState(0)
    X = ["".join(rng.choice(list("CNOcn"), size=rng.randint(1, 12))) for _ in range(32)]
    return X, np.array([len(s) for s in X], dtype=float)


@pytest.fixture(scope="module")
def sequential_search(tiny_model, search_data):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _search(tiny_model, None).fit(*search_data)


@pytest.fixture
def worker_path(monkeypatch):
    """Worker processes import sktag and this module from the checkout."""
    paths = [str(ROOT), str(ROOT / "tests")]
    old = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths + ([old] if old else [])))
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")


def _assert_same_search(dist, seq, worker_pids):
    assert dist.best_params_ == seq.best_params_
    np.testing.assert_allclose(dist.cv_results_["mean_test_score"], seq.cv_results_["mean_test_score"],
                               rtol=1e-6, atol=1e-6)
    pids = _split_values(dist, "pid").astype(int)
    loads = _split_values(dist, "loads")
    assert set(pids) <= set(worker_pids) and os.getpid() not in set(pids)
    # every fit ran in a worker that had loaded the backbone exactly once
    assert np.all(loads == 1), dict(zip(pids, loads))


@pytest.mark.distributed
@pytest.mark.timeout(180)
def test_dask_grid_search_matches_sequential(tiny_model, search_data, sequential_search, worker_path):
    pytest.importorskip("distributed")
    import joblib
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        with joblib.parallel_backend("dask"):
            dist = _search(tiny_model, 2).fit(*search_data)
        infos = client.run(backbone_cache_info)
        ctx = client.submit(worker_context, pure=False).result()
        refusal = client.submit(check_worker_device, "cuda:0", pure=False)
        with pytest.raises(SharedGPUError, match="dask worker"):
            refusal.result()
    ident = str(Path(tiny_model).resolve())
    per_worker = [sum(n for k, n in info["loads"].items() if k[0] == ident) for info in infos.values()]
    assert max(per_worker) == 1 and sum(per_worker) >= 1
    assert ctx.kind == "dask" and not ctx.gpu_assigned
    _assert_same_search(dist, sequential_search, [info["pid"] for info in infos.values()])


@pytest.fixture
def ray_local(worker_path):
    ray = pytest.importorskip("ray", reason="ray is not installed")
    try:
        # num_gpus=1 declares a fake GPU resource: Ray then assigns it to
        # tasks that ask for one, which is what the policy looks at.
        ray.init(num_cpus=2, num_gpus=1, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"ray could not start a local instance here: {exc!r}")
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.mark.distributed
@pytest.mark.timeout(180)
def test_ray_grid_search_matches_sequential(tiny_model, search_data, sequential_search, ray_local):
    import joblib
    from ray.util.joblib import register_ray

    ray = ray_local
    register_ray()
    with joblib.parallel_backend("ray"):
        dist = _search(tiny_model, 2).fit(*search_data)
    pids = set(_split_values(dist, "pid").astype(int))
    assert 1 <= len(pids) <= 2
    _assert_same_search(dist, sequential_search, pids)

    def check(device):
        check_worker_device(device)
        return worker_context()

    no_gpu = ray.remote(num_gpus=0)(check)
    with pytest.raises(Exception, match="refuses to load the backbone on a GPU"):
        ray.get(no_gpu.remote("cuda:0"))
    ctx = ray.get(ray.remote(num_gpus=1)(check).remote("cuda:0"))  # Ray assigned a GPU: allowed
    assert ctx.kind == "ray" and ctx.gpu_assigned
    assert ray.get(no_gpu.remote("cpu")).kind == "ray"
