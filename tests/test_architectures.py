"""The architecture matrix: tiny random models of many Hugging Face families.

Each supported family is built from its config by
:func:`sktag.testing.make_tiny_model` with its distinctive features switched
on (sliding-window layers with a window of 6 positions, ``head_dim`` other
than ``hidden / heads``, grouped- and multi-query attention, MoE blocks,
scaled input embeddings, logit soft-caps, learned positions, embedding
projections) and must: load; give the model's own hidden states with
sktag's masks on sequences longer than the window; give the same values and
gradients on the cached-prefix path as on the full path; not depend on
padding; fit, predict and pickle.  Refused families must say why.
"""

import pickle
import warnings

import numpy as np
import pytest
import torch

import sktag.backbone as bbmod
from sktag._forward import engine as _engine
from conftest import encoded_rows as _rows
from conftest import tol
from sktag._forward.deep import DeepTable, block_shape
from sktag._forward.readouts import Needs
from sktag.backbone import Backbone, load_backbone
from sktag.testing import TINY_SLIDING_WINDOW, make_tiny_model

SUPPORTED = [
    "llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "olmoe", "gemma", "gemma2",
    "gemma3", "phi", "phi3", "olmo2", "granite", "smollm3", "stablelm", "starcoder2", "gpt2",
    "gpt_neox", "opt", "falcon",
]
#: families whose tiny model has sliding-window layers
WINDOWED = {"mistral", "mixtral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "starcoder2"}
#: families whose tiny model mixes global and local layers (one mask per layer type)
MIXED = {"qwen2", "qwen3", "gemma2", "gemma3"}

STRINGS = ["CCO", "c1ccccc1O", "N", "CC(=O)Oc1ccccc1C(=O)O", "O=C=O", "MKTAYIAKQRQISFVKSHFSRQ"]
LONG = "CC(=O)Oc1ccccc1C(=O)OCCN(C)C"  # 28 tokens, far longer than the window


@pytest.fixture(scope="module")
def arch_path(tmp_path_factory):
    built = {}

    def get(arch):
        if arch not in built:
            built[arch] = make_tiny_model(tmp_path_factory.mktemp(f"tiny-{arch}"), architecture=arch)
        return built[arch]

    return get


def _load(path, **kw):
    return load_backbone(path, dtype="float32", device="cpu", **kw)


def _table(bb, tag_lengths, seed=0):
    """Random tags on the scale of this model's token embeddings."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(sum(tag_lengths), bb.hidden_size, generator=g)
    return t * (bb.tag_init().norm() / t.norm(dim=1, keepdim=True))


def _ids(bb, s):
    return torch.as_tensor(bb.tokenizer(s, add_special_tokens=False)["input_ids"])


# ----------------------------------------------------------------- supported
@pytest.mark.parametrize("arch", SUPPORTED)
def test_full_path_is_the_models_own_forward(arch, arch_path):
    """No tags: sktag's masks give the model's own hidden states and logits.

    The sequence is longer than the sliding window, and a left-padded batch
    (the model's own 2-D padding mask against sktag's 4-D masks) agrees too.
    """
    bb = _load(arch_path(arch))
    ids = _ids(bb, LONG)
    assert len(ids) > 4 * TINY_SLIDING_WINDOW
    row = _engine.EncodedRow(ids.numpy(), np.full(len(ids), -1), np.zeros(len(ids), dtype=np.int64))
    ours = _engine.full_forward(bb, _engine.collate([row]), None, all_positions=True)
    with torch.no_grad():
        own = bb.decoder(input_ids=ids[None]).last_hidden_state
        own_logits = bb.model(input_ids=ids[None]).logits
    torch.testing.assert_close(ours, own, **tol(torch.float32))
    torch.testing.assert_close(bb.lm_logits(ours), own_logits, **tol(torch.float32))

    # left padding: a shorter second row
    short = _engine.EncodedRow(row.ids[9:], row.slot[9:], row.seg[9:])
    batch = _engine.collate([row, short])
    ours = _engine.full_forward(bb, batch, None, all_positions=True)
    with torch.no_grad():
        own = bb.decoder(input_ids=batch.ids, attention_mask=batch.valid.long(),
                         position_ids=batch.pos).last_hidden_state
    torch.testing.assert_close(ours[batch.valid], own[batch.valid], **tol(torch.float32))

    if arch in WINDOWED:  # the window matters: without it the result is another one
        assert set(bb.mask_windows.values()) >= {TINY_SLIDING_WINDOW}
        assert (len(bb.mask_windows) > 1) == (arch in MIXED)
        no_window = Backbone(bb.identity, bb.model, bb.tokenizer, bb.device, bb.dtype,
                             _mask_windows={None: None})
        other = _engine.full_forward(no_window, _engine.collate([row]), None, all_positions=True)
        assert (other[0, -1] - own[0, -1]).norm() > 1e-3 * own[0, -1].norm()
    else:
        assert bb.mask_windows == {None: None}


@pytest.mark.parametrize("arch", SUPPORTED)
def test_prefix_path_padding_and_gradients(arch, arch_path):
    """Cached prefix == full path (values, gradients), isolated or not; padding-invariant."""
    bb = _load(arch_path(arch))
    lengths = (3, 4, 5)
    rows = _rows(bb, [STRINGS, STRINGS[::-1]], lengths)
    table = _table(bb, lengths)
    p = lengths[-1]
    f_slots = np.arange(sum(lengths[:-1]), sum(lengths))
    pbatch = _engine.collate(rows)
    assert pbatch.ids.shape[1] > TINY_SLIDING_WINDOW + p
    for isolate in (False, True):
        t_full = table.clone().requires_grad_(True)
        batch = _engine.collate(rows, tail=f_slots)
        h_full = _engine.full_forward(bb, batch, t_full, isolate)
        (h_full ** 2).sum().backward()

        ftag = table[-p:].clone().requires_grad_(True)
        kv = _engine.prefix_kv(bb, pbatch, table, isolate)
        assert kv.shape[0] == bb.kv_geometry()[0] and kv.shape[3] == bb.kv_geometry()[1]
        h_fast = _engine.tag_forward(bb, kv, pbatch.valid, ftag)
        (h_fast ** 2).sum().backward()
        torch.testing.assert_close(h_fast, h_full, **tol(torch.float32))
        torch.testing.assert_close(ftag.grad, t_full.grad[-p:], **tol(torch.float32, kind="gradients"))
        assert t_full.grad[-p:].abs().sum() > 0

        for i in (0, 2, 3):  # padded rows equal the row alone
            h1 = _engine.full_forward(bb, _engine.collate([rows[i]], tail=f_slots), table, isolate)
            torch.testing.assert_close(h1[0], h_full[i].detach(), **tol(torch.float32))


@pytest.mark.parametrize("arch", SUPPORTED)
def test_deep_tags_cached_path_equals_full_path(arch, arch_path):
    """Deep function tags: cached prefix + tag step == full pass, in values and gradients; zero block == shallow."""
    bb = _load(arch_path(arch))
    n_blocks = len(bb.decoder_blocks())
    assert n_blocks == bb.config.get_text_config(decoder=True).num_hidden_layers
    lengths = (3, 4, 5)
    rows = _rows(bb, [STRINGS, STRINGS[::-1]], lengths)
    table = _table(bb, lengths)
    p = lengths[-1]
    f_slots = np.arange(sum(lengths[:-1]), sum(lengths))
    width = bb.hidden_widths()[1]  # the decoder blocks' width (OPT projects its narrower embeddings in)
    block = 0.3 * torch.randn(n_blocks, p, width, generator=torch.Generator().manual_seed(1))
    block = block * bb.tag_init().norm()
    pbatch, fbatch = _engine.collate(rows), _engine.collate(rows, tail=f_slots)
    final = (n_blocks,)
    needs = Needs(tag_layers=(1, n_blocks))
    for isolate in (False, True):
        t_full, d_full = table.clone().requires_grad_(True), block.clone().requires_grad_(True)
        h_full = _engine.full_states(bb, fbatch, t_full, isolate, needs, d_full).tag
        sum((h ** 2).sum() for h in h_full).backward()
        ftag, d_fast = table[-p:].clone().requires_grad_(True), block.clone().requires_grad_(True)
        kv = _engine.prefix_kv(bb, pbatch, table, isolate)
        h_fast = _engine.tag_states(bb, kv, pbatch.valid, ftag, needs.tag_layers, d_fast)
        sum((h ** 2).sum() for h in h_fast).backward()
        torch.testing.assert_close(h_fast, h_full, **tol(torch.float32))
        torch.testing.assert_close(ftag.grad, t_full.grad[-p:], **tol(torch.float32, kind="gradients"))
        torch.testing.assert_close(d_fast.grad, d_full.grad, **tol(torch.float32, kind="gradients"))
        assert d_full.grad.abs().sum() > 0 and t_full.grad[:-p].abs().sum() > 0
        shallow = _engine.tag_states(bb, kv, pbatch.valid, table[-p:], final)
        assert not torch.allclose(h_fast[-1].detach(), shallow[0])  # the block changes the tag's states
        zero = _engine.tag_states(bb, kv, pbatch.valid, table[-p:], final, torch.zeros_like(block))
        assert torch.equal(zero[0], shallow[0])  # depth 0: a zero block is the shallow tag, bit for bit


@pytest.mark.parametrize("kind", ["deep", "kv"])
@pytest.mark.parametrize("arch", SUPPORTED)
def test_deep_domain_tags_cached_path_equals_full_path(arch, kind, arch_path):
    """Deep domain tags of both kinds: in the cached prefix they give the full pass's values and gradients;
    zero == shallow.

    The blocks sit before the data, so they change every data-token state (the pooled features) and
    the function tag's state; frozen, they live in the prefix cache and the function-tag step is
    unchanged.  Padded mixed-length rows, isolation on and off, sliding-window models included; the
    key/value kind goes through each family's own cache writes (fused projections included).
    """
    bb = _load(arch_path(arch))
    n_layers, width = block_shape(bb, kind)
    n_blocks = len(bb.decoder_blocks())
    lengths = (3, 4, 5)
    rows = _rows(bb, [STRINGS, STRINGS[::-1]], lengths)
    table = _table(bb, lengths)
    p, n_dom = lengths[-1], sum(lengths[:-1])
    f_slots = np.arange(n_dom, n_dom + p)
    gen = torch.Generator().manual_seed(2)
    scale = bb.tag_init().norm() if kind == "deep" else 1.0  # keys and values are O(1) per element
    blocks = 0.3 * scale * torch.randn(n_layers, n_dom, width, generator=gen)
    deep = DeepTable(blocks, kind)
    pbatch, fbatch = _engine.collate(rows), _engine.collate(rows, tail=f_slots)
    assert pbatch.ids.shape[1] > TINY_SLIDING_WINDOW + p
    needs = Needs(tag_layers=(n_blocks,), pooled_layers=(1, n_blocks))
    for isolate in (False, True):
        t_full, d_full = table.clone().requires_grad_(True), blocks.clone().requires_grad_(True)
        full = _engine.full_states(bb, fbatch, t_full, isolate, needs, deep_table=DeepTable(d_full, kind))
        ((full.tag[0] ** 2).sum() + (full.pooled ** 2).sum()).backward()
        assert d_full.grad.abs().sum() > 0 and t_full.grad[:n_dom].abs().sum() > 0

        ftag = table[-p:].clone().requires_grad_(True)
        kv, pooled = _engine.prefix_pass(bb, pbatch, table, isolate, needs, deep)
        fast = _engine.tag_states(bb, kv, pbatch.valid, ftag, needs.tag_layers)
        (fast[0] ** 2).sum().backward()
        torch.testing.assert_close(fast[0], full.tag[0].detach(), **tol(torch.float32))
        torch.testing.assert_close(pooled, full.pooled.detach(), **tol(torch.float32))
        torch.testing.assert_close(ftag.grad, t_full.grad[-p:], **tol(torch.float32, kind="gradients"))

        kv0, pooled0 = _engine.prefix_pass(bb, pbatch, table, isolate, needs)
        assert not torch.allclose(pooled0, pooled)  # before the data: every data-token state moves
        kv_zero, pooled_zero = _engine.prefix_pass(bb, pbatch, table, isolate, needs,
                                                   DeepTable(torch.zeros_like(blocks), kind))
        assert torch.equal(kv_zero, kv0) and torch.equal(pooled_zero, pooled0)  # depth 0: the shallow tags

        for i in (0, 3):  # padded rows equal the row alone
            alone = _engine.full_states(bb, _engine.collate([rows[i]], tail=f_slots), table, isolate, needs,
                                        deep_table=deep)
            torch.testing.assert_close(alone.tag[0][0], full.tag[0][i].detach(), **tol(torch.float32))


def test_deep_domain_block_of_the_first_layer_is_a_shifted_input(arch_path):
    """A deep block that is zero except at block 0 equals the shallow tag plus that block (the block-0 input)."""
    bb = _load(arch_path("llama"))
    lengths = (3, 2)
    rows = _rows(bb, [STRINGS[:4]], lengths)
    table = _table(bb, lengths)
    deep = torch.zeros(len(bb.decoder_blocks()), 3, bb.hidden_widths()[1])
    deep[0] = bb.tag_init().norm() * torch.randn(3, deep.shape[2], generator=torch.Generator().manual_seed(3))
    shifted = table.clone()
    shifted[:3] += deep[0]
    batch = _engine.collate(rows)
    h_deep = _engine.full_forward(bb, batch, table, all_positions=True, deep_table=deep)
    h_shift = _engine.full_forward(bb, batch, shifted, all_positions=True)
    torch.testing.assert_close(h_deep, h_shift, **tol(torch.float32))
    assert not torch.allclose(h_deep, _engine.full_forward(bb, batch, table, all_positions=True))


@pytest.mark.parametrize("arch", ["llama", "gpt2", "falcon", "olmo2"])
def test_key_value_domain_block_adds_to_the_cached_keys_and_values(arch, arch_path):
    """A key/value block that is zero except at the last layer equals adding it to the tag's cached keys and
    values there and running the data against that cache (an independent path: the engine's prefix cache
    and function-tag step, with no hook), for fused projections (GPT-2, Falcon) and key norms (OLMo 2) too."""
    bb = _load(arch_path(arch))
    n_layers, width = block_shape(bb, "kv")
    _, kvh, hd = bb.kv_geometry()
    p = 3
    tokens = _ids(bb, STRINGS[3])
    blocks = torch.zeros(n_layers, p, width)
    blocks[-1] = torch.randn(p, width, generator=torch.Generator().manual_seed(4))
    table = _table(bb, (p,))
    tag_row = _engine.EncodedRow(ids=np.zeros(p, dtype=np.int64), slot=np.arange(p), seg=np.zeros(p, dtype=np.int64))
    kv = _engine.prefix_kv(bb, _engine.collate([tag_row]), table)  # [n_layers, 2, 1, kvh, p, hd]
    kv[-1, 0, 0] += blocks[-1, :, : kvh * hd].view(p, kvh, hd).transpose(0, 1)
    kv[-1, 1, 0] += blocks[-1, :, kvh * hd:].view(p, kvh, hd).transpose(0, 1)
    with torch.no_grad():
        x = bb.embeddings(tokens).float()
    ref = _engine.tag_states(bb, kv, torch.ones(1, p, dtype=torch.bool), x)[0]
    n = len(tokens)
    row = _engine.EncodedRow(ids=np.concatenate([np.zeros(p, dtype=np.int64), tokens.numpy()]),
                             slot=np.concatenate([np.arange(p), -np.ones(n, dtype=np.int64)]),
                             seg=np.zeros(p + n, dtype=np.int64))
    batch = _engine.collate([row])
    got = _engine.full_forward(bb, batch, table, deep_table=DeepTable(blocks, "kv"))
    torch.testing.assert_close(got, ref, **tol(torch.float32))
    assert not torch.allclose(got, _engine.full_forward(bb, batch, table))


def _own_pooled(bb, batch, x, layers):
    """Mean data-token states at ``layers`` from the model's own forward (its own 2-D padding mask)."""
    with torch.no_grad():
        hs = bb.decoder(inputs_embeds=x, attention_mask=batch.valid.long(), position_ids=batch.pos,
                        output_hidden_states=True).hidden_states
    data = ((batch.slot < 0) & batch.valid).float()
    return torch.cat([(data[..., None] * hs[i].float()).sum(1) / data.sum(1, keepdim=True) for i in layers], 1)


@pytest.mark.parametrize("arch", SUPPORTED)
def test_pooled_states_and_llm_embedding_are_the_models_own(arch, arch_path):
    """The pooled readout (prefix pass) and LLMEmbedding equal the model's own ``output_hidden_states``.

    On left-padded rows longer than the sliding window, tagged and untagged: the passes that pool
    states build their masks where the function-tag path does (with each layer type's window).
    """
    from sktag import LLMEmbedding

    bb = _load(arch_path(arch))
    layers = list(range(1, bb.config.get_text_config(decoder=True).num_hidden_layers + 1))
    rows = _rows(bb, [[LONG, LONG[:9], LONG[3:]]], (3, 5))
    table = _table(bb, (3, 5))
    batch = _engine.collate(rows)
    assert batch.ids.shape[1] > 4 * TINY_SLIDING_WINDOW
    _, pooled = _engine.prefix_pass(bb, batch, table, False, Needs(pooled_layers=tuple(layers)))
    pooled = pooled[:, 0]
    with torch.no_grad():
        own = _own_pooled(bb, batch, _engine.embed(bb, batch, table), layers)
    torch.testing.assert_close(pooled, own, **tol(torch.float32))

    emb = LLMEmbedding(model=arch_path(arch), domains="Text", layers=layers, dtype="float32", device="cpu")
    strings = [LONG, LONG[:9], LONG[3:]]
    plain = _engine.collate([_engine.EncodedRow(ids.numpy(), np.full(len(ids), -1), np.ones(len(ids), np.int64))
                             for ids in (_ids(bb, s) for s in strings)])
    with torch.no_grad():
        own = _own_pooled(bb, plain, bb.embeddings(plain.ids), layers)
    np.testing.assert_allclose(emb.fit_transform(strings), own.double().numpy(), **tol(torch.float32))


@pytest.mark.parametrize("arch", SUPPORTED)
def test_tag_scale_and_cache_geometry(arch, arch_path):
    bb = _load(arch_path(arch))
    emb = bb.embeddings
    with torch.no_grad():
        tokens = emb(torch.arange(emb.weight.shape[0])).float()
    # a tag is spliced where the embedding module's output goes: a tag equal
    # to a token's embedding is that token (Gemma's sqrt(d) scale included,
    # Granite's embedding multiplier applied to both)
    ids = _ids(bb, "CCOc1ccN")
    row = _engine.EncodedRow(ids.numpy(), np.full(len(ids), -1), np.zeros(len(ids), dtype=np.int64))
    tagged = _engine.EncodedRow(ids.numpy().copy(), row.slot.copy(), row.seg)
    tagged.ids[-2:] = 0
    tagged.slot[-2:] = [0, 1]
    h_tok = _engine.full_forward(bb, _engine.collate([row]), None)
    h_tag = _engine.full_forward(bb, _engine.collate([tagged]), tokens[ids[-2:]])
    torch.testing.assert_close(h_tag, h_tok, **tol(torch.float32))
    # so the initial tag has the norm of what the module returns
    init = bb.tag_init()
    torch.testing.assert_close(init.norm(), tokens.norm(dim=1).mean(), rtol=1e-4, atol=0)
    assert torch.nn.functional.cosine_similarity(init, tokens.mean(0), dim=0) > 0.9999
    if arch == "gemma":  # scaled inside the embedding module: weights are sqrt(d) too small
        w_norm = emb.weight.float().norm(dim=1).mean()
        torch.testing.assert_close(init.norm() / w_norm, torch.tensor(bb.hidden_size ** 0.5),
                                   rtol=1e-4, atol=0)

    # cache geometry: the model's own cache, whatever the config says
    with torch.no_grad():
        out = bb.model(input_ids=ids[None], use_cache=True)
    cache = out.past_key_values if "past_key_values" in out else out["cache"]
    layers = _engine._cache_layers(cache)
    k = layers[0][0]
    assert bb.kv_geometry() == (len(layers), k.shape[1], k.shape[-1])
    assert bb.n_kv_bytes_per_token() == len(layers) * 2 * k.shape[1] * k.shape[-1] * 4
    expected = {"falcon": (2, 1, 8), "qwen3": (2, 2, 16), "gemma": (2, 2, 16), "gpt2": (2, 4, 8),
                "llama": (2, 2, 8), "qwen2_moe": (2, 2, 8)}
    if arch in expected:
        assert bb.kv_geometry() == expected[arch]


def _task(n=24, seed=0):
    rng = np.random.RandomState(seed)
    X = ["".join(rng.choice(list("CNOcn()=1"), size=rng.randint(2, 16))) for _ in range(n)]
    return X, np.array([s.count("N") / len(s) for s in X])


@pytest.mark.parametrize("arch", SUPPORTED)
def test_fit_predict_pickle(arch, arch_path):
    from sktag import TagRegressor

    X, y = _task()
    make = lambda **kw: TagRegressor(model=arch_path(arch), domains="Text", tag_length=3,  # noqa: E731
                                     max_iter=2, random_state=0, device="cpu", **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = make().fit(X, y)
        pred = reg.predict(X)
        assert pred.shape == (len(X),) and np.isfinite(pred).all()
        uncached = make(prefix_cache=False).fit(X, y)
    assert reg.prefix_cache_bytes_ > 0  # the cached-prefix path really ran
    np.testing.assert_allclose(uncached.predict(X), pred, **tol(scale=np.std(y)))
    back = pickle.loads(pickle.dumps(reg))
    np.testing.assert_allclose(back.predict(X), pred, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------- refused
@pytest.mark.parametrize("arch, reason", [
    ("bert", r"encoder-only \(masked language\) model \(bert\)"),
    ("t5", r"encoder-decoder model \(t5\)"),
    ("bloom", r"ALiBi position bias from a 2-D padding mask"),
    ("falcon_alibi", r"ALiBi position bias from a 2-D padding mask"),
])
def test_refused_architectures_say_why(arch, reason, arch_path):
    with pytest.raises(ValueError, match=reason) as info:
        _load(arch_path(arch))
    assert "decoder-only causal language model" in str(info.value)


@pytest.mark.parametrize("arch", ["bloom", "falcon_alibi", "bert"])
def test_load_check_refuses_what_cannot_take_4d_masks(arch, arch_path, monkeypatch):
    """Without the up-front refusal, the load-time check still refuses."""
    monkeypatch.setattr(bbmod, "refuse_config", lambda config, model: None)
    with pytest.raises(ValueError, match="cannot run with sktag's 4-D attention masks"):
        _load(arch_path(arch))


def test_load_check_catches_a_wrong_mask(arch_path, monkeypatch):
    """A mask that drops the sliding window is caught at load, not computed silently."""
    path = arch_path("gemma2")
    bbmod.clear_backbone_cache()
    real = _engine.attention_mask
    monkeypatch.setattr(_engine, "attention_mask",
                        lambda *a, window=None, **k: real(*a, **k))
    with pytest.raises(ValueError, match=r"does not give the same hidden states .*full path differs"):
        _load(path)
    monkeypatch.undo()
    assert _load(path).mask_windows == {"full_attention": None,
                                        "sliding_attention": TINY_SLIDING_WINDOW}


# ------------------------------------------------------- attention choice
def _has_sdpa(path):
    """Whether the installed transformers has an SDPA path for the model class at ``path``."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    return bool(getattr(MODEL_FOR_CAUSAL_LM_MAPPING[type(AutoConfig.from_pretrained(path))], "_supports_sdpa", False))


def test_attn_implementation_auto_falls_back_to_eager(arch_path):
    # Gemma 2 has no SDPA path in transformers 5.24 (it has one in 5.17): "auto" must follow the library
    sdpa = _has_sdpa(arch_path("gemma2"))
    assert _load(arch_path("gemma2")).attn_implementation == ("sdpa" if sdpa else "eager")
    assert _load(arch_path("llama")).attn_implementation == "sdpa"
    if not sdpa:
        with pytest.raises(ValueError, match="does not support an attention implementation"):
            _load(arch_path("gemma2"), attn_implementation="sdpa")


def test_attn_implementation_is_passed_and_keyed(arch_path):
    path = arch_path("qwen2")
    auto = _load(path)
    eager = _load(path, attn_implementation="eager")
    assert eager is not auto and eager.attn_implementation == "eager"
    assert _load(path, attn_implementation="eager") is eager
    assert any(k[0] == eager.identity and k[-1] == "eager"
               for k in bbmod.backbone_cache_info()["cached"])
    rows = _rows(auto, [STRINGS], (3, 5))
    batch = _engine.collate(rows, tail=np.arange(3, 8))
    table = _table(auto, (3, 5))
    torch.testing.assert_close(_engine.full_forward(eager, batch, table),
                               _engine.full_forward(auto, batch, table), **tol(torch.float32))


@pytest.mark.parametrize("bad, match", [("flash_attention_2", "FlashAttention"),
                                         ("", "attn_implementation must be"),
                                         (None, "attn_implementation must be")])
def test_attn_implementation_refused(bad, match, arch_path):
    with pytest.raises(ValueError, match=match):
        _load(arch_path("llama"), attn_implementation=bad)


def test_attn_auto_falls_back_when_only_the_load_says_so(arch_path):
    """Remote code: the class is unknown before loading; the SDPA refusal triggers eager."""
    if _has_sdpa(arch_path("gemma2")):
        pytest.skip("this transformers has an SDPA path for Gemma 2: no refusal to fall back from")
    bbmod.clear_backbone_cache()
    bb = _load(arch_path("gemma2"), trust_remote_code=True)
    assert bb.attn_implementation == "eager"
