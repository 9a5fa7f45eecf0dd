"""TagSet persistence and composition, and the estimators' tagset/save_tags/from_tags."""

import json
import os
import pickle
import struct

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import SMILES, Y_SMILES, small_reg
from sktag import TagClassifier, TagMismatchError, TagRegressor, TagSet
from sktag.backbone import load_backbone

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def backbone(tiny_model):
    return load_backbone(tiny_model, dtype="float32", device="cpu")


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


def _assert_same(a, b):
    assert (a.backbone, a.fingerprint, a.hidden_size) == (b.backbone, b.fingerprint, b.hidden_size)
    assert list(a) == list(b)
    for n in a:
        assert torch.equal(a[n], b[n]) and a[n].dtype == torch.float32
        assert a.info(n) == b.info(n)
    assert list(a.heads) == list(b.heads)
    for n, h in a.heads.items():
        assert torch.equal(h["weight"], b.heads[n]["weight"])
        assert torch.equal(h["bias"], b.heads[n]["bias"])
        assert torch.equal(h["mean"], b.heads[n]["mean"]) and torch.equal(h["scale"], b.heads[n]["scale"])
        assert h["task"] == b.heads[n]["task"]


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


# ----------------------------------------------------------------- estimators
@pytest.fixture
def length_task(length_task):
    X, y = length_task
    return X[:48], y[:48]  # small: fast fits


@pytest.fixture
def reg(make_reg, length_task):
    X, y = length_task
    return make_reg(max_iter=3).fit(X, y)


def test_regressor_round_trip(reg, length_task, tiny_model, tmp_path):
    X, _ = length_task
    ts = reg.tagset("length", description="string length")
    assert list(ts) == ["Text", "length"] and ts.info("length")["description"] == "string length"
    assert ts.info("Text")["kind"] == "domain" and "length" in ts.heads
    path = tmp_path / "reg.safetensors"
    reg.save_tags(path, name="length")
    back = TagRegressor.from_tags(path, function_tag="length", model=tiny_model)
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))
    assert back.tag_length == reg.tag_length and back.n_features_in_ == 1
    assert back.domains_ == ["Text"] and back.column_domains_ == ["Text"]
    assert back.score(X, length_task[1]) == reg.score(X, length_task[1])
    # the name it was loaded under is kept when saving again
    assert list(back.tagset()) == ["Text", "length"]
    _assert_same(back.tagset(), TagSet.load(path))
    # also from an in-memory TagSet
    np.testing.assert_array_equal(
        TagRegressor.from_tags(ts, "length", model=tiny_model).predict(X[:7]), reg.predict(X[:7]))


def test_multioutput_regressor_round_trip(make_reg, length_task, tiny_model, tmp_path):
    X, y = length_task
    Y = np.c_[y, -2 * y + 1]
    reg = make_reg(max_iter=2).fit(X, Y)
    reg.save_tags(tmp_path / "m.safetensors")
    back = TagRegressor.from_tags(tmp_path / "m.safetensors", "TagRegressor", model=tiny_model)
    assert back.predict(X).shape == (len(X), 2)
    np.testing.assert_array_equal(back.predict(X), reg.predict(X))


@pytest.mark.parametrize("labels", ["int", "str"])
def test_classifier_round_trip(make_clf, length_task, tiny_model, tmp_path, labels):
    X, y = length_task
    yc = (y > np.median(y)).astype(int)
    if labels == "str":
        yc = np.array(["short", "long"])[yc]
    clf = make_clf(max_iter=2).fit(X, yc)
    path = tmp_path / "clf.safetensors"
    clf.save_tags(path, name="is_long")
    back = TagClassifier.from_tags(path, function_tag="is_long", model=tiny_model)
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    with pytest.raises(ValueError, match="classification head"):
        TagRegressor.from_tags(path, function_tag="is_long", model=tiny_model)


def test_dataframe_round_trip_keeps_column_names(make_reg, length_task, tiny_model, tmp_path):
    X, y = length_task
    df = pd.DataFrame({"a": X, "b": X[::-1]})
    reg = make_reg(max_iter=2, domains={"a": "Text", "b": "Other"}).fit(df, y)
    reg.save_tags(tmp_path / "df.safetensors")
    back = TagRegressor.from_tags(tmp_path / "df.safetensors", "TagRegressor", model=tiny_model)
    np.testing.assert_array_equal(back.predict(df), reg.predict(df))
    assert list(back.feature_names_in_) == ["a", "b"] and back.domains_ == ["Text", "Other"]
    with pytest.raises(ValueError, match="column names"):
        back.predict(df.rename(columns={"a": "x"}))


def test_array_with_integer_column_keys_round_trip(make_reg, length_task, tiny_model, tmp_path):
    X, y = length_task
    A = np.array([X, X[::-1]], dtype=object).T
    reg = make_reg(max_iter=2, domains={0: "Text", 1: "Other"}).fit(A, y)
    reg.save_tags(tmp_path / "a.safetensors")
    back = TagRegressor.from_tags(tmp_path / "a.safetensors", "TagRegressor", model=tiny_model)
    with __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("error")  # no "X has no column names" warning
        np.testing.assert_array_equal(back.predict(A), reg.predict(A))


def test_compose_head_with_another_domain_tag(reg, length_task, tiny_model, tmp_path):
    from sktag.pretrain import DomainTagPretrainer

    X, y = length_task
    pre = DomainTagPretrainer(model=tiny_model, domain="Text", tag_length=3, max_iter=1,
                              learning_rate_init=0.1, device="cpu", random_state=0).fit(X[:40])
    assert not torch.equal(pre.tags_["Text"], reg.tagset()["Text"])
    path = tmp_path / "reg.safetensors"
    reg.save_tags(path)
    for other in (pre.tags_, tmp_path / "dom.safetensors"):
        pre.save(tmp_path / "dom.safetensors")
        est = TagRegressor.from_tags(path, "TagRegressor", domain_tags=other, model=tiny_model)
        assert torch.equal(est.module_.domain_tags[0].detach().cpu(), pre.tags_["Text"])
        pred = est.predict(X)
        assert pred.shape == (len(X),) and np.all(np.isfinite(pred))
        assert not np.allclose(pred, reg.predict(X))
    # warm_start continues training the loaded function tag and head
    before = est.module_.function_tag.detach().cpu().clone()
    est.set_params(warm_start=True, max_iter=1).fit(X, y)
    assert est.n_iter_ == 1 and not torch.equal(before, est.module_.function_tag.detach().cpu())
    assert torch.equal(est.module_.domain_tags[0].detach().cpu(), pre.tags_["Text"])  # still frozen


def test_compose_head_with_another_column_layout(reg, length_task, tiny_model, tmp_path):
    X, _ = length_task
    path = tmp_path / "reg.safetensors"
    reg.save_tags(path)
    est = TagRegressor.from_tags(path, "TagRegressor", domains={"mol": "Text"}, model=tiny_model)
    df = pd.DataFrame({"mol": X})
    np.testing.assert_array_equal(est.predict(df), reg.predict(X))  # same tags, same tokens
    assert list(est.feature_names_in_) == ["mol"]
    with pytest.raises(ValueError, match="column names"):
        est.predict(pd.DataFrame({"smiles": X}))
    # two columns of the same domain, read by the head trained on one
    two = TagRegressor.from_tags(path, "TagRegressor", domains=["Text", "Text"], model=tiny_model)
    pred = two.predict(np.array([X, X[::-1]], dtype=object).T)
    assert pred.shape == (len(X),) and np.all(np.isfinite(pred))


def test_from_tags_errors(reg, tiny_model, other_tiny_model, tmp_path, backbone):
    path = tmp_path / "reg.safetensors"
    reg.save_tags(path)
    with pytest.raises(ValueError, match="no head"):
        TagRegressor.from_tags(path, "nope", model=tiny_model)
    with pytest.raises(ValueError, match="regression head"):
        TagClassifier.from_tags(path, "TagRegressor", model=tiny_model)
    with pytest.raises(ValueError, match="no domain tag"):
        TagRegressor.from_tags(path, "TagRegressor", domains="Protein", model=tiny_model)
    with pytest.raises(TagMismatchError):
        TagRegressor.from_tags(path, "TagRegressor", model=other_tiny_model)
    other = load_backbone(other_tiny_model, dtype="float32", device="cpu")
    foreign = TagSet(other.identity, other.fingerprint, other.hidden_size).add("Text", torch.zeros(2, 32))
    with pytest.raises(TagMismatchError):
        TagRegressor.from_tags(path, "TagRegressor", domain_tags=foreign, model=tiny_model)


def test_tagset_needs_a_fitted_estimator(make_reg):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        make_reg().tagset()


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
    import sktag._pretrained as pretrained
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
    kw = dict(model=tiny_model, domains={"d": "SMILES", "p": "Protein"}, tag_length=2, max_iter=1, device="cpu",
              random_state=0)
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
    none = TagRegressor(**kw, domain_tag_length=0).fit(X, y)
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
    from sktag._pretrained import shipped_domain_tags
    from sktag.backbone import load_backbone

    assert shipped_domain_tags(load_backbone(tiny_model, device="cpu")) is None
    # every shipped file loads and names a domain tag
    from sktag._pretrained import FOLDER

    files = sorted(FOLDER.glob("*.safetensors"))
    assert files
    for f in files:
        ts = TagSet.load(f)
        assert all(ts.info(n)["kind"] == "domain" for n in ts)
