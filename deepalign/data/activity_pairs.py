"""``activity-pairs``: 1,000 pairs of everyday activity phrases ("go grocery shopping"),
rated by about ten people each (Wilson & Mihalcea, 2017).

``measure`` picks the column: ``sim`` (similarity), ``rel`` (relatedness), ``ma``
(motivational alignment), all 0..4, or ``pac`` (perceived actor congruence) -2..2; every one
is a similarity (higher = more alike), normalised by ``(s - lo) / (hi - lo)``.
Of the 1,000 rows, 3 pairs are listed twice (scores averaged) and 1 pairs a phrase with itself
("do laundry"; dropped: the diagonal is 1 by definition), leaving 996 observed pairs over
1,420 phrases. Ids are the phrases themselves (unique, short); order of first appearance.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from deepalign.data.bundled_files import bundled_file, bundled_label
from deepalign.data.csv_table import CsvTable, read_csv_table
from deepalign.data.dataset import Dataset
from deepalign.data.items import ItemSet
from deepalign.data.pairs import judgments_from_pairs
from deepalign.data.validation import describe
from deepalign.errors import ConfigError

__all__ = ["MEASURES", "load_activity_pairs"]

MEASURES = {"sim": (0.0, 4.0), "rel": (0.0, 4.0), "ma": (0.0, 4.0), "pac": (-2.0, 2.0)}

INFO = {
    "license": "none stated; the authors ask for citation",
    "citation": "Wilson, S. R., & Mihalcea, R. (2017). Measuring Semantic Relations between "
    "Human Activities. Proceedings of the Eighth International Joint Conference on Natural "
    "Language Processing (IJCNLP 2017).",
}


@lru_cache(maxsize=1)
def _table() -> CsvTable:
    return read_csv_table(bundled_file("wilson2017_activity_pairs", "pairs.csv"),
                          required=("act1", "act2", *MEASURES))


def load_activity_pairs(measure: str = "sim") -> Dataset:
    """1,420 activity phrases with the human ``measure`` judgments of 1,000 pairs."""
    if measure not in MEASURES:
        raise ConfigError(f"measure: expected one of {list(MEASURES)}, got {describe(measure)}."
                          " Fix: pass e.g. measure='sim'.")
    table = _table()
    act1, act2 = table.column("act1"), table.column("act2")
    phrases = tuple(dict.fromkeys(p for pair in zip(act1, act2) for p in pair))
    items = ItemSet(ids=phrases, texts=phrases)
    position = {p: i for i, p in enumerate(phrases)}
    similarity, notes = judgments_from_pairs(
        items, np.array([position[p] for p in act1]), np.array([position[p] for p in act2]),
        table.floats(measure, what="rating"), kind="similarity", scale=MEASURES[measure],
        source=bundled_label("wilson2017_activity_pairs", "pairs.csv"), locate=table.where,
        duplicates="average", self_pairs="drop",
    )
    return Dataset(
        name="activity-pairs", items=items, similarity=similarity,
        info={"description": f"1,420 everyday activity phrases; human '{measure}' ratings of "
              "1,000 pairs", **INFO, "notes": notes, "measure": measure},
    )
