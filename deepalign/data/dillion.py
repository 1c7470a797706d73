"""``dillion-morality``: 480 short behaviours with mean human morality ratings
(Dillion, Tandon, Gu & Gray, 2023), pooled from five published studies (``source_study``).

Value ``morality``: -4 (extremely unethical) .. +4 (extremely ethical); threshold 0, so a bad
action is one rated below 0. Ids: `text_id` of the behaviour.
"""

from __future__ import annotations

from functools import lru_cache

from deepalign.data.bundled_files import bundled_file
from deepalign.data.csv_table import CsvTable, read_csv_table
from deepalign.data.dataset import Dataset
from deepalign.data.items import ItemSet, text_id
from deepalign.data.values import ValueRatings

__all__ = ["load_dillion_morality"]

INFO = {
    "license": "Apache-2.0",
    "citation": "Dillion, D., Tandon, N., Gu, Y., & Gray, K. (2023). Can AI language models "
    "replace human participants? Trends in Cognitive Sciences, 27(7), 597-600; plus the source "
    "studies named in the source_study column (Clifford, Cook, Effron, Grizzard, Mickelberg).",
}


@lru_cache(maxsize=1)
def _table() -> CsvTable:
    return read_csv_table(bundled_file("dillion2023_morality", "ratings.csv"),
                          required=("source_study", "action", "morality_mean"))


def load_dillion_morality() -> Dataset:
    """480 behaviours with value ``morality`` (-4..4); no similarity judgments."""
    table = _table()
    texts = table.column("action")
    items = ItemSet(ids=tuple(text_id(t) for t in texts), texts=texts)
    ratings = table.floats("morality_mean", what="rating")[:, None]
    values = ValueRatings(items=items, names=("morality",), ratings=ratings,
                          scales=((-4.0, 4.0),))
    studies: dict[str, int] = {}
    for study in table.column("source_study"):
        studies[study] = studies.get(study, 0) + 1
    return Dataset(
        name="dillion-morality", items=items, values=values,
        info={"description": "480 short behaviours ('Person X ...') with mean human "
              "morality ratings", **INFO, "notes": [f"items per source study: {studies}"]},
    )
