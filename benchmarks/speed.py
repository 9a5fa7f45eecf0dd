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
``nocache`` (``prefix_cache=False``: the prefix is recomputed in every batch)
and ``full`` (``tune_domain_tags=True``: forward and backward through the whole
sequence).  ``predict`` is compared with a bare Hugging Face forward of the
decoder (no LM head, as sktag) over the same token counts.  ``--search`` also times
``GridSearchCV(n_jobs=2)`` against ``n_jobs=1`` on the same 4 fits, each in a
fresh process (model loading included in both).

FLOPs count useful work only (no padding).  Results go to ``--out`` (default
``$OUT`` when set, else ``benchmarks/results/``) as ``speed-<tag>.json`` and
``speed-<tag>.md``; the JSON records the device, torch's thread count, the load
average before and after, and every raw time.

Usage::

    python benchmarks/speed.py --quick                                # default model, CPU, ESOL
    python benchmarks/speed.py --quick --random-llama tiny            # smoke test, no model files needed
    python benchmarks/speed.py --device cuda --random-llama 1b        # ~1.1B random Llama on a GPU
    python benchmarks/speed.py --quick --search                       # + GridSearchCV n_jobs=2 vs 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

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

#: Dense bf16 peak of known GPUs (TFLOP/s, datasheet, without sparsity), for MFU.
PEAK_BF16_TFLOPS = {"H100 80GB HBM3": 989.0, "H100 SXM": 989.0, "H200": 989.0, "H100 NVL": 835.0,
                    "H100 PCIe": 756.0, "A100": 312.0}

VARIANTS = {
    "cached": dict(prefix_cache="auto"),
    "nocache": dict(prefix_cache=False),
    "full": dict(tune_domain_tags=True),
    "cached_b512": dict(prefix_cache="auto", batch_size=512),  # 8x fewer tag steps on a GPU
}


# --------------------------------------------------------------------- setup
def _device_name(device):
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} logical CPUs"


#: CPU flags that decide the kernels (and ``dtype="auto"``)
_SIMD_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")


def cpu_kind():
    """The CPU kind: vendor model, the SIMD flags that matter, and PyTorch's kernel capability."""
    import torch

    flags = set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    return {"model": _device_name("cpu"), "flags": [f for f in _SIMD_FLAGS if f in flags],
            "torch_capability": capability,
            "kind": ("AMX" if "amx_bf16" in flags else "AVX512-BF16" if "avx512_bf16" in flags
                     else "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "other")}


def dtype_reason(dtype_param, dtype, device, bf16_cpu):
    """Why the backbone runs in ``dtype`` (what ``dtype="auto"`` decided, or that it was given)."""
    if dtype_param not in (None, "auto"):
        return f"dtype={dtype_param!r} given"
    if str(device).startswith("cuda"):
        return "dtype='auto' on CUDA: bfloat16"
    if bf16_cpu:
        return "dtype='auto': the CPU has native bfloat16 (AVX512-BF16 or AMX), so bfloat16"
    return "dtype='auto': no native bfloat16 on this CPU (emulated bfloat16 is slower than float32), so float32"


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
        try:
            import rdkit  # noqa: F401
        except ImportError:  # the strings are still SMILES; validated as plain text
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


# --------------------------------------------------------------------- FLOPs
def flops_prefix(shape, L):
    """Forward FLOPs of sequences of lengths ``L``: 2 N per token plus causal attention."""
    L = np.asarray(L, dtype=np.float64)
    return float(2 * shape["n_params_nonembedding"] * L.sum()
                 + 2 * shape["layers"] * shape["d_attn"] * (L * (L + 1)).sum())


def flops_tag_forward(shape, L, p):
    """Forward FLOPs of the p function-tag positions attending to prefixes of lengths ``L``."""
    L = np.asarray(L, dtype=np.float64)
    return float(2 * shape["n_params_nonembedding"] * p * len(L)
                 + 4 * shape["layers"] * shape["d_attn"] * (p * L + p * (p + 1) / 2).sum())


def flops_epoch(shape, L, p):
    """One cached training epoch: forward of the tag positions plus the backward w.r.t. inputs only.

    With frozen weights the backward computes no weight gradients: each linear
    layer costs one product (dX = dY W^T) as in the forward, and attention the
    gradient of the tag queries, so about the forward again.
    """
    return 2 * flops_tag_forward(shape, L, p)


# --------------------------------------------------------------------- timing
def _sync(device):
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def matmul_rate(M, K, N, dtype, device, seconds):
    """Sustained FLOP/s of ``[M, K] @ [K, N]`` in ``dtype`` on ``device``."""
    import torch

    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(M, K, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(K, N, generator=g).to(device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    n, t0 = 0, time.perf_counter()
    while True:
        for _ in range(10 if str(device).startswith("cuda") else 1):
            a @ b
            n += 1
        _sync(device)
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            break
    return 2.0 * M * K * N * n / elapsed


def matmul_floor(shape, device, m_prefix, m_epoch, seconds):
    import torch

    out = {"allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32) if str(device).startswith("cuda") else None}
    for label, M in (("prefix", m_prefix), ("epoch", m_epoch)):
        for dname, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            rate = matmul_rate(int(M), shape["hidden"], shape["intermediate"], dt, device, seconds)
            out[f"{label}_{dname}"] = {"M": int(M), "K": shape["hidden"], "N": shape["intermediate"],
                                       "flops_per_s": rate}
    return out


def _fitted(est, name):
    value = getattr(est, name, None)
    if value is None:
        return None
    return [float(v) for v in value] if isinstance(value, (list, tuple, np.ndarray)) else float(value)


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


class _PhaseClock:
    """A callback that splits each epoch into its tag steps and the rest (re-solve, validation).

    Device events on CUDA (no host synchronisation inside the epoch), host clocks elsewhere.
    """

    def __init__(self, device):
        import torch

        self.cuda = device.startswith("cuda")
        self._mark = (lambda: torch.cuda.Event(enable_timing=True)) if self.cuda else time.perf_counter
        self.epochs = []

    def _now(self):
        t = self._mark()
        if self.cuda:
            t.record()
        return t, time.perf_counter()

    def on_train_begin(self, estimator):
        pass

    def on_epoch_begin(self, estimator, epoch):
        self.begin, self.last, self.steps = self._now(), None, 0

    def on_batch_begin(self, estimator, batch_rows):
        pass

    def on_batch_end(self, estimator, batch_rows, loss):
        self.last, self.steps = self._now(), self.steps + 1

    def on_epoch_end(self, estimator, epoch, history):
        end = self._now()
        if self.cuda:
            end[0].synchronize()
            span = lambda a, b: a[0].elapsed_time(b[0]) / 1e3  # noqa: E731
        else:
            span = lambda a, b: b[0] - a[0]  # noqa: E731
        self.epochs.append({"steps": self.steps, "tag_steps_s": span(self.begin, self.last),
                            "rest_s": span(self.last, end), "host_tag_steps_s": self.last[1] - self.begin[1],
                            "host_epoch_s": end[1] - self.begin[1]})

    def on_train_end(self, estimator, history):
        pass


def run_profile(cfg, est, X, y, profile_rows=256):
    """Where an epoch's time goes: its phases on all rows, then kernels against host on a few rows.

    One more epoch of the cached fit (``warm_start``) with :class:`_PhaseClock`: the tag steps against
    the rest of the epoch (closed-form re-solve and validation).  Then one epoch on ``profile_rows`` rows
    under ``torch.profiler`` (few rows, since the profiler's own cost grows with every operator):
    ``device_busy_s`` sums every kernel's own time, so its share of the wall far under 1 means the device
    waits for the host (launches, Python, synchronisation).
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = cfg["device"].startswith("cuda")
    clock = _PhaseClock(cfg["device"])
    est.set_params(warm_start=True, max_iter=1, n_iter_no_change=2, callbacks=[clock])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    res = {"phases": clock.epochs[-1], "prefix_time_s": _fitted(est, "prefix_time_"),
           "rows": len(X), "profile_rows": min(profile_rows, len(X))}
    est.set_params(callbacks=None)
    Xs, ys = X[:profile_rows], y[:profile_rows]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    _sync(cfg["device"])
    t0 = time.perf_counter()
    with warnings.catch_warnings(), profile(activities=activities) as prof:
        warnings.simplefilter("ignore")
        est.fit(Xs, ys)
        _sync(cfg["device"])
    res["profile_wall_s"] = time.perf_counter() - t0
    res["profile_prefix_s"] = _fitted(est, "prefix_time_")
    res["profile_epoch_s"] = (_fitted(est, "epoch_times_") or [None])[-1]
    averages = prof.key_averages()
    if cuda:
        kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
        res["n_kernels"] = len(kernels)
        res["device_busy_s"] = sum(e.self_device_time_total for e in kernels) / 1e6
        res["table"] = averages.table(sort_by="self_device_time_total", row_limit=15)
    res["table_cpu"] = averages.table(sort_by="self_cpu_time_total", row_limit=15)
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


def run_search(cfg):
    out = {}
    for n_jobs in (1, 2):
        c = dict(cfg, n_jobs=n_jobs)
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--search-worker", json.dumps(c)],
                              capture_output=True, text=True)
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


# --------------------------------------------------------------------- report
def _pct(x):
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _f(x, fmt="{:.2f}"):
    return "n/a" if x is None else fmt.format(x)


def analyse(res):
    """Add FLOP rates and ratios to each fit / predict record."""
    shape, L, p = res["shape"], np.asarray(res["prefix_lengths"]), res["config"]["p"]
    dt = res["backbone_dtype"].replace("torch.", "")
    floor = res["matmul"]
    ref_prefix = floor[f"prefix_{'bfloat16' if dt in ('bfloat16', 'float16') else 'float32'}"]["flops_per_s"]
    ref_epoch = floor[f"epoch_{'bfloat16' if dt in ('bfloat16', 'float16') else 'float32'}"]["flops_per_s"]
    f_prefix, f_epoch = flops_prefix(shape, L), flops_epoch(shape, L, p)
    f_predict = flops_prefix(shape, L + p)
    peak = res.get("peak_tflops")
    res["flops"] = {"prefix_pass": f_prefix, "epoch": f_epoch, "predict": f_predict,
                    "reference_rate_prefix": ref_prefix, "reference_rate_epoch": ref_epoch}
    n = len(L)
    for fit in res["fits"]:
        pt, ep = fit["prefix_time_s"], fit["epoch_times_s"]
        a = {}
        if pt:
            a["prefix_samples_per_s"] = n / pt
            a["prefix_flops_per_s"] = f_prefix / pt
            a["prefix_fraction_of_matmul"] = f_prefix / pt / ref_prefix
            if peak:
                a["prefix_mfu"] = f_prefix / pt / (peak * 1e12)
        if ep:
            later = ep[1:] or ep
            t_later = float(np.mean(later))
            a["first_epoch_s"], a["later_epoch_s"] = ep[0], t_later
            a["epoch_samples_per_s"] = n / t_later
            if fit["variant"] == "cached":
                a["epoch_flops_per_s"] = f_epoch / t_later
                a["epoch_fraction_of_matmul"] = f_epoch / t_later / ref_epoch
                if pt:
                    a["later_epoch_over_prefix_pass"] = t_later / pt
        fit["analysis"] = a
    pr = res.get("predict")
    if pr:
        pr["samples_per_s"] = n / pr["predict_s"]
        pr["flops_per_s"] = f_predict / pr["predict_s"]
        pr["fraction_of_matmul"] = f_predict / pr["predict_s"] / ref_prefix
        if peak:
            pr["mfu"] = pr["flops_per_s"] / (peak * 1e12)
        if pr.get("bare_forward_s"):
            pr["over_bare_forward"] = pr["predict_s"] / pr["bare_forward_s"]
        if pr.get("bare_forward_untagged_s"):
            pr["over_bare_untagged"] = pr["predict_s"] / pr["bare_forward_untagged_s"]
    return res


def markdown(res):
    c, s, fl = res["config"], res["shape"], res["flops"]
    L = np.asarray(res["prefix_lengths"])
    mm = res["matmul"]
    lines = [
        f"# sktag speed: {c['label']}",
        "",
        f"Date {res['date']}, device: {res['device_name']}, torch {res['torch_version']}, "
        f"{res['torch_threads']} torch threads, load average {res['loadavg_before'][0]:.2f} before / "
        f"{res['loadavg_after'][0]:.2f} after, backbone dtype {res['backbone_dtype'].replace('torch.', '')}"
        f" (cpu_supports_bf16: {res['cpu_supports_bf16']}), total wall time {res['wall_s']:.0f} s.",
        "",
        f"CPU kind: {res['cpu']['kind']} ({res['cpu']['model']}; flags {', '.join(res['cpu']['flags']) or 'none'};"
        f" torch kernels {res['cpu']['torch_capability']}). Backbone dtype: {res['dtype_reason']}.",
        "",
        f"Tokens per row: {c['p_domain']} domain-tag + {L.mean() - c['p_domain']:.1f} data (mean) in the prefix, "
        f"then {c['p']} function-tag; tag positions are "
        f"{100 * (c['p_domain'] + c['p']) / (L.mean() + c['p']):.0f}% of a row's {L.mean() + c['p']:.1f}.",
        "",
        f"Data: {c['data']}, {len(L)} rows (domain {c['domain']}), prefix length mean {L.mean():.1f} tokens "
        f"({c['p_domain']} domain-tag positions + data tokens), batch {c['batch_size']}, predict batch "
        f"{c['predict_batch_size']}, {c['epochs']} epochs. Model: {s['n_params_nonembedding'] / 1e6:.1f} M "
        f"non-embedding parameters, {s['layers']} layers, hidden {s['hidden']}, intermediate {s['intermediate']}.",
        "",
        "## The floor: sustained matmul rate on this device",
        "",
        "| GEMM shape (M x K x N) | float32 GFLOP/s | bfloat16 GFLOP/s |",
        "|---|---:|---:|",
    ]
    for label in ("prefix", "epoch"):
        a, b = mm[f"{label}_float32"], mm[f"{label}_bfloat16"]
        lines.append(f"| {label}: {a['M']} x {a['K']} x {a['N']} | {a['flops_per_s'] / 1e9:.1f} | "
                     f"{b['flops_per_s'] / 1e9:.1f} |")
    lines += [
        "",
        f"FLOPs (useful, no padding): prefix pass {fl['prefix_pass'] / 1e9:.2f} GFLOP, one cached epoch "
        f"{fl['epoch'] / 1e9:.2f} GFLOP (p tag positions, forward + input-gradient backward), predict "
        f"{fl['predict'] / 1e9:.2f} GFLOP.",
        "",
        "## fit (TagRegressor, timings read from prefix_time_ / epoch_times_)",
        "",
        "| variant | fit wall s | prefix pass s | first epoch s | later epoch s | later epoch / prefix pass "
        "| prefix % of matmul | epoch % of matmul | prefix samples/s | epoch samples/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for fit in res["fits"]:
        a = fit["analysis"]
        lines.append(
            f"| {fit['variant']} | {fit['fit_wall_s']:.2f} | "
            f"{'0 (no cache)' if fit['prefix_time_s'] == 0 else _f(fit['prefix_time_s'])} | {_f(a.get('first_epoch_s'))} "
            f"| {_f(a.get('later_epoch_s'))} | {_f(a.get('later_epoch_over_prefix_pass'), '{:.3f}')} "
            f"| {_pct(a.get('prefix_fraction_of_matmul'))} | {_pct(a.get('epoch_fraction_of_matmul'))} "
            f"| {_f(a.get('prefix_samples_per_s'), '{:.1f}')} | {_f(a.get('epoch_samples_per_s'), '{:.1f}')} |")
    if any(f["prefix_time_s"] is None and f["epoch_times_s"] is None for f in res["fits"]):
        lines += ["", "n/a: this sktag's estimators do not report `prefix_time_` / `epoch_times_`; only the "
                  "fit wall time is measured."]
    mfu = [f"{fit['variant']} prefix pass {100 * fit['analysis']['prefix_mfu']:.1f}%"
           for fit in res["fits"] if "prefix_mfu" in fit["analysis"]]
    pr = res.get("predict")
    if pr:
        lines += [
            "",
            "## predict",
            "",
            "| | seconds | samples/s | % of matmul | vs bare forward |",
            "|---|---:|---:|---:|---:|",
            f"| TagRegressor.predict | {pr['predict_s']:.2f} | {pr['samples_per_s']:.1f} | "
            f"{_pct(pr['fraction_of_matmul'])} | {_f(pr.get('over_bare_forward'), '{:.3f}')} |",
        ]
        if pr.get("bare_forward_s"):
            lines.append(f"| bare decoder forward (Hugging Face, no LM head), same token counts | "
                         f"{pr['bare_forward_s']:.2f} | "
                         f"{len(L) / pr['bare_forward_s']:.1f} | | 1.000 |")
        if pr.get("bare_forward_untagged_s"):
            lines.append(f"| bare decoder forward of the untagged strings | {pr['bare_forward_untagged_s']:.2f} | "
                         f"{len(L) / pr['bare_forward_untagged_s']:.1f} | | predict is "
                         f"{_f(pr.get('over_bare_untagged'), '{:.3f}')}x |")
        if "mfu" in pr:
            mfu.append(f"predict {100 * pr['mfu']:.1f}%")
    if mfu:
        lines += ["", f"MFU against the {res['peak_tflops']:.0f} TFLOP/s bf16 peak: " + ", ".join(mfu) + "."]
    pf = res.get("profile")
    if pf:
        ph = pf["phases"]
        lines += ["", "## Where an epoch goes", "",
                  f"One more epoch of the cached fit on all {pf['rows']} rows: {ph['steps']} tag steps "
                  f"{ph['tag_steps_s']:.2f} s ({1e3 * ph['tag_steps_s'] / max(ph['steps'], 1):.1f} ms a step; "
                  f"the host issued them in {ph['host_tag_steps_s']:.2f} s), then re-solve and validation "
                  f"{ph['rest_s']:.2f} s; the host saw {ph['host_epoch_s']:.2f} s.",
                  "",
                  f"One epoch on {pf['profile_rows']} rows under torch.profiler: wall {pf['profile_wall_s']:.2f} s "
                  f"(prefix cache {_f(pf['profile_prefix_s'])} s, the epoch {_f(pf['profile_epoch_s'])} s)."]
        if "n_kernels" in pf:
            lines.append(f"{pf['n_kernels']} kernels, {pf['device_busy_s']:.3f} s of kernel time: the device is "
                         f"busy {100 * pf['device_busy_s'] / pf['profile_wall_s']:.0f}% of that wall.")
        for key, title in (("table", "by own device time"), ("table_cpu", "by own host time")):
            if pf.get(key):
                lines += ["", f"Top operators {title}:", "", "```", pf[key].rstrip(), "```"]
    se = res.get("search")
    if se:
        lines += ["", "## GridSearchCV, 4 fits, each search in a fresh process (model loading included)", "",
                  "| n_jobs | wall s | mean fit s |", "|---|---:|---:|"]
        for k in ("n_jobs_1", "n_jobs_2"):
            r = se[k]
            if "error" in r:
                lines.append(f"| {k[-1]} | failed | |")
            else:
                lines.append(f"| {r['n_jobs']} | {r['wall_s']:.1f} | {np.mean(r['mean_fit_time_s']):.1f} |")
        if "speedup_n_jobs_2" in se:
            lines.append(f"\nn_jobs=2 is {se['speedup_n_jobs_2']:.2f}x the speed of n_jobs=1.")
    return "\n".join(lines) + "\n"


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
