"""Cache of frozen-network embeddings, per text and per tuple of texts."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import Tensor


class EmbeddingCache:
    """Remembers the embedding of every text a frozen network has encoded.

    A lookup of a tuple of texts encodes only the texts never seen before (one call of
    `compute` with those texts, in first-seen order), then assembles the rows. The last
    `max_tuples` assembled tuples are kept whole, so repeating the same item set (the usual
    training loop) costs a dictionary lookup and one copy.

    The cache does not know when the network changes: its owner clears it (on
    `load_state_dict`, or when the network moves to another device or dtype).
    """

    def __init__(self, max_tuples: int = 8) -> None:
        self.max_tuples = max_tuples
        self._rows: dict[str, Tensor] = {}
        self._tuples: OrderedDict[tuple[str, ...], Tensor] = OrderedDict()
        self._tuple_hits = 0
        self._tuple_misses = 0
        self._texts_encoded = 0
        self._compute_calls = 0

    def lookup(
        self, texts: tuple[str, ...], compute: Callable[[tuple[str, ...]], Tensor]
    ) -> Tensor:
        """Embeddings of `texts`: `n_items x d` (a fresh copy; safe to modify).

        Args:
            texts: `n_items` texts (duplicates allowed).
            compute: maps `m` new texts to their `m x d` embeddings (no grad).
        """
        hit = self._tuples.get(texts)
        if hit is not None:
            self._tuple_hits += 1
            self._tuples.move_to_end(texts)
            return hit.clone()
        self._tuple_misses += 1
        missing = tuple(text for text in dict.fromkeys(texts) if text not in self._rows)
        if missing:
            embeddings = compute(missing)
            self._compute_calls += 1
            self._texts_encoded += len(missing)
            for text, row in zip(missing, embeddings):
                self._rows[text] = row
        assembled = torch.stack([self._rows[text] for text in texts])
        self._tuples[texts] = assembled
        while len(self._tuples) > self.max_tuples:
            self._tuples.popitem(last=False)
        return assembled.clone()

    def clear(self) -> None:
        """Forget every cached embedding (the counters are kept)."""
        self._rows.clear()
        self._tuples.clear()

    def info(self) -> dict[str, int]:
        """Counters: tuple hits/misses, backbone calls, texts encoded, texts held."""
        return {
            "tuple_hits": self._tuple_hits,
            "tuple_misses": self._tuple_misses,
            "compute_calls": self._compute_calls,
            "texts_encoded": self._texts_encoded,
            "cached_texts": len(self._rows),
        }


_SHARED: dict[tuple[str, ...], EmbeddingCache] = {}


def shared_cache(key: tuple[str, ...]) -> EmbeddingCache:
    """The process-wide cache for `key` (e.g. backbone directory, device, dtype).

    Frozen copies of the same backbone give the same embeddings, so every encoder built on
    it shares one cache: loading several trained heads (seeds, datasets) encodes each text
    once per process.
    """
    cache = _SHARED.get(key)
    if cache is None:
        cache = _SHARED[key] = EmbeddingCache()
    return cache
