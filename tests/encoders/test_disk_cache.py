"""Frozen-backbone embeddings on disk: the same bits back, keyed by backbone and text tuple,
recomputed when damaged, skipped when off or unwritable."""

import numpy as np
import pytest
import torch

from deepalign.encoders import SentenceEncoder
from deepalign.encoders.disk_cache import cache_key, disk_cached

TEXTS = ("someone paints a fence", "someone feeds a cat")


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPALIGN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("DEEPALIGN_DISK_CACHE", "1")
    return tmp_path


def _files(root):
    return sorted((root / "embeddings").rglob("*.npy")) if (root / "embeddings").is_dir() else []


def test_second_process_reads_the_same_bits_without_running_the_backbone(cache_dir):
    first = SentenceEncoder()
    first.clear_cache()
    computed = first.embed_backbone(TEXTS)
    assert len(_files(cache_dir)) == 1
    second = SentenceEncoder()
    second.clear_cache()  # a new process: nothing in memory
    second._run_backbone = lambda texts: pytest.fail("the backbone ran despite the disk cache")
    assert torch.equal(second.embed_backbone(TEXTS), computed)


def test_key_depends_on_every_text_and_its_order():
    base = cache_key(("fingerprint",), TEXTS)
    assert base != cache_key(("fingerprint",), TEXTS[::-1])
    assert base != cache_key(("fingerprint",), (TEXTS[0], TEXTS[1] + " "))
    assert base != cache_key(("other backbone",), TEXTS)
    assert base == cache_key(("fingerprint",), TEXTS)


def test_damaged_or_misshaped_file_is_recomputed_and_replaced(cache_dir):
    calls = []

    def compute(texts):
        calls.append(texts)
        return torch.arange(len(texts) * 3, dtype=torch.float32).reshape(len(texts), 3)

    expected = compute(TEXTS)
    calls.clear()
    disk_cached(("ns",), TEXTS, 3, compute)
    path = _files(cache_dir)[0]
    path.write_bytes(b"not an npy file")
    assert torch.equal(disk_cached(("ns",), TEXTS, 3, compute), expected)
    np.save(path, np.zeros((5, 3), dtype=np.float32))  # wrong shape
    assert torch.equal(disk_cached(("ns",), TEXTS, 3, compute), expected)
    np.save(path, np.full((2, 3), np.nan, dtype=np.float32))  # not finite
    assert torch.equal(disk_cached(("ns",), TEXTS, 3, compute), expected)
    assert len(calls) == 4 and torch.equal(disk_cached(("ns",), TEXTS, 3, compute), expected)
    assert len(calls) == 4  # the repaired file is read back


def test_cache_off_or_unwritable_only_skips_the_disk(cache_dir, monkeypatch):
    compute = lambda texts: torch.ones(len(texts), 2)  # noqa: E731
    monkeypatch.setenv("DEEPALIGN_DISK_CACHE", "0")
    assert torch.equal(disk_cached(("ns",), TEXTS, 2, compute), torch.ones(2, 2))
    assert _files(cache_dir) == []
    monkeypatch.setenv("DEEPALIGN_DISK_CACHE", "1")
    blocker = cache_dir / "file-not-dir"
    blocker.write_text("x")
    monkeypatch.setenv("DEEPALIGN_CACHE_DIR", str(blocker))  # mkdir under a file fails
    assert torch.equal(disk_cached(("ns",), TEXTS, 2, compute), torch.ones(2, 2))
    assert not list(cache_dir.rglob(".part-*"))
