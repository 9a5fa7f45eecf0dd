"""Data sets and splits of ``accuracy.py`` (and the inner folds that ``choose_defaults.py`` shares).

Seed *i* is one train/test split: fold *i* of ``ScaffoldSplit(n_splits=3, test_size=0.2, random_state=0)`` for ESOL,
Lipophilicity, BBBP and FreeSolv; TDC's official test set with the 7/8 scaffold part of ``train_val`` for Caco2 and
HIA; DeepDTA's setting-1 folds (subsampled) for DAVIS.  Training and test sets are capped per mode.
"""

from __future__ import annotations

import numpy as np


def inner_folds(X, y, kind, k):
    """Scaffold-grouped inner K-fold in which scaffold sets larger than half a fold are split into single molecules.

    Kept whole, the one big set of ring-free molecules of ESOL would sit in a single validation fold.
    """
    from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

    from sktag.model_selection import scaffold_groups

    groups = scaffold_groups(list(X["drug"]) if hasattr(X, "columns") else X)
    big = np.bincount(groups)[groups] > len(X) / (2 * k)
    groups = np.where(big, groups.max() + 1 + np.arange(len(X)), groups)
    cv = (StratifiedGroupKFold(k, shuffle=True, random_state=0) if kind == "classification"
          else GroupKFold(k, shuffle=True, random_state=0))
    return list(cv.split(X, y, groups))


#: the models of ``--domain-tags`` (accuracy.py, learning_curve.py): key -> (named model, its domain-tag parameter,
#: description)
DTAG_MODELS = {"tag_dtag": ("tag", "domain_tags", "Tag-LLM defaults + --domain-tags"),
               "llm_embedding_dtag": ("llm_embedding", "embedding__domain_tags",
                                      "LLMEmbedding with --domain-tags + ridge / logistic")}


def load_domain_tags(path):
    """The TagSet of ``--domain-tags PATH`` and a note for the report naming it (path, sha256, what it holds).

    The estimators get the loaded TagSet, not the path: ``compare``'s checkpoint key then includes the tags'
    content, so a kept fit is never reused for other tags saved under the same name.
    """
    import hashlib
    from pathlib import Path

    from sktag import TagSet

    tags = TagSet.load(path)
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return tags, f"--domain-tags {path} (sha256 {digest}…): {tags!r}"


def require_domain_tags(parser, args):
    """Stop with a usage error when ``args.models`` has a model of :data:`DTAG_MODELS` but no ``--domain-tags``."""
    if not args.domain_tags and set(DTAG_MODELS) & set(args.models or []):
        parser.error(" and ".join(DTAG_MODELS) + " need --domain-tags PATH")


def dtag_model(key, task, tags, **make_kw):
    """The model ``key`` of :data:`DTAG_MODELS`: its named model (``make_model(..., **make_kw)``) with ``tags``."""
    from sktag.benchmark import make_model

    name, param, _ = DTAG_MODELS[key]
    return make_model(name, task, **make_kw).set_params(**{param: tags})


def _sub(idx, n, seed):
    idx = np.asarray(idx)
    return idx if n is None or n >= len(idx) else np.sort(np.random.RandomState(seed).choice(idx, n, replace=False))


def load(name, seeds, cfg, freesolv=None):
    """``(X, y, kind, splits, note)``: one (train, test) split per seed, capped by the mode."""
    import pandas as pd
    from rdkit import Chem, RDLogger

    from sktag.datasets import load_bbbp, load_davis, load_esol, load_lipophilicity, load_tdc_admet
    from sktag.model_selection import ScaffoldSplit

    RDLogger.DisableLog("rdApp.*")
    ok = lambda X: np.array([Chem.MolFromSmiles(s) is not None for s in X])  # noqa: E731
    n_tr, n_te = cfg["n_train"], cfg["n_test"]
    if name in ("esol", "lipophilicity", "bbbp", "freesolv"):
        if name == "freesolv":
            df = pd.read_csv(freesolv)
            X, y = df["smiles"].astype(str).str.strip().to_numpy(dtype=object), df["expt"].to_numpy(dtype=float)
        else:
            X, y = {"esol": load_esol, "lipophilicity": load_lipophilicity, "bbbp": load_bbbp}[name](return_X_y=True)
        X, y = X[ok(X)], y[ok(X)]
        all_splits = list(ScaffoldSplit(n_splits=max(3, max(seeds) + 1), test_size=0.2, random_state=0).split(X))
        splits = [(_sub(all_splits[s][0], n_tr, 1000 + s), _sub(all_splits[s][1], n_te, 2000 + s)) for s in seeds]
        note = (f"scaffold split 80/20, seed i = fold i of ScaffoldSplit(n_splits={max(3, max(seeds) + 1)}, "
                f"random_state=0): {len(all_splits[0][0])} train / {len(all_splits[0][1])} test")
        return X, y, "classification" if name == "bbbp" else "regression", splits, note
    if name in ("caco2_wang", "hia_hou"):
        tv, te = load_tdc_admet(name, split="train_val"), load_tdc_admet(name, split="test")
        Xtv, ytv, Xte, yte = tv.data[ok(tv.data)], tv.target[ok(tv.data)], te.data[ok(te.data)], te.target[ok(te.data)]
        test = len(Xtv) + _sub(np.arange(len(Xte)), n_te, 2000)
        splits = [(_sub(next(ScaffoldSplit(n_splits=1, test_size=0.125, random_state=s).split(Xtv))[0], n_tr,
                        1000 + s), test) for s in seeds]  # TDC protocol: the 7/8 scaffold part of train_val
        note = f"TDC official test set ({len(Xte)}); train = 7/8 scaffold part of train_val per seed"
        return (np.concatenate([Xtv, Xte]), np.concatenate([ytv, yte]),
                "regression" if tv.task == "regression" else "classification", splits, note)
    if name == "davis":
        tr, te = load_davis(as_frame=True, fold="train"), load_davis(as_frame=True, fold="test")
        X = pd.concat([tr.data, te.data], ignore_index=True)
        y = np.concatenate([tr.target.to_numpy(), te.target.to_numpy()])
        test = len(tr.data) + _sub(np.arange(len(te.data)), cfg["davis_test"], 2000)
        splits = [(_sub(np.arange(len(tr.data)), cfg["davis_train"], 1000 + s), test) for s in seeds]
        note = (f"DeepDTA setting-1 folds: random {cfg['davis_train']} train pairs per seed, {len(test)} test pairs; "
                f"Tag-LLM max_length={cfg['davis_max_length']} tokens")
        return X, y, "regression", splits, note
    raise ValueError(f"unknown data set {name!r}")


def _aa_composition(X):
    """Amino-acid composition (20 fractions) plus log length of each protein sequence."""
    seqs = [str(s).upper() for s in np.asarray(X, dtype=object).ravel()]
    return np.array([[s.count(a) / max(len(s), 1) for a in "ACDEFGHIKLMNPQRSTVWY"] + [np.log(max(len(s), 1))]
                     for s in seqs])
