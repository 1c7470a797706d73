"""SpA-Verb (Majewska et al., 2021): 825 English verbs in 17 semantic classes, with human
spatial-arrangement distances between verbs of the same class.

Source files (tab-separated ``Word1 Word2 Score``, Score a scaled Euclidean *distance*, lower
= more alike): ``SpA-Verb.txt`` (all 29,721 judged pairs; a pair judged in two classes carries
the mean of the two class scores, as we checked against the class files) and
``phase2_classes/classK.txt`` (the complete matrix of class K). ``17verb-classes.txt`` lists
the classes; 116 verbs are in two or more classes and are one item each.

Distance -> similarity: ``sim = 1 - d / max_d`` with ``max_d`` the largest distance of the
source (SpA-Verb.txt: 1.719673603; the class files: 1.7196736032499778, the same pair at full
precision); ``scale = (0, max_d)`` keeps the original units.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np

from deepalign.data.act_epa import render_verb_action
from deepalign.data.bundled_files import bundled_file, bundled_label
from deepalign.data.csv_table import read_csv_table
from deepalign.data.dataset import Dataset
from deepalign.data.items import ItemSet
from deepalign.data.pairs import judgments_from_pairs

__all__ = ["N_CLASSES", "SPA_VERB_INFO", "load_spa_verb", "spa_verb_classes"]

N_CLASSES = 17
SOURCE_DIR = "spa_verb"

SPA_VERB_INFO = {
    "license": "CC BY",
    "citation": (
        "Majewska, O., McCarthy, D., van den Bosch, J. J. F., Kriegeskorte, N., Vulić, I., & "
        "Korhonen, A. (2021). Semantic Data Set Construction from Human Clustering and Spatial "
        "Arrangement. Computational Linguistics, 47(1). Also: Spatial Multi-Arrangement for "
        "Clustering and Multi-way Similarity Dataset Construction, LREC 2020, pp. 5751-5760."
    ),
}


def spa_verb_classes() -> dict[int, tuple[str, ...]]:
    """The 17 Phase-1 classes: class number -> its verbs in file order (a fresh dict)."""
    return dict(_classes())


@lru_cache(maxsize=1)
def _classes() -> tuple[tuple[int, tuple[str, ...]], ...]:
    table = read_csv_table(bundled_file(SOURCE_DIR, "17verb-classes.txt"), delimiter="\t",
                           header=False, ragged=True)
    return tuple((int(row[0]), tuple(v for v in row[1:] if v)) for row in table.rows)


def verbs_in_class_order(classes: tuple[int, ...]) -> tuple[str, ...]:
    """Verbs of ``classes`` (in that order), each once, at its first class, file order within."""
    members = dict(_classes())
    seen: dict[str, None] = {}
    for k in classes:
        for verb in members[k]:
            seen.setdefault(verb, None)
    return tuple(seen)


@cache
def read_pairs(*parts: str) -> tuple[tuple[str, ...], tuple[str, ...], np.ndarray, tuple[int, ...]]:
    """``(word1, word2, distance float64 n_pairs (read-only), file lines)`` of a pair file."""
    table = read_csv_table(bundled_file(SOURCE_DIR, *parts), delimiter="\t",
                           required=("Word1", "Word2", "Score"))
    scores = table.floats("Score", what="distance")
    scores.setflags(write=False)
    return table.column("Word1"), table.column("Word2"), scores, table.lines


def load_spa_verb() -> Dataset:
    """All 825 SpA-Verb verbs with the 29,721 judged pairs of ``SpA-Verb.txt``; no values.

    Item ids are verb lemmas in class order (class 1's verbs, then class 2's new ones, ...);
    texts are `render_verb_action` of the verb. Cross-class pairs were never judged and are
    unobserved (mask False).
    """
    verbs = verbs_in_class_order(tuple(range(1, N_CLASSES + 1)))
    items = ItemSet(ids=verbs, texts=tuple(render_verb_action(v) for v in verbs))
    word1, word2, distances, lines = read_pairs("SpA-Verb.txt")
    position = {v: i for i, v in enumerate(verbs)}
    first = np.fromiter((position[w] for w in word1), dtype=np.int64, count=len(word1))
    second = np.fromiter((position[w] for w in word2), dtype=np.int64, count=len(word2))
    max_distance = float(distances.max())
    source = bundled_label(SOURCE_DIR, "SpA-Verb.txt")
    similarity, notes = judgments_from_pairs(
        items, first, second, distances, kind="distance", scale=(0.0, max_distance),
        source=source, locate=lambda k: f"line {lines[k]}",
    )
    n_particle = sum(1 for v in verbs if render_verb_action(v) != f"{v} someone")
    notes = notes + [
        f"distance -> similarity: sim = 1 - d / {max_distance!r} (max distance of the file)",
        f"{n_particle} of {len(verbs)} verb texts use an ACT particle term "
        "(render_verb_action)",
    ]
    return Dataset(
        name="spa-verb",
        items=items,
        similarity=similarity,
        info={
            "description": "825 English verbs as actions ('kill someone'); human similarity "
            "from spatial multi-arrangement within 17 semantic classes",
            **SPA_VERB_INFO,
            "notes": notes,
        },
    )
