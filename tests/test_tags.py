"""TagSet persistence and composition, tag files, and the shipped domain tags.

The estimators' ``tagset``, ``save_tags`` and ``from_tags`` are tested in ``test_tagio.py``.
"""

import json
import os
import pickle
import struct

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import SMILES, Y_SMILES, small_reg
from conftest import assert_same_tagset as _assert_same
from sktag import TagMismatchError, TagRegressor, TagSet
from sktag.backbone import load_backbone

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def _tensor(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def _tagset(backbone, names=("SMILES", "ESOL"), seed=0):
    ts = TagSet(backbone.identity, backbone.fingerprint, backbone.hidden_size)
    d = backbone.hidden_size
    for i, n in enumerate(names):
        kind = "domain" if n in ("SMILES", "Protein") else "function"
        ts.add(n, _tensor((3 + i, d), seed + i), kind=kind, description=f"tag {n}")
        if kind == "function":
            ts.add_head(n, _tensor((2, d), seed + 10 + i), _tensor((2,), seed + 20 + i),
                        {"task": "regression", "y_mean": [1.0, 2.0], "extra": {"a": [1, 2]}})
    return ts


# --------------------------------------------------------------------- TagSet
def test_save_load_round_trip(backbone, tmp_path):
    ts = _tagset(backbone)
    path = tmp_path / "lib.safetensors"
    ts.save(path)
    back = TagSet.load(path)
    _assert_same(ts, back)
    assert back.info("SMILES") == {"kind": "domain", "tag_length": 3, "description": "tag SMILES"}
    assert back.info("ESOL")["kind"] == "function"
    _assert_same(ts, TagSet.load(str(path), backbone=backbone))
    assert not list(tmp_path.glob("*.tmp"))  # written atomically


def test_file_holds_no_pickle_only_tensors_and_json(backbone, tmp_path):
    from safetensors import safe_open

    path = tmp_path / "lib.safetensors"
    _tagset(backbone).save(path)
    with safe_open(str(path), framework="numpy") as f:
        keys = sorted(f.keys())
        meta = json.loads(f.metadata()["sktag"])
    assert keys == ["head/ESOL/bias", "head/ESOL/mean", "head/ESOL/scale", "head/ESOL/weight", "tag/ESOL",
                    "tag/SMILES"]
    assert meta["format"] == "sktag.TagSet/1" and meta["fingerprint"] == backbone.fingerprint
    # the raw bytes: an 8-byte header length and a JSON header, neither a pickle nor a torch zip
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    assert 0 < n < len(raw) - 8 and raw[8:9] == b"{"
    assert json.loads(json.loads(raw[8:8 + n])["__metadata__"]["sktag"]) == meta
    assert raw[:2] != b"\x80\x04" and not raw.startswith(b"PK")


def test_union(backbone):
    a = _tagset(backbone, ("SMILES", "ESOL"))
    b = _tagset(backbone, ("Protein", "lipo"), seed=5)
    u = a | b
    assert list(u) == ["SMILES", "ESOL", "Protein", "lipo"]
    assert set(u.heads) == {"ESOL", "lipo"}
    assert torch.equal(u["Protein"], b["Protein"]) and torch.equal(u.heads["lipo"]["weight"], b.heads["lipo"]["weight"])
    assert list(a) == ["SMILES", "ESOL"]  # operands unchanged
    # the same shared tag in both (one pretrained domain tag, two heads) is not a clash
    c = TagSet(backbone.identity, backbone.fingerprint, backbone.hidden_size)
    c.add("SMILES", a["SMILES"], kind="domain")
    c.add("lipo", b["lipo"], kind="function")
    assert list(a | c) == ["SMILES", "ESOL", "lipo"]
    # a different tag under the same name is
    d = _tagset(backbone, ("SMILES",), seed=99)
    with pytest.raises(ValueError, match="SMILES"):
        a | d
    e = a.copy()
    e.heads["ESOL"]["bias"] = e.heads["ESOL"]["bias"] + 1
    with pytest.raises(ValueError, match="ESOL"):
        a | e
    with pytest.raises(TypeError):
        a | {"x": 1}


def test_union_of_other_backbones_fails(backbone, other_tiny_model):
    other = load_backbone(other_tiny_model, dtype="float32", device="cpu")
    with pytest.raises(TagMismatchError):
        _tagset(backbone) | _tagset(other, ("Protein",))


def test_repr(backbone):
    r = repr(_tagset(backbone))
    assert r == (f"TagSet(backbone={backbone.identity!r}, hidden_size=32, "
                 "tags=[SMILES (domain, 3), ESOL (function, 4, head)])")


def test_add_checks(backbone):
    ts = _tagset(backbone)
    with pytest.raises(TagMismatchError, match="shape"):
        ts.add("X", torch.zeros(3, 16))
    with pytest.raises(TagMismatchError):
        ts.add("X", torch.zeros(32))
    with pytest.raises(ValueError, match="NaN"):
        ts.add("X", torch.full((2, 32), float("nan")))
    with pytest.raises(ValueError, match="already"):
        ts.add("SMILES", torch.zeros(3, 32))
    ts.add("SMILES", torch.zeros(2, 32), overwrite=True)
    assert ts.info("SMILES")["tag_length"] == 2
    for bad in ("", "a/b", 3):
        with pytest.raises(ValueError):
            ts.add(bad, torch.zeros(2, 32))
    with pytest.raises(ValueError, match="kind"):
        ts.add("Y", torch.zeros(2, 32), kind="other")
    with pytest.raises(ValueError, match="function tag"):
        ts.add_head("SMILES", torch.zeros(1, 32), torch.zeros(1), {})
    with pytest.raises(TagMismatchError):
        ts.add_head("ESOL", torch.zeros(1, 16), torch.zeros(2), {})  # bias of another width
    ts.add_head("ESOL", torch.zeros(1, 16), torch.zeros(1), {})  # any head width: the readout decides


def test_deep_blocks_keep_their_kind(backbone, tmp_path):
    """Deep blocks of both kinds round-trip with their kind; a file that records none (sktag 0.3) is residual."""
    ts = _tagset(backbone)
    ts.add("Protein", _tensor((2, 32), 5), kind="domain")
    ts.add_deep("SMILES", _tensor((2, 3, 32), 6))  # residual by default
    ts.add_deep("Protein", _tensor((2, 2, 16), 7), kind="kv")
    assert (ts.deep_kind("SMILES"), ts.deep_kind("Protein"), ts.deep_kind("ESOL")) == ("deep", "kv", None)
    assert "SMILES (domain, 3, deep)" in repr(ts) and "Protein (domain, 2, deep key/value)" in repr(ts)
    ts.save(tmp_path / "d.safetensors")
    back = TagSet.load(tmp_path / "d.safetensors")
    _assert_same(ts, back)
    assert back.deep_kind("Protein") == "kv" and torch.equal(back.deep["Protein"], ts.deep["Protein"])
    other = back.copy()
    other._info["Protein"]["deep_kind"] = "deep"
    with pytest.raises(ValueError, match="different values"):  # the same tensors of another kind differ
        ts | other
    del ts._info["SMILES"]["deep_kind"]  # as sktag 0.3 wrote it
    ts.save(tmp_path / "old.safetensors")
    assert TagSet.load(tmp_path / "old.safetensors").deep_kind("SMILES") == "deep"
    with pytest.raises(ValueError, match="only domain tags"):
        ts.add_deep("ESOL", _tensor((2, 4, 16), 8), kind="kv")
    with pytest.raises(ValueError, match="kind"):
        ts.add_deep("SMILES", _tensor((2, 3, 32), 8), kind="prefix")
    ts.add("Protein", _tensor((4, 32), 9), kind="domain", overwrite=True)
    assert "Protein" not in ts.deep and ts.deep_kind("Protein") is None  # its block fitted the old vectors


def test_load_on_another_backbone_fails(backbone, other_tiny_model, tmp_path):
    other = load_backbone(other_tiny_model, dtype="float32", device="cpu")
    assert other.hidden_size == backbone.hidden_size and other.fingerprint != backbone.fingerprint
    path = tmp_path / "lib.safetensors"
    _tagset(backbone).save(path)
    with pytest.raises(TagMismatchError, match="fingerprint"):
        TagSet.load(path, backbone=other)
    with pytest.raises(TagMismatchError):
        TagSet.load(path).check_backbone(other)


def test_other_hidden_size_fails(backbone, tmp_path):
    ts = TagSet(backbone.identity, backbone.fingerprint, 16)  # e.g. learned on a narrower model
    ts.add("SMILES", torch.zeros(2, 16))
    path = tmp_path / "narrow.safetensors"
    ts.save(path)
    with pytest.raises(TagMismatchError, match="hidden size"):
        TagSet.load(path, backbone=backbone)
    with pytest.raises(TagMismatchError):
        ts | _tagset(backbone, ("Protein",))


def _data_start(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    return raw, 8 + n


def test_truncated_file_fails(backbone, tmp_path):
    path = tmp_path / "lib.safetensors"
    _tagset(backbone).save(path)
    raw, start = _data_start(path)
    for cut in (len(raw) - 7, start + 5, start - 3, 4):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(raw[:cut])
        with pytest.raises(ValueError):
            TagSet.load(bad)


def test_tampered_file_fails(backbone, tmp_path):
    path = tmp_path / "lib.safetensors"
    _tagset(backbone).save(path)
    raw, start = _data_start(path)
    for pos in (start, start + (len(raw) - start) // 2, len(raw) - 1):
        data = bytearray(raw)
        data[pos] ^= 0x5A
        bad = tmp_path / f"flip{pos}.safetensors"
        bad.write_bytes(bytes(data))
        with pytest.raises(ValueError, match="corrupt|checksum|NaN"):
            TagSet.load(bad)


def test_not_an_sktag_file_fails(tmp_path):
    from safetensors.numpy import save_file

    plain = tmp_path / "plain.safetensors"
    save_file({"w": np.zeros((2, 3), dtype=np.float32)}, str(plain))
    with pytest.raises(ValueError, match="not an sktag"):
        TagSet.load(plain)
    other_meta = tmp_path / "meta.safetensors"
    save_file({"w": np.zeros((2, 3), dtype=np.float32)}, str(other_meta), metadata={"sktag": "{not json"})
    with pytest.raises(ValueError, match="malformed"):
        TagSet.load(other_meta)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a safetensors file at all")
    with pytest.raises(ValueError, match="not a readable"):
        TagSet.load(junk)
    with pytest.raises(FileNotFoundError):
        TagSet.load(tmp_path / "missing.safetensors")


# ------------------------------------------------ tag files: corruption, safety
@pytest.fixture(scope="module")
def tag_file(smiles_reg, tmp_path_factory):
    path = tmp_path_factory.mktemp("tags") / "smiles.safetensors"
    smiles_reg.save_tags(path)
    return path

def test_tags_from_another_backbone(tag_file, other_tiny_model):
    est = small_reg(other_tiny_model, domains="SMILES", domain_tags=str(tag_file))
    with pytest.raises(TagMismatchError, match=r"these tags were learned on backbone .*tiny-llama.* and "
                                               r"do not fit model .*tiny-llama-2"):
        est.fit(SMILES, Y_SMILES)
    est = small_reg(other_tiny_model, domains="SMILES", domain_tags=TagSet.load(tag_file))
    with pytest.raises(TagMismatchError, match="do not fit model"):
        est.fit(SMILES, Y_SMILES)

def test_truncated_and_tampered_tag_files(tag_file, tiny_model, tmp_path):
    raw = tag_file.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"truncated\.safetensors' is not a readable safetensors tag file"):
        small_reg(tiny_model, domains="SMILES", domain_tags=str(truncated)).fit(SMILES, Y_SMILES)
    cut_tail = tmp_path / "cut.safetensors"
    cut_tail.write_bytes(raw[:-4])
    with pytest.raises(ValueError, match="is not a readable safetensors tag file"):
        TagSet.load(cut_tail)
    tampered = tmp_path / "tampered.safetensors"
    data = bytearray(raw)
    data[-3] ^= 0x40  # flip a bit of the last tensor
    tampered.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"is corrupt or was modified: its tensors do not match the checksum"):
        small_reg(tiny_model, domains="SMILES", domain_tags=str(tampered)).fit(SMILES, Y_SMILES)
    with pytest.raises(FileNotFoundError, match="no tag file at"):
        small_reg(tiny_model, domains="SMILES", domain_tags=str(tmp_path / "missing.safetensors")).fit(SMILES, Y_SMILES)

def _rewrite_metadata(raw, edit):
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = json.loads(header["__metadata__"]["sktag"])
    edit(meta)
    header["__metadata__"] = {"sktag": json.dumps(meta)}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + raw[8 + n:]

def test_tag_file_with_tampered_metadata(tag_file, tmp_path):
    bad = tmp_path / "ghost.safetensors"
    bad.write_bytes(_rewrite_metadata(tag_file.read_bytes(),
                                      lambda m: m["tags"].update(Ghost={"kind": "domain", "tag_length": 3})))
    with pytest.raises(ValueError, match="Ghost"):
        TagSet.load(bad)

class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))

def test_tag_loading_never_unpickles(tmp_path, tiny_model):
    marker = str(tmp_path / "pwned")
    as_pickle = tmp_path / "pickle.safetensors"
    as_pickle.write_bytes(pickle.dumps({"tag/SMILES": _Evil(marker)}))
    as_torch = tmp_path / "torch.safetensors"
    torch.save({"tag/SMILES": _Evil(marker)}, as_torch)
    assert not os.path.exists(marker)
    for path in (as_pickle, as_torch):
        with pytest.raises(ValueError, match="is not a readable safetensors tag file"):
            TagSet.load(path)
        with pytest.raises(ValueError, match="is not a readable safetensors tag file"):
            small_reg(tiny_model, domains="SMILES", domain_tags=str(path)).fit(SMILES, Y_SMILES)
    assert not os.path.exists(marker)
    # the check itself can fail: unpickling this file does create the marker
    pickle.loads(as_pickle.read_bytes())
    assert os.path.exists(marker)


# ------------------------------------------------------------ shipped domain tags (domain_tags="pretrained")
@pytest.fixture
def shipped_folder(tmp_path, monkeypatch, tiny_model):
    """A shipped-tags folder holding a <SMILES> tag for the tiny model and one for another backbone."""
    import sktag._forward.pretrained as pretrained
    from sktag.backbone import load_backbone

    bb = load_backbone(tiny_model, device="cpu")
    mine = TagSet("tiny", bb.fingerprint, bb.hidden_size)
    mine.add("SMILES", torch.linspace(-1, 1, 4 * bb.hidden_size).reshape(4, bb.hidden_size))
    mine.save(tmp_path / "tiny_smiles.safetensors")
    other = TagSet("other", "0" * 32, bb.hidden_size)
    other.add("Protein", torch.ones(3, bb.hidden_size))
    other.save(tmp_path / "other_protein.safetensors")
    monkeypatch.setattr(pretrained, "FOLDER", tmp_path)
    return mine


def test_the_shipped_tag_is_the_default_for_its_backbone_and_domain(shipped_folder, tiny_model):
    from sktag import LLMEmbedding

    X = pd.DataFrame({"d": ["CCO", "CCN", "c1ccccc1", "CCCl"] * 3, "p": ["MKT", "MKV", "MAT", "MKL"] * 3})
    y = np.arange(12.0)
    kw = dict(model=tiny_model, domains={"d": "SMILES", "p": "Protein"}, tag_length=2, domain_tag_length=2, max_iter=1,
              device="cpu", random_state=0)
    reg = TagRegressor(**kw).fit(X, y)
    ts = reg.tagset()
    assert torch.equal(ts["SMILES"], shipped_folder["SMILES"])  # shipped, its own length (4, not 2)
    bb = reg.get_backbone()
    assert torch.equal(ts["Protein"], bb.tag_init().expand(2, -1))  # no shipped tag for this backbone: init rule
    # the same as giving the tag by hand; None is the untrained tag
    given = TagRegressor(**kw, domain_tags=shipped_folder | _protein_init(bb)).fit(X, y)
    np.testing.assert_array_equal(reg.predict(X), given.predict(X))
    plain = TagRegressor(**kw, domain_tags=None).fit(X, y)
    assert torch.equal(plain.tagset()["SMILES"], bb.tag_init().expand(2, -1))
    # domain_tag_length=0: no domain tag at all, not even the shipped one
    none = TagRegressor(**{**kw, "domain_tag_length": 0}).fit(X, y)
    assert "SMILES" not in none.tagset() and none.layout_.tag_lengths[:2] == (0, 0)
    # LLMEmbedding: the shipped tag where there is one, no tag elsewhere
    emb = LLMEmbedding(tiny_model, domains="SMILES", domain_tags="pretrained", device="cpu").fit_transform(X["d"])
    ref = LLMEmbedding(tiny_model, domains="SMILES", domain_tags=shipped_folder, device="cpu").fit_transform(X["d"])
    np.testing.assert_array_equal(emb, ref)
    prot = LLMEmbedding(tiny_model, domains="Protein", domain_tags="pretrained", device="cpu").fit_transform(X["p"])
    np.testing.assert_array_equal(prot, LLMEmbedding(tiny_model, domains="Protein", device="cpu").fit_transform(X["p"]))


def _protein_init(bb):
    ts = TagSet("tiny", bb.fingerprint, bb.hidden_size)
    ts.add("Protein", bb.tag_init().expand(2, -1).clone())
    return ts


def test_no_shipped_tag_for_other_backbones(tiny_model):
    from sktag._forward.pretrained import shipped_domain_tags
    from sktag.backbone import load_backbone

    assert shipped_domain_tags(load_backbone(tiny_model, device="cpu")) is None
    # every shipped file loads and names a domain tag
    from sktag._forward.pretrained import FOLDER

    files = sorted(FOLDER.glob("*.safetensors"))
    assert files
    for f in files:
        ts = TagSet.load(f)
        assert all(ts.info(n)["kind"] == "domain" for n in ts)
