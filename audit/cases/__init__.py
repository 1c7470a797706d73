"""The audit's surfaces, one module each, in the order of issue 16's table, then the
bandit's options."""

from __future__ import annotations

from dataclasses import dataclass

from audit.cases import bandit, encoders, items_csv, report, similarity, study, train
from audit.harness import Case


@dataclass(frozen=True)
class Surface:
    name: str            # the id used on the command line and in logs
    label: str           # the row label of the table
    cases: list[Case]
    needs: tuple[str, ...] = ()  # fixtures (audit.fixtures) built before its cases run


SURFACES = [
    Surface("items-csv", "items CSV and dataset cards (`data validate`)", items_csv.CASES),
    Surface("similarity", "similarity files", similarity.CASES),
    Surface("study", "study recipes / `deepalign.study`", study.CASES, study.NEEDS),
    Surface("train", "training config / `deepalign.train`", train.CASES, train.NEEDS),
    Surface("encoders", "encoder dirs and checkpoints", encoders.CASES, encoders.NEEDS),
    Surface("report", "results tables given to `deepalign.report`", report.CASES,
            report.NEEDS),
    Surface("bandit", "options of `deepalign.bandit` (beyond the issue's six)", bandit.CASES),
]

for _surface in SURFACES:
    _ids = [case.id for case in _surface.cases]
    assert len(_ids) == len(set(_ids)), f"duplicate case id in {_surface.name}"
