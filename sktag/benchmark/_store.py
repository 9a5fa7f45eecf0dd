"""The folder of finished fits that lets an interrupted :func:`~sktag.benchmark.compare` resume."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator


def _content_digest(est):
    """Digests of the parameters whose repr does not show their values (TagSets, arrays, tensors, model folders).

    Two ``TagRegressor(domain_tags=...)`` with different tags of the same names and lengths print alike, and so do
    two models saved one after the other under the same folder; the checkpoint key must still tell them apart.
    """
    if not isinstance(est, BaseEstimator):
        return ""
    import torch

    from sktag.backbone import _folder_state
    from sktag.tags import TagSet, _digest

    parts = []
    for name, value in sorted(est.get_params(deep=True).items()):
        if ((name == "model" or name.endswith("__model")) and isinstance(value, (str, os.PathLike))
                and os.path.isdir(value)):  # a local LLM: its files, so that new weights under the path refit
            parts.append(f"{name}={hashlib.sha256(repr(_folder_state(value)).encode()).hexdigest()}")
        elif isinstance(value, TagSet):
            parts.append(f"{name}={_digest(value._arrays())}")
        elif isinstance(value, torch.Tensor):  # any dtype, bfloat16 included: hash the bytes
            t = value.detach().cpu().contiguous()
            data = t.reshape(-1).view(torch.uint8).numpy().tobytes()
            parts.append(f"{name}={hashlib.sha256(data).hexdigest()}{tuple(t.shape)}{t.dtype}")
        elif isinstance(value, np.ndarray):
            parts.append(f"{name}={hashlib.sha256(value.tobytes()).hexdigest()}{value.shape}{value.dtype}")
    return "|".join(parts)


class FitStore:
    """Finished fits in a folder, keyed by data, folds, task and estimator."""

    def __init__(self, path, X, y, task):
        import sklearn

        from sktag import __version__

        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"checkpoint_dir {str(self.path)!r} is a file, not a folder")
        (self.path / "fits").mkdir(parents=True, exist_ok=True)
        h = hashlib.sha256()
        if isinstance(X, pd.DataFrame):
            h.update(repr(list(X.columns)).encode())
            h.update(pd.util.hash_pandas_object(X.astype(str), index=False).to_numpy().tobytes())
        else:
            h.update("\x1f".join(map(str, X)).encode())
        h.update(repr(np.asarray(y).tolist()).encode())
        h.update(f"{task}|sktag {__version__}|sklearn {sklearn.__version__}".encode())
        self.data_hash = h.hexdigest()

    def key(self, est, split):
        text = est.__repr__(N_CHAR_MAX=10**7) if isinstance(est, BaseEstimator) else repr(est)
        text = re.sub(r" at 0x[0-9a-fA-F]+", "", text)  # functions and plain objects: no addresses
        h = hashlib.sha256(self.data_hash.encode())
        h.update(text.encode())
        h.update(_content_digest(est).encode())
        for idx in split:
            h.update(np.asarray(idx, dtype=np.int64).tobytes() + b"|")
        return h.hexdigest()[:32]

    def load(self, est, split):
        f = self.path / "fits" / f"{self.key(est, split)}.json"
        if not f.exists():
            return None
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):  # a damaged file: fit again
            return None
        return rec if rec.get("error") is None and rec.get("pred") is not None else None

    def save(self, est, split, rec):
        f = self.path / "fits" / f"{self.key(est, split)}.json"
        tmp = f.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(dict(rec, finished=time.strftime("%Y-%m-%dT%H:%M:%S"), pid=os.getpid())))
        os.replace(tmp, f)
