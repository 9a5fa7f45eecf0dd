"""How many CPU threads torch may use during ``fit`` / ``predict`` / ``transform``.

The policy follows scikit-learn's for OpenMP (``n_threads`` of
``sklearn.utils._openmp_helpers._openmp_effective_n_threads``):

* ``n_threads=None`` (the default) honours the thread limit this process was
  given and otherwise leaves torch's thread count alone.  The limit is the
  smallest of

  - ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``, read *now*, not at import:
    joblib's loky backend sets them in its workers to
    ``cpu_count() // n_jobs`` (or to ``inner_max_num_threads`` of
    ``parallel_config``), a Dask nanny sets them to 1 before starting a
    worker, and Ray sets ``OMP_NUM_THREADS`` to the task's ``num_cpus`` while
    the task runs, after torch may already have been imported;
  - the CPUs this process may run on (``joblib.cpu_count()``: affinity and
    cgroup quotas, e.g. a container limited to 2 CPUs on a 64-core host);
  - torch's own count, which already reflects ``torch.set_num_threads`` and
    any ``threadpoolctl.threadpool_limits`` on torch's OpenMP runtime in this
    thread.

* ``n_threads=k > 0`` uses exactly ``k`` threads (more than the limit if you
  ask for it); ``n_threads=-1`` uses the whole limit, ``-2`` one thread less,
  and so on (never fewer than 1); ``0`` is an error.

The count is set for the duration of the call and restored afterwards.
torch's inter-op pool is left alone: it serves ``torch.jit.fork`` and
similar, which sktag does not use, and torch refuses to resize it once it
has started.
"""

from __future__ import annotations

import contextlib
import numbers
import os

__all__ = ["torch_threads", "effective_n_threads", "thread_limit"]

#: Environment variables whose value limits the threads torch's intra-op pool
#: may use (torch reads both at start-up; joblib, Dask and Ray set them).
_LIMIT_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _env_limit(environ=None):
    """Smallest positive integer among the limiting variables, or None."""
    environ = os.environ if environ is None else environ
    limits = []
    for var in _LIMIT_VARS:
        value = environ.get(var, "").strip()
        if not value:
            continue
        # OpenMP allows a list for nested levels ("4,2"): the first is ours.
        first = value.split(",", 1)[0].strip()
        try:
            n = int(first)
        except ValueError:
            continue  # torch / OpenMP ignore an unparsable value too
        if n > 0:
            limits.append(n)
    return min(limits) if limits else None


def thread_limit(environ=None) -> int:
    """Threads this process may use: the environment limit, else its CPUs.

    The smaller of ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` (when set) and
    ``joblib.cpu_count()`` (the CPUs this process may run on, affinity and
    cgroup quotas included).  An explicit limit above the CPU count is
    honoured, as in scikit-learn.
    """
    from joblib import cpu_count

    env = _env_limit(environ)
    if env is not None:
        return env
    return max(1, int(cpu_count()))


def effective_n_threads(n_threads=None) -> int:
    """Number of torch threads that ``n_threads`` means here and now.

    Parameters
    ----------
    n_threads : int or None, default=None
        ``None``: torch's current count, capped by :func:`thread_limit` (so a
        joblib / Dask / Ray worker uses no more than its share).  A positive
        int: that many.  A negative int: :func:`thread_limit` ``+ 1 +
        n_threads`` (``-1`` is the whole limit), at least 1.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        For ``0``, a bool or anything that is not an int or None.
    """
    if n_threads is not None and (
        isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral)
    ):
        raise ValueError(f"n_threads must be None or a non-zero int, got {n_threads!r}.")
    if n_threads == 0:
        raise ValueError("n_threads=0 is invalid: use None, a positive int, or -1 for all allowed threads.")
    if n_threads is not None and n_threads > 0:
        return int(n_threads)
    limit = thread_limit()
    if n_threads is None:
        import torch

        return max(1, min(torch.get_num_threads(), limit))
    return max(1, limit + 1 + int(n_threads))


@contextlib.contextmanager
def torch_threads(n_threads=None):
    """Context manager: torch uses :func:`effective_n_threads` threads inside.

    ``torch.set_num_threads`` is called on entry only when the count changes,
    and the previous count is restored on exit (also on an exception).

    Parameters
    ----------
    n_threads : int or None, default=None
        See :func:`effective_n_threads`.

    Yields
    ------
    int
        The thread count in force inside the block.

    Notes
    -----
    torch's thread count is process-wide: two estimators fitting at the same
    time in threads of one process (joblib's ``"threading"`` backend, a Dask
    worker with several threads) share one pool, so give those ``n_threads``
    explicitly or use processes.

    Examples
    --------
    >>> import torch
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    """
    import torch

    n = effective_n_threads(n_threads)
    old = torch.get_num_threads()
    if n != old:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)
