"""The Glasgow Norms (Scott et al., 2019): valence, arousal and dominance of English words.

The file has two header rows (scale names, then ``M, SD, N`` under each). Only bare-word
rows are used (``address``, not the sense rows like ``address (speak to)``), matched by
exact, case-sensitive word. Valence, arousal and dominance are rated 1..9.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from deepalign.data.bundled_files import bundled_file
from deepalign.data.csv_table import parse_float, read_csv_table
from deepalign.data.validation import data_error

__all__ = ["GLASGOW_SCALE", "GLASGOW_SCALES", "GlasgowRating", "glasgow_rating"]

GLASGOW_SCALE = (1.0, 9.0)
# our value name suffix -> the file's scale column
GLASGOW_SCALES = {"valence": "VAL", "arousal": "AROU", "dominance": "DOM"}


class GlasgowRating(NamedTuple):
    """Mean, SD and number of raters of one word on one scale."""

    mean: float
    sd: float
    n: float


@lru_cache(maxsize=1)
def _norms() -> dict[str, dict[str, GlasgowRating]]:
    """word -> {"valence": ..., "arousal": ..., "dominance": ...} for bare-word rows."""
    table = read_csv_table(bundled_file("glasgow2019_norms", "glasgow_norms.csv"), header=False)
    scales, stats = table.rows[0], table.rows[1]
    columns = {}
    for name, code in GLASGOW_SCALES.items():
        if code not in scales or stats[scales.index(code): scales.index(code) + 3] != (
            "M", "SD", "N"
        ):
            raise data_error(table.source, "lines 1-2", f"a {code} column with M, SD, N",
                             "another layout", "restore the original Glasgow Norms file")
        columns[name] = scales.index(code)
    norms: dict[str, dict[str, GlasgowRating]] = {}
    for r, row in enumerate(table.rows[2:], start=2):
        word = row[0]
        if "(" in word:
            continue
        where = table.where(r)
        norms[word] = {
            name: GlasgowRating(*(parse_float(row[k + o], table.source, where) for o in range(3)))
            for name, k in columns.items()
        }
    return norms


def glasgow_rating(word: str, scale: str) -> GlasgowRating | None:
    """The bare-word rating of ``word`` on ``scale`` ("valence" | "arousal" | "dominance")."""
    entry = _norms().get(word)
    return None if entry is None else entry[scale]
