"""Running sktag estimators in worker processes (joblib, Dask, Ray).

Hyper-parameter search scales out through joblib: ``GridSearchCV(...,
n_jobs=...)`` under ``joblib.parallel_backend("dask")`` or Ray's joblib
backend.  Estimators travel without the backbone weights (pickling drops
them); each worker *process* loads the backbone once into its process-wide
cache (:func:`sktag.backbone.load_backbone`) and reuses it for every fit it
receives.  :func:`sktag.backbone.backbone_cache_info` tells how many loads a
process did.

GPU policy
----------
Several worker processes on one machine that each load the model on the
same GPU multiply its memory use and usually end in an out-of-memory error
half-way through a search.  So, before a backbone is loaded on CUDA (``device``
is CUDA, or ``device_map`` places weights on a GPU) inside a worker process,
:func:`check_worker_device` requires an explicit GPU assignment and raises
:class:`SharedGPUError` otherwise.  An assignment is any of:

* Ray: the task or actor was given GPUs (``ray.get_gpu_ids()`` is not empty),
  e.g. ``joblib.parallel_backend("ray", ray_remote_args={"num_gpus": 1})``;
* Dask: the worker declares a ``GPU`` resource (``dask worker --resources
  GPU=1``, ``LocalCluster(resources={"GPU": 1})``), or its environment sets
  ``CUDA_VISIBLE_DEVICES`` (one worker per GPU, as ``dask-cuda`` does);
* the escape hatch ``SKTAG_ALLOW_SHARED_GPU=1`` in the worker's environment,
  when you know that the workers fit on the GPU together.

``CUDA_VISIBLE_DEVICES`` is trusted as a per-worker assignment for Dask
workers only (they can be started one per GPU, each with its own value; the
check cannot tell a per-worker value from one every worker inherited, so
that is your side of the contract).  Ray workers count only GPUs that Ray
assigned, and joblib's own ``loky``/``multiprocessing`` workers all inherit the
parent's environment: there only the escape hatch (or ``n_jobs=1``, or the
threading backend, whose threads share one backbone) lifts the check.
Outside worker processes (the main process, threads of the main process) and
on CPU nothing is checked.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from dataclasses import dataclass
from typing import Mapping

import torch

from .exceptions import SharedGPUError

__all__ = [
    "ALLOW_SHARED_GPU_ENV",
    "SharedGPUError",
    "WorkerContext",
    "worker_context",
    "needs_gpu",
    "gpu_policy",
    "check_worker_device",
]

#: Environment variable that lifts the shared-GPU check (``1``/``true``/``yes``).
ALLOW_SHARED_GPU_ENV = "SKTAG_ALLOW_SHARED_GPU"

_TRUE = {"1", "true", "yes", "on"}
_MAP_STRATEGIES = {"auto", "balanced", "balanced_low_0", "sequential"}


@dataclass(frozen=True)
class WorkerContext:
    """The worker process this code runs in.

    Parameters
    ----------
    kind : {"dask", "ray", "joblib", "multiprocessing"}
        The engine that started the worker.
    gpu_assigned : bool, default=False
        See Attributes.
    env_assignable : bool, default=False
        See Attributes.
    detail : str, default=""
        See Attributes.

    Attributes
    ----------
    kind : {"dask", "ray", "joblib", "multiprocessing"}
        The engine that started the worker.
    gpu_assigned : bool
        The engine assigned GPUs to this worker (Dask ``GPU`` resource, Ray
        ``num_gpus``).
    env_assignable : bool
        ``CUDA_VISIBLE_DEVICES`` can differ between workers of this engine,
        so its presence counts as an assignment (Dask only).
    detail : str
        Worker address / name, for messages.
    """

    kind: str
    gpu_assigned: bool = False
    env_assignable: bool = False
    detail: str = ""


def _dask_context():
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        worker = distributed.get_worker()
    except (ValueError, AttributeError):
        return None
    state = getattr(worker, "state", None)
    resources = getattr(state, "total_resources", None) or getattr(worker, "total_resources", None) or {}
    try:
        gpus = float(resources.get("GPU", 0) or 0)
    except (TypeError, ValueError):
        gpus = 0.0
    return WorkerContext("dask", gpu_assigned=gpus >= 1, env_assignable=True,
                         detail=str(getattr(worker, "address", "")))


def _ray_context():
    ray = sys.modules.get("ray")
    if ray is None:
        return None
    try:
        if not ray.is_initialized():
            return None
        if ray.get_runtime_context().worker.mode != ray.WORKER_MODE:
            return None
        gpus = list(ray.get_gpu_ids())
    except Exception:  # pragma: no cover - defensive: ray internals moved
        return None
    # Ray sets CUDA_VISIBLE_DEVICES itself for tasks with num_gpus; a value
    # seen without GPU ids was inherited by every worker, so it does not count.
    return WorkerContext("ray", gpu_assigned=bool(gpus), env_assignable=False,
                         detail=f"pid {os.getpid()}, GPUs {gpus}")


def _joblib_context():
    loky = sys.modules.get("joblib.externals.loky.process_executor")
    if loky is not None and getattr(loky, "_CURRENT_DEPTH", 0) > 0:
        return WorkerContext("joblib", detail=f"loky worker pid {os.getpid()}")
    proc = multiprocessing.current_process()
    if multiprocessing.parent_process() is not None and proc.daemon and "PoolWorker" in proc.name:
        return WorkerContext("multiprocessing", detail=proc.name)
    return None


def worker_context() -> WorkerContext | None:
    """Which kind of worker process this is, or ``None`` outside workers.

    Checks, in order: a Dask worker (``distributed.get_worker()``), a Ray
    worker, a joblib ``loky`` worker, a ``multiprocessing`` pool worker.  Only
    modules already imported are looked at, so this imports nothing heavy.
    """
    for probe in (_dask_context, _ray_context, _joblib_context):
        ctx = probe()
        if ctx is not None:
            return ctx
    return None


def _is_gpu(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):  # accelerate: an int is a GPU index
        return True
    if isinstance(value, torch.device):
        return value.type not in ("cpu", "meta")
    if isinstance(value, str):
        v = value.strip().lower()
        if v in ("cpu", "disk", "meta"):
            return False
        if v in _MAP_STRATEGIES:
            return torch.cuda.is_available()
        return True
    return True


def needs_gpu(device, device_map=None) -> bool:
    """Whether loading with ``device`` / ``device_map`` puts weights on a GPU.

    ``device`` is a :class:`torch.device` or a string (``"auto"`` means CUDA
    when available); it is parsed without checking that CUDA exists, so the
    policy can be exercised on a CPU-only machine.

    Parameters
    ----------
    device : str, torch.device or None
        The ``device`` parameter of an estimator.
    device_map : str, dict or None, default=None
        The ``device_map`` parameter (weights placed by ``accelerate``).

    Returns
    -------
    bool
        Whether any weight would be on a GPU.
    """
    if device_map is not None:
        if isinstance(device_map, Mapping):
            return any(_is_gpu(v) for v in device_map.values())
        return _is_gpu(device_map)
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.cuda.is_available()
    if not isinstance(device, torch.device):
        try:
            device = torch.device(device)
        except (RuntimeError, ValueError, TypeError):
            return False
    return device.type == "cuda"


def gpu_policy(gpu: bool, context: WorkerContext | None, environ: Mapping[str, str]) -> str | None:
    """The decision: ``None`` when loading is allowed, else why it is refused.

    Parameters
    ----------
    gpu : bool
        The load puts weights on a GPU (:func:`needs_gpu`).
    context : WorkerContext or None
        :func:`worker_context`; ``None`` outside worker processes.
    environ : mapping
        The process environment (``os.environ``).

    Returns
    -------
    str or None
        ``None`` when the load is allowed, else the reason it is refused.
    """
    if not gpu or context is None:
        return None
    if str(environ.get(ALLOW_SHARED_GPU_ENV, "")).strip().lower() in _TRUE:
        return None
    if context.gpu_assigned:
        return None
    if context.env_assignable and environ.get("CUDA_VISIBLE_DEVICES", "").strip():
        return None
    if context.kind == "dask":
        how = ("start one worker per GPU with a GPU resource (`dask worker --resources GPU=1`, "
               "LocalCluster(resources={'GPU': 1})) or with its own CUDA_VISIBLE_DEVICES "
               "(dask-cuda's LocalCUDACluster does this)")
    elif context.kind == "ray":
        how = ("give each worker a GPU: joblib.parallel_backend('ray', "
               "ray_remote_args={'num_gpus': 1}) (fractions such as 0.5 also count)")
    else:
        how = ("joblib's process workers all share the parent's environment and GPU; use n_jobs=1, "
               "the threading backend (joblib.parallel_backend('threading')) which shares one "
               "backbone, or a Dask/Ray cluster with one worker per GPU")
    return (
        f"sktag refuses to load the backbone on a GPU inside a {context.kind} worker process "
        f"({context.detail or 'no detail'}) that has no GPU of its own: several workers would each "
        f"load the model on the same GPU and run out of memory. Either {how}, or set "
        f"{ALLOW_SHARED_GPU_ENV}=1 in the workers' environment if the copies fit on the GPU "
        "together, or use device='cpu'."
    )


def check_worker_device(device, device_map=None, *, context=None, environ=None) -> None:
    """Raise :class:`SharedGPUError` if this load breaks the GPU policy.

    Called by the estimators before they load a backbone.  ``context`` and
    ``environ`` default to :func:`worker_context` and ``os.environ``.

    Parameters
    ----------
    device : str, torch.device or None
        The ``device`` parameter of an estimator.
    device_map : str, dict or None, default=None
        The ``device_map`` parameter.
    context : WorkerContext or None, default=None
        The worker this runs in; ``None`` asks :func:`worker_context`.
    environ : mapping or None, default=None
        The environment; ``None`` is ``os.environ``.

    Raises
    ------
    SharedGPUError
        When a worker process would load the backbone on a GPU without an
        explicit GPU assignment.
    """
    if not needs_gpu(device, device_map):
        return
    if context is None:
        context = worker_context()
    reason = gpu_policy(True, context, os.environ if environ is None else environ)
    if reason is not None:
        raise SharedGPUError(reason)
