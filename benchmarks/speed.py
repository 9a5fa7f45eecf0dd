"""Speed of ``TagRegressor.fit`` / ``predict`` against the machine's measured matmul rate.

Everything is timed through the public API: the library's own ``fit`` and
``predict`` run, and the time of their parts is read from the fitted
estimator (``prefix_time_``: seconds spent building the prefix key/value
cache; ``epoch_times_``: seconds of each epoch).  Side by side, in one run
and one process:

* **the floor**: the sustained rate of a matrix product (fp32 and bf16) of the
  shapes the model multiplies -- ``[tokens of a batch, hidden] x [hidden,
  intermediate]`` for the prefix pass and ``[batch x p, hidden] x [hidden,
  intermediate]`` for a training step -- on the chosen device and thread count;
* **the work**: FLOPs of the prefix pass (``2 x non-embedding parameters x
  prefix tokens`` plus causal attention) and of one training epoch (the ``p``
  function-tag positions attending to the cached prefix, forward plus the
  backward with respect to the inputs only: the backbone is frozen, so about
  twice the forward);
* **the ratio**: FLOPs / seconds / measured matmul rate of the backbone's dtype,
  for the prefix pass, each epoch and ``predict``; with a known GPU also MFU
  against its datasheet peak (or ``--peak-tflops``).

Variants (``--variants``): ``cached`` (the default estimator: the prefix cache
is built once, then every epoch runs only the function-tag positions),
``disk`` (``prefix_cache="disk"``: the same cache in a temporary file mapped
into memory, where ``"auto"`` puts a cache larger than its memory budget),
``nocache`` (``prefix_cache=False``: the prefix is recomputed in every batch)
and ``full`` (``tune_domain_tags=True``: forward and backward through the whole
sequence).  ``predict`` is compared with a bare Hugging Face forward of the
decoder (no LM head, as sktag) over the same token counts.  ``--search`` also times
``GridSearchCV(n_jobs=2)`` against ``n_jobs=1`` on the same 4 fits, each in a
fresh process (model loading included in both).

The script is split by what each part does: ``speed_machine.py`` (device, CPU kind, matmul floor),
``speed_profile.py`` (``--profile``: an epoch's phases, ``torch.profiler``) and ``speed_report.py`` (FLOPs,
rates, the Markdown); this file sets up the data and model and runs the fits.

FLOPs count useful work only (no padding).  Results go to ``--out`` (default
``$OUT`` when set, else ``benchmarks/results/``) as ``speed-<tag>.json`` and
``speed-<tag>.md``; the JSON records the device, torch's thread count, the load
average before and after, and every raw time.

Usage::

    python -m benchmarks.speed --quick                                # default model, CPU, ESOL
    python -m benchmarks.speed --quick --random-llama tiny            # smoke test, no model files needed
    python -m benchmarks.speed --device cuda --random-llama 1b        # ~1.1B random Llama on a GPU
    python -m benchmarks.speed --quick --search                       # + GridSearchCV n_jobs=2 vs 1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from benchmarks.speed_machine import _device_name, _fitted, _sync, cpu_kind, dtype_reason, matmul_floor
from benchmarks.speed_profile import run_profile
from benchmarks.speed_report import analyse, markdown

HERE = os.path.dirname(os.path.abspath(__file__))

LLAMA_SHAPES = {
    # ~1.1B parameters, Llama-shaped (TinyLlama-like, 32k vocab)
    "1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
               num_key_value_heads=4, vocab_size=32000),
    # a small one to check the code path on CPU
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=32000),
}

#: Dense bf16 peak of known GPUs (TFLOP/s, datasheet, without sparsity), for MFU.
PEAK_BF16_TFLOPS = {"H100 80GB HBM3": 989.0, "H100 SXM": 989.0, "H200": 989.0, "H100 NVL": 835.0,
                    "H100 PCIe": 756.0, "A100": 312.0}

VARIANTS = {
    "cached": dict(prefix_cache="auto"),
    "disk": dict(prefix_cache="disk"),  # the cache in a temporary file (where "auto" puts one beyond its budget)
    "nocache": dict(prefix_cache=False),
    "full": dict(tune_domain_tags=True),
    "cached_b512": dict(prefix_cache="auto", batch_size=512),  # 8x fewer tag steps on a GPU
}


# --------------------------------------------------------------------- setup
def make_random_llama(shape, folder, device):
    """Save a randomly initialised Llama of ``shape`` (and a character tokenizer) to ``folder``.

    The tokenizer is :func:`sktag.testing.make_tiny_model`'s (one token per
    character): no download, and its ids fit any vocabulary.  Weights are
    created on ``device`` and saved in bfloat16 (float32 for ``tiny``).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from sktag.testing import make_tiny_model

    make_tiny_model(folder)  # writes the tokenizer; its tiny model files are overwritten below
    cfg = LlamaConfig(**LLAMA_SHAPES[shape], max_position_embeddings=4096, pad_token_id=1,
                      bos_token_id=None, eos_token_id=None, tie_word_embeddings=False)
    torch.manual_seed(0)
    dev = torch.device(device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    with torch.device(dev):
        model = LlamaForCausalLM(cfg)
    if shape != "tiny":
        model = model.to(torch.bfloat16)
    model.cpu().save_pretrained(folder)  # created on the device (fast init), saved from host memory
    del model
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return folder


def load_data(name, n_rows, domain_override=None):
    """Strings and targets; rows are repeated when ``n_rows`` exceeds the data set."""
    from sktag.datasets import load_esol, load_protein_solubility

    if name == "esol":
        X, y = load_esol(return_X_y=True)
        domain = "SMILES"
        if importlib.util.find_spec("rdkit") is None:  # the strings are still SMILES; validated as plain text
            domain = "Text"
    elif name == "protein":
        X, y = load_protein_solubility(return_X_y=True)
        domain = "Protein"
    else:
        raise ValueError(f"unknown data {name!r}")
    X = [str(s) for s in X]
    y = np.asarray(y, dtype=float)
    rng = np.random.RandomState(0)
    if n_rows <= len(X):
        idx = np.sort(rng.choice(len(X), n_rows, replace=False))
    else:
        idx = np.concatenate([np.arange(len(X))] * (n_rows // len(X)) +
                             [rng.choice(len(X), n_rows % len(X), replace=False)])
    return [X[i] for i in idx], y[idx], domain_override or domain


def model_shape(backbone):
    cfg = backbone.config.get_text_config(decoder=True)
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    n_nonembed = sum(q.numel() for n, q in backbone.model.named_parameters()
                     if "embed_tokens" not in n and "lm_head" not in n)
    return dict(n_params_nonembedding=int(n_nonembed), layers=int(cfg.num_hidden_layers),
                hidden=int(cfg.hidden_size), intermediate=int(getattr(cfg, "intermediate_size", 4 * cfg.hidden_size)),
                d_attn=int(heads * head_dim))


def prefix_lengths(backbone, X, domain, p_domain, max_length):
    """Tokens of each row's prefix: the domain tag (``p_domain``) and the string's tokens, as sktag encodes them."""
    from sktag.domains import validate_strings

    if domain != "Text":  # the estimator tokenizes the normalised strings (canonical SMILES, ...)
        X, _ = validate_strings(X, domain)
    ids = backbone.tokenizer(list(X), add_special_tokens=False)["input_ids"]
    return np.array([p_domain + min(len(t), max_length) for t in ids], dtype=np.int64), ids


# --------------------------------------------------------------------- runs
def run_fit(cfg, X, y, domain, variant):
    import torch

    from sktag import TagRegressor

    params = dict(model=cfg["model"], domains=domain, tag_length=cfg["p"], domain_tag_length=cfg["p_domain"],
                  max_iter=cfg["epochs"],
                  batch_size=cfg["batch_size"], predict_batch_size=cfg["predict_batch_size"],
                  n_iter_no_change=cfg["epochs"] + 1, random_state=0, device=cfg["device"],
                  dtype=cfg["dtype"], max_length=cfg["max_length"])
    params.update(VARIANTS[variant])
    est = TagRegressor(**params)
    if "n_threads" in est.get_params():
        est.set_params(n_threads=cfg["threads"] or None)
    if cfg["device"].startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    _sync(cfg["device"])
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    _sync(cfg["device"])
    wall = time.perf_counter() - t0
    res = {"variant": variant, "params": {k: v for k, v in params.items() if k != "model"},
           "fit_wall_s": wall, "fit_time_s": _fitted(est, "fit_time_"),
           "prefix_time_s": _fitted(est, "prefix_time_"), "epoch_times_s": _fitted(est, "epoch_times_"),
           "prefix_cache_bytes": _fitted(est, "prefix_cache_bytes_"), "n_iter": int(est.n_iter_),
           "torch_threads_after_fit": torch.get_num_threads()}
    if cfg["device"].startswith("cuda"):
        res["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
    return res, est


def run_predict(cfg, est, X):
    import torch

    if cfg["device"].startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    est.predict(X[: min(len(X), 2 * cfg["predict_batch_size"])])  # warm up
    _sync(cfg["device"])
    t0 = time.perf_counter()
    est.predict(X)
    _sync(cfg["device"])
    res = {"predict_s": time.perf_counter() - t0}
    if cfg["device"].startswith("cuda"):
        res["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
    return res


def run_bare_forward(cfg, backbone, ids, p_before, p_after, key="bare_forward_s"):
    """A bare Hugging Face forward of the decoder (hidden states, no LM head) over sequences of
    ``p_before + tokens + p_after`` positions (the lengths ``predict`` runs, or with zeros the untagged
    strings), in batches sorted by length."""
    import torch

    pad = backbone.tokenizer.pad_token_id or 0
    seqs = [[pad] * p_before + list(t[: cfg["max_length"]]) + [pad] * p_after for t in ids]
    order = np.argsort([len(s) for s in seqs], kind="stable")
    bs = cfg["predict_batch_size"]

    @torch.inference_mode()
    def forward():
        for start in range(0, len(order), bs):
            rows = [seqs[i] for i in order[start:start + bs]]
            L = max(len(r) for r in rows)
            ids_t = torch.full((len(rows), L), pad, dtype=torch.long)
            mask = torch.zeros((len(rows), L), dtype=torch.long)
            for k, r in enumerate(rows):
                ids_t[k, L - len(r):] = torch.as_tensor(r)
                mask[k, L - len(r):] = 1
            backbone.decoder(input_ids=ids_t.to(backbone.device), attention_mask=mask.to(backbone.device))

    forward()  # warm up the same shapes
    _sync(cfg["device"])
    t0 = time.perf_counter()
    forward()
    _sync(cfg["device"])
    return {key: time.perf_counter() - t0}


# --------------------------------------------------------------------- search
def search_worker(cfg):
    """One GridSearchCV over 4 fits (2 tag lengths x 2 folds), timed whole in this fresh process."""
    import torch
    from joblib import parallel_config
    from sklearn.model_selection import GridSearchCV

    from sktag import TagRegressor

    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    X, y, domain = load_data(cfg["data"], cfg["n_rows"], cfg["domain"])
    est = TagRegressor(model=cfg["model"], domains=domain, tag_length=cfg["p"], max_iter=cfg["epochs"],
                       batch_size=cfg["batch_size"], n_iter_no_change=cfg["epochs"] + 1, random_state=0,
                       device=cfg["device"], dtype=cfg["dtype"], max_length=cfg["max_length"])
    grid = {"tag_length": sorted({cfg["p"], max(1, cfg["p"] // 2)})}
    if len(grid["tag_length"]) < 2:
        grid["tag_length"] = [1, 2]
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    with warnings.catch_warnings(), parallel_config(backend="loky"):
        warnings.simplefilter("ignore")
        gs = GridSearchCV(est, grid, cv=2, n_jobs=cfg["n_jobs"], refit=False, error_score="raise",
                          scoring="neg_root_mean_squared_error").fit(X, y)
    wall = time.perf_counter() - t0
    fit_times = gs.cv_results_["mean_fit_time"].tolist()
    print("RESULT " + json.dumps({"n_jobs": cfg["n_jobs"], "wall_s": wall, "mean_fit_time_s": fit_times,
                                  "n_fits": 2 * len(grid["tag_length"]), "grid": grid,
                                  "torch_threads_parent": torch.get_num_threads(),
                                  "loadavg_before": load0, "loadavg_after": os.getloadavg()}), flush=True)


def _worker_env():
    """This process's environment, with the repository on ``PYTHONPATH``: a worker imports this checkout."""
    old = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE)] + ([old] if old else [])))


def run_search(cfg):
    out = {}
    for n_jobs in (1, 2):
        c = dict(cfg, n_jobs=n_jobs)
        proc = subprocess.run([sys.executable, "-m", __spec__.name, "--search-worker", json.dumps(c)],
                              capture_output=True, text=True, env=_worker_env())
        for line in proc.stdout.splitlines():
            if line.startswith("RESULT "):
                out[f"n_jobs_{n_jobs}"] = json.loads(line[7:])
                break
        else:
            out[f"n_jobs_{n_jobs}"] = {"error": proc.stderr[-3000:]}
    a, b = out["n_jobs_1"].get("wall_s"), out["n_jobs_2"].get("wall_s")
    if a and b:
        out["speedup_n_jobs_2"] = a / b
    return out


# --------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--search-worker", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="256 ESOL rows, 2 epochs, short matmul runs")
    ap.add_argument("--model", default="smollm2-135m", help="model alias, folder or hub id")
    ap.add_argument("--random-llama", choices=sorted(LLAMA_SHAPES), default=None,
                    help="a randomly initialised Llama of this shape (saved to a temporary folder) instead of --model")
    ap.add_argument("--data", default="esol", choices=["esol", "protein"])
    ap.add_argument("--domain", default=None, help="override the domain (default: SMILES, or Text without RDKit)")
    ap.add_argument("--rows", type=int, default=None, help="rows (repeated beyond the data set's size)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--tag-length", type=int, default=10)
    ap.add_argument("--domain-tag-length", type=int, default=None,
                    help="domain_tag_length of the estimator (default: the tag length; 0: no domain tag)")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--predict-batch-size", type=int, default=None)
    ap.add_argument("--variants", default="cached,nocache", help=f"comma list of {', '.join(VARIANTS)}")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's count)")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="peak dense TFLOP/s of the device for MFU (default: known GPUs' bf16 peak)")
    ap.add_argument("--profile", action="store_true",
                    help="one more epoch of the cached fit split into phases, and one on 256 rows under torch.profiler")
    ap.add_argument("--no-predict", action="store_true", help="skip predict and the bare forward")
    ap.add_argument("--search", action="store_true", help="also time GridSearchCV(n_jobs=2) vs n_jobs=1, 4 fits")
    ap.add_argument("--out", default=os.environ.get("OUT") or os.path.join(HERE, "results"))
    args = ap.parse_args()
    if args.search_worker:
        search_worker(json.loads(args.search_worker))
        return

    import torch

    import sktag
    from sktag import load_backbone
    from sktag.backbone import cpu_supports_bf16

    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    load0 = os.getloadavg()
    t_start = time.perf_counter()
    n_rows = args.rows or (4096 if cuda else 256 if args.quick else 900)
    if args.data == "protein" and not args.rows:
        n_rows = 1024 if cuda else 48 if args.quick else 400
    p_domain = args.tag_length if args.domain_tag_length is None else args.domain_tag_length
    cfg = dict(data=args.data, p=args.tag_length, p_domain=p_domain, device=args.device, dtype=args.dtype, n_rows=n_rows,
               epochs=args.epochs or (2 if args.quick else 3),
               batch_size=args.batch_size or (64 if cuda else 32 if args.data == "esol" else 8),
               predict_batch_size=args.predict_batch_size or (256 if cuda else 64),
               max_length=512, threads=args.threads)
    tmp = None
    try:
        if args.random_llama:
            tmp = tempfile.mkdtemp(prefix=f"sktag-random-llama-{args.random_llama}-")
            t = time.perf_counter()
            cfg["model"] = make_random_llama(args.random_llama, tmp, args.device)
            print(f"random Llama {args.random_llama} written to {tmp} in {time.perf_counter() - t:.1f} s",
                  flush=True)
            label = f"random-llama-{args.random_llama}"
        else:
            cfg["model"] = args.model
            label = os.path.basename(str(args.model).rstrip("/"))
        X, y, domain = load_data(args.data, n_rows, args.domain)
        cfg["domain"] = domain
        cfg["label"] = f"{label} on {args.data}, {args.device}{' (quick)' if args.quick else ''}"
        backbone = load_backbone(cfg["model"], device=args.device, dtype=args.dtype)
        shape = model_shape(backbone)
        L, ids = prefix_lengths(backbone, X, domain, cfg["p_domain"], cfg["max_length"])
        device_name = _device_name(args.device)
        peak = args.peak_tflops
        if peak is None and cuda and backbone.dtype in (torch.bfloat16, torch.float16):
            peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in device_name), None)
        res = {"config": cfg, "date": time.strftime("%Y-%m-%d %H:%M"), "device_name": device_name,
               "torch_version": torch.__version__, "sktag_version": sktag.__version__,
               "torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
               "cpu_count": os.cpu_count(), "loadavg_before": load0, "backbone_dtype": str(backbone.dtype),
               "cpu_supports_bf16": cpu_supports_bf16(), "cpu": cpu_kind(),
               "dtype_reason": dtype_reason(args.dtype, backbone.dtype, args.device, cpu_supports_bf16()),
               "shape": shape, "prefix_lengths": L.tolist(),
               "peak_tflops": peak}
        print(f"{cfg['label']}: {device_name}, {torch.get_num_threads()} torch threads, backbone "
              f"{backbone.dtype}, {len(X)} rows, mean prefix {L.mean():.1f} tokens", flush=True)

        secs = 0.5 if args.quick else (1.0 if cuda else 2.0)
        t = time.perf_counter()
        res["matmul"] = matmul_floor(shape, backbone.device, cfg["predict_batch_size"] * L.mean(),
                                     cfg["batch_size"] * cfg["p"], secs)
        print(f"matmul floor measured in {time.perf_counter() - t:.1f} s: " + ", ".join(
            f"{k} {v['flops_per_s'] / 1e9:.1f} GFLOP/s" for k, v in res["matmul"].items() if isinstance(v, dict)),
            flush=True)

        res["fits"] = []
        est = None
        for variant in [v.strip() for v in args.variants.split(",") if v.strip()]:
            fit, fitted = run_fit(cfg, X, y, domain, variant)
            res["fits"].append(fit)
            print(f"fit {variant}: {fit['fit_wall_s']:.2f} s wall, prefix_time_ {fit['prefix_time_s']}, "
                  f"epoch_times_ {fit['epoch_times_s']}", flush=True)
            if variant == "cached" or est is None:
                est = fitted
        if not args.no_predict and est is not None:
            res["predict"] = run_predict(cfg, est, X)
            res["predict"].update(run_bare_forward(cfg, backbone, ids, cfg["p_domain"], cfg["p"]))
            res["predict"].update(run_bare_forward(cfg, backbone, ids, 0, 0, "bare_forward_untagged_s"))
            print(f"predict {res['predict']['predict_s']:.2f} s, bare forward "
                  f"{res['predict']['bare_forward_s']:.2f} s", flush=True)
        if args.profile and est is not None:
            res["profile"] = run_profile(cfg, est, X, y)
            print(f"epoch phases: {json.dumps(res['profile']['phases'])}; profiled {res['profile']['profile_rows']} "
                  f"rows in {res['profile']['profile_wall_s']:.2f} s", flush=True)
        if args.search:
            scfg = dict(cfg, n_rows=min(n_rows, 256), epochs=min(cfg["epochs"], 2))
            res["search"] = run_search(scfg)
            print("search: " + json.dumps({k: v.get("wall_s", v.get("error")) if isinstance(v, dict) else v
                                           for k, v in res["search"].items()}), flush=True)
        res["loadavg_after"] = os.getloadavg()
        res["wall_s"] = time.perf_counter() - t_start
        if not cuda:
            res["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        analyse(res)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    text = markdown(res)
    print("\n" + text, flush=True)
    os.makedirs(args.out, exist_ok=True)
    tag = (f"speed-{'gpu' if cuda else 'cpu-' + res['cpu']['kind'].lower()}-"
           f"{(args.random_llama and 'random-llama-' + args.random_llama) or label}"
           f"-{args.data}{'-quick' if args.quick else ''}{'' if args.domain_tag_length is None else f'-dtl{p_domain}'}")
    tag = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in tag)
    with open(os.path.join(args.out, tag + ".json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(args.out, tag + ".md"), "w") as f:
        f.write(text)
    print(f"written to {os.path.join(args.out, tag)}.json / .md")


if __name__ == "__main__":
    main()
