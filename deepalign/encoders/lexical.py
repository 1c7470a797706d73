"""`LexicalEncoder`: TF-IDF bag of words (a control with no learned semantics)."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from deepalign.encoders.inputs import check_texts
from deepalign.errors import ConfigError

#: a word token: a run of letters or digits (Unicode-aware), after lower-casing
_WORD = re.compile(r"[^\W_]+")


def word_tokens(text: str) -> list[str]:
    """Lower-case word tokens of `text` ("Kill someone's dog" -> kill, someone, s, dog)."""
    return _WORD.findall(text.lower())


class LexicalEncoder(nn.Module):
    """TF-IDF vectors over lower-case word tokens: `n_items x d`, `d` = vocabulary size.

    The vocabulary and document frequencies are fitted on the texts given to `fit(texts)`,
    or on the texts of the first `forward` call if `fit` was never called. Later calls keep
    that fit: words outside the vocabulary are ignored (a text with none of them embeds as
    the zero vector). Deterministic: the vocabulary is sorted, so column `j` is the `j`-th
    word in alphabetical order.

    Weighting (as scikit-learn's TfidfVectorizer defaults): term frequency = raw count;
    `idf(w) = ln((1 + N) / (1 + df(w))) + 1` with `N` fitted documents and `df(w)` the
    number of them containing `w`; then rows are L2-normalised when `normalize`.

    Args:
        vocabulary, document_frequency, n_documents: a previous fit (as in `config()`);
            all None = not fitted yet.
        normalize: L2-normalise the output rows.
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | None = None,
        document_frequency: Sequence[int] | None = None,
        n_documents: int | None = None,
        normalize: bool = True,
    ) -> None:
        super().__init__()
        self.normalize = normalize
        self.vocabulary: tuple[str, ...] | None = None
        self.document_frequency: tuple[int, ...] | None = None
        self.n_documents: int | None = None
        self._index: dict[str, int] = {}
        self.register_buffer("idf", torch.zeros(0))
        given = (vocabulary is not None, document_frequency is not None, n_documents is not None)
        if any(given) and not all(given):
            raise ConfigError(
                "'vocabulary', 'document_frequency' and 'n_documents' describe one fit and "
                f"must be given together or not at all, but got given={given}; pass all three "
                "(from config()) or none and call fit(texts)."
            )
        if all(given):
            self._set_fit(tuple(vocabulary), tuple(document_frequency), n_documents)

    @property
    def fitted(self) -> bool:
        """True once a vocabulary is set."""
        return self.vocabulary is not None

    @property
    def output_dim(self) -> int:
        """Vocabulary size `d`; `ConfigError` before the encoder is fitted."""
        if self.vocabulary is None:
            raise ConfigError(
                "LexicalEncoder.output_dim is the vocabulary size, which is unknown before "
                "fitting; call fit(texts) (or forward once) first."
            )
        return len(self.vocabulary)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable), including the fit."""
        return {
            "vocabulary": None if self.vocabulary is None else list(self.vocabulary),
            "document_frequency": (
                None if self.document_frequency is None else list(self.document_frequency)
            ),
            "n_documents": self.n_documents,
            "normalize": self.normalize,
        }

    def fit(self, texts: Sequence[str]) -> LexicalEncoder:
        """Fit vocabulary and document frequencies on `texts` (`n_items` strings)."""
        items = check_texts(texts)
        frequency: Counter[str] = Counter()
        for text in items:
            frequency.update(set(word_tokens(text)))
        vocabulary = tuple(sorted(frequency))
        self._set_fit(vocabulary, tuple(frequency[word] for word in vocabulary), len(items))
        return self

    def forward(self, texts: Sequence[str]) -> Tensor:
        """TF-IDF embeddings of `texts`: `n_items x d` float32 (fits first if unfitted)."""
        items = check_texts(texts)
        if not self.fitted:
            self.fit(items)
        counts = torch.zeros(len(items), len(self._index), dtype=torch.float64)
        for row, text in enumerate(items):
            for word, count in Counter(word_tokens(text)).items():
                column = self._index.get(word)
                if column is not None:
                    counts[row, column] = count
        weights = counts * self.idf.double().cpu()
        if self.normalize:
            weights = F.normalize(weights, dim=-1)
        return weights.float().to(self.idf.device)

    def _set_fit(
        self, vocabulary: tuple[str, ...], document_frequency: tuple[int, ...], n_documents: int
    ) -> None:
        if len(vocabulary) != len(document_frequency):
            raise ConfigError(
                f"'document_frequency' should have one count per vocabulary word "
                f"({len(vocabulary)}) but has {len(document_frequency)}; pass the values "
                "from one config()."
            )
        if len(set(vocabulary)) != len(vocabulary) or any(
            not isinstance(word, str) for word in vocabulary
        ):
            raise ConfigError("'vocabulary' should be distinct str words; pass config()'s list.")
        if isinstance(n_documents, bool) or not isinstance(n_documents, int) or n_documents < 0:
            raise ConfigError(f"'n_documents' should be an int >= 0 but got {n_documents!r}.")
        for word, count in zip(vocabulary, document_frequency):
            if isinstance(count, bool) or not isinstance(count, int) or not 0 < count:
                raise ConfigError(
                    f"'document_frequency' of {word!r} should be a positive int but got {count!r}."
                )
            if count > n_documents:
                raise ConfigError(
                    f"'document_frequency' of {word!r} is {count}, more than n_documents="
                    f"{n_documents}; pass the values from one config()."
                )
        self.vocabulary = vocabulary
        self.document_frequency = document_frequency
        self.n_documents = n_documents
        self._index = {word: column for column, word in enumerate(vocabulary)}
        idf = [math.log((1 + n_documents) / (1 + count)) + 1.0 for count in document_frequency]
        self.idf = torch.tensor(idf, dtype=torch.float64).float().to(self.idf.device)
