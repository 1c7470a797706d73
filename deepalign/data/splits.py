"""Personalization vs generalization item splits, and the pair masks they induce."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor

from deepalign.data.validation import data_error, describe
from deepalign.errors import ConfigError

__all__ = ["split_items", "split_pair_masks"]


def _unit_hash(item_id: str, seed: int) -> float:
    """A uniform number in [0, 1) that depends only on (item_id, seed)."""
    digest = hashlib.sha256(f"{seed}\x1f{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_items(ids: Sequence[str], seed: int = 0, heldout_fraction: float = 0.3) -> Tensor:
    """Which items are held out for generalization.

    Each id is held out when ``sha256(f"{seed}\\x1f{id}")``, read as a number in [0, 1), is
    below ``heldout_fraction``. The decision depends on the id and the seed only, so every
    dataset built on the same ids agrees on which are held out, whatever the other items.
    The held-out share is therefore ``heldout_fraction`` on average, not exactly.

    Args:
        ids: the item ids (``ItemSet.ids``), unique.
        seed: selects a different split.
        heldout_fraction: in [0, 1].

    Returns:
        bool ``n_items``; True = held-out (generalization) item.
    """
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise ConfigError(f"ids: expected a sequence of item ids, got {describe(ids)}. "
                          "Fix: pass dataset.items.ids.")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"seed: expected an int, got {describe(seed)}. Fix: pass e.g. seed=0.")
    fraction = float(heldout_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"heldout_fraction: expected a number in [0, 1], got {fraction}. "
                          "Fix: pass e.g. 0.3.")
    if len(set(ids)) != len(ids):
        raise data_error("split_items", "ids", "unique ids", "a repeated id",
                         "pass each item once")
    return torch.tensor([_unit_hash(str(i), seed) < fraction for i in ids], dtype=torch.bool)


def split_pair_masks(mask: Tensor, heldout: Tensor) -> dict[str, Tensor]:
    """Split observed pairs by the held-out status of their two items.

    Args:
        mask: bool ``n_items x n_items``; observed pairs.
        heldout: bool ``n_items``; True = held-out item (from `split_items`).

    Returns:
        ``{"train": observed pairs of two train items, "heldout": of two held-out items,
        "cross": one of each}``, each bool ``n_items x n_items``, symmetric, diagonal False.
    """
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.dim() != 2 or (
        mask.shape[0] != mask.shape[1]
    ):
        raise ConfigError(f"mask: expected a bool n_items x n_items tensor, got "
                          f"{describe(mask)[:40]}. Fix: pass similarity.mask.")
    n = mask.shape[0]
    if not isinstance(heldout, Tensor) or heldout.dtype != torch.bool or heldout.shape != (n,):
        raise ConfigError(f"heldout: expected a bool tensor of shape ({n},), got "
                          f"{describe(heldout)[:40]}. Fix: pass split_items(items.ids).")
    off_diagonal = mask & ~torch.eye(n, dtype=torch.bool, device=mask.device)
    train = ~heldout
    both_train = train[:, None] & train[None, :]
    both_heldout = heldout[:, None] & heldout[None, :]
    return {
        "train": off_diagonal & both_train,
        "heldout": off_diagonal & both_heldout,
        "cross": off_diagonal & ~both_train & ~both_heldout,
    }
