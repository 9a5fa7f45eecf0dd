"""Shared fixtures: a tiny random Llama with a character-level tokenizer.

The model is built from a config and the tokenizer with the ``tokenizers``
library, saved to a temporary folder and loaded through the same code path
as any local model (``model=<folder>``), so the suite is fast and offline.
"""

import os
import string

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Tiny models are dominated by threading overhead: one thread is fastest, and
# much faster when the machine is busy.  Integration tests on the real model
# raise it again (see ``real_model_threads``).
torch.set_num_threads(1)


@pytest.fixture
def real_model_threads():
    """Use up to two threads for a test on the real default model."""
    old = torch.get_num_threads()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    yield
    torch.set_num_threads(old)

CHARS = string.ascii_letters + string.digits + "()[]=#@+-\\/.%:;,*$ "


def build_tiny_model(path, *, hidden_size=32, layers=2, heads=4, kv_heads=2, seed=0):
    """Save a random Llama and a character tokenizer to ``path``; return it."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1}
    for c in CHARS:
        vocab.setdefault(c, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]")
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(vocab), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        max_position_embeddings=1024, pad_token_id=1, bos_token_id=None, eos_token_id=None,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Folder of a tiny random Llama (hidden size 32, 2 layers)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def other_tiny_model(tmp_path_factory):
    """A second tiny model with other weights (for mismatch tests)."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama-2"), seed=1)


def _length_task(n, seed=0):
    rng = np.random.RandomState(seed)
    X = ["".join(rng.choice(list("CNOcn"), size=rng.randint(1, 16))) for _ in range(n)]
    y = np.array([len(s) for s in X], dtype=float)
    return X, y


def _composition_task(n, seed=1):
    """Target = fraction of 'N' characters: learnable by a tiny random model."""
    rng = np.random.RandomState(seed)
    X = ["".join(rng.choice(list("CNOcn"), size=rng.randint(3, 16))) for _ in range(n)]
    y = np.array([s.count("N") / len(s) for s in X])
    return X, y


@pytest.fixture
def length_task():
    """Random strings whose target is their length (learnable, plain text)."""
    return _length_task(120)


@pytest.fixture
def make_reg(tiny_model):
    from sktag import TagRegressor

    def make(**kw):
        params = dict(model=tiny_model, domains="Text", tag_length=3, max_iter=5, batch_size=16,
                      learning_rate_init=1e-2, random_state=0)
        params.update(kw)
        return TagRegressor(**params)

    return make


@pytest.fixture
def make_clf(tiny_model):
    from sktag import TagClassifier

    def make(**kw):
        params = dict(model=tiny_model, domains="Text", tag_length=3, max_iter=5, batch_size=16,
                      learning_rate_init=1e-2, random_state=0)
        params.update(kw)
        return TagClassifier(**params)

    return make
