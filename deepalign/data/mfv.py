"""``mfv``: the 132 Moral Foundations Vignettes (Clifford et al., 2015).

Values (bad action = rating below threshold holds for every value):

- ``acceptability`` = 4 - ``wrongness_mean_0to4``: the source rates wrongness 0 (not at all
  wrong) .. 4 (extremely wrong); we reverse it so that low = bad. Scale 0..4, threshold 2.
- ``pct_care``, ``pct_fairness``, ``pct_loyalty``, ``pct_authority``, ``pct_sanctity``,
  ``pct_liberty``, ``pct_not_wrong``: % of raters naming that foundation as violated
  (0..100; the default threshold 50 is nominal for these shares).

Ids are the source's own ``id`` column.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from deepalign.data.bundled_files import bundled_file
from deepalign.data.csv_table import CsvTable, read_csv_table
from deepalign.data.dataset import Dataset
from deepalign.data.items import ItemSet
from deepalign.data.values import ValueRatings

__all__ = ["MFV_VALUES", "load_mfv"]

SHARES = ("pct_care", "pct_fairness", "pct_loyalty", "pct_authority", "pct_sanctity",
          "pct_liberty", "pct_not_wrong")
MFV_VALUES = ("acceptability", *SHARES)

INFO = {
    "license": "no explicit data licence; published table, shipped with attribution",
    "citation": "Clifford, S., Iyengar, V., Cabeza, R., & Sinnott-Armstrong, W. (2015). Moral "
    "foundations vignettes: a standardized stimulus database of scenarios based on moral "
    "foundations theory. Behavior Research Methods, 47(4), 1178-1198.",
}


@lru_cache(maxsize=1)
def _table() -> CsvTable:
    return read_csv_table(bundled_file("clifford2015_mfv", "vignettes.csv"),
                          required=("id", "text", "wrongness_mean_0to4", *SHARES))


def load_mfv() -> Dataset:
    """132 vignettes with ``acceptability`` (0..4) and 7 foundation shares (0..100)."""
    table = _table()
    items = ItemSet(ids=table.column("id"), texts=table.column("text"))
    columns = [4.0 - table.floats("wrongness_mean_0to4", what="rating")]
    columns += [table.floats(name, what="percentage") for name in SHARES]
    values = ValueRatings(items=items, names=MFV_VALUES, ratings=np.stack(columns, axis=1),
                          scales=((0.0, 4.0),) + ((0.0, 100.0),) * len(SHARES))
    return Dataset(
        name="mfv", items=items, values=values,
        info={"description": "132 Moral Foundations Vignettes with mean wrongness (reversed "
              "to acceptability) and the share of raters naming each violated foundation",
              **INFO, "notes": ["acceptability = 4 - wrongness_mean_0to4 (low = bad)"]},
    )
