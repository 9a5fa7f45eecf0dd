"""The report of ``speed.py``: FLOPs of the work, rates against the matmul floor, the Markdown tables."""

from __future__ import annotations

import numpy as np


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
