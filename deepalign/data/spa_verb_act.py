"""``spa-verb-act``: SpA-Verb verbs as actions, with human similarity *and* human values.

Similarity: the complete per-class matrices of ``phase2_classes/classK.txt`` for the selected
classes. SpA-Verb judged pairs only within a class, so a multi-class selection is block-wise:
cross-class pairs stay unobserved (mask False), never invented. A pair judged in two selected
classes (e.g. ``whip``/``bite`` in classes 1 and 11) gets the mean of the two distances, which
is what ``SpA-Verb.txt`` reports for such pairs. Distance -> similarity as in ``spa-verb``:
``sim = 1 - d / max_d`` with ``max_d`` the largest distance over all 17 class files, so a
pair's similarity does not depend on which classes are selected.

Values (by name):

- ``act_evaluation``, ``act_potency``, ``act_activity``: ACT E/P/A of the verb's entry chosen
  by `render_verb_action` (usmturk2015 first, then indiana2003, ontario2001, nc1978; the
  ``.dat`` dictionaries' male and female means averaged); scale -4.3..4.3, threshold 0; spread
  unknown (nan).
- ``glasgow_valence``, ``glasgow_arousal``, ``glasgow_dominance``: Glasgow Norms mean of the
  bare verb (exact word match); scale 1..9, threshold 5; spread = the norms' SD.

Items lacking any requested value are dropped; the loader warns with the count and records it
in ``info["notes"]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from deepalign.data.act_epa import ACT_SCALE, act_entry, render_verb_action
from deepalign.data.bundled_files import bundled_label
from deepalign.data.dataset import Dataset
from deepalign.data.glasgow import GLASGOW_SCALE, glasgow_rating
from deepalign.data.items import ItemSet
from deepalign.data.pairs import judgments_from_pairs
from deepalign.data.similarity import SimilarityJudgments
from deepalign.data.spa_verb import N_CLASSES, SPA_VERB_INFO, read_pairs, verbs_in_class_order
from deepalign.data.validation import data_error, describe
from deepalign.data.values import ValueRatings
from deepalign.errors import ConfigError

__all__ = ["DEFAULT_CLASSES", "VALUE_NAMES", "load_spa_verb_act"]

DEFAULT_CLASSES = (1, 2, 6, 7)
VALUE_NAMES = (
    "act_evaluation",
    "act_potency",
    "act_activity",
    "glasgow_valence",
    "glasgow_arousal",
    "glasgow_dominance",
)
ACT_FIELDS = {"act_evaluation": "evaluation", "act_potency": "potency", "act_activity": "activity"}

INFO = {
    "license": "CC BY (SpA-Verb); CC0 (ACT dictionaries); CC BY 4.0 (Glasgow Norms)",
    "citation": SPA_VERB_INFO["citation"]
    + " | ACT: Smith-Lovin, L., Robinson, D. T., Cannon, B. C., Curdy, B. H., & Morgan, J. H. "
    "(2019). Mean Affective Ratings of 968 Identities, 853 Behaviors, and 660 Modifiers by "
    "Amazon Mechanical Turk Workers in 2015 (older dictionaries: see DATA_LICENSES.md)"
    " | Scott, G. G., Keitel, A., Becirspahic, M., Yao, B., & Sereno, S. C. (2019). The "
    "Glasgow Norms: Ratings of 5,500 words on nine scales. Behavior Research Methods, 51, "
    "1258-1270.",
}


def _check_options(classes: Sequence[int], values: Sequence[str]) -> tuple[tuple, tuple]:
    if isinstance(classes, (str, bytes)) or not isinstance(classes, Sequence) or not classes:
        raise ConfigError(f"classes: expected a non-empty sequence of class numbers 1..17, got "
                          f"{describe(classes)}. Fix: pass e.g. classes=(1, 2).")
    for k in classes:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= N_CLASSES:
            raise ConfigError(f"classes: expected class numbers 1..{N_CLASSES}, got "
                              f"{describe(k)}. Fix: pass e.g. classes=(1, 2).")
    if len(set(classes)) != len(classes):
        raise ConfigError(f"classes: expected each class once, got {list(classes)}. "
                          "Fix: remove the repeat.")
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ConfigError(f"values: expected a sequence of value names, got {describe(values)}."
                          " Fix: pass e.g. values=('act_evaluation',).")
    for name in values:
        if name not in VALUE_NAMES:
            raise ConfigError(f"values: expected names from {list(VALUE_NAMES)}, got "
                              f"{describe(name)}. Fix: use one of those names.")
    if len(set(values)) != len(values):
        raise ConfigError(f"values: expected each name once, got {list(values)}. "
                          "Fix: remove the repeat.")
    return tuple(int(k) for k in classes), tuple(values)


def _value_of(verb: str, name: str) -> tuple[float, float] | None:
    """(rating, spread) of ``verb`` on value ``name``; None when the sources lack it."""
    if name in ACT_FIELDS:
        entry = act_entry(verb)
        return None if entry is None else (getattr(entry, ACT_FIELDS[name]), float("nan"))
    rating = glasgow_rating(verb, name.removeprefix("glasgow_"))
    return None if rating is None else (rating.mean, rating.sd)


@lru_cache(maxsize=1)
def class_max_distance() -> float:
    """The largest distance over all 17 class files."""
    return max(float(read_pairs("phase2_classes", f"class{k}.txt")[2].max())
               for k in range(1, N_CLASSES + 1))


def load_spa_verb_act(
    classes: Sequence[int] = DEFAULT_CLASSES, values: Sequence[str] = ("act_evaluation",)
) -> Dataset:
    """SpA-Verb verbs of ``classes`` as actions with similarity and the requested values.

    Args:
        classes: SpA-Verb class numbers (1..17); default the morally loaded 1, 2, 6, 7.
            Items come in this class order (each verb once, at its first class).
        values: value names from `VALUE_NAMES` (may be empty: similarity only).

    Returns:
        a `Dataset`; ids are verb lemmas, texts `render_verb_action(verb)`.
    """
    classes, values = _check_options(classes, values)
    verbs = verbs_in_class_order(classes)
    kept, ratings, spreads = [], [], []
    for verb in verbs:
        row = [_value_of(verb, name) for name in values]
        if all(cell is not None for cell in row):
            kept.append(verb)
            ratings.append([cell[0] for cell in row])
            spreads.append([cell[1] for cell in row])
    notes = [f"classes {list(classes)}: {len(verbs)} verbs"]
    dropped = len(verbs) - len(kept)
    if dropped:
        message = (f"spa-verb-act: dropped {dropped} of {len(verbs)} verbs without a rating "
                   f"for every value of {list(values)}")
        warnings.warn(message, UserWarning, stacklevel=3)
        notes.append(message)
    if not kept:
        raise data_error("spa-verb-act", f"classes {list(classes)}", "at least one verb with "
                         f"all of {list(values)}", "none", "select more classes or fewer values")
    items = ItemSet(ids=tuple(kept), texts=tuple(render_verb_action(v) for v in kept))
    similarity, pair_notes = _class_judgments(items, classes)
    notes += pair_notes
    value_ratings = None
    if values:
        scales = tuple(ACT_SCALE if name in ACT_FIELDS else GLASGOW_SCALE for name in values)
        value_ratings = ValueRatings(items=items, names=values, ratings=np.array(ratings),
                                     scales=scales, spread=np.array(spreads))
        sources = {}
        for verb in kept:
            entry = act_entry(verb)
            if entry is not None:
                sources[entry.dictionary] = sources.get(entry.dictionary, 0) + 1
        if any(name in ACT_FIELDS for name in values):
            notes.append(f"ACT entries per dictionary: {sources}")
    return Dataset(
        name="spa-verb-act",
        items=items,
        similarity=similarity,
        values=value_ratings,
        info={
            "description": "SpA-Verb verbs as actions with complete within-class human "
            "similarity and ACT / Glasgow value ratings",
            **INFO,
            "notes": notes,
            "classes": classes,
            "similarity_source": "spa-verb",  # the same SpA-Verb judgments, a subset
        },
    )


def _class_judgments(
    items: ItemSet, classes: tuple[int, ...]
) -> tuple[SimilarityJudgments, list[str]]:
    position = {v: i for i, v in enumerate(items.ids)}
    first, second, scores, places = [], [], [], []
    for k in classes:
        word1, word2, distances, lines = read_pairs("phase2_classes", f"class{k}.txt")
        for a, b, d, line in zip(word1, word2, distances, lines):
            if a in position and b in position:
                first.append(position[a])
                second.append(position[b])
                scores.append(d)
                places.append(f"class{k}.txt line {line}")
    max_distance = class_max_distance()
    notes = [f"distance -> similarity: sim = 1 - d / {max_distance!r} (max over all classes)"]
    if not scores:
        # a single verb: only its diagonal is observed
        first, second, scores, places = [0], [0], [0.0], ["(none)"]
    similarity, pair_notes = judgments_from_pairs(
        items, np.array(first), np.array(second), np.array(scores), kind="distance",
        scale=(0.0, max_distance), source=bundled_label("spa_verb", "phase2_classes"),
        locate=lambda j: places[j], duplicates="average", self_pairs="drop",
    )
    return similarity, notes + pair_notes
