"""``ethics-justice`` and ``ethics-commonsense-short``: ETHICS test scenarios with binary
human labels (Hendrycks et al., 2021).

Values are chosen so that *bad action = rating below threshold* (0.5, the midpoint of 0..1):

- ``ethics-justice``: ``reasonable`` = ``label`` (1 = the justification is reasonable);
  ``split`` ``"test"`` (2,704 scenarios, default), ``"test_hard"`` (2,052) or ``"all"``.
- ``ethics-commonsense-short``: the 2,109 short (``is_short``) scenarios of ``cm_test.csv``;
  ``acceptable`` = 1 - ``label`` (the source's label 1 = the action is wrong).

Ids: `text_id` of the scenario.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from deepalign.data.bundled_files import bundled_file
from deepalign.data.csv_table import CsvTable, read_csv_table
from deepalign.data.dataset import Dataset
from deepalign.data.items import ItemSet, text_id
from deepalign.data.validation import describe
from deepalign.data.values import ValueRatings
from deepalign.errors import ConfigError

__all__ = ["load_ethics_commonsense_short", "load_ethics_justice"]

INFO = {
    "license": "MIT",
    "citation": "Hendrycks, D., Burns, C., Basart, S., Critch, A., Li, J., Song, D., & "
    "Steinhardt, J. (2021). Aligning AI With Shared Human Values. International Conference on "
    "Learning Representations (ICLR).",
}
JUSTICE_SPLITS = {"test": ("justice_test.csv",), "test_hard": ("justice_test_hard.csv",),
                  "all": ("justice_test.csv", "justice_test_hard.csv")}


@cache
def _table(name: str, *required: str) -> CsvTable:
    return read_csv_table(bundled_file("ethics", name), required=required)




def load_ethics_justice(split: str = "test") -> Dataset:
    """Justice scenarios with value ``reasonable`` (0/1, threshold 0.5)."""
    if split not in JUSTICE_SPLITS:
        raise ConfigError(f"split: expected one of {list(JUSTICE_SPLITS)}, got "
                          f"{describe(split)}. Fix: pass e.g. split='test'.")
    texts: list[str] = []
    labels: list[np.ndarray] = []
    for name in JUSTICE_SPLITS[split]:
        table = _table(name, "label", "scenario")
        texts += table.column("scenario")
        labels.append(table.floats("label", what="0/1 label"))
    return _dataset("ethics-justice", texts, np.concatenate(labels), "reasonable",
                    "ETHICS justice scenarios ('I deserve X because Y'); label 1 = reasonable",
                    [f"split {split!r}; reasonable = label"])


def load_ethics_commonsense_short() -> Dataset:
    """Short commonsense-morality scenarios with value ``acceptable`` = 1 - label."""
    table = _table("cm_test.csv", "label", "input", "is_short")
    rows = [r for r, flag in enumerate(table.column("is_short")) if flag == "True"]
    texts = [table.rows[r][table.index("input")] for r in rows]
    acceptable = 1.0 - table.floats("label", what="0/1 label")[rows]
    return _dataset("ethics-commonsense-short", texts, acceptable, "acceptable",
                    "ETHICS commonsense-morality short scenarios (first person)",
                    ["acceptable = 1 - label (source label 1 = wrong)",
                     "the commonsense scenarios come from Reddit posts"])


def _dataset(name: str, texts: list[str], ratings: np.ndarray, value: str, description: str,
             notes: list[str]) -> Dataset:
    items = ItemSet(ids=tuple(text_id(t) for t in texts), texts=tuple(texts))
    values = ValueRatings(items=items, names=(value,), ratings=ratings[:, None],
                          scales=((0.0, 1.0),))
    return Dataset(name=name, items=items, values=values,
                   info={"description": description, **INFO, "notes": notes})
