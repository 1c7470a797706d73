"""``sts-captions``: 1,750 caption sentence pairs of the STS Benchmark (subsets ``images`` and
``track5.en-en``) with human similarity 0..5 (Cer et al., 2017).

Items are the unique sentences (3,025 over train, dev and test; ids: `text_id`, order of first
appearance). One sentence pair appears twice in ``train.csv`` with scores 4.6 and 4.8
(averaged) and one twice with the same score, leaving 1,748 observed pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

from deepalign.data.bundled_files import bundled_file, bundled_label
from deepalign.data.csv_table import CsvTable, read_csv_table
from deepalign.data.dataset import Dataset
from deepalign.data.items import ItemSet, text_id
from deepalign.data.pairs import judgments_from_pairs
from deepalign.data.validation import describe
from deepalign.errors import ConfigError

__all__ = ["STS_SPLITS", "load_sts_captions"]

STS_SPLITS = ("train", "dev", "test")
SCALE = (0.0, 5.0)

INFO = {
    "license": "CC BY-SA 4.0 (scores); CC BY-SA (these two text subsets), see LICENSE.txt",
    "citation": "Cer, D., Diab, M., Agirre, E., Lopez-Gazpio, I., & Specia, L. (2017). "
    "SemEval-2017 Task 1: Semantic Textual Similarity Multilingual and Crosslingual Focused "
    "Evaluation. Proceedings of SemEval-2017, 1-14. http://ixa2.si.ehu.eus/stswiki",
}


@cache
def _table(split: str) -> CsvTable:
    return read_csv_table(bundled_file("stsb_captions", f"{split}.csv"),
                          required=("sentence1", "sentence2", "score_0_5"))


def load_sts_captions(splits: Sequence[str] = STS_SPLITS) -> Dataset:
    """Unique caption sentences with the human similarity of the pairs in ``splits``."""
    if isinstance(splits, str) or not splits or any(s not in STS_SPLITS for s in splits) or len(
        set(splits)
    ) != len(splits):
        raise ConfigError(f"splits: expected distinct names from {list(STS_SPLITS)}, got "
                          f"{describe(splits)}. Fix: pass e.g. splits=('train',).")
    tables = [_table(s) for s in splits]
    pairs = [(a, b) for t in tables for a, b in zip(t.column("sentence1"), t.column("sentence2"))]
    sentences = tuple(dict.fromkeys(s for pair in pairs for s in pair))
    items = ItemSet(ids=tuple(text_id(s) for s in sentences), texts=sentences)
    position = {s: i for i, s in enumerate(sentences)}
    scores = np.concatenate([t.floats("score_0_5", what="rating") for t in tables])
    places = [f"{Path(t.source).name} {t.where(r)}" for t in tables for r in range(len(t))]
    similarity, notes = judgments_from_pairs(
        items, np.array([position[a] for a, _ in pairs]),
        np.array([position[b] for _, b in pairs]), scores, kind="similarity", scale=SCALE,
        source=bundled_label("stsb_captions"), locate=lambda k: places[k], duplicates="average",
    )
    return Dataset(
        name="sts-captions", items=items, similarity=similarity,
        info={"description": "unique caption sentences (STS-B images + track5.en-en) with "
              "human similarity of 1,750 pairs (0..5)", **INFO, "notes": notes,
              "splits": tuple(splits)},
    )
