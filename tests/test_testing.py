"""sktag.testing: the tiny model the examples and the test suite use."""

import os
import shutil
import tempfile

import numpy as np

from sktag.backbone import load_backbone
from sktag.testing import make_tiny_model


def test_make_tiny_model_without_a_path_writes_a_new_loadable_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the new folder goes under tmp_path
    folder = make_tiny_model(layers=1)
    other = make_tiny_model(layers=1)
    try:
        assert isinstance(folder, str) and os.path.isdir(folder)
        assert os.path.dirname(folder) == str(tmp_path)
        assert os.path.basename(folder).startswith("sktag-tiny-")
        assert other != folder  # a new folder each call
        assert {"config.json", "tokenizer.json"} <= set(os.listdir(folder))
        bb = load_backbone(folder, device="cpu")
        assert bb.model.config.num_hidden_layers == 1
        assert bb.model.config.hidden_size == 32
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(other, ignore_errors=True)


def test_make_tiny_model_with_a_path_returns_it(tmp_path):
    path = tmp_path / "model"
    assert make_tiny_model(path, layers=1) == str(path)
    assert (path / "config.json").is_file()


def test_make_tiny_model_is_seeded_with_or_without_a_path(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    a = load_backbone(make_tiny_model(tmp_path / "a", layers=1, seed=3), device="cpu")
    b = load_backbone(make_tiny_model(layers=1, seed=3), device="cpu")
    assert a.fingerprint == b.fingerprint
    wa = a.model.get_input_embeddings().weight.detach().numpy()
    wb = b.model.get_input_embeddings().weight.detach().numpy()
    np.testing.assert_array_equal(wa, wb)
