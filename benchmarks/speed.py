"""Training and inference speed of the frozen-prefix path versus a naive one.

Measured side by side in one run, on the same data, model and batches:

* **naive**: every step runs forward *and backward* through the whole tagged
  sequence ``<Dom> segment <Function>`` (what the reference Tag-LLM code and
  PEFT prompt tuning do), with gradients only for the function tag;
* **prefix**: every step runs the prefix (domain tag + segment) without
  autograd, then only the ``p`` function-tag positions with autograd,
  attending to the prefix key/value cache;
* **cached**: the prefix key/value cache of the whole training set is
  computed once (the first epoch) and reused every later epoch;
* **TagRegressor.fit**: the library estimator (which uses the cached path);
* **predict**: ``TagRegressor.predict`` versus a bare ``model(...)`` forward
  (``logits_to_keep=1``) over the same tokens and batches.

Each variant runs in a fresh subprocess so that its peak memory (RSS on CPU,
``max_memory_allocated`` on CUDA) is its own.  Times are wall-clock seconds of
the timed section only (model loading excluded).  In ``--quick`` mode some
epochs are extrapolated from measured ones (every epoch of a variant costs
the same work); the table says which.

Usage::

    python benchmarks/speed.py --quick                 # ESOL + eSOL on the default model, CPU
    python benchmarks/speed.py --device cuda --random-llama 1b --peak-tflops 989
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

LLAMA_SHAPES = {
    # ~1.1B parameters, Llama-shaped (TinyLlama-like, 32k vocab)
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
               num_key_value_heads=4, vocab_size=32000),
    # a small one to check the code path on CPU
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=32000),
}


# ----------------------------------------------------------------- the worker
def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_bytes(device, rss0):
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    return max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0)


def _backbone(cfg):
    import torch

    from sktag.backbone import Backbone, load_backbone

    if cfg["random_llama"]:
        from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

        from sktag.backbone import resolve_device, resolve_dtype

        dev = resolve_device(cfg["device"])
        dt = resolve_dtype(cfg["dtype"], dev)
        torch.manual_seed(0)
        lcfg = LlamaConfig(**LLAMA_SHAPES[cfg["random_llama"]], max_position_embeddings=4096,
                           attn_implementation="sdpa")
        with torch.device(dev):
            model = LlamaForCausalLM(lcfg).to(dt)
        model.eval().requires_grad_(False)
        # Token ids only matter through their count: any tokenizer whose ids fit
        # the vocabulary will do.  Prefer the embedded model's (already converted).
        tok = AutoTokenizer.from_pretrained(str(load_backbone_folder()))
        tok_vocab = len(tok)
        if tok_vocab > lcfg.vocab_size:
            model.resize_token_embeddings(tok_vocab)
            model.requires_grad_(False)
        return Backbone(identity=f"random-llama-{cfg['random_llama']}", model=model, tokenizer=tok,
                        device=dev, dtype=dt)
    return load_backbone(cfg["model"], device=cfg["device"], dtype=cfg["dtype"])


def load_backbone_folder():
    from sktag.backbone import _embedded_model_folder

    return _embedded_model_folder("smollm2-135m")


def _data(cfg):
    if cfg["data"] == "esol":
        from sktag.datasets import load_esol

        X, y = load_esol(return_X_y=True)
        domain = "SMILES"
    else:
        from sktag.datasets import load_protein_solubility

        X, y = load_protein_solubility(return_X_y=True)
        domain = "Protein"
    rng = np.random.RandomState(0)
    idx = np.sort(rng.choice(len(X), min(cfg["n_rows"], len(X)), replace=False))
    return [X[i] for i in idx], np.asarray(y, dtype=float)[idx], domain


def _encoded(backbone, X, domain, p, max_length):
    import torch

    from sktag._data import encode_rows, tokenize_columns, validate_columns

    cols, _ = validate_columns([X], [domain], None, None, canonicalize=True, errors="raise")
    tok = tokenize_columns(backbone.tokenizer, cols, max_length, "warn")
    rows = encode_rows(tok, [0], [0, p], [p, p])
    table = torch.cat([backbone.tag_init().expand(p, -1), backbone.tag_init().expand(p, -1)]).to(backbone.device)
    return rows, table


def worker(cfg):
    import warnings

    import torch

    from sktag import _engine
    from sktag._base import _length_batches

    warnings.simplefilter("ignore")
    torch.set_num_threads(cfg["threads"]) if cfg["threads"] else None
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    backbone = _backbone(cfg)
    dev = backbone.device
    X, y, domain = _data(cfg)
    p = cfg["p"]
    rows, table = _encoded(backbone, X, domain, p, cfg["max_length"])
    lengths = np.array([len(r) for r in rows])
    rng = np.random.RandomState(0)
    batches = _length_batches(np.arange(len(rows)), lengths, cfg["batch_size"], rng)
    y_t = torch.as_tensor(y, dtype=torch.float32, device=dev)
    f_slots = np.arange(p, 2 * p)
    head = torch.nn.Linear(backbone.hidden_size, 1).to(dev)
    ftag = torch.nn.Parameter(table[p:].clone())
    opt = torch.optim.AdamW([ftag, *head.parameters()], lr=1e-3)
    autocast = (torch.autocast("cuda", dtype=backbone.dtype) if dev.type == "cuda" and backbone.dtype != torch.float32
                else torch.autocast("cpu", enabled=False))
    dom = table[:p]

    def step(h, b):
        out = head(h.float()).squeeze(-1)
        loss = ((out - y_t[torch.as_tensor(b, device=dev)]) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def naive_epoch():
        for b in batches:
            with autocast:
                batch = _engine.collate([rows[i] for i in b], tail=f_slots, device=dev)
                h = _engine.full_forward(backbone, batch, torch.cat([dom, ftag]))
            step(h, b)

    def prefix_epoch():
        for b in batches:
            with autocast:
                batch = _engine.collate([rows[i] for i in b], device=dev)
                kv = _engine.prefix_kv(backbone, batch, dom)
                h = _engine.tag_forward(backbone, kv, batch.valid, ftag)
            step(h, b)

    store = None

    def build_store():
        nonlocal store
        cfg_ = backbone.config
        kvh = cfg_.num_key_value_heads
        hd = getattr(cfg_, "head_dim", None) or cfg_.hidden_size // cfg_.num_attention_heads
        store = _engine.PrefixStore(cfg_.num_hidden_layers, kvh, hd, lengths, backbone.dtype, dev)
        with torch.inference_mode(), autocast:
            for b in _length_batches(np.arange(len(rows)), lengths, cfg["predict_batch_size"]):
                batch = _engine.collate([rows[i] for i in b], device=dev)
                store.put(b, _engine.prefix_kv(backbone, batch, dom), batch.valid)

    def cached_epoch():
        for b in batches:
            with autocast:
                kv, valid = store.gather(b)
                h = _engine.tag_forward(backbone, kv, valid, ftag)
            step(h, b)

    def timed(fn):
        _sync(dev)
        t = time.perf_counter()
        fn()
        _sync(dev)
        return time.perf_counter() - t

    res = {"rows": len(rows), "mean_tokens": float(lengths.mean()), "p": p}
    v = cfg["variant"]
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    if v == "naive":
        res["epochs"] = [timed(naive_epoch) for _ in range(cfg["epochs_measured"])]
    elif v == "prefix":
        res["epochs"] = [timed(prefix_epoch) for _ in range(cfg["epochs_measured"])]
        n_tok = int(lengths.sum())
        t = timed(lambda: [_engine.prefix_kv(backbone, _engine.collate([rows[i] for i in b], device=dev), dom)
                           for b in _length_batches(np.arange(len(rows)), lengths, cfg["predict_batch_size"])])
        res["prefix_forward_s"] = t
        res["prefix_tokens"] = n_tok
        res["nonembedding_params"] = int(sum(q.numel() for n, q in backbone.model.named_parameters()
                                             if "embed" not in n and "lm_head" not in n))
    elif v == "cached":
        res["cache_build"] = timed(build_store)
        res["cache_bytes"] = int(store.buf.numel() * store.buf.element_size())
        res["epochs"] = [timed(cached_epoch) for _ in range(cfg["epochs_measured"])]
    elif v == "estimator":
        from sktag import TagRegressor

        for n_ep in (1, 5):
            reg = TagRegressor(model=cfg["model"], domains=domain, tag_length=p, max_iter=n_ep,
                               batch_size=cfg["batch_size"], n_iter_no_change=100, random_state=0,
                               device=cfg["device"], dtype=cfg["dtype"], max_length=cfg["max_length"])
            res[f"fit_{n_ep}"] = timed(lambda: reg.fit(X, y))
    elif v == "predict":
        from sktag import TagRegressor

        if cfg["random_llama"]:
            # no folder to load from: time the library's inference path directly
            @torch.inference_mode()
            def predict():
                for b in _length_batches(np.arange(len(rows)), lengths, cfg["predict_batch_size"]):
                    with autocast:
                        batch = _engine.collate([rows[i] for i in b], tail=f_slots, device=dev)
                        h = _engine.full_forward(backbone, batch, table)
                    head(h.float()).cpu()
        else:
            reg = TagRegressor(model=cfg["model"], domains=domain, tag_length=p, max_iter=1, random_state=0,
                               device=cfg["device"], dtype=cfg["dtype"], max_length=cfg["max_length"],
                               predict_batch_size=cfg["predict_batch_size"]).fit(X[:8], y[:8])

            def predict():
                reg.predict(X)
        predict()  # warm up
        res["predict"] = timed(predict)
        pad = backbone.tokenizer.pad_token_id or 0

        @torch.inference_mode()
        def bare():
            for b in _length_batches(np.arange(len(rows)), lengths, cfg["predict_batch_size"]):
                L = int(lengths[b].max()) + p
                ids = torch.full((len(b), L), pad, dtype=torch.long)
                mask = torch.zeros((len(b), L), dtype=torch.long)
                for k, i in enumerate(b):
                    n = int(lengths[i]) + p
                    ids[k, L - n:] = torch.as_tensor(np.where(rows[i].slot >= 0, pad, rows[i].ids).tolist() + [pad] * p)
                    mask[k, L - n:] = 1
                with autocast:
                    backbone.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), logits_to_keep=1)

        bare()  # warm up the same shapes
        res["bare"] = timed(bare)
    res["peak_bytes"] = _peak_bytes(dev, rss0)
    print("RESULT " + json.dumps(res), flush=True)


# ----------------------------------------------------------------- the driver
def run_variant(cfg, variant):
    c = dict(cfg, variant=variant)
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(c)], capture_output=True, text=True)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"variant {variant} failed:\n{out.stderr[-3000:]}")


def fmt_mb(b):
    return f"{b / 2**20:8.0f}"


def bench(cfg, label, n_epochs=5):
    from tqdm.auto import tqdm

    res = {}
    variants = ["naive", "prefix", "cached", "predict"] + (["estimator"] if not cfg["random_llama"] else [])
    for v in tqdm(variants, desc=label, leave=False):
        res[v] = run_variant(cfg, v)
    nv, pf, ca = res["naive"], res["prefix"], res["cached"]
    naive_ep = float(np.mean(nv["epochs"]))
    prefix_ep = float(np.mean(pf["epochs"]))
    cached_later = float(np.mean(ca["epochs"]))
    cached_first = ca["cache_build"] + ca["epochs"][0]
    n, p = nv["mean_tokens"] - p_of(cfg), cfg["p"]
    floor = p / (2 * p + n)
    lines = [
        f"### {label}",
        "",
        f"{nv['rows']} rows, mean {nv['mean_tokens']:.1f} prefix tokens (domain tag + segment; n = {n:.1f} data "
        f"tokens), p = {p}, batch {cfg['batch_size']}, device {cfg['device']}, dtype {cfg['dtype']}. "
        f"Floor of a later cached epoch: p / (2p + n) = {floor:.3f}.",
        "",
        "| path | seconds | ratio to naive | peak MB |",
        "|---|---:|---:|---:|",
        f"| naive, 1 epoch | {naive_ep:.2f} | 1.000 | {fmt_mb(nv['peak_bytes'])} |",
        f"| prefix (no cache), 1 epoch | {prefix_ep:.2f} | {prefix_ep / naive_ep:.3f} | {fmt_mb(pf['peak_bytes'])} |",
        f"| cached, first epoch (cache build + epoch) | {cached_first:.2f} | {cached_first / naive_ep:.3f} | "
        f"{fmt_mb(ca['peak_bytes'])} |",
        f"| cached, each later epoch | {cached_later:.2f} | {cached_later / naive_ep:.3f} | |",
        f"| naive, {n_epochs} epochs (= {n_epochs} x epoch) | {n_epochs * naive_ep:.2f} | 1.000 | |",
        f"| cached, {n_epochs} epochs (build + {n_epochs} x epoch) | {ca['cache_build'] + n_epochs * cached_later:.2f} | "
        f"{(ca['cache_build'] + n_epochs * cached_later) / (n_epochs * naive_ep):.3f} | |",
    ]
    if "estimator" in res:
        es = res["estimator"]
        lines += [
            f"| TagRegressor.fit, 1 epoch (library) | {es['fit_1']:.2f} | {es['fit_1'] / naive_ep:.3f} | "
            f"{fmt_mb(es['peak_bytes'])} |",
            f"| TagRegressor.fit, 5 epochs (library) | {es['fit_5']:.2f} | {es['fit_5'] / (5 * naive_ep):.3f} | |",
        ]
    pr = res["predict"]
    lines += [
        "",
        "| inference | seconds | ratio to bare forward |",
        "|---|---:|---:|",
        f"| bare `model(...)` forward, same tokens | {pr['bare']:.2f} | 1.000 |",
        f"| {'sktag inference path' if cfg['random_llama'] else 'TagRegressor.predict'} | {pr['predict']:.2f} | "
        f"{pr['predict'] / pr['bare']:.3f} |",
        "",
        f"Prefix cache of the training set: {ca['cache_bytes'] / 2**20:.0f} MB "
        f"({ca['cache_bytes'] / max(1, nv['rows']) / 2**10:.0f} KB per row).",
    ]
    if cfg["device"].startswith("cuda"):
        flops = 2 * pf["nonembedding_params"] * pf["prefix_tokens"]
        tflops = flops / pf["prefix_forward_s"] / 1e12
        lines.append(
            f"Prefix forward: {pf['rows'] / pf['prefix_forward_s']:.0f} samples/s, "
            f"{pf['prefix_tokens'] / pf['prefix_forward_s']:.0f} tokens/s, {tflops:.1f} TFLOP/s"
            + (f" = {100 * tflops / cfg['peak_tflops']:.1f}% MFU (peak {cfg['peak_tflops']} TFLOP/s)"
               if cfg["peak_tflops"] else "")
        )
    return "\n".join(lines), res


def p_of(cfg):
    return cfg["p"]  # the domain tag has p positions too


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="small subsets, ~5-10 minutes on 2 CPU cores")
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--random-llama", choices=sorted(LLAMA_SHAPES), default=None,
                    help="use a randomly initialised Llama of this shape instead of --model")
    ap.add_argument("--data", default="esol,esol-protein", help="comma list of esol, esol-protein")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--tag-length", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--threads", type=int, default=0, help="torch threads per worker (0: torch default)")
    ap.add_argument("--peak-tflops", type=float, default=None, help="peak dense TFLOP/s of the GPU, for MFU")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return

    import torch

    sizes = {"esol": (256, 32), "esol-protein": (48, 8)} if args.quick else {"esol": (900, 32),
                                                                            "esol-protein": (400, 16)}
    if args.device.startswith("cuda"):
        sizes = {"esol": (2048, 64), "esol-protein": (512, 32)}
    blocks = []
    t0 = time.perf_counter()
    for data in args.data.split(","):
        n_rows, bs = sizes[data]
        cfg = dict(model=args.model, random_llama=args.random_llama, data=data, device=args.device,
                   dtype=args.dtype, p=args.tag_length, n_rows=n_rows, batch_size=args.batch_size or bs,
                   predict_batch_size=64, max_length=512, threads=args.threads,
                   epochs_measured=1 if args.quick else 2, peak_tflops=args.peak_tflops)
        label = f"{data} on {args.random_llama and 'random-llama-' + args.random_llama or args.model}"
        text, _ = bench(cfg, label)
        print(text + "\n", flush=True)
        blocks.append(text)
    wall = time.perf_counter() - t0
    device_name = (torch.cuda.get_device_name(0) if args.device.startswith("cuda") else
                   f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    head = (f"# sktag speed benchmark ({'quick' if args.quick else 'full'})\n\n"
            f"Date {time.strftime('%Y-%m-%d %H:%M')}, device: {device_name}, torch {torch.__version__}, "
            f"total wall time {wall:.0f} s. Every variant ran in its own process; in quick mode each epoch "
            "figure is one measured epoch and multi-epoch totals are that epoch times the epoch count.\n")
    os.makedirs(args.out, exist_ok=True)
    tag = "gpu" if args.device.startswith("cuda") else "cpu"
    path = os.path.join(args.out, f"speed-{tag}{'-quick' if args.quick else ''}.md")
    with open(path, "w") as f:
        f.write(head + "\n" + "\n\n".join(blocks) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
