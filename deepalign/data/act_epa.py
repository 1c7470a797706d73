"""Affect Control Theory (ACT) behaviour dictionaries: Evaluation, Potency, Activity ratings,
and `render_verb_action`, the one rule that turns a verb into an action text.

Dictionaries are consulted in this order (newest, largest first): ``usmturk2015``
(US Amazon Mechanical Turk workers, 2015; columns ``term,E,P,A``), then the older Interact
dictionaries ``indiana2003``, ``ontario2001``, ``nc1978`` (``.dat``: columns 2-4 male E/P/A,
5-7 female E/P/A; we average male and female). Multi-word terms are written ``argue_with``
(``.dat`` files use spaces; we replace them by ``_``). Within one dictionary the first row of a
repeated term wins (``nc1978`` lists ``confide in``, ``consult`` and ``curse`` twice).
Scale: -4.3 (bad, weak, passive) .. +4.3 (good, powerful, active).
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import NamedTuple

from deepalign.data.bundled_files import bundled_file
from deepalign.data.csv_table import parse_float, read_csv_table
from deepalign.data.validation import describe
from deepalign.errors import ConfigError

__all__ = [
    "ACT_DICTIONARIES",
    "ACT_SCALE",
    "ActEntry",
    "act_entry",
    "render_verb_action",
]

ACT_DICTIONARIES = ("usmturk2015", "indiana2003", "ontario2001", "nc1978")
ACT_SCALE = (-4.3, 4.3)
SOURCE_DIR = "act_epa_behaviors"


class ActEntry(NamedTuple):
    """The ACT term chosen for a verb, the dictionary it came from, and its E, P, A means."""

    term: str
    dictionary: str
    evaluation: float
    potency: float
    activity: float


@cache
def _dictionary(key: str) -> dict[str, tuple[float, float, float]]:
    """term -> (E, P, A) of one dictionary (parsed once; callers must not mutate)."""
    terms: dict[str, tuple[float, float, float]] = {}
    if key == "usmturk2015":
        table = read_csv_table(bundled_file(SOURCE_DIR, f"{key}_behaviors.csv"),
                               required=("term", "E", "P", "A"))
        columns = [table.floats(name) for name in ("E", "P", "A")]
        for r, term in enumerate(table.column("term")):
            terms.setdefault(term.replace(" ", "_"), tuple(float(c[r]) for c in columns))
        return terms
    table = read_csv_table(bundled_file(SOURCE_DIR, f"{key}_behaviors.dat"), header=False,
                           skip_initial_space=True)
    for r, row in enumerate(table.rows):
        where = table.where(r)
        male = [parse_float(cell, table.source, where) for cell in row[1:4]]
        female = [parse_float(cell, table.source, where) for cell in row[4:7]]
        mean = tuple((m + f) / 2.0 for m, f in zip(male, female))
        terms.setdefault(row[0].replace(" ", "_"), mean)
    return terms


def _check_verb(verb: object) -> str:
    if not isinstance(verb, str) or not verb.strip() or " " in verb.strip():
        raise ConfigError(f"verb: expected one word such as 'kill', got {describe(verb)}. "
                          "Fix: pass the verb lemma.")
    return verb.strip()


def act_entry(verb: str) -> ActEntry | None:
    """The ACT entry for ``verb`` by the rule of `render_verb_action`, or None if none."""
    return _act_entry(_check_verb(verb))


@lru_cache(maxsize=4096)
def _act_entry(verb: str) -> ActEntry | None:
    for key in ACT_DICTIONARIES:
        if verb in _dictionary(key):
            return ActEntry(verb, key, *_dictionary(key)[verb])
    for key in ACT_DICTIONARIES:
        if "_" in verb:
            particles = sorted(t for t in _dictionary(key) if t.startswith(verb + "_"))
        else:
            particles = _particle_terms(key).get(verb, [])
        if particles:
            return ActEntry(particles[0], key, *_dictionary(key)[particles[0]])
    return None


@cache
def _particle_terms(key: str) -> dict[str, list[str]]:
    """verb -> its ``verb_<particle...>`` terms in one dictionary, sorted."""
    out: dict[str, list[str]] = {}
    for term in _dictionary(key):
        if "_" in term:
            out.setdefault(term.split("_", 1)[0], []).append(term)
    return {verb: sorted(terms) for verb, terms in out.items()}


def render_verb_action(verb: str) -> str:
    """The text of the verb as an action on someone, e.g. ``"kill"`` -> ``"kill someone"``.

    Rule (the same for every dataset, so one id has one text everywhere):

    1. if some ACT dictionary (usmturk2015, then indiana2003, ontario2001, nc1978) has the
       bare term ``verb``, the text is ``"<verb> someone"``;
    2. otherwise, if one has terms ``verb_<particle...>``, take the first dictionary in that
       order that has any, and its first such term in sorted order; the text is that term
       with spaces for underscores plus ``" someone"`` (``"argue_with"`` -> ``"argue with
       someone"``), and the verb's ACT ratings come from that entry;
    3. otherwise ``"<verb> someone"``.

    Of the 825 SpA-Verb verbs, 85 get a particle this way.
    """
    verb = _check_verb(verb)
    entry = _act_entry(verb)
    term = verb if entry is None else entry.term
    return term.replace("_", " ") + " someone"
