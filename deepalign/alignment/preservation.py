"""What an aligned encoder keeps: the preservation suite and the unlabeled preservation pool.

Training toward one set of human judgments can make an encoder less human-like elsewhere.
The **preservation suite** measures that: Spearman alignment on every bundled human
similarity set the run did not train on, before and after training. A set is left out of
the suite (and the reason recorded) when

- it was trained on, or its judgments are those of a training set (``spa-verb-act`` holds
  a subset of the ``spa-verb`` judgments: ``info["similarity_source"]``), or
- half or more of its texts are texts of a training set.

So a set whose judgments the loss saw is never in the suite.

The **preservation pool** is a broad set of unlabeled texts (no human judgment is used) from
the bundled datasets, for a gLocal-style term that keeps the trained encoder's similarities
among them near the pretrained encoder's. It never holds a text of a training set (held-out
items included) and, by default, none of the suite's texts, so the suite stays a check on
texts no part of training has touched.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from deepalign.alignment.measures import spearman_alignment
from deepalign.alignment.similarity import cosine_similarity_matrix
from deepalign.data import Dataset, list_datasets, load_dataset
from deepalign.errors import ConfigError

__all__ = [
    "PreservationSet", "PreservationSuite", "judgment_source", "preservation_pool",
    "preservation_suite", "similarity_datasets",
]

#: A candidate sharing at least this share of its texts with the training data is left out.
OVERLAP_LIMIT = 0.5


def judgment_source(dataset: Dataset) -> str:
    """Whose human similarity judgments ``dataset`` holds (its name unless it declares
    ``info["similarity_source"]``, as a subset of another set does)."""
    source = dataset.info.get("similarity_source")
    return str(source) if source else dataset.name


@dataclass(frozen=True, eq=False)
class PreservationSet:
    """The observed pairs of one human similarity set, on the items they touch.

    Attributes:
        name: the bundled dataset's name.
        texts: texts of the items in at least one observed pair (``k``).
        human_sim: float64 ``k x k`` human similarities.
        mask: bool ``k x k``, symmetric, True where a pair is observed.
    """

    name: str
    texts: tuple[str, ...]
    human_sim: Tensor
    mask: Tensor

    @property
    def n_pairs(self) -> int:
        return int(torch.triu(self.mask, diagonal=1).sum())

    @classmethod
    def from_dataset(cls, dataset: Dataset) -> PreservationSet:
        if dataset.similarity is None:
            raise ConfigError(f"preservation set {dataset.name!r}: has no similarity "
                              "judgments. Fix: name a set `python -m deepalign.data list` "
                              "shows with pairs.")
        mask = dataset.similarity.mask.to(torch.bool).clone()
        mask.fill_diagonal_(False)
        items = mask.any(dim=0).nonzero().squeeze(1)
        texts = tuple(dataset.items.texts[i] for i in items.tolist())
        human = dataset.similarity.matrix[items][:, items].to(torch.float64)
        return cls(dataset.name, texts, human, mask[items][:, items])

    def alignment(self, embeddings: Tensor) -> float:
        """Spearman of the cosine similarities of ``embeddings`` (``k x d``, the texts'
        order) with the human ones over the observed pairs."""
        model = cosine_similarity_matrix(embeddings.detach().to("cpu", torch.float64))
        return spearman_alignment(model, self.human_sim, self.mask)


@dataclass(frozen=True)
class PreservationSuite:
    """The sets a run is checked on, and those left out with the reason.

    Attributes:
        sets: one `PreservationSet` per checked dataset.
        excluded: dataset name -> why it is not in the suite.
    """

    sets: tuple[PreservationSet, ...] = ()
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.sets)

    def texts(self) -> tuple[str, ...]:
        """Every text of every set, first occurrence order, no duplicates."""
        return tuple(dict.fromkeys(t for s in self.sets for t in s.texts))

    def measure(self, encode: Callable[[Sequence[str]], Tensor]) -> dict[str, float]:
        """``{name: Spearman}`` of the encoder ``encode`` (texts -> ``n x d``) on each set."""
        return {s.name: s.alignment(encode(s.texts)) for s in self.sets}


def _load_quietly(name: str) -> Dataset:
    """A bundled dataset without its loader's notes (warnings about what it dropped), which
    concern its own use, not its texts' or judgments' use here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_dataset(name)


def similarity_datasets(own_judgments_only: bool = True) -> list[Dataset]:
    """Bundled datasets with similarity judgments, loaded without their loaders' notes;
    `own_judgments_only` leaves out those whose judgments are a subset of another set's
    (`judgment_source`, e.g. spa-verb-act of spa-verb)."""
    found = []
    for name in list_datasets():
        dataset = _load_quietly(name)
        if dataset.similarity is not None and (
                not own_judgments_only or judgment_source(dataset) == name):
            found.append(dataset)
    return found


def preservation_suite(
    trained_on: Sequence[Dataset], names: Sequence[str] | None = None,
    overlap_limit: float = OVERLAP_LIMIT,
) -> PreservationSuite:
    """The suite of a run trained on ``trained_on`` (see the module docstring).

    Args:
        trained_on: every dataset whose judgments the run's loss uses.
        names: candidate bundled sets; None = every bundled similarity set; ``[]`` = none.
        overlap_limit: a candidate sharing this share of its texts with the training data
            or more is left out.
    """
    if names is None:
        candidates = similarity_datasets()
    else:
        known = list_datasets()
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ConfigError(f"data.preservation_sets: unknown dataset(s) {unknown}; expected "
                              f"names from {list(known)}. Fix: pick sets with similarity "
                              "judgments, or [] for no suite.")
        candidates = [_load_quietly(n) for n in dict.fromkeys(names)]
    sources = {judgment_source(d) for d in trained_on} | {d.name for d in trained_on}
    training_texts = {t for d in trained_on for t in d.items.texts}
    sets, excluded = [], {}
    for dataset in candidates:
        source = judgment_source(dataset)
        if dataset.name in sources or source in sources:
            excluded[dataset.name] = (f"trained on ({source} judgments)" if source != dataset.name
                                      else "trained on")
            continue
        candidate = PreservationSet.from_dataset(dataset)
        shared = sum(t in training_texts for t in candidate.texts) / max(len(candidate.texts), 1)
        if shared >= overlap_limit:
            excluded[dataset.name] = f"{shared:.0%} of its texts are training texts"
            continue
        sets.append(candidate)
    return PreservationSuite(tuple(sets), excluded)


def _text_order(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def preservation_pool(
    trained_on: Sequence[Dataset], size: int, sources: Sequence[str] | None = None,
    exclude: Iterable[str] = (),
) -> tuple[str, ...]:
    """Up to ``size`` unlabeled texts for the preservation term.

    Args:
        trained_on: the training datasets; none of their texts (held-out items included)
            enters the pool.
        size: most texts; they are chosen by a hash of the text, so the pool does not
            depend on dataset order and a larger pool contains a smaller one.
        sources: bundled datasets to draw from; None = every bundled dataset.
        exclude: further texts to keep out (by default the suite's).

    Returns:
        Texts in hash order.
    """
    if size < 0:
        raise ConfigError(f"data.pool_size: expected an int >= 0, got {size}. Fix: e.g. 1000, "
                          "or 0 for no pool.")
    names = list_datasets() if sources is None else tuple(sources)
    known = list_datasets()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ConfigError(f"data.pool_datasets: unknown dataset(s) {unknown}; expected names "
                          f"from {list(known)}. Fix: pick bundled datasets, or null for all.")
    banned = {t for d in trained_on for t in d.items.texts} | set(exclude)
    texts = {t for name in names for t in _load_quietly(name).items.texts if t not in banned}
    return tuple(sorted(texts, key=_text_order)[:size])
