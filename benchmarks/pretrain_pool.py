"""Stage 1 on an unlabeled pool: domain tags learned on SMILES no evaluated molecule belongs to.

The pool is the SMILES of the ``train_val`` parts of sktag's bundled TDC ADMET sets, with every molecule of
ESOL, BBBP and Lipophilicity (all rows, canonical SMILES) and of every TDC ``test`` part removed, so a tag learned
on it has seen no molecule that ``choose_defaults.py`` validates on, no outer test molecule of ``accuracy.py``
and no TDC test molecule of ``learning_curve.py``.  ``--n`` molecules are drawn from it (seed ``--seed``);
``--held-out`` more are kept aside to measure what each objective learned.  Two tags are learned, one after the
other, and saved as TagSet files:

* ``descriptor``: :class:`sktag.DescriptorTagPretrainer` (the pooled states predict RDKit descriptors);
* ``ntp``: :class:`sktag.DomainTagPretrainer` (the paper's stage 1: next-token prediction).

Usage::

    python -m benchmarks.pretrain_pool [--n 2000] [--held-out 200] [--epochs 2] [--threads 2] [--out DIR]

Writes ``<out>/tags/pool_<objective>.safetensors`` and ``<out>/pretrain_pool_<stamp>.{md,json}`` (held-out loss
before and after, seconds per epoch, CPU kind, dtype and load).  ``choose_defaults.py --domain-tags`` reads the
tags.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _canonical(smiles):
    from sktag.domains import validate_strings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        canon, ok = validate_strings(list(smiles), "SMILES", canonicalize=True, on_invalid="nan")
    return [c for c, good in zip(canon, ok) if good]


def unlabeled_pool():
    """Canonical SMILES of the bundled TDC ``train_val`` parts minus every evaluated or TDC test molecule."""
    from sktag.datasets import TDC_ADMET_NAMES, load_bbbp, load_esol, load_lipophilicity, load_tdc_admet

    excluded = set()
    for load in (load_esol, load_bbbp, load_lipophilicity):
        excluded.update(_canonical(load(return_X_y=True)[0]))
    pool = set()
    for name in TDC_ADMET_NAMES:
        excluded.update(_canonical(load_tdc_admet(name, split="test", return_X_y=True)[0]))
        pool.update(_canonical(load_tdc_admet(name, split="train_val", return_X_y=True)[0]))
    return sorted(pool - excluded), len(excluded)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="pool molecules to train on")
    ap.add_argument("--held-out", type=int, default=200, help="pool molecules to measure on")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--objectives", nargs="+", default=["descriptor", "ntp"], choices=["descriptor", "ntp"])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--max-atoms-chars", type=int, default=120, help="leave out SMILES longer than this")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--learning-rate", type=float, default=1e-3, help="AdamW learning rate of the tag")
    ap.add_argument("--depth", default="shallow", choices=["shallow", "deep", "kv"],
                    help="tag_depth of the next-token tag (deep: one block per decoder block in the residual "
                         "stream; kv: free key/values per attention layer, P-Tuning v2 style)")
    ap.add_argument("--suffix", default="", help="appended to the tag files' names (pool_<objective><suffix>)")
    ap.add_argument("--verbose", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    from sktag import DescriptorTagPretrainer, DomainTagPretrainer
    from sktag.benchmark import environment

    torch.set_num_threads(args.threads)
    pool, n_excluded = unlabeled_pool()
    pool = [s for s in pool if len(s) <= args.max_atoms_chars]
    pick = np.random.RandomState(args.seed).permutation(len(pool))[: args.n + args.held_out]
    train = [pool[i] for i in pick[: args.n]]
    held = [pool[i] for i in pick[args.n:]]
    out = Path(args.out)
    (out / "tags").mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    common = dict(model=args.model, max_iter=args.epochs, n_threads=args.threads, random_state=args.seed,
                  learning_rate_init=args.learning_rate, verbose=args.verbose)
    rows = []
    for objective in args.objectives:
        load0 = os.getloadavg()[0]
        if objective == "descriptor":
            pre = DescriptorTagPretrainer(**common).fit(train)
            before, after, unit = pre.initial_mse(held), pre.mse(held), "MSE of standardised RDKit descriptors"
        else:
            pre = DomainTagPretrainer(tag_depth=args.depth, **common).fit(train)
            before, after, unit = pre.initial_nll(held), pre.nll(held), "next-token NLL (nats/token)"
        path = out / "tags" / f"pool_{objective}{args.suffix}.safetensors"
        pre.save(path)
        row = dict(objective=objective if objective == "descriptor" else f"{objective} ({args.depth})",
                   held_out_before=before, held_out_after=after, unit=unit,
                   loss_curve=list(map(float, pre.loss_curve_)), epoch_seconds=list(map(float, pre.epoch_times_)),
                   fit_seconds=float(pre.fit_time_), dtype=str(pre.dtype_), tag=str(path.relative_to(ROOT))
                   if path.is_relative_to(ROOT) else str(path), load_before=load0, load_after=os.getloadavg()[0])
        print(json.dumps(row), flush=True)
        rows.append(row)
    env = environment()
    meta = dict(n_pool=len(pool), n_excluded=n_excluded, n_train=len(train), n_held_out=len(held), seed=args.seed,
                epochs=args.epochs, learning_rate=args.learning_rate, threads=args.threads, model=args.model,
                environment=env)
    (out / f"pretrain_pool_{stamp}.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1, default=str))
    lines = [f"# Stage 1 on an unlabeled pool ({stamp})", "",
             f"Pool: canonical SMILES of the bundled TDC ADMET `train_val` parts ({len(pool)} molecules of at most "
             f"{args.max_atoms_chars} characters) minus {n_excluded} excluded molecules (every ESOL, BBBP and "
             f"Lipophilicity molecule and every TDC test molecule). Trained on {len(train)}, measured on "
             f"{len(held)} other pool molecules (seed {args.seed}), {args.epochs} epochs at learning rate "
             f"{args.learning_rate:g}, {args.threads} torch "
             f"threads; {env.get('cpu', '')}.", "",
             "| objective | held-out loss before → after | unit | seconds per epoch | dtype | load before/after |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['objective']} | {r['held_out_before']:.4f} → {r['held_out_after']:.4f} | {r['unit']} | "
                     f"{', '.join(f'{s:.0f}' for s in r['epoch_seconds'])} | {r['dtype']} | "
                     f"{r['load_before']:.1f} / {r['load_after']:.1f} |")
    (out / f"pretrain_pool_{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
