"""The same small GridSearchCV run sequentially and on a local Dask (or Ray) cluster.

Usage::

    python -m benchmarks.studies.distributed_search                      # tiny random model, Dask
    python -m benchmarks.studies.distributed_search --backend ray
    python -m benchmarks.studies.distributed_search --model smollm2-135m --n-samples 200 --max-iter 3

Prints wall times (cluster start-up separately) and the search results side
by side, and how many times each worker process loaded the backbone.  On a
machine with few cores the distributed run is not expected to be faster:
the point is that it returns the same results.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from sktag.testing import make_tiny_model as build_tiny_model

ROOT = Path(__file__).resolve().parents[2]


def make_data(n, seed=0):
    rng = np.random.RandomState(seed)
    X = ["".join(rng.choice(list("CNOcn"), size=rng.randint(1, 16))) for _ in range(n)]
    return X, np.array([len(s) for s in X], dtype=float)


def make_search(args, n_jobs):
    from sklearn.model_selection import GridSearchCV, KFold

    from sktag import TagRegressor

    est = TagRegressor(model=args.model, domains=args.domain, max_iter=args.max_iter, batch_size=16,
                       learning_rate_init=1e-2, random_state=0, device=args.device)
    return GridSearchCV(est, {"tag_length": args.tag_lengths}, cv=KFold(args.cv), n_jobs=n_jobs,
                        error_score="raise")


def run_dask(args, X, y):
    import joblib
    from distributed import Client, LocalCluster

    from sktag.backbone import backbone_cache_info

    t0 = time.perf_counter()
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
        client.wait_for_workers(args.workers)
        start = time.perf_counter() - t0
        elapsed = []
        for _ in range(2):  # the second search finds the backbone loaded in the workers
            t1 = time.perf_counter()
            with joblib.parallel_backend("dask"):
                search = make_search(args, args.workers).fit(X, y)
            elapsed.append(time.perf_counter() - t1)
        infos = client.run(backbone_cache_info)
    loads = {info["pid"]: sum(info["loads"].values()) for info in infos.values()}
    return search, start, elapsed, loads


def run_ray(args, X, y):
    import joblib
    import ray
    from ray.util.joblib import register_ray

    t0 = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        register_ray()
        start = time.perf_counter() - t0
        elapsed = []
        for _ in range(2):  # Ray's joblib backend starts new pool actors for each search
            t1 = time.perf_counter()
            with joblib.parallel_backend("ray"):
                search = make_search(args, args.workers).fit(X, y)
            elapsed.append(time.perf_counter() - t1)
    finally:
        ray.shutdown()
    return search, start, elapsed, None  # Ray's pool actors are gone after the search


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model alias, hub id or folder (default: a tiny random Llama)")
    p.add_argument("--domain", default="Text")
    p.add_argument("--backend", choices=["dask", "ray"], default="dask")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--n-samples", type=int, default=64)
    p.add_argument("--tag-lengths", type=int, nargs="+", default=[1, 2])
    p.add_argument("--cv", type=int, default=2)
    p.add_argument("--max-iter", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="torch threads of the sequential run (default: torch's choice)")
    args = p.parse_args(argv)

    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    old = os.environ.get("PYTHONPATH")  # workers import sktag from this checkout
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([old] if old else []))
    warnings.simplefilter("ignore")

    import torch

    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    tmp = None
    if args.model is None:
        tmp = tempfile.TemporaryDirectory()
        args.model = build_tiny_model(Path(tmp.name) / "tiny-llama")
        label = "tiny random Llama (hidden 32, 2 layers)"
    else:
        label = args.model
    X, y = make_data(args.n_samples)
    n_fits = len(args.tag_lengths) * args.cv
    print(f"model: {label}; {args.n_samples} samples; grid tag_length={args.tag_lengths} x {args.cv}-fold "
          f"= {n_fits} fits + refit; max_iter={args.max_iter}; device={args.device}; "
          f"{os.cpu_count()} CPU cores")

    t_seq = []
    for _ in range(2):  # the second search finds the backbone in this process's cache
        t0 = time.perf_counter()
        seq = make_search(args, None).fit(X, y)
        t_seq.append(time.perf_counter() - t0)

    runner = run_dask if args.backend == "dask" else run_ray
    dist, t_start, t_dist, loads = runner(args, X, y)

    w = 28
    print()
    print(f"{'':<{w}}{'sequential':>16}{args.backend + f' ({args.workers} workers)':>22}")
    print(f"{'torch threads / process':<{w}}{torch.get_num_threads():>16}{1:>22}")
    print(f"{'cluster start-up [s]':<{w}}{'-':>16}{t_start:>22.2f}")
    print(f"{'1st search wall time [s]':<{w}}{t_seq[0]:>16.2f}{t_dist[0]:>22.2f}")
    print(f"{'2nd search wall time [s]':<{w}}{t_seq[1]:>16.2f}{t_dist[1]:>22.2f}")
    print(f"{'best_params_':<{w}}{str(seq.best_params_):>16}{str(dist.best_params_):>22}")
    for i, params in enumerate(seq.cv_results_["params"]):
        a = seq.cv_results_["mean_test_score"][i]
        b = dist.cv_results_["mean_test_score"][i]
        print(f"{'mean_test_score ' + str(params):<{w}}{a:>16.8f}{b:>22.8f}")
    diff = np.max(np.abs(seq.cv_results_["mean_test_score"] - dist.cv_results_["mean_test_score"]))
    print(f"max |difference| of mean_test_score: {diff:.3g}")
    if loads is not None:
        print("backbone loads per worker process after both searches: " + ", ".join(f"pid {k}: {v}" for k, v in loads.items()))
    print("(the sequential run loads the backbone in this process; refits happen here in both runs)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
