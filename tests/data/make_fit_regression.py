"""Write the stored results that ``tests/test_fit_regression.py`` compares against.

Run from the repository root when a change is *meant* to change fitted
results (and say so in the changelog)::

    python tests/data/make_fit_regression.py

It fits each configuration of :data:`CASES` on a tiny random model in float32
with one thread, and writes ``fit_regression.npz``: the outputs, with the
torch version and CPU capability they were computed with, and the outputs of
the files an earlier version wrote (``fitted_regressor.pkl``,
``fitted_embedding.pkl`` and the TagSet folder ``fitted.tags``), which the
load tests read back.  Those files are kept; ``--files`` writes them anew
from this version's fits (only when the old ones can no longer be read).
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def regression_data(n=48, seed=3):
    """Chains of C, N and O (valid SMILES), a regression target (fraction of N) and two classes."""
    rng = np.random.RandomState(seed)
    X = ["".join(rng.choice(list("CNO"), size=rng.randint(3, 14))) for _ in range(n)]
    y = np.array([s.count("N") / len(s) for s in X])
    return X, y, (y > np.median(y)).astype(int)


#: name -> (estimator class name, parameters, output method).  Small, fast settings on a tiny model.
#: (the schedule and domain-tag length are given: the stored outputs are of this configuration, whatever the defaults)
BASE = dict(domains="SMILES", tag_length=3, domain_tag_length=3, max_iter=3, n_iter_no_change=3, batch_size=16,
            learning_rate_init=1e-2, random_state=0)
CASES = {
    "default": ("TagRegressor", {}, "predict"),
    "paper": ("TagRegressor", dict(readout="tag", head_init="random", head_update="gradient",
                                   early_stopping=False), "predict"),
    "deep": ("TagRegressor", dict(tag_depth="deep"), "predict"),
    "kv_domain": ("TagRegressor", dict(domain_tag_depth="kv"), "predict"),
    "tuned_domain": ("TagRegressor", dict(tune_domain_tags=True), "predict"),
    "classifier": ("TagClassifier", {}, "predict_proba"),
    "embedding": ("LLMEmbedding", dict(domains="SMILES", domain_tags="pretrained"), "transform"),
}


def make(name, model):
    """The unfitted estimator of case ``name`` on ``model``."""
    import sktag

    cls, params, _ = CASES[name]
    if cls == "LLMEmbedding":
        return sktag.LLMEmbedding(model=model, **params)
    return getattr(sktag, cls)(model=model, **{**BASE, **params})


def fit_case(name, model):
    """``(fitted estimator, outputs on the training strings)`` of case ``name``."""
    X, y, labels = regression_data()
    est = make(name, model)
    target = labels if CASES[name][0] == "TagClassifier" else y
    est.fit(X, target)
    return est, np.asarray(getattr(est, CASES[name][2])(X), dtype=np.float64)


def main():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["SKTAG_CPU_BF16"] = "0"
    import torch

    from sktag.testing import make_tiny_model

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        model = make_tiny_model(tmp)  # the suite's tiny model (seed 0)
        outputs = {}
        for name in CASES:
            est, outputs[name] = fit_case(name, model)
            if "--files" not in sys.argv:
                continue
            if name == "default":
                est.save_tags(HERE / "fitted.tags")
                with open(HERE / "fitted_regressor.pkl", "wb") as f:
                    pickle.dump(est, f, protocol=4)
            if name == "embedding":
                with open(HERE / "fitted_embedding.pkl", "wb") as f:
                    pickle.dump(est, f, protocol=4)
            print(f"{name}: {outputs[name].shape}", file=sys.stderr)
        X, _, _ = regression_data()
        for name, method in (("fitted_regressor.pkl", "predict"), ("fitted_embedding.pkl", "transform")):
            with open(HERE / name, "rb") as f:
                est = pickle.load(f).set_params(model=model)
            outputs[f"file_{name.split('.')[0]}"] = np.asarray(getattr(est, method)(X), dtype=np.float64)
    np.savez(HERE / "fit_regression.npz", torch_version=torch.__version__,
             cpu_capability=torch.backends.cpu.get_cpu_capability(), **outputs)


if __name__ == "__main__":
    main()
