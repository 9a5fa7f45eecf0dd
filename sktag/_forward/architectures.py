"""What makes a Hugging Face causal LM usable as a backbone, and the checks that say so.

sktag builds its own additive 4-D attention masks (left padding, cached
prefixes, segment isolation, sliding windows).  This module refuses, with the
reason, the models that cannot take them, chooses the attention kernel
(SDPA, else eager), works out the attention window of each layer type, and
checks once per load that sktag's masks give the hidden states the model's
own masks give.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np
import torch

#: ``attn_implementation`` values sktag is tested with.  ``"auto"`` is SDPA
#: where the architecture has an SDPA path, else eager.  Other values that
#: ``transformers`` knows (``"flex_attention"``, a kernel from the hub) are
#: passed on, untested, and must pass the load-time mask check;
#: FlashAttention kernels are refused: they take no additive 4-D masks.
ATTN_IMPLEMENTATIONS = ("auto", "sdpa", "eager")

#: Layer types whose attention pattern the engine reproduces in its own masks.
_LAYER_TYPES = {"full_attention", "sliding_attention"}

_SUPPORTED_HINT = (
    "sktag needs a decoder-only causal language model that AutoModelForCausalLM loads "
    "(Llama, Mistral, Mixtral, Qwen2/3 and their MoE, Gemma 1-3, Phi, Phi-3, OLMo 2, OLMoE, "
    "Granite, SmolLM, StableLM, StarCoder2, GPT-2, GPT-NeoX/Pythia, OPT, Falcon, ...); see "
    "'Supported architectures' in the user guide"
)

def _forward_source(decoder) -> str | None:
    try:
        return inspect.getsource(type(decoder).forward)
    except (OSError, TypeError):
        return None


def mask_windows(model, decoder) -> dict:
    """Attention pattern per layer type; see :attr:`Backbone.mask_windows`.

    Follows the rule transformers itself states in
    ``masking_utils.create_masks_for_generate``: with ``layer_types`` in the
    config, layers of type ``"sliding_attention"`` see the last
    ``sliding_window`` positions (themselves included) and the others see
    everything before them; without, every layer is local when the config
    has a ``sliding_window`` (Mistral, Mixtral, Phi-3, StarCoder2).
    """
    cfg = model.config.get_text_config(decoder=True)
    window = getattr(cfg, "sliding_window", None) or None
    layer_types = getattr(cfg, "layer_types", None)
    source = _forward_source(decoder)
    name = type(model).__name__
    if layer_types:
        kinds = set(layer_types)
        unknown = kinds - _LAYER_TYPES
        if unknown:
            raise ValueError(
                f"{name} has layers of type {', '.join(sorted(unknown))}; sktag builds its own "
                "attention masks and reproduces only 'full_attention' and 'sliding_attention' "
                f"layers. {_SUPPORTED_HINT}."
            )
        if "sliding_attention" in kinds and window is None:
            raise ValueError(f"{name} has sliding-attention layers but no sliding_window in its config.")
        if kinds == {"full_attention"}:
            return {None: None}
        if kinds == {"sliding_attention"}:
            return {None: window}
        # mixed: one mask per layer type, which the model must take as a dict
        if source is not None and "attention_mask, dict)" not in source:
            raise ValueError(
                f"{name} mixes global and sliding-window layers but takes one attention mask for "
                "all of them, so sktag cannot give each layer its pattern. "
                f"{_SUPPORTED_HINT}."
            )
        return {"full_attention": None, "sliding_attention": window}
    if window is not None and (source is None or "sliding_window" in source):
        return {None: window}
    return {None: None}


def check_attn_implementation(attn_implementation) -> str:
    if not isinstance(attn_implementation, str) or not attn_implementation:
        raise ValueError(
            f"attn_implementation must be one of {', '.join(map(repr, ATTN_IMPLEMENTATIONS))} "
            f"(or another name transformers knows), got {attn_implementation!r}."
        )
    low = attn_implementation.lower()
    if "flash" in low or low.startswith("paged"):
        raise ValueError(
            f"attn_implementation={attn_implementation!r} cannot be used: sktag builds additive "
            "4-D attention masks (left padding, cached prefixes, segment isolation, sliding "
            "windows) and FlashAttention/paged kernels take none. Use "
            f"{', '.join(map(repr, ATTN_IMPLEMENTATIONS))}."
        )
    return attn_implementation


def refuse_config(config, model) -> None:
    """Refuse, before loading any weights, what sktag knows it cannot run."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    kind = getattr(config, "model_type", type(config).__name__)
    if getattr(config, "is_encoder_decoder", False):
        raise ValueError(
            f"model={model!r} is an encoder-decoder model ({kind}); {_SUPPORTED_HINT}."
        )
    if kind in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False):
        raise ValueError(
            f"model={model!r} is an encoder-only (masked language) model ({kind}); {_SUPPORTED_HINT}."
        )
    text = config.get_text_config(decoder=True)
    if getattr(text, "is_causal", True) is False or getattr(text, "use_bidirectional_attention", False):
        raise ValueError(
            f"model={model!r} ({kind}) is configured for bidirectional attention; {_SUPPORTED_HINT}."
        )
    if kind == "bloom" or (kind == "falcon" and getattr(config, "alibi", False)):
        raise ValueError(
            f"model={model!r} ({kind} with ALiBi) builds its ALiBi position bias from a 2-D "
            "padding mask, so it cannot take the additive 4-D attention masks sktag builds (left "
            "padding, cached prefixes, segment isolation): it would fail or compute something "
            f"else. {_SUPPORTED_HINT}."
        )


def _rel_err(a, b) -> float:
    a, b = a.float(), b.float()
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def check_masks(bb, model) -> None:
    """Refuse a model that does not honour sktag's masks the way its own.

    Runs 8 tokens (and a left-padded copy of the last 6) three ways: the
    model's own forward with a 2-D padding mask, the engine's full path
    with its 4-D masks, and the engine's cached-prefix path; all three must
    agree.  Catches architectures that fail on, ignore or misread 4-D masks,
    and caches whose layers do not stack into one tensor.
    """
    from . import engine as _engine

    bb.mask_windows  # noqa: B018  (raises for layer types the engine cannot build)
    n, p = 8, 2
    vocab = bb.embeddings.weight.shape[0]
    ids = (3 + 7 * np.arange(n)) % vocab
    rows = [_engine.EncodedRow(ids=i, slot=np.full(len(i), -1), seg=np.zeros(len(i), dtype=np.int64))
            for i in (ids, ids[2:])]
    try:
        with torch.no_grad():
            batch = _engine.collate(rows, device=bb.device)
            x = bb.embeddings(batch.ids)
            own = bb.decoder(inputs_embeds=x, attention_mask=batch.valid.long(),
                             position_ids=batch.pos, use_cache=False).last_hidden_state
            ours = _engine.full_forward(bb, batch, None, all_positions=True)
            prefix = _engine.collate([_engine.EncodedRow(r.ids[:-p], r.slot[:-p], r.seg[:-p])
                                      for r in rows], device=bb.device)
            kv = _engine.prefix_kv(bb, prefix, None)
            tag = bb.embeddings(torch.as_tensor(ids[-p:], device=bb.device)).float()
            cached = _engine.tag_forward(bb, kv, prefix.valid, tag)
    except Exception as exc:  # noqa: BLE001  (any failure means the model cannot be used)
        raise ValueError(
            f"model={model!r} ({type(bb.model).__name__}, attn_implementation="
            f"{bb.attn_implementation!r}) cannot run with sktag's 4-D attention masks and "
            f"key/value caches: {type(exc).__name__}: {exc}. {_SUPPORTED_HINT}."
        ) from exc
    valid = batch.valid.to(own.device)
    errs = {
        "full path": _rel_err(ours[valid], own[valid]),
        "cached-prefix path": _rel_err(cached, own[:, -1]),
    }
    # float32 agrees to rounding; half precision is loose on purpose: a refused
    # model is unusable, while what this check is for (masks ignored or misread)
    # moves hidden states by far more
    tol = 1e-3 if bb.dtype == torch.float32 else 1e-1
    bad = {k: v for k, v in errs.items() if not v <= tol}
    if bad:
        detail = ", ".join(f"{k} differs by {v:.2g}" for k, v in bad.items())
        raise ValueError(
            f"model={model!r} ({type(bb.model).__name__}, attn_implementation="
            f"{bb.attn_implementation!r}) does not give the same hidden states with sktag's 4-D "
            f"attention masks as with its own ({detail}, relative; tolerance {tol:g}), so sktag "
            f"would compute something else than the model. {_SUPPORTED_HINT}."
        )
    bb._kv_geometry = (int(kv.shape[0]), int(kv.shape[3]), int(kv.shape[5]))


def from_pretrained(folder, config, dt, attn_implementation, device_map, kwargs):
    """``AutoModelForCausalLM.from_pretrained``; ``"auto"`` is SDPA, else eager."""
    from transformers import AutoModelForCausalLM

    def load(impl, cfg):
        return AutoModelForCausalLM.from_pretrained(
            folder, config=cfg, dtype=dt, attn_implementation=impl, device_map=device_map, **kwargs
        )

    if attn_implementation != "auto":
        return load(attn_implementation, config)
    cls = None if kwargs.get("trust_remote_code") else \
        AutoModelForCausalLM._model_mapping.get(type(config), None)
    if cls is not None and not getattr(cls, "_supports_sdpa", False):
        return load("eager", config)
    try:
        return load("sdpa", copy.deepcopy(config))  # a failed try may have set fields
    except ValueError as exc:  # remote code, or a class that says so only when built
        if "scaled_dot_product_attention" not in str(exc):
            raise
        return load("eager", config)

