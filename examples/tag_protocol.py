"""The whole Tag-LLM protocol on bundled data, with the default model.

1. **Stage 1** -- pretrain a ``<SMILES>`` domain tag on unlabeled molecules
   by next-token prediction (:class:`sktag.pretrain.DomainTagPretrainer`) and
   compare the held-out per-token NLL of the initial and the pretrained tag.
2. **Stage 2** -- learn two function tags with heads on two properties
   (ESOL solubility, lipophilicity) with the pretrained ``<SMILES>`` tag
   frozen, and, for comparison, ESOL with the untrained (init-rule) tag.
3. Save the union of the tags into one ``.safetensors`` library, reload it in
   a fresh process and check that its predictions equal the in-process ones.

The default model (SmolLM2-135M) is slow on a CPU, so the default sizes are
small and the numbers are a smoke test of the protocol, not a benchmark::

    python examples/tag_protocol.py                      # ~10 min on 2 CPU cores
    python examples/tag_protocol.py --n-pretrain 1000 --n-train 800 --epochs 20 --threads 8
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

try:
    import sktag  # noqa: F401
except ImportError:  # running from a source checkout without installing
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _split(seed, n_pretrain, n_heldout, n_train, n_test):
    """Disjoint index sets of ESOL (pretraining pool, held-out, train, test) and Lipophilicity."""
    from sktag.datasets import load_esol, load_lipophilicity

    Xe, ye = load_esol(return_X_y=True)
    Xl, yl = load_lipophilicity(return_X_y=True)
    rng = np.random.RandomState(seed)
    pe, pl = rng.permutation(len(Xe)), rng.permutation(len(Xl))
    need = n_test + n_train + n_heldout + n_pretrain
    if need > len(Xe):
        raise SystemExit(f"ESOL has {len(Xe)} molecules; the sizes asked for need {need}.")
    test, train = pe[:n_test], pe[n_test:n_test + n_train]
    heldout = pe[n_test + n_train:n_test + n_train + n_heldout]
    pool = pe[n_test + n_train + n_heldout:need]
    return {
        # ESOL molecules whose labels are never used: Stage-1 data and held-out NLL
        "pretrain": Xe[pool], "heldout": Xe[heldout],
        "esol": (Xe[train], ye[train], Xe[test], ye[test]),
        "lipo": (Xl[pl[n_test:n_test + n_train]], yl[pl[n_test:n_test + n_train]],
                 Xl[pl[:n_test]], yl[pl[:n_test]]),
    }


def _rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def _predict_library(path, data, threads):
    """Predictions of both function tags of the library at ``path`` on the test sets."""
    from sktag import TagRegressor

    out = {}
    for name, key in (("ESOL", "esol"), ("Lipophilicity", "lipo")):
        reg = TagRegressor.from_tags(path, function_tag=name, device="cpu")
        out[name] = reg.predict(data[key][2])
    return out


def predict_only(args):
    """Fresh-process half: reload the library and predict (called via subprocess)."""
    import torch

    torch.set_num_threads(args.threads)
    data = _split(args.seed, args.n_pretrain, args.n_heldout, args.n_train, args.n_test)
    preds = _predict_library(args.predict_only, data, args.threads)
    np.savez(args.predict_only + ".reloaded.npz", **preds)


def main(args):
    import torch

    import sktag
    from sktag import TagRegressor, TagSet
    from sktag.pretrain import DomainTagPretrainer

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", category=UserWarning)
    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    data = _split(args.seed, args.n_pretrain, args.n_heldout, args.n_train, args.n_test)
    out_dir = args.out_dir or tempfile.mkdtemp(prefix="sktag-protocol-")
    os.makedirs(out_dir, exist_ok=True)
    times = {}

    # ---- Stage 1: the <SMILES> domain tag ---------------------------------
    t = time.perf_counter()
    pre = DomainTagPretrainer(domain="SMILES", max_iter=args.pretrain_epochs,
                              learning_rate_init=args.pretrain_lr, device="cpu", random_state=args.seed,
                              verbose=args.verbose)
    pre.fit(data["pretrain"])
    nll_init = pre.initial_nll(data["heldout"])
    nll_pre = pre.nll(data["heldout"])
    times["stage 1"] = time.perf_counter() - t
    print(f"[stage 1] {len(data['pretrain'])} SMILES x {pre.n_iter_} epochs, training NLL/token "
          f"{' -> '.join(f'{v:.3f}' for v in pre.loss_curve_)}  ({times['stage 1']:.0f} s)", flush=True)

    # ---- Stage 2: function tags -------------------------------------------
    common = dict(domains="SMILES", max_iter=args.epochs, device="cpu", random_state=args.seed,
                  verbose=args.verbose)
    regs, rmse = {}, {}
    runs = [("ESOL", "esol", None), ("ESOL", "esol", pre.tags_), ("Lipophilicity", "lipo", pre.tags_)]
    for name, key, dom in runs:
        X_tr, y_tr, X_te, y_te = data[key]
        t = time.perf_counter()
        reg = TagRegressor(domain_tags=dom, **common).fit(X_tr, y_tr)
        label = f"{name}, {'pretrained' if dom is not None else 'init-rule'} <SMILES>"
        rmse[label] = _rmse(reg.predict(X_te), y_te)
        times[label] = time.perf_counter() - t
        print(f"[stage 2] {label}: test RMSE {rmse[label]:.3f}  ({times[label]:.0f} s)", flush=True)
        regs[name if dom is not None else name + " (init-rule tag)"] = reg

    # ---- the tag library: save, reload in a fresh process, predict ---------
    library = regs["ESOL"].tagset("ESOL", "ESOL log solubility (mol/L)") | regs["Lipophilicity"].tagset(
        "Lipophilicity", "logD at pH 7.4")
    path = os.path.join(out_dir, "smiles_tags.safetensors")
    library.save(path)
    print(f"[library] {TagSet.load(path)} -> {path}", flush=True)
    here = {name: regs[name].predict(data[key][2]) for name, key in (("ESOL", "esol"), ("Lipophilicity", "lipo"))}
    t = time.perf_counter()
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(sktag.__file__)))  # the same sktag in the child
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    cmd = [sys.executable, os.path.abspath(__file__), "--predict-only", path, "--seed", str(args.seed),
           "--n-pretrain", str(args.n_pretrain), "--n-heldout", str(args.n_heldout),
           "--n-train", str(args.n_train), "--n-test", str(args.n_test), "--threads", str(args.threads)]
    subprocess.run(cmd, check=True, env=env)
    times["reload + predict (fresh process)"] = time.perf_counter() - t
    reloaded = np.load(path + ".reloaded.npz")
    same = {}
    for name in here:
        same[name] = bool(np.array_equal(here[name], reloaded[name]))
        np.testing.assert_allclose(reloaded[name], here[name], rtol=1e-6, atol=1e-6,
                                   err_msg=f"{name}: reloaded predictions differ")

    # ---- composition: the ESOL head with another <SMILES> tag, no retraining
    other = regs["ESOL (init-rule tag)"].tagset("ESOL-init")  # holds the init-rule SMILES tag
    composed = TagRegressor.from_tags(library, function_tag="ESOL", domain_tags=other, device="cpu")
    rmse_composed = _rmse(composed.predict(data["esol"][2]), data["esol"][3])

    # ---- results ---------------------------------------------------------
    y_esol_tr, y_esol_te = data["esol"][1], data["esol"][3]
    y_lipo_tr, y_lipo_te = data["lipo"][1], data["lipo"][3]
    print()
    print(f"Tag-LLM protocol, model {pre.backbone_identity_!r}, {args.threads} thread(s), seed {args.seed}")
    print(f"{'quantity':<58}{'value':>10}")
    print("-" * 68)
    print(f"{'held-out NLL/token, initial <SMILES> tag (' + str(len(data['heldout'])) + ' ESOL mols)':<58}"
          f"{nll_init:>10.3f}")
    print(f"{'held-out NLL/token, pretrained <SMILES> tag':<58}{nll_pre:>10.3f}")
    print(f"{'ESOL test RMSE, mean-of-train baseline':<58}{_rmse(np.mean(y_esol_tr), y_esol_te):>10.3f}")
    for label, v in rmse.items():
        if label.startswith("ESOL"):
            print(f"{'ESOL test RMSE, ' + label.split(', ')[1] + ' tag':<58}{v:>10.3f}")
    print(f"{'ESOL head (pretrained tag) + init-rule <SMILES>, zero-shot':<58}{rmse_composed:>10.3f}")
    print(f"{'Lipophilicity test RMSE, mean-of-train baseline':<58}{_rmse(np.mean(y_lipo_tr), y_lipo_te):>10.3f}")
    print(f"{'Lipophilicity test RMSE, pretrained <SMILES> tag':<58}{rmse['Lipophilicity, pretrained <SMILES>']:>10.3f}")
    for name, s in same.items():
        print(f"{'reloaded in a fresh process: ' + name + ' predictions':<58}"
              f"{'identical' if s else 'close':>10}")
    print("-" * 68)
    print("sizes: pretrain", len(data["pretrain"]), "| train", args.n_train, "| test", args.n_test,
          "| epochs", args.pretrain_epochs, "+", args.epochs)
    print("seconds:", ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    print("library:", path)


def _parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-pretrain", type=int, default=200, help="unlabeled SMILES for Stage 1")
    p.add_argument("--n-heldout", type=int, default=100, help="SMILES for the held-out NLL")
    p.add_argument("--pretrain-epochs", type=int, default=2)
    p.add_argument("--pretrain-lr", type=float, default=1e-2)
    p.add_argument("--n-train", type=int, default=150, help="labelled training rows per property")
    p.add_argument("--n-test", type=int, default=100, help="test rows per property")
    p.add_argument("--epochs", type=int, default=3, help="epochs of each function tag")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", default=None, help="where to write the library (default: a temp folder)")
    p.add_argument("--verbose", type=int, default=0)
    p.add_argument("--predict-only", metavar="LIBRARY", default=None,
                   help="(internal) reload LIBRARY in this process and write its predictions")
    return p


if __name__ == "__main__":
    arguments = _parser().parse_args()
    if arguments.predict_only:
        predict_only(arguments)
    else:
        main(arguments)
