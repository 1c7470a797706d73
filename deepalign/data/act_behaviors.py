"""``act-behaviors``: all 853 behaviours of the 2015 US Mechanical Turk ACT dictionary as arms.

A large arm set for value bandits (Smith-Lovin, Robinson, Cannon, Curdy & Morgan, 2019).
Ids are the dictionary's terms (``"argue_with"``); the text of a term follows the spirit of
`render_verb_action`: underscores become spaces, then ``" someone"`` is appended
(``"argue_with"`` -> ``"argue with someone"``), so a SpA-Verb verb whose ACT term is the
same has the same text in both sets.

Values ``act_evaluation``, ``act_potency``, ``act_activity``: the E, P, A means on
-4.3..4.3, threshold 0 (bad = rated below 0); spread unknown. No human similarity: kernels on
these arms come from encoders (pretrained, lexical, length, random-init).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from deepalign.data.act_epa import ACT_SCALE, SOURCE_DIR
from deepalign.data.bundled_files import bundled_file, bundled_label
from deepalign.data.csv_table import CsvTable, read_csv_table
from deepalign.data.dataset import Dataset
from deepalign.data.items import ItemSet
from deepalign.data.values import ValueRatings

__all__ = ["ACT_BEHAVIOR_VALUES", "act_behavior_text", "load_act_behaviors"]

ACT_BEHAVIOR_VALUES = ("act_evaluation", "act_potency", "act_activity")
_FILE = "usmturk2015_behaviors.csv"

INFO = {
    "license": "CC0 1.0 (ACT dictionary compilation)",
    "citation": "Smith-Lovin, L., Robinson, D. T., Cannon, B. C., Curdy, B. H., & Morgan, J. H. "
    "(2019). Mean Affective Ratings of 968 Identities, 853 Behaviors, and 660 Modifiers by "
    "Amazon Mechanical Turk Workers in 2015. University of Georgia: UGA Affect Control Theory "
    "Website.",
}


def act_behavior_text(term: str) -> str:
    """The action text of an ACT behaviour term: ``"argue_with"`` -> ``"argue with someone"``."""
    return term.replace("_", " ").strip() + " someone"


@lru_cache(maxsize=1)
def _table() -> CsvTable:
    return read_csv_table(bundled_file(SOURCE_DIR, _FILE), required=("term", "E", "P", "A"))


def load_act_behaviors() -> Dataset:
    """853 ACT behaviours with values ``act_evaluation``, ``act_potency``, ``act_activity``
    (-4.3..4.3, threshold 0); no similarity judgments."""
    table = _table()
    terms = tuple(term.strip().replace(" ", "_") for term in table.column("term"))
    items = ItemSet(ids=terms, texts=tuple(act_behavior_text(t) for t in terms))
    ratings = np.stack([table.floats(name, what="rating") for name in ("E", "P", "A")], axis=1)
    values = ValueRatings(items=items, names=ACT_BEHAVIOR_VALUES, ratings=ratings,
                          scales=(ACT_SCALE,) * len(ACT_BEHAVIOR_VALUES))
    return Dataset(
        name="act-behaviors", items=items, values=values,
        info={"description": f"all {len(items)} behaviours of the usmturk2015 ACT dictionary "
              "as actions on someone, with mean Evaluation, Potency and Activity ratings",
              **INFO,
              "notes": [f"source: {bundled_label(SOURCE_DIR, _FILE)} (columns term, E, P, A)",
                        "text = term with spaces for underscores + ' someone'"]},
    )
