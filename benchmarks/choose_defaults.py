"""Choose the estimators' defaults by inner cross-validation on training folds only.

For each data set (ESOL and Lipophilicity regression, BBBP classification)
the *outer* splits are the three folds of ``ScaffoldSplit(n_splits=3,
test_size=0.2, random_state=0)`` -- the splits of seeds 0, 1, 2 in
``studies/readout_study.py`` and ``accuracy.py --standard``.  Only the molecules in
the training part of all three are used here (about half of each data set),
so no outer test molecule of any seed takes part in choosing a default.  On
that part:

* **Stage A -- readout and layers (closed form).**  The frozen model's
  pooled hidden states of every layer are computed once (``LLMEmbedding``,
  ``layers="all"``, mean and last-token pooling); each candidate readout
  (which layers, which pooling) is scored by a scaffold-grouped inner
  ``--inner-a``-fold CV (``accuracy.inner_folds``) of StandardScaler +
  RidgeCV (GCV) / LogisticRegressionCV -- the estimators' closed-form head
  at epoch 0.
* **Stage B -- training settings (real fits).**  ``TagRegressor`` /
  ``TagClassifier`` are fitted with one setting changed at a time around the
  defaults (learning rate, tag length, batch size, readout ``"tag"`` versus
  ``"pooled"``, the classifier's early-stopping ``scoring``) on a random subsample (``--cap``) of that part, with
  a scaffold-grouped inner ``--inner-b``-fold CV; the kept epoch
  (``best_epoch_``) of every fit says how many epochs are worth paying for.

Scores: RMSE (lower is better) for regression, AUROC (higher is better) for
BBBP, on the inner validation folds.  Usage::

    python -m benchmarks.choose_defaults --threads 2              # ~40 min on 2 idle cores

Writes ``choose_defaults_<date>.{md,json}`` into ``--out`` and prints one
JSON line per fit as it goes.  Machine load is recorded with every fit.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

# the inner CV shared with the tag-length study, the frozen-feature head and the metrics of accuracy.py
from benchmarks.accuracy import compute_metrics, frozen_feature_head, inner_folds

ROOT = Path(__file__).resolve().parents[1]

KIND = {"esol": "regression", "lipophilicity": "regression", "bbbp": "classification"}

#: Stage A candidates: (label, pooling, layer spec or list of hidden-state indices)
READOUTS = [
    ("mean, last layer", "mean", "last"),
    ("mean, spread3", "mean", "spread3"),
    ("mean, spread5 (default)", "mean", "spread5"),
    ("mean, spread10", "mean", "spread10"),
    ("mean, all 30 layers", "mean", "all"),
    ("last token, last layer", "last", "last"),
    ("last token, spread5", "last", "spread5"),
]

#: Stage B settings, one change at a time from the defaults
SETTINGS = [
    ("defaults (pooled, lr 1e-3, p 10, batch 32)", {}),
    ("learning_rate_init=3e-4", dict(learning_rate_init=3e-4)),
    ("learning_rate_init=3e-3", dict(learning_rate_init=3e-3)),
    ("tag_length=1", dict(tag_length=1)),
    ("tag_length=20", dict(tag_length=20)),
    ("batch_size=16", dict(batch_size=16)),
    ("readout='tag' (closed-form head)", dict(readout="tag")),
    ("scoring='loss' (classifier only)", dict(scoring="loss")),
    ("domain_tag_length=0 (no domain tag)", dict(domain_tag_length=0)),
    ("tag_depth='deep'", dict(tag_depth="deep")),
    # weight decay on the trained tags (AdamW decays toward zero: the deep blocks toward their zero start); 10 is
    # the value the learning curve's inner CV chose at 1,000 AqSolDB labels (learning_curve.py tag_deep_reg)
    ("alpha=10 (weight decay of the function tag)", dict(alpha=10.0)),
    ("deep-alpha=10 (tag_depth='deep' with alpha=10)", dict(tag_depth="deep", alpha=10.0)),
    # epoch 0 of the defaults: the closed-form head on the initial tags' features (AdamW at lr 1e-12 moves
    # no tag by more than rounding); the frozen-feature start that the adoption rule compares with
    # (with the untrained domain tag, domain_tags=None: the default of sktag 0.2, when this setting was made)
    ("frozen-start (epoch 0: closed-form head, no tag training)",
     dict(max_iter=1, learning_rate_init=1e-12, early_stopping=False, domain_tags=None)),
    # stage 1 of the paper: a domain tag learned by next-token prediction on the inner training fold's own
    # SMILES (unlabeled use of molecules the fit sees anyway; no validation or outer test molecule), frozen
    ("pretrained-domain-tag (stage 1 on the training fold's SMILES, 2 epochs)", dict(_pretrain=dict(max_iter=2))),
    # domain tags learned by pretrain_pool.py on an unlabeled pool of other molecules (no ESOL, BBBP or
    # Lipophilicity molecule in it), frozen; read from --domain-tags
    ("descriptor-domain-tag (DescriptorTagPretrainer on the unlabeled pool, frozen)", dict(_tagfile="descriptor")),
    ("pool-domain-tag (next-token stage 1 on the unlabeled pool, frozen)", dict(_tagfile="ntp")),
    ("descriptor-domain-tag-tuned (the same tag, tune_domain_tags=True)",
     dict(_tagfile="descriptor", tune_domain_tags=True)),
    # the deep next-token tag of pretrain_pool.py --depth deep (one block per decoder block), frozen: in the
    # prefix cache, so an epoch costs what it costs with a shallow tag; its learning rate (5e-3 against 1e-3)
    # was chosen on the pool's held-out NLL (no labelled molecule)
    ("pool-deep-domain-tag (deep next-token stage 1 on the unlabeled pool, lr 5e-3, frozen)",
     dict(_tagfile="ntp_deep_lr5e-3")),
    # for information only (the rule above chose lr 5e-3): the deep tag trained at lr 1e-3 (held-out NLL 2.61
    # against 1.99), to see whether a lower stage-1 loss gives better features
    ("pool-deep-domain-tag-lr1e-3 (the same at lr 1e-3, frozen; not a candidate)", dict(_tagfile="ntp_deep")),
    # the same tag tuned on the labels with smaller steps than the function tag's (the prefix is not cached)
    ("pool-deep-domain-tag-tuned (the same tag, tune_domain_tags=True, domain_learning_rate=1e-4)",
     dict(_tagfile="ntp_deep_lr5e-3", tune_domain_tags=True, domain_learning_rate=1e-4)),
    # free key/value deep domain tags (P-Tuning v2): pretrain_pool.py --depth kv on the same pool molecules, at
    # learning rates 1e-3 and 5e-3; pool_ntp_kv is the one of lower held-out NLL on the pool (rule fixed before
    # any labelled fit, as for the deep tag).  Frozen, then tuned with the deep tag's domain_learning_rate.
    ("pool-kv-domain-tag (key/value next-token stage 1 on the unlabeled pool, lr by held-out NLL, frozen)",
     dict(_tagfile="ntp_kv")),
    ("pool-kv-domain-tag-tuned (the same tag, tune_domain_tags=True, domain_learning_rate=1e-4)",
     dict(_tagfile="ntp_kv", tune_domain_tags=True, domain_learning_rate=1e-4)),
]

#: what the adoption rule compares every setting with: epoch 0 of the defaults
FROZEN_START = next(label for label, _ in SETTINGS if label.startswith("frozen-start"))


def _data(name):
    from sktag.datasets import load_bbbp, load_esol, load_lipophilicity
    from sktag.model_selection import ScaffoldSplit

    X, y = {"esol": load_esol, "bbbp": load_bbbp, "lipophilicity": load_lipophilicity}[name](return_X_y=True)
    X = np.asarray(X, dtype=object)
    # molecules in the training part of all three outer splits: no outer test molecule of any seed
    train_parts = [tr for tr, _ in ScaffoldSplit(n_splits=3, test_size=0.2, random_state=0).split(X)]
    keep = np.array(sorted(set.intersection(*map(set, train_parts))))
    return X[keep], np.asarray(y)[keep]


def _score(kind, y, pred):
    """RMSE for regression, AUROC for classification (``accuracy.compute_metrics``)."""
    return compute_metrics(kind, y, pred)["RMSE" if kind == "regression" else "AUROC"]


def stage_a(name, X, y, args):
    from sktag import LLMEmbedding
    from sktag.embedding import resolve_layers as resolve

    kind = KIND[name]
    folds = inner_folds(X, y, kind, args.inner_a)
    feats, t_feat = {}, {}
    for pooling in ("mean", "last"):
        t0 = time.perf_counter()
        emb = LLMEmbedding(pooling=pooling, layers="all").fit(X)
        feats[pooling] = (emb.transform(X), list(emb.layers_), emb.hidden_size_)
        t_feat[pooling] = time.perf_counter() - t0
    rows = []
    for label, pooling, spec in READOUTS:
        if kind == "classification" and spec == "all":
            continue  # 17,280 features: the logistic regression's CV takes too long here
        F, layers, d = feats[pooling]
        wanted = resolve(spec, len(layers))
        cols = np.concatenate([np.arange(layers.index(w) * d, (layers.index(w) + 1) * d) for w in wanted])
        load0 = os.getloadavg()[0]
        scores = []
        for tr, va in folds:
            model = frozen_feature_head(kind).fit(F[tr][:, cols], y[tr])
            pred = model.predict(F[va][:, cols]) if kind == "regression" else model.predict_proba(F[va][:, cols])[:, 1]
            scores.append(_score(kind, y[va], pred))
        row = dict(stage="A", dataset=name, setting=label, layers=[int(w) for w in wanted], scores=scores,
                   mean=float(np.mean(scores)), sd=float(np.std(scores, ddof=1)), n_train=len(X),
                   feature_seconds=t_feat[pooling], load=load0)
        print(json.dumps(row), flush=True)
        rows.append(row)
    return rows


def stage_b(name, X, y, args):
    from sktag import TagClassifier, TagRegressor

    kind = KIND[name]
    rng = np.random.RandomState(0)
    if args.cap and len(X) > args.cap:
        keep = np.sort(rng.choice(len(X), args.cap, replace=False))
        X, y = X[keep], y[keep]
    folds = inner_folds(X, y, kind, args.inner_b)
    Tag = TagRegressor if kind == "regression" else TagClassifier
    rows = []
    for label, params in SETTINGS:
        if args.settings and label.split(" ")[0] not in args.settings:
            continue
        if "scoring" in params and kind != "classification":
            continue
        for i, (tr, va) in enumerate(folds):
            load0 = os.getloadavg()[0]
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit_params = _with_pretrained_tag(params, X[tr], args.threads, args.domain_tags)
                est = Tag(n_threads=args.threads, random_state=0, **fit_params).fit(X[tr], y[tr])
                pred = est.predict(X[va]) if kind == "regression" else est.predict_proba(X[va])[:, 1]
            row = dict(stage="B", dataset=name, setting=label, fold=i, score=_score(kind, y[va], pred),
                       seconds=time.perf_counter() - t0, n_train=len(tr), n_val=len(va), epochs=est.n_iter_,
                       best_epoch=est.best_epoch_, validation_scores=est.validation_scores_,
                       epoch_seconds=list(est.epoch_times_), prefix_seconds=est.prefix_time_,
                       load_before=load0, load_after=os.getloadavg()[0])
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def _with_pretrained_tag(params, X_train, threads, tag_dir):
    """``params``, with ``_pretrain`` replaced by ``domain_tags`` learned on ``X_train`` (stage 1), or
    ``_tagfile`` by the tag ``pretrain_pool.py`` saved in ``tag_dir``."""
    if "_tagfile" in params:
        from sktag import TagSet

        rest = {k: v for k, v in params.items() if k != "_tagfile"}
        return dict(rest, domain_tags=TagSet.load(Path(tag_dir) / f"pool_{params['_tagfile']}.safetensors"))
    if "_pretrain" not in params:
        return params
    from sktag import DomainTagPretrainer

    pre = DomainTagPretrainer(domain="SMILES", n_threads=threads, random_state=0, **params["_pretrain"])
    rest = {k: v for k, v in params.items() if k != "_pretrain"}
    return dict(rest, domain_tags=pre.fit(X_train).tags_)


def _scores(rows, stage, dataset, setting):
    sel = [r for r in rows if r["stage"] == stage and r["dataset"] == dataset and r["setting"] == setting]
    if stage == "A":
        return np.array(sel[0]["scores"]) if sel else None
    return np.array([r["score"] for r in sorted(sel, key=lambda r: r["fold"])]) if sel else None


def _tables(rows, args):
    """One table per stage: mean ± sd over inner folds, the paired difference to the default, and the
    mean rank over data sets (the rule fixed before the run: among the settings run on every data set
    the best mean rank wins; the default stays unless another setting ranks better)."""
    out = []
    for stage, title, default in (
            ("A", f"Stage A: readout and layers, closed-form head, scaffold-grouped inner {args.inner_a}-fold CV",
             READOUTS[2][0]),
            ("B", f"Stage B: training settings, real fits, scaffold-grouped inner {args.inner_b}-fold CV on "
                  f"≤{args.cap} of the molecules", SETTINGS[0][0])):
        rs = [r for r in rows if r["stage"] == stage]
        if not rs:
            continue
        names = list(dict.fromkeys(r["dataset"] for r in rs))
        settings = list(dict.fromkeys(r["setting"] for r in rs))
        everywhere = [st for st in settings if all(_scores(rows, stage, n, st) is not None for n in names)]
        ranks = {st: [] for st in settings}
        for n in names:
            sign = 1 if KIND[n] == "regression" else -1  # rank 1 = best
            means = {st: sign * _scores(rows, stage, n, st).mean() for st in everywhere}
            order = sorted(means, key=means.get)
            for st in means:
                ranks[st].append(order.index(st) + 1)
        out += [f"## {title}", "",
                "Each cell: mean ± sd over inner folds; Δ = mean paired difference to the default of the run "
                f"({default}) on the same folds (negative is better for RMSE, positive for AUROC).  Mean rank: "
                "over the data sets, among the settings run on all of them.", "",
                "| setting | " + " | ".join(f"{n} {'RMSE ↓' if KIND[n] == 'regression' else 'AUROC ↑'}"
                                         for n in names) + " | mean rank |",
                "|---|" + "---:|" * (len(names) + 1)]
        for st in settings:
            cells = []
            for n in names:
                v, d = _scores(rows, stage, n, st), _scores(rows, stage, n, default)
                if v is None:
                    cells.append("")
                    continue
                cell = f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"
                if d is not None and st != default and len(d) == len(v):
                    cell += f" (Δ {np.mean(v - d):+.3f})"
                if stage == "B":
                    sel = [r for r in rs if r["dataset"] == n and r["setting"] == st]
                    cell += (f"; kept epochs {','.join(str(r['best_epoch']) for r in sel)}; "
                             f"{np.mean([r['seconds'] for r in sel]):.0f} s")
                cells.append(cell)
            rank = f"{np.mean(ranks[st]):.2f}" if ranks[st] else "–"
            out.append(f"| {st} | " + " | ".join(cells) + f" | {rank} |")
        out.append("")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=["esol", "bbbp", "lipophilicity"], choices=list(KIND))
    ap.add_argument("--stages", nargs="+", default=["A", "B"], choices=["A", "B"])
    ap.add_argument("--settings", nargs="*", default=[], help="stage B settings (first word of the label)")
    ap.add_argument("--inner-a", type=int, default=5, help="inner folds of stage A")
    ap.add_argument("--inner-b", type=int, default=2, help="inner folds of stage B")
    ap.add_argument("--cap", type=int, default=500, help="training molecules used in stage B (0: all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--domain-tags", default=str(ROOT / "benchmarks" / "results" / "tags"),
                    help="folder of the pool_<objective>.safetensors tags of pretrain_pool.py")
    ap.add_argument("--render", metavar="JSON", help="rewrite the Markdown report of an earlier run's JSON")
    args = ap.parse_args(argv)
    if args.render:
        path = Path(args.render)
        saved = json.loads(path.read_text())
        args.inner_a, args.inner_b, args.cap = (saved["meta"].get(k, getattr(args, k))
                                                for k in ("inner_a", "inner_b", "cap"))
        path.with_suffix(".md").write_text(_report(saved["meta"], saved["rows"], args))
        print(path.with_suffix(".md").read_text())
        return
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    load_start = os.getloadavg()
    data = {name: _data(name) for name in args.datasets}
    rows = []
    if "A" in args.stages:
        rows += [r for name in args.datasets for r in stage_a(name, *data[name], args)]
    if "B" in args.stages:
        rows += [r for name in args.datasets for r in stage_b(name, *data[name], args)]
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(date=stamp, machine=platform.processor() or platform.machine(), cpus=os.cpu_count(),
                threads=args.threads, torch=torch.__version__, total_seconds=time.perf_counter() - t0,
                load_start=load_start, load_end=os.getloadavg(), argv=sys.argv[1:],
                n_train={n: len(d[0]) for n, d in data.items()}, inner_a=args.inner_a, inner_b=args.inner_b,
                cap=args.cap)
    (out / f"choose_defaults_{stamp}.json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    report = _report(meta, rows, args)
    (out / f"choose_defaults_{stamp}.md").write_text(report)
    print(report)


def _report(meta, rows, args):
    lines = [f"# Inner-CV choice of defaults ({meta['date']})", "",
             "Molecules in the training part of all three outer splits (ScaffoldSplit(n_splits=3, "
             f"test_size=0.2, random_state=0)) only ({', '.join(f'{n} {k}' for n, k in meta['n_train'].items())} "
             f"molecules): no outer test molecule of any seed is read.  SmolLM2-135M, {meta['threads']} torch "
             f"threads, {meta['cpus']} CPUs, load average {meta['load_start'][0]:.1f} at start, "
             f"{meta['load_end'][0]:.1f} at end (per fit in the JSON); total {meta['total_seconds'] / 60:.0f} min.",
             "", *(f"- {n}" for n in meta.get("notes", ())), *([""] if meta.get("notes") else []),
             *_tables(rows, args), *_adoption_rule(rows)]
    return "\n".join(lines) + "\n"


def _adoption_rule(rows):
    """The adoption rule, fixed before the runs: a setting would become the default only if it beats the frozen
    start by more than one inner-fold standard error of the paired differences on at least two of the three
    data sets and is not worse (by the same measure) on the third.  Since the defaults changed (a shipped
    domain tag), a setting that would replace them must also pass the same rule against the defaults."""
    out = _rule_table(rows, FROZEN_START, "the frozen start")
    return out + _rule_table(rows, SETTINGS[0][0], "the defaults")


def _rule_table(rows, baseline, what):
    """The rule's table: every stage-B setting of ``rows`` against the setting ``baseline``."""
    rs = [r for r in rows if r["stage"] == "B"]
    names = list(dict.fromkeys(r["dataset"] for r in rs))
    if not rs or not any(r["setting"] == baseline for r in rs):
        return []
    out = [f"## The adoption rule against {what}", "",
           f"Paired difference to {what} over the inner folds (sign: positive = better), with its "
           "standard error (sd/√folds): *better* when it exceeds one SE (and 0.001), *worse* when it falls below "
           "minus that, else *same*.  Adopt only with *better* on ≥ 2 sets and no *worse*.", "",
           "| setting | " + " | ".join(names) + " | verdict |", "|---|" + "---|" * (len(names) + 1)]
    for st in dict.fromkeys(r["setting"] for r in rs):
        if st == baseline or (baseline != FROZEN_START and st == FROZEN_START):
            continue
        cells, calls = [], []
        for n in names:
            v, f = _scores(rows, "B", n, st), _scores(rows, "B", n, baseline)
            if v is None or f is None or len(v) != len(f):
                cells.append("")
                continue
            d = (f - v) if KIND[n] == "regression" else (v - f)
            se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.inf
            bar = max(se, 1e-3)  # below the reported precision a difference is a tie
            call = "better" if d.mean() > bar else "worse" if d.mean() < -bar else "same"
            calls.append(call)
            cells.append(f"{d.mean():+.3f} ± {se:.3f} ({call})")
        adopt = len(calls) == len(names) and calls.count("better") >= 2 and "worse" not in calls
        verdict = ("(the default)" if st == SETTINGS[0][0] and baseline == FROZEN_START else "adopt" if adopt
                   else "keep the default")
        out.append(f"| {st} | " + " | ".join(cells) + f" | {verdict} |")
    return out + [""]


if __name__ == "__main__":
    main()
