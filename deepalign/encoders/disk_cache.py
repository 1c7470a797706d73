"""Embeddings of frozen backbones kept on disk, per backbone and text set.

A frozen backbone gives the same embeddings for the same texts in every process, so the
first process to encode a text set stores the `n_items x d` float32 array and every later
one reads it back instead of running the network (all-mpnet-base-v2 over the bundled sets
takes about a minute on 2 cores; reading it back, milliseconds).

The key is a sha256 over everything the numbers depend on: the backbone's fingerprint
(its weight, tokenizer and config files), the backbone class, the batch size (padding), the
dtype, the torch and sentence-transformers versions, and the exact tuple of texts in order.
Files are `<cache>/embeddings/<key[:2]>/<key>.npy` (`np.save`, read with
``allow_pickle=False``), written to a temporary file and renamed into place; an unreadable or
mis-shaped file is recomputed and replaced. ``DEEPALIGN_DISK_CACHE=0`` turns the cache off;
``DEEPALIGN_CACHE_DIR`` moves it (default ``~/.cache/deepalign``). CPU embeddings only.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from deepalign.encoders.zoo.materialize import cache_root

__all__ = ["disk_cache_enabled", "disk_cached"]


def disk_cache_enabled() -> bool:
    """False when ``DEEPALIGN_DISK_CACHE`` is "0", "false", "no" or "off"."""
    return os.environ.get("DEEPALIGN_DISK_CACHE", "1").strip().lower() not in {
        "0", "false", "no", "off"}


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "-"


def cache_key(namespace: tuple[str, ...], texts: tuple[str, ...]) -> str:
    """sha256 over `namespace` (what the numbers depend on) and `texts`, in order."""
    digest = hashlib.sha256()
    for part in (*namespace, torch.__version__, _version("sentence-transformers")):
        digest.update(part.encode("utf-8") + b"\x00")
    digest.update(b"\x01")
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\x00")
    return digest.hexdigest()


def disk_cached(namespace: tuple[str, ...], texts: tuple[str, ...], width: int,
                compute: Callable[[tuple[str, ...]], Tensor]) -> Tensor:
    """`compute(texts)` (`n_items x width` float32, CPU), read from or written to the disk
    cache under `namespace`; `compute` alone when the cache is off or unwritable."""
    if not disk_cache_enabled():
        return compute(texts)
    key = cache_key(namespace, texts)
    path = cache_root() / "embeddings" / key[:2] / f"{key}.npy"
    try:
        array = np.load(path, allow_pickle=False)
        if array.shape == (len(texts), width) and array.dtype == np.float32 \
                and np.isfinite(array).all():
            return torch.from_numpy(array)
    except (OSError, ValueError):
        pass
    embeddings = compute(texts)
    if embeddings.device.type == "cpu" and embeddings.dtype == torch.float32:
        _store(path, embeddings.detach().numpy())
    return embeddings


def _store(path: Path, array: np.ndarray) -> None:
    """Write `array` to `path` atomically; a full or read-only disk only skips the cache."""
    scratch = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, scratch = tempfile.mkstemp(prefix=".part-", suffix=".npy", dir=path.parent)
        with os.fdopen(handle, "wb") as stream:
            np.save(stream, np.ascontiguousarray(array), allow_pickle=False)
        os.replace(scratch, path)
        scratch = None
    except OSError:
        pass
    finally:
        if scratch is not None:
            Path(scratch).unlink(missing_ok=True)
