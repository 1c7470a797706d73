"""Study 3's preservation suite in the report: a table and one sentence, from the saved
encoder records (`deepalign.studies.trained_analysis.read_encoder_records`) alone.

The preservation suite is the Spearman alignment of an encoder on every bundled human
similarity set it was not trained on, before and after training (the trainer's
`summary.json`); beside it, the held-out generalization gains (pairs of two held-out items,
"new x new", and of one held-out and one train item, "cross").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from deepalign.reports.tables import Table
from deepalign.studies.trained_analysis import EncoderRecord

__all__ = ["NOT_RECORDED", "preservation_table", "preservation_text", "recorded"]

_WHAT = ("Preservation suite (Spearman alignment on every bundled human similarity set the "
         "encoder was not trained on, before and after training)")
#: What the report says when no encoder run recorded the suite.
NOT_RECORDED = f"{_WHAT}: not recorded by these encoder runs."
_GAINS = (("new_x_new", "new\u00d7new held-out gain"), ("cross", "cross gain"))


def recorded(records: Sequence[EncoderRecord]) -> tuple[EncoderRecord, ...]:
    """The records with a preservation suite: the paired runs (encoder seed order), then the
    transfer runs."""
    shown = [r for r in records if r.preservation]
    return tuple(sorted(shown, key=lambda r: (r.study != "trained", r.encoder_seed
                                              if r.study == "trained" else 0)))


def _label(record: EncoderRecord) -> str:
    if record.study == "trained":
        return f"seed {record.encoder_seed}"
    return f"aligned on {record.train_dataset} (seed {record.encoder_seed})"


def _number(value: float, spec: str) -> str:
    return "n/a" if not math.isfinite(value) else format(value, spec)


def _cell(row: dict[str, float] | None, why: str | None) -> str:
    if row is None:
        return why or "n/a"
    return (f"{_number(row['before'], '.3f')} \u2192 {_number(row['after'], '.3f')} "
            f"({_number(row['change'], '+.4f')})")


def _mean(rows: Sequence[dict[str, float]], key: str) -> float:
    values = np.array([row[key] for row in rows], dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def preservation_table(records: Sequence[EncoderRecord]) -> Table:
    """One row per encoder run with a suite (paired runs by encoder seed, then their mean over
    seeds, then the transfer runs): per suite set "before → after (change)" (a set a run
    left out shows why, e.g. "trained on"), then the new×new held-out and cross gains."""
    shown = recorded(records)
    sets = list(dict.fromkeys(name for r in shown for name in r.preservation))
    rows = []

    def add(label: str, suite: dict, excluded: dict, gains: dict) -> None:
        rows.append((label, *(_cell(suite.get(s), excluded.get(s)) for s in sets),
                     *(_number(gains.get(key, {}).get("gain", math.nan), "+.3f")
                       for key, _ in _GAINS)))

    paired = [r for r in shown if r.study == "trained"]
    for record in paired:
        add(_label(record), record.preservation, record.excluded, record.generalization)
    if len(paired) > 1:
        mean_suite = {}
        for name in sets:
            entries = [r.preservation[name] for r in paired if name in r.preservation]
            if entries:
                mean_suite[name] = {k: _mean(entries, k) for k in ("before", "after", "change")}
        gains = {key: {"gain": _mean([r.generalization.get(key, {"gain": math.nan})
                                      for r in paired], "gain")} for key, _ in _GAINS}
        add(f"mean ({len(paired)} seeds)", mean_suite, {}, gains)
    for record in shown:
        if record.study != "trained":
            add(_label(record), record.preservation, record.excluded, record.generalization)
    left_out = {name: why for r in shown for name, why in r.excluded.items() if name not in sets}
    note = ("; left out of the suite: " + ", ".join(f"{n} ({w})" for n, w in left_out.items())
            if left_out else "")
    return Table(
        f"{_WHAT}: before \u2192 after (change) per set, beside the encoder's held-out "
        f"generalization gains (after minus before, Spearman with human similarity){note}",
        ("encoder", *(_header(name, shown) for name in sets), *(words for _, words in _GAINS)),
        tuple(rows),
    )


def _header(name: str, records: Sequence[EncoderRecord]) -> str:
    """The set's name and its number of observed pairs (from the first run that has it)."""
    pairs = next(r.preservation[name]["pairs"] for r in records if name in r.preservation)
    return f"{name} ({pairs:.0f} pairs)" if math.isfinite(pairs) else name


def preservation_text(records: Sequence[EncoderRecord]) -> str:
    """One sentence: the largest drop over encoder runs and suite sets, or `NOT_RECORDED`."""
    changes = [(row["change"], name, record) for record in recorded(records)
               for name, row in record.preservation.items() if math.isfinite(row["change"])]
    if not changes:
        return NOT_RECORDED
    change, name, record = min(changes, key=lambda c: c[0])
    where = f"{name}, {'encoder ' if record.study != 'trained' else ''}{_label(record)}"
    n_runs = len({(r.study, r.train_dataset, r.encoder_seed) for _, _, r in changes})
    span = f"over {n_runs} encoder run{'s' if n_runs > 1 else ''} and their suite sets"
    if change < 0:
        return (f"{_WHAT}: largest drop on any bundled set not trained on: {-change:.4f} "
                f"({where}; {span}).")
    return (f"{_WHAT}: no bundled set not trained on lost alignment; smallest change "
            f"{change:+.4f} ({where}; {span}).")
