"""Utilities for testing code that uses sktag, offline and fast.

:func:`make_tiny_model` writes a tiny randomly initialised causal LM (a Llama
by default, or one of :data:`TINY_ARCHITECTURES`) and a character-level
tokenizer (built with the ``tokenizers`` library) to a folder, which any
sktag estimator accepts as ``model=<folder>``.  It is what sktag's own test
suite and benchmarks use instead of a real LLM.
"""

from __future__ import annotations

import string
import tempfile

__all__ = ["make_tiny_model", "TINY_CHARS", "TINY_ARCHITECTURES", "TINY_SLIDING_WINDOW"]

#: Characters of the tiny tokenizer's vocabulary (SMILES, protein letters, text).
TINY_CHARS = string.ascii_letters + string.digits + "()[]=#@+-\\/.%:;,*$ "

#: Sliding window of the tiny models that have local attention layers: short,
#: so that ordinary test strings are longer than the window.
TINY_SLIDING_WINDOW = 6


def _config(architecture, V, d, layers, heads, kv_heads, window):
    """Config of a tiny ``architecture`` (vocabulary ``V``, hidden size ``d``)."""
    import transformers as tf

    common = dict(vocab_size=V, pad_token_id=1, bos_token_id=None, eos_token_id=None)
    config = (_llama_like_config(tf, architecture, common, d, layers, heads, kv_heads, window)
              or _other_config(tf, architecture, common, d, layers, heads))
    if config is None:
        raise ValueError(f"architecture={architecture!r} is not one of {', '.join(TINY_ARCHITECTURES)}.")
    return config


def _llama_like_config(tf, architecture, common, d, layers, heads, kv_heads, window):
    """The decoder-only families that follow Llama's naming (None for the others)."""
    llama_like = dict(common, hidden_size=d, intermediate_size=2 * d, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv_heads,
                      max_position_embeddings=1024)
    hd = 2 * d // heads  # head_dim != hidden_size / heads, on the families that allow it
    if architecture == "mistral":  # every layer local
        return tf.MistralConfig(**llama_like, sliding_window=window, tie_word_embeddings=True)
    if architecture == "mixtral":  # MoE, every layer local
        return tf.MixtralConfig(**llama_like, sliding_window=window, num_local_experts=4,
                                num_experts_per_tok=2)
    if architecture == "qwen2":  # layer 0 global, layer 1 local
        return tf.Qwen2Config(**llama_like, use_sliding_window=True, sliding_window=window,
                              max_window_layers=1, tie_word_embeddings=True)
    if architecture == "qwen2_moe":
        return tf.Qwen2MoeConfig(**llama_like, num_experts=4, num_experts_per_tok=2,
                                 moe_intermediate_size=d, shared_expert_intermediate_size=d)
    if architecture == "qwen3":  # head_dim 16 with hidden 32 / 4 heads; layer 1 local
        return tf.Qwen3Config(**llama_like, head_dim=hd, use_sliding_window=True,
                              sliding_window=window, max_window_layers=1, tie_word_embeddings=True)
    if architecture == "olmoe":
        return tf.OlmoeConfig(**llama_like, num_experts=4, num_experts_per_tok=2)
    if architecture == "gemma":  # scales the embeddings by sqrt(d)
        return tf.GemmaConfig(**llama_like, head_dim=hd)
    if architecture == "gemma2":  # local/global layers, attention and final logit soft-caps
        return tf.Gemma2Config(**llama_like, head_dim=hd, query_pre_attn_scalar=hd,
                               sliding_window=window, final_logit_softcapping=30.0,
                               attn_logit_softcapping=50.0)
    if architecture == "gemma3":  # text-only Gemma 3: local layer then global layer
        return tf.Gemma3TextConfig(**llama_like, head_dim=hd, query_pre_attn_scalar=hd,
                                   sliding_window=window,
                                   layer_types=["sliding_attention", "full_attention"][:layers]
                                   + ["full_attention"] * max(0, layers - 2))
    if architecture == "phi":  # partial rotary, parallel attention/MLP
        return tf.PhiConfig(**llama_like)
    if architecture == "phi3":  # fused qkv, every layer local
        return tf.Phi3Config(**llama_like, sliding_window=window)
    if architecture == "olmo2":
        return tf.Olmo2Config(**llama_like)
    if architecture == "granite":  # multiplies the input embeddings inside the model
        return tf.GraniteConfig(**llama_like, embedding_multiplier=4.0, attention_multiplier=0.2,
                                residual_multiplier=0.5, logits_scaling=2.0)
    if architecture == "smollm3":  # every 2nd layer without RoPE
        return tf.SmolLM3Config(**llama_like, no_rope_layer_interval=2)
    if architecture == "stablelm":
        return tf.StableLmConfig(**llama_like)
    if architecture == "starcoder2":  # every layer local
        return tf.Starcoder2Config(**llama_like, sliding_window=window)
    return None


def _other_config(tf, architecture, common, d, layers, heads):
    """GPT-2, GPT-NeoX, OPT, Falcon and the families sktag refuses (None for the others)."""
    if architecture == "gpt2":  # learned absolute positions, no kv-head split
        return tf.GPT2Config(**common, n_embd=d, n_layer=layers, n_head=heads, n_positions=1024)
    if architecture == "gpt_neox":
        return tf.GPTNeoXConfig(**common, hidden_size=d, intermediate_size=2 * d,
                                num_hidden_layers=layers, num_attention_heads=heads,
                                max_position_embeddings=1024)
    if architecture == "opt":  # embeddings narrower than the decoder (project_in / project_out)
        return tf.OPTConfig(**common, hidden_size=d, ffn_dim=2 * d, num_hidden_layers=layers,
                            num_attention_heads=heads, max_position_embeddings=1024,
                            word_embed_proj_dim=d // 2)
    if architecture == "falcon":  # multi-query attention (one key/value head), rotary
        return tf.FalconConfig(**common, hidden_size=d, num_hidden_layers=layers,
                               num_attention_heads=heads, max_position_embeddings=1024)
    if architecture == "falcon_alibi":  # Falcon-RW style ALiBi
        return tf.FalconConfig(**common, hidden_size=d, num_hidden_layers=layers,
                               num_attention_heads=heads, alibi=True, multi_query=False)
    if architecture == "bloom":  # ALiBi
        return tf.BloomConfig(**common, hidden_size=d, n_layer=layers, n_head=heads)
    if architecture == "bert":  # encoder-only
        return tf.BertConfig(**common, hidden_size=d, intermediate_size=2 * d,
                             num_hidden_layers=layers, num_attention_heads=heads)
    if architecture == "t5":  # encoder-decoder
        return tf.T5Config(**common, d_model=d, d_kv=d // heads, d_ff=2 * d, num_layers=layers,
                           num_heads=heads, decoder_start_token_id=1)
    return None


#: Architectures :func:`make_tiny_model` builds.  ``falcon_alibi``, ``bloom``,
#: ``bert`` and ``t5`` are there to test that sktag refuses them.
TINY_ARCHITECTURES = (
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "olmoe", "gemma", "gemma2",
    "gemma3", "phi", "phi3", "olmo2", "granite", "smollm3", "stablelm", "starcoder2", "gpt2",
    "gpt_neox", "opt", "falcon", "falcon_alibi", "bloom", "bert", "t5",
)


def make_tiny_model(path=None, *, hidden_size=32, layers=2, heads=4, kv_heads=2, seed=0,
                    architecture="llama", sliding_window=TINY_SLIDING_WINDOW):
    """Save a random causal LM and a character tokenizer to a folder.

    Parameters
    ----------
    path : str or path-like, default=None
        Folder to write (created if needed).  ``None`` writes into a new
        temporary folder (named ``sktag-tiny-...``), which the caller may
        delete when done.
    hidden_size, layers, heads, kv_heads : int
        Shape of the model (``kv_heads`` only where the family has grouped
        key/value heads).
    seed : int, default=0
        Seed of the random weights: the same seed gives the same model.
    architecture : str, default="llama"
        One of :data:`TINY_ARCHITECTURES`.  Each is built from its
        ``transformers`` config with the family's distinctive features
        switched on: sliding-window layers (window ``sliding_window``),
        ``head_dim`` different from ``hidden_size / heads``, mixture-of-experts
        blocks, scaled input embeddings, logit soft-capping, learned
        positions, multi-query attention.  ``"bert"`` and ``"t5"`` are
        encoder models, saved to check that sktag refuses them.
    sliding_window : int, default=6
        Window of the local-attention layers, where the family has them.

    Returns
    -------
    str
        The folder written (``path``, or the new temporary folder), to pass
        as ``model=``.

    Examples
    --------
    >>> import os
    >>> from sktag.testing import make_tiny_model
    >>> folder = make_tiny_model(layers=1)
    >>> {"config.json", "tokenizer.json"} <= set(os.listdir(folder))
    True
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1}
    for c in TINY_CHARS:
        vocab.setdefault(c, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    if path is None:
        path = tempfile.mkdtemp(prefix="sktag-tiny-")
    if architecture == "llama":
        cfg = LlamaConfig(
            vocab_size=len(vocab), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
            num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
            max_position_embeddings=1024, pad_token_id=1, bos_token_id=None, eos_token_id=None,
            tie_word_embeddings=True,
        )
        build = LlamaForCausalLM
    else:
        import transformers

        cfg = _config(architecture, len(vocab), hidden_size, layers, heads, kv_heads, sliding_window)
        if architecture == "bert":
            build = transformers.BertForMaskedLM
        elif architecture == "t5":
            build = transformers.T5ForConditionalGeneration
        else:
            build = transformers.AutoModelForCausalLM.from_config
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = build(cfg)
    finally:
        torch.random.set_rng_state(state)  # leave the caller's global RNG alone
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Writing model shards" bar in a test's or an example's output
    try:
        model.save_pretrained(path)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    fast.save_pretrained(path)
    return str(path)
