"""Utilities for testing code that uses sktag, offline and fast.

:func:`make_tiny_model` writes a tiny randomly initialised Llama and a
character-level tokenizer (built with the ``tokenizers`` library) to a
folder, which any sktag estimator accepts as ``model=<folder>``.  It is what
sktag's own test suite and benchmarks use instead of a real LLM.
"""

from __future__ import annotations

import string

__all__ = ["make_tiny_model", "TINY_CHARS"]

#: Characters of the tiny tokenizer's vocabulary (SMILES, protein letters, text).
TINY_CHARS = string.ascii_letters + string.digits + "()[]=#@+-\\/.%:;,*$ "


def make_tiny_model(path, *, hidden_size=32, layers=2, heads=4, kv_heads=2, seed=0):
    """Save a random Llama and a character tokenizer to ``path``.

    Parameters
    ----------
    path : str or path-like
        Folder to write (created if needed).
    hidden_size, layers, heads, kv_heads : int
        Shape of the model.
    seed : int, default=0
        Seed of the random weights: the same seed gives the same model.

    Returns
    -------
    str
        ``path``, to pass as ``model=``.
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
    cfg = LlamaConfig(
        vocab_size=len(vocab), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=1024, pad_token_id=1, bos_token_id=None, eos_token_id=None,
        tie_word_embeddings=True,
    )
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = LlamaForCausalLM(cfg)
    finally:
        torch.random.set_rng_state(state)  # leave the caller's global RNG alone
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)
