"""Cheaper CPU kernels for the frozen backbone: int8 and torch.compile against float32/bfloat16.

One process, the same token batches for every variant (``--n`` ESOL SMILES, ``--batch-size`` rows sorted by
length, each batch padded to its own longest row):

* **speed** of a forward-only pass of the decoder (no LM head): float32 and bfloat16 eager (bf16 only with
  native bfloat16 or ``--force-bf16``), int8 dynamic quantisation (``torch.ao.quantization.quantize_dynamic``
  of the decoder's ``nn.Linear`` layers, int8 weights per tensor or per output channel, float32 activations),
  ``torch.compile`` (float32, bf16); min over ``--repeats``, compile time (first pass minus a steady one) apart;
* **distortion** of the mean-pooled last hidden states against float32: relative norm error and the
  *standardised* RMS error (error / the float32 feature's std over molecules: what a StandardScaler + ridge
  head sees; 1.0 = as large as the between-molecule variation); ``--sensitivity``: int8 on one kind of
  linear at a time (last part of the module name: q_proj, ..., down_proj);
* **accuracy**: ``LLMEmbedding`` features of ESOL (float32, int8 per channel, bf16 when measured), 5-fold
  scaffold-grouped CV of StandardScaler + RidgeCV, RMSE per fold and the paired difference to float32.

The Decision applies the issue's rule (``decide``) to the numbers. Usage::

    python -m benchmarks.cheap_kernels --threads 2 --sensitivity      # the real run (default model)
    python -m benchmarks.cheap_kernels --model TINY_FOLDER --n 16 --max-molecules 60 --skip-compile --repeats 1
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
import warnings

import numpy as np
import torch
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.speed_machine import cpu_kind  # (CPU kind and SIMD flags, reported as speed.py does)
from sktag import LLMEmbedding
from sktag.backbone import clear_backbone_cache, cpu_supports_bf16, load_backbone
from sktag.benchmark import environment
from sktag.datasets import load_esol
from sktag.model_selection import scaffold_groups

HERE = os.path.dirname(os.path.abspath(__file__))

SPEED_RULE = 1.5
WARNINGS = set()  # deprecation and other warnings of torch.ao.quantization, recorded (not shown)


def make_batches(tokenizer, smiles, batch_size):
    """Token batches sorted by length, each right-padded to its own longest row."""
    ids = [tokenizer(s)["input_ids"] for s in smiles]
    order = np.argsort([len(t) for t in ids], kind="stable")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    batches = []
    for start in range(0, len(order), batch_size):
        rows = [ids[i] for i in order[start:start + batch_size]]
        x = torch.full((len(rows), max(map(len, rows))), pad, dtype=torch.long)
        mask = torch.zeros_like(x)
        for r, t in enumerate(rows):
            x[r, :len(t)], mask[r, :len(t)] = torch.tensor(t), 1
        batches.append((x, mask))
    return batches, int(sum(map(len, ids)))


def forward_pass(decoder, batches):
    """Mean-pooled last hidden states (float32) of every batch."""
    out = []
    with torch.inference_mode():
        for x, mask in batches:
            h = decoder(input_ids=x, attention_mask=mask, use_cache=False).last_hidden_state.float()
            m = mask[..., None].float()
            out.append((h * m).sum(1) / m.sum(1))
    return torch.cat(out)


def measure(decoder, batches, repeats, compiling=False):
    rec = {"load_before": round(os.getloadavg()[0], 2)}
    t = time.perf_counter()
    forward_pass(decoder, batches if compiling else batches[:1])  # compile (every shape) / warm up
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        feats = forward_pass(decoder, batches)
        times.append(time.perf_counter() - t)
    rec.update(s=min(times), times_s=times, load_after=round(os.getloadavg()[0], 2))
    if compiling:
        rec.update(first_pass_s=first, compile_s=max(first - min(times), 0.0))
    return rec, feats


def distortion(f, ref):
    sd = ref.std(0)
    keep = sd > 0
    z = (f - ref)[:, keep] / sd[keep]
    return {"rel_norm_error": float((f - ref).norm() / ref.norm()), "std_rms_error": float(z.pow(2).mean().sqrt()),
            "worst_feature_std_rms": float(z.pow(2).mean(0).sqrt().max())}


def quantise(decoder, per_channel=True, only=None, inplace=False):
    """int8 dynamic quantisation of the decoder's nn.Linear layers (``only``: those whose name ends so)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig, quantize_dynamic

        qc = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
        target = decoder if inplace else copy.deepcopy(decoder)
        names = [n for n, m in target.named_modules()
                 if isinstance(m, torch.nn.Linear) and only in (None, n.rsplit(".", 1)[-1])]
        quantize_dynamic(target, {n: qc for n in names}, dtype=torch.qint8, inplace=True)
    WARNINGS.update(f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught)
    return target


def speed_and_distortion(args, smiles, res):
    bb32 = load_backbone(args.model, dtype="float32", device="cpu")
    batches, n_tokens = make_batches(bb32.tokenizer, smiles, args.batch_size)
    res["tokens"] = {"molecules": len(smiles), "tokens": n_tokens, "padded": int(sum(x.numel() for x, _ in batches))}
    decoders = {"float32 eager": lambda: bb32.decoder}
    if res["bf16"]["measured"]:
        decoders["bfloat16 eager"] = lambda: load_backbone(args.model, dtype="bfloat16", device="cpu").decoder
    decoders["int8 per-tensor"] = lambda: quantise(bb32.decoder, per_channel=False)
    decoders["int8 per-channel"] = lambda: quantise(bb32.decoder, per_channel=True)
    if not args.skip_compile:
        for name in [n for n in decoders if n.endswith("eager")]:
            decoders[name.replace("eager", "compiled")] = (
                lambda n=name: (torch._dynamo.reset(), torch.compile(decoders[n]()))[1])  # default dynamic=None
    ref = None
    for name, make in decoders.items():
        rec, feats = measure(make(), batches, args.repeats, compiling="compiled" in name)
        ref = feats if ref is None else ref
        rec.update(variant=name, **distortion(feats, ref))
        res["speed"].append(rec)
        print(f"{name}: {rec['s']:.2f} s, std RMS error {rec['std_rms_error']:.4f}", flush=True)
    if args.sensitivity:
        kinds = dict.fromkeys(n.rsplit(".", 1)[-1] for n, m in bb32.decoder.named_modules()
                              if isinstance(m, torch.nn.Linear))
        for kind in kinds:
            rec, feats = measure(quantise(bb32.decoder, only=kind), batches, args.repeats)
            rec.update(only=kind, **distortion(feats, ref))
            res["sensitivity"].append(rec)
            print(f"int8 only on {kind}: {rec['s']:.2f} s, std RMS error {rec['std_rms_error']:.4f}", flush=True)


def accuracy(args, X, y, res):
    folds = list(GroupKFold(5).split(X, y, scaffold_groups(X)))
    rows = res["accuracy"]

    def score(name, dtype):
        emb = LLMEmbedding(args.model, dtype=dtype, device="cpu", batch_size=args.batch_size, n_threads=args.threads)
        rec = {"features": name, "load_before": round(os.getloadavg()[0], 2)}
        t = time.perf_counter()
        F = emb.fit_transform(X)
        rec.update(embed_s=time.perf_counter() - t, load_after=round(os.getloadavg()[0], 2))
        head = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 4, 13)))
        rec["rmse"] = (-cross_val_score(head, F, y, cv=folds, scoring="neg_root_mean_squared_error")).tolist()
        if rows:
            d = np.subtract(rec["rmse"], rows[0]["rmse"])
            rec.update(diff_mean=float(d.mean()), diff_se=float(d.std(ddof=1) / np.sqrt(len(d))))
        rows.append(rec)
        print(f"{name}: RMSE {np.mean(rec['rmse']):.4f} (embedding {rec['embed_s']:.1f} s)", flush=True)
        return emb

    score("float32", "float32")
    if res["bf16"]["measured"]:
        score("bfloat16", "bfloat16")
    # int8 in place: the shared float32 backbone's decoder is quantised, so that LLMEmbedding(dtype="float32")
    # runs through it with no library change.  Acceptable only in a benchmark process: every later float32 user
    # of this model in the process would get int8 silently (the cache key still says float32); the speed part
    # is done by now, and the cache is cleared right after, so nothing else sees it.
    bb = load_backbone(args.model, dtype="float32", device="cpu")
    quantise(bb.decoder, per_channel=True, inplace=True)
    try:
        if score("int8 per-channel", "float32").get_backbone() is not bb:
            raise RuntimeError("LLMEmbedding did not run on the quantised shared backbone")
    finally:
        clear_backbone_cache()


def decide(res):
    """The Decision paragraph, from the numbers.

    Speed is judged against the CPU default here (``dtype="auto"``) and, for the CPUs the issue is about,
    against float32 eager.  Accuracy: the mean paired CV RMSE difference to float32 must be within one SE *and*
    the candidate must not be worse on most folds (one fold where the ridge head extrapolates can dominate the
    mean of a few folds).
    """
    speed = {r["variant"]: r for r in res["speed"]}
    default = "bfloat16 eager" if res["bf16"]["native"] else "float32 eager"
    base, n = speed[default]["s"], res["tokens"]["molecules"]
    acc = {r["features"]: r for r in res["accuracy"][1:]}
    ref = res["accuracy"][0]["rmse"] if res["accuracy"] else None
    out = [f"Current CPU default here: {default} (`dtype='auto'`); on CPUs without native bfloat16 it is float32 "
           f"eager. Rule: adopt as the CPU default only with a forward speed-up >= {SPEED_RULE}x over the default "
           "AND a mean paired CV RMSE difference to float32 within one standard error of the per-fold differences "
           "AND worse than float32 on at most half the folds. None of these is an sktag option: a variant that "
           "fails the rule is not offered."]
    verdicts = {}
    for name, r in speed.items():
        if name == default or name == "float32 eager":
            continue
        sp, sp32 = base / r["s"], speed["float32 eager"]["s"] / r["s"]
        a = acc.get({"int8 per-channel": "int8 per-channel", "bfloat16 eager": "bfloat16"}.get(name, ""))
        fast = sp >= SPEED_RULE
        why = [f"speed-up {sp:.2f}x over {default} ({sp32:.2f}x over float32 eager)"]
        if a is not None:
            worse = int(np.sum(np.subtract(a["rmse"], ref) > 0))
            ok = a["diff_mean"] <= a["diff_se"] and worse <= len(ref) / 2
            why.append(f"RMSE {a['diff_mean']:+.4f} ± {a['diff_se']:.4f} vs float32, worse on {worse} of {len(ref)} "
                       f"folds (per fold {' '.join(f'{d:+.3f}' for d in np.subtract(a['rmse'], ref))})")
        else:
            ok = None
            why.append(f"accuracy not cross-validated (std RMS feature error {r['std_rms_error']:.4f})")
        if "compile_s" in r:
            gain = (base - r["s"]) / n
            why.append(f"compile {r['compile_s']:.0f} s, paid back after "
                       + (f"{r['compile_s'] / gain:.0f} molecules" if gain > 0 else "never"))
        verdicts[name] = ("adopt as the CPU default" if fast and ok else
                          "not adopted: it damages the features" if ok is False or r["std_rms_error"] > 0.5 else
                          "not adopted: below the speed bar" if not fast else
                          "meets the speed rule; accuracy not cross-validated yet")
        out.append(f"- **{name}**: {verdicts[name]} ({'; '.join(why)}).")
    res["decision"] = verdicts
    return "\n".join(out)


def table(head, rows):
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def markdown(res):
    e, c = res["environment"], res["cpu"]
    f32 = res["speed"][0]["s"]
    lines = [f"# Cheap kernels: int8 and torch.compile for the frozen backbone ({res['model']})", "",
             f"{res['date']}; CPU kind {c['kind']} ({c['model']}; flags {', '.join(c['flags']) or 'none'}; "
             f"torch kernels {c['torch_capability']}); torch {e['versions'].get('torch')}, {res['threads']} torch "
             f"threads, quantized engine {res['quantized_engine']}; bfloat16: {res['bf16']['why']}; load average "
             f"{res['load_start']} at start, {res['load_end']} at the end; wall {res['wall_s']:.0f} s. The timed pass "
             "is the bare decoder forward that the prefix pass, the pooled states and predict are made of.", "",
             f"## Speed: forward pass over {res['tokens']['molecules']} ESOL SMILES ({res['tokens']['tokens']} tokens, "
             f"{res['tokens']['padded']} padded), batches of {res['batch_size']}, min of {res['repeats']}", "",
             table(["variant", "s", "x vs float32 eager", "molecules/s", "compile s", "load before/after"],
                   [[r["variant"], f"{r['s']:.3f}", f"{f32 / r['s']:.2f}", f"{res['tokens']['molecules'] / r['s']:.1f}",
                     f"{r['compile_s']:.1f}" if "compile_s" in r else "", f"{r['load_before']}/{r['load_after']}"]
                    for r in res["speed"]]), "",
             "## Distortion of the mean-pooled last hidden states against float32 eager", "",
             table(["variant", "relative norm error", "standardised RMS error", "worst feature (std RMS)"],
                   [[r["variant"], f"{r['rel_norm_error']:.2e}", f"{r['std_rms_error']:.4f}",
                     f"{r['worst_feature_std_rms']:.4f}"] for r in res["speed"]])]
    if res["sensitivity"]:
        lines += ["", "## Sensitivity: int8 (per channel) on one kind of linear layer only", "",
                  table(["int8 only on", "s", "x vs float32 eager", "relative norm error", "standardised RMS error"],
                        [[r["only"], f"{r['s']:.3f}", f"{f32 / r['s']:.2f}", f"{r['rel_norm_error']:.2e}",
                          f"{r['std_rms_error']:.4f}"] for r in res["sensitivity"]])]
    if res["accuracy"]:
        a = res["accuracy"]
        lines += ["", f"## Accuracy: LLMEmbedding + StandardScaler + RidgeCV on ESOL ({res['n_accuracy']} molecules), "
                  "5-fold scaffold-grouped CV", "",
                  table(["features", "embedding s", "RMSE per fold", "mean RMSE", "diff vs float32 (mean ± SE)"],
                        [[r["features"], f"{r['embed_s']:.2f}", " ".join(f"{v:.3f}" for v in r["rmse"]),
                          f"{np.mean(r['rmse']):.4f}",
                          f"{r['diff_mean']:+.4f} ± {r['diff_se']:.4f}" if "diff_mean" in r else ""] for r in a])]
    lines += ["", "## Decision", "", res["decision_text"]]
    if res["warnings"]:
        lines += ["", "Warnings recorded while quantising: " + "; ".join(f"`{w}`" for w in res["warnings"])]
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m", help="model alias, folder or hub id")
    ap.add_argument("--n", type=int, default=256, help="ESOL molecules of the speed pass")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--skip-compile", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--sensitivity", action="store_true", help="int8 on one kind of linear layer at a time")
    ap.add_argument("--force-bf16", action="store_true", help="bfloat16 rows even without native bfloat16")
    ap.add_argument("--max-molecules", type=int, default=None, help="accuracy on a random subset (smoke runs)")
    ap.add_argument("--render", metavar="JSON", help="rewrite the Markdown (and Decision) of an earlier run")
    args = ap.parse_args(argv)
    if args.render:
        with open(args.render) as f:
            res = json.load(f)
        res["decision_text"] = decide(res)
        with open(args.render[:-len(".json")] + ".md", "w") as f:
            f.write(markdown(res))
        with open(args.render, "w") as f:
            json.dump(res, f, indent=1, default=str)
        return res
    old_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    native = cpu_supports_bf16()
    res = {"model": str(args.model), "date": time.strftime("%Y-%m-%d %H:%M"), "threads": args.threads,
           "batch_size": args.batch_size, "repeats": args.repeats, "load_start": [round(v, 2) for v in os.getloadavg()],
           "environment": environment(), "cpu": cpu_kind(), "quantized_engine": torch.backends.quantized.engine,
           "bf16": {"native": native, "measured": native or args.force_bf16,
                    "why": "native" if native else "emulated, forced (--force-bf16)" if args.force_bf16
                    else "no native bfloat16 on this CPU: not measured (--force-bf16 to measure it)"},
           "speed": [], "sensitivity": [], "accuracy": []}
    try:
        X, y = load_esol(return_X_y=True)
        speed_and_distortion(args, list(X[:args.n]), res)
        if not args.skip_accuracy:
            if args.max_molecules and args.max_molecules < len(X):
                keep = np.sort(np.random.default_rng(0).choice(len(X), args.max_molecules, replace=False))
                X, y = X[keep], y[keep]
            res["n_accuracy"] = len(X)
            accuracy(args, X, y, res)
    finally:
        torch.set_num_threads(old_threads)
    res.update(load_end=[round(v, 2) for v in os.getloadavg()], wall_s=time.perf_counter() - t0,
               warnings=sorted(WARNINGS))
    res["decision_text"] = decide(res)
    text = markdown(res)
    print("\n" + text, flush=True)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"cheap_kernels_{res['cpu']['kind'].lower()}_{time.strftime('%Y%m%d-%H%M')}")
    with open(stem + ".json", "w") as f:
        json.dump(res, f, indent=1, default=str)
    with open(stem + ".md", "w") as f:
        f.write(text)
    print(f"written to {stem}.json / .md")
    res["files"] = [stem + ".json", stem + ".md"]
    return res


if __name__ == "__main__":
    main()
