"""The prefix cache (``sktag._forward.cache``): sizes, the memory budget, where a cache goes, and the store itself."""

import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import SHORT_SMILES as STRINGS
from conftest import encoded_rows as _rows
from conftest import random_tag_table as _table
from conftest import tol
from sktag._forward import cache as _cache
from sktag._forward import engine as _engine

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CPU = torch.device("cpu")


# ------------------------------------------------------------------ sizes and budgets
@pytest.mark.parametrize("n, text", [(0, "0 B"), (1023, "1023 B"), (1024, "1.00 KiB"), (1536, "1.50 KiB"),
                                     (10**4, "9.77 KiB"), (3 * 1024**2, "3.00 MiB"), (2 * 1024**3, "2.00 GiB"),
                                     (5 * 1024**4, "5120.00 GiB")])
def test_format_bytes_picks_the_largest_unit_below_1024_up_to_gib(n, text):
    assert _cache.format_bytes(n) == text


def test_memory_budget_is_zero_without_a_cache_a_number_as_given_and_bounded_on_auto():
    assert _cache.memory_budget(False, CPU) == 0 and _cache.memory_budget(None, CPU) == 0
    assert _cache.memory_budget(1e6, CPU) == 1_000_000 and isinstance(_cache.memory_budget(1e6, CPU), int)
    auto = _cache.memory_budget("auto", CPU)
    assert auto == _cache.memory_budget(True, CPU)
    assert 0 < auto <= 8 * 1024**3  # a quarter of the memory, at most 8 GiB


def test_only_auto_true_and_disk_may_put_the_cache_on_disk():
    assert all(_cache.may_use_disk(spec) for spec in ("auto", True, "disk"))
    assert not any(_cache.may_use_disk(spec) for spec in (False, None, 0, 10**12, "memory"))


@pytest.fixture
def free_disk(monkeypatch):
    """``free_disk(n)``: ``shutil.disk_usage`` reports ``n`` free bytes from then on."""
    def set_free(n):
        monkeypatch.setattr(shutil, "disk_usage", lambda folder: SimpleNamespace(total=2 * n, used=n, free=n))
    return set_free


def test_a_disk_cache_needs_its_size_plus_the_margin_free(free_disk, tmp_path):
    need = 1000
    free_disk(need + _cache.DISK_MARGIN)
    assert _cache.cache_location("disk", need, CPU, tmp_path) == (
        "disk", f"prefix_cache='disk': {_cache.format_bytes(need)} in a temporary file in {tmp_path}")
    free_disk(need + _cache.DISK_MARGIN - 1)
    where, why = _cache.cache_location("disk", need, CPU, tmp_path)
    assert where is None and why.startswith("prefix_cache='disk'; ") and f"free on disk in {tmp_path}" in why


def test_auto_goes_to_disk_only_beyond_the_memory_budget(free_disk, tmp_path):
    budget = _cache.memory_budget("auto", CPU)
    free_disk(10 * budget + _cache.DISK_MARGIN)
    where, why = _cache.cache_location("auto", budget, CPU, tmp_path)
    assert where == "memory" and why.endswith(f"in memory (budget {_cache.format_bytes(budget)})")
    where, why = _cache.cache_location("auto", budget + 1, CPU, tmp_path)
    assert where == "disk" and "> budget" in why and "temporary file" in why
    free_disk(budget)  # too little room on disk as well: no cache
    assert _cache.cache_location("auto", budget + 1, CPU, tmp_path)[0] is None


def test_a_number_or_false_never_puts_the_cache_on_disk(free_disk, tmp_path):
    free_disk(2**62)
    assert _cache.cache_location(100, 101, CPU, tmp_path)[0] is None
    assert _cache.cache_location(100, 100, CPU, tmp_path)[0] == "memory"
    assert _cache.cache_location(False, 1, CPU, tmp_path) == (None, "prefix_cache=False")
    assert _cache.cache_location(None, 1, CPU, tmp_path) == (None, "prefix_cache=None")


def test_cache_location_follows_prefix_cache(tmp_path, monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(_cache, "memory_budget", lambda spec, device: 0 if spec is False else 1000)
    where = lambda spec, need: _cache.cache_location(spec, need, cpu, tmp_path)  # noqa: E731
    assert where(False, 10)[0] is None and where(None, 10)[0] is None
    assert where("auto", 1000)[0] == where(True, 10)[0] == where(5000, 10)[0] == "memory"
    assert where("auto", 1001)[0] == where(True, 1001)[0] == where("disk", 10)[0] == "disk"
    assert where(5000.0, 10**4) == (None, "prefix cache needs 9.77 KiB > budget 1000 B (prefix_cache=5000.0)")
    monkeypatch.setattr(_cache, "DISK_MARGIN", 2**62)
    no_room = where("auto", 1001)
    assert no_room[0] is None and "free on disk" in no_room[1] and where("disk", 10)[0] is None


def test_reserve_gives_the_file_real_blocks_not_a_sparse_hole(tmp_path):
    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        _cache.reserve(fd, 3 << 20)
        st = os.fstat(fd)
    finally:
        os.close(fd)
    assert st.st_size == 3 << 20
    if hasattr(st, "st_blocks"):  # allocated 512-byte blocks (a sparse file would have next to none)
        assert st.st_blocks * 512 >= 3 << 20


# ------------------------------------------------------------------ the cache of one fit
N_LAYERS, KVH, HD = 2, 3, 4


def _row_kv(n, seed):
    """The cache of one row of ``n`` tokens, ``[n_layers, 2, n, kv_heads, head_dim]``."""
    return torch.randn(N_LAYERS, 2, n, KVH, HD, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "disk"])
def test_prefix_cache_keeps_each_row_unpadded_and_gathers_left_padded_batches(on_disk, tmp_path):
    lengths = [2, 5, 3, 1]
    rows = [_row_kv(n, seed) for seed, n in enumerate(lengths)]
    cache = _cache.PrefixCache(N_LAYERS, KVH, HD, lengths, torch.float32, CPU, folder=tmp_path if on_disk else None)
    assert list(tmp_path.iterdir()) == []
    if on_disk:
        assert tuple(cache.buf.shape) == (N_LAYERS, 2, sum(lengths), KVH, HD)  # no padding
    else:
        assert cache.buf is None  # in memory the rows are kept as they come
    for i in (3, 0, 2, 1):
        cache.put(i, rows[i])
    assert (cache.row(1) is rows[1]) != on_disk  # shared in memory, copied to disk
    order = [2, 1, 3]
    kv, valid = cache.gather(order)
    assert tuple(kv.shape) == (N_LAYERS, 2, 3, KVH, 5, HD)
    assert valid.tolist() == [[False, False, True, True, True], [True] * 5, [False] * 4 + [True]]
    for b, r in enumerate(order):
        n = lengths[r]
        assert torch.equal(kv[:, :, b, :, 5 - n:], rows[r].transpose(2, 3))
        assert not kv[:, :, b, :, :5 - n].any()  # padding holds zeros
    assert cache.gather_pooled(order) is None  # nothing pooled was kept


def test_prefix_cache_keeps_pooled_states_by_row():
    lengths = [2, 3, 1]
    cache = _cache.PrefixCache(N_LAYERS, KVH, HD, lengths, torch.float32, CPU)
    pooled = torch.arange(3 * 2 * 4, dtype=torch.float32).view(3, 2, 4)  # [rows, groups, width]
    for i in (2, 0, 1):
        cache.put(i, _row_kv(lengths[i], i), pooled[i])
    assert torch.equal(cache.gather_pooled([1, 2]), pooled[[1, 2]])


def test_prefix_cache_size_is_the_backbones_bytes_per_token_times_the_tokens():
    backbone = SimpleNamespace(n_kv_bytes_per_token=lambda: 96)
    assert _cache.PrefixCache.nbytes(backbone, np.int64(7)) == 96 * 7


def test_a_disk_cache_whose_blocks_cannot_be_reserved_raises_and_leaves_no_file(tmp_path, monkeypatch):
    import errno

    def full(fd, nbytes):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_cache, "reserve", full)
    with pytest.raises(OSError, match="No space left"):
        _cache.PrefixCache(N_LAYERS, KVH, HD, [2, 3], torch.float32, CPU, folder=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "disk"])
def test_prefix_cache_round_trip_matches_direct_cache(backbone, on_disk, tmp_path):
    rows = _rows(backbone, [STRINGS], (3, 5))
    table = _table(backbone, (3, 5))
    lengths = np.array([len(r) for r in rows])
    cfg = backbone.config
    cache = _cache.PrefixCache(cfg.num_hidden_layers, cfg.num_key_value_heads,
                               cfg.hidden_size // cfg.num_attention_heads, lengths,
                               torch.float32, torch.device("cpu"), folder=tmp_path if on_disk else None)
    assert list(tmp_path.iterdir()) == []  # a disk cache's file leaves the folder at once
    for i in range(len(rows)):  # each row alone, without padding
        kv = _engine.prefix_kv(backbone, _engine.collate([rows[i]]), table)
        cache.put(i, kv[:, :, 0].transpose(2, 3))
    order = [4, 0, 2]
    kv, valid = cache.gather(order)
    batch = _engine.collate([rows[i] for i in order])
    direct = _engine.prefix_kv(backbone, batch, table)
    assert torch.equal(valid, batch.valid)
    m = valid[None, None, :, None, :, None].expand_as(kv)
    torch.testing.assert_close(kv[m], direct[m], **tol(torch.float32))
    ftag = table[-5:]
    torch.testing.assert_close(_engine.tag_forward(backbone, kv, valid, ftag),
                               _engine.tag_forward(backbone, direct, batch.valid, ftag),
                               **tol(torch.float32))


# ------------------------------------------------------------------ the prefix cache of a fit
def test_a_prefix_cache_on_disk_gives_the_model_of_one_in_memory(make_reg, length_task, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # gettempdir() reads TMPDIR again
    X, y = length_task
    a = make_reg(max_iter=2, prefix_cache="auto").fit(X, y)
    b = make_reg(max_iter=2, prefix_cache="disk").fit(X, y)
    assert (a.prefix_cache_location_, b.prefix_cache_location_) == ("memory", "disk")
    assert a.prefix_cache_bytes_ == b.prefix_cache_bytes_ > 0
    np.testing.assert_array_equal(a.predict(X), b.predict(X))  # the same numbers, stored elsewhere
    assert list(tmp_path.iterdir()) == []  # the file was removed from the folder at once


def test_auto_prefix_cache_goes_to_disk_beyond_the_memory_budget(make_reg, length_task, monkeypatch):
    from sktag._forward import cache as _cache

    monkeypatch.setattr(_cache, "memory_budget", lambda spec, device: 10)
    X, y = length_task
    assert make_reg(max_iter=1, prefix_cache="auto").fit(X, y).prefix_cache_location_ == "disk"
    assert make_reg(max_iter=1, prefix_cache=1e9).fit(X, y).prefix_cache_location_ is None  # a number: memory only


def test_no_room_for_the_prefix_cache_warns_and_recomputes(make_reg, length_task, monkeypatch):
    from sktag import PerformanceWarning, _cache

    monkeypatch.setattr(_cache, "memory_budget", lambda spec, device: 10)
    monkeypatch.setattr(_cache, "DISK_MARGIN", 2**62)
    X, y = length_task
    with pytest.warns(PerformanceWarning, match="> budget 10 B.*too little.*recomputing the prefixes"):
        a = make_reg(max_iter=2, prefix_cache="auto").fit(X, y)
    b = make_reg(max_iter=2, prefix_cache=False).fit(X, y)
    assert a.prefix_cache_location_ is None and a.prefix_cache_bytes_ == 0
    np.testing.assert_array_equal(a.predict(X), b.predict(X))


def test_a_disk_that_fills_before_the_cache_is_reserved_warns_and_recomputes(make_reg, length_task, tmp_path,
                                                                           monkeypatch):
    import errno

    from sktag import PerformanceWarning, _cache

    def full(fd, nbytes):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    monkeypatch.setattr(_cache, "reserve", full)
    X, y = length_task
    with pytest.warns(PerformanceWarning, match=r"temporary file.*reserving it failed.*No space left.*recomputing"):
        a = make_reg(max_iter=2, prefix_cache="disk").fit(X, y)
    b = make_reg(max_iter=2, prefix_cache=False).fit(X, y)
    assert a.prefix_cache_location_ is None and a.prefix_cache_bytes_ == 0
    assert list(tmp_path.iterdir()) == []  # the half-made file is gone
    np.testing.assert_array_equal(a.predict(X), b.predict(X))
