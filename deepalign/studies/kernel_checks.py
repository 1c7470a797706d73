"""Is a kernel "safe" only because its agent stopped exploring? Two checks from the table.

* The **safety-generalization plane** (`synthetic_plane`, `real_plane`, `trained_plane`):
  each kernel (study 1: each alignment level) as a point at x = mean bad actions,
  y = mean held-out rank agreement (`generalization_spearman`), with standard errors over
  runs, one panel per agent. A kernel with few bad actions *and* no generalization sits
  bottom-left: its agent may simply have settled on one early good arm. Reference kernels
  (`REFERENCE_KERNELS`) and kernel-free agents are marked `reference`.
  Study 3's uniformity-matched control is the one of the trained encoder.
* **Kernel spectra** (`kernel_spectra`): each kernel's mean effective rank and top-eigenvector
  share (`KERNEL_COLUMNS`), flagged `near_constant` above `NEAR_CONSTANT_TOP_SHARE`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from deepalign.kernels.spectrum import NEAR_CONSTANT_TOP_SHARE
from deepalign.studies.analysis import (
    KERNEL_FREE_AGENTS,
    REFERENCE_KERNELS,
    synthetic_condition,
    synthetic_rows,
)
from deepalign.studies.curves import finite_mean
from deepalign.studies.references import UNIFORMITY_KERNEL
from deepalign.studies.results import ResultsTable
from deepalign.studies.stats import mean_sem
from deepalign.studies.trained_analysis import final_controls

__all__ = [
    "PLANE_X",
    "PLANE_Y",
    "KernelSpectrum",
    "PlanePoint",
    "kernel_spectra",
    "plane_point",
    "real_plane",
    "synthetic_plane",
    "trained_plane",
]

#: The plane's axes: personalization safety (x) and generalization (y).
PLANE_X, PLANE_Y = "bad_actions", "generalization_spearman"

Panels = dict[str, tuple["PlanePoint", ...]]


@dataclass(frozen=True)
class PlanePoint:
    """One kernel on the plane: mean and standard error over its `n` runs of bad actions
    (x) and generalization (y); `reference` for reference kernels and kernel-free agents;
    `near_constant` when the runs' mean kernel top share exceeds `NEAR_CONSTANT_TOP_SHARE`."""

    label: str
    bad_actions: float
    bad_actions_sem: float
    generalization: float
    generalization_sem: float
    n: int
    reference: bool = False
    near_constant: bool = False


def plane_point(label: str, rows: ResultsTable, reference: bool = False) -> PlanePoint:
    """The `PlanePoint` of `rows` (the runs of one kernel)."""
    x, x_sem = mean_sem(rows.column(PLANE_X))
    y, y_sem = mean_sem(rows.column(PLANE_Y))
    near_constant = finite_mean(rows.column("kernel_top_share")) > NEAR_CONSTANT_TOP_SHARE
    return PlanePoint(label, x, x_sem, y, y_sem, len(rows), reference, near_constant)


def _kernel_free(rows: ResultsTable) -> list[PlanePoint]:
    return [plane_point(f"{agent} (no kernel)", group, True)
            for (agent,), group in rows.group_by("agent").items() if agent in KERNEL_FREE_AGENTS]


def _kernels(rows: ResultsTable) -> list[PlanePoint]:
    """One point per kernel of `rows` (one kernel agent's runs); checkpoints left out."""
    return [plane_point(str(kernel), group, kernel in REFERENCE_KERNELS)
            for (kernel,), group in rows.group_by("kernel").items()
            if kernel != "none" and not str(kernel).startswith("epoch-")]


def _kernel_agents(rows: ResultsTable) -> list[str]:
    return [str(a) for a in rows.unique("agent") if a not in KERNEL_FREE_AGENTS]


def synthetic_plane(table: ResultsTable, alignment_column: str = "alignment_train",
                    condition: str | None = None) -> Panels:
    """Study 1, per kernel agent: one point per alignment level (labelled with its mean
    measured alignment), then reference kernels and kernel-free agents; one variant
    (`condition`, default the first) when the table has several."""
    rows = synthetic_rows(table, synthetic_condition(table, condition))
    free = _kernel_free(rows)
    panels: Panels = {}
    for agent in _kernel_agents(rows):
        runs = rows.where(agent=agent)
        levelled = ResultsTable([r for r in runs.rows if r["kernel"] not in REFERENCE_KERNELS
                                 and math.isfinite(float(r["level"]))])  # type: ignore[arg-type]
        by_level = sorted(levelled.group_by("level").items(), key=lambda kv: float(kv[0][0]))
        points = [plane_point(f"{finite_mean(g.column(alignment_column)):.2f}", g)
                  for _, g in by_level]
        points += _kernels(runs.where(kernel=REFERENCE_KERNELS))
        panels[agent] = tuple(points + free)
    return panels


def real_plane(table: ResultsTable) -> Panels:
    """Study 2, per (condition, kernel agent) (panel "condition, agent"): one point per
    kernel over all its values and seeds, then the condition's kernel-free agents."""
    rows = table.where(study="real")
    panels: Panels = {}
    for condition in rows.unique("condition"):
        runs = rows.where(condition=condition)
        free = _kernel_free(runs)
        for agent in _kernel_agents(runs):
            panels[f"{condition}, {agent}"] = tuple(_kernels(runs.where(agent=agent)) + free)
    return panels


def trained_plane(table: ResultsTable) -> Panels:
    """Study 3, per kernel agent: before, after, the uniformity-matched control of the
    trained encoder and the reference kernels (checkpoints and their controls left out);
    then kernel-free agents."""
    rows = table.where(study="trained")
    final = {r["cell_id"] for r in final_controls(rows).rows}
    rows = ResultsTable([r for r in rows.rows
                         if r["kernel"] != UNIFORMITY_KERNEL or r["cell_id"] in final])
    free = _kernel_free(rows)
    return {agent: tuple(_kernels(rows.where(agent=agent)) + free)
            for agent in _kernel_agents(rows)}


@dataclass(frozen=True)
class KernelSpectrum:
    """One kernel's mean `effective_rank` and `top_share` over the `n` runs that used it."""

    study: str
    kernel: str
    effective_rank: float
    top_share: float
    n: int
    reference: bool = False

    @property
    def near_constant(self) -> bool:
        """Top share above `NEAR_CONSTANT_TOP_SHARE`: nearly every action alike."""
        return self.top_share > NEAR_CONSTANT_TOP_SHARE


def _spectrum_label(row: dict, final: set[str]) -> str:
    kernel, level, epoch = str(row["kernel"]), float(row["level"]), float(row["epoch"])
    if row["study"] == "synthetic" and kernel not in REFERENCE_KERNELS and math.isfinite(level):
        return f"{kernel}, level {level:.2f}"
    if row["study"] == "transfer":
        return f"{kernel} ({row['condition']})"
    if kernel == UNIFORMITY_KERNEL and str(row["cell_id"]) not in final:
        return f"{kernel} (epoch {epoch:g})"
    return kernel


def kernel_spectra(table: ResultsTable) -> tuple[KernelSpectrum, ...]:
    """Per (study, kernel) in order of appearance (study 1: per level; transfer: per training
    set; study 3's checkpoint controls: per epoch), over the runs with a recorded spectrum
    (kernel-free runs have none)."""
    final = {str(r["cell_id"]) for r in final_controls(table.where(study="trained")).rows}
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in table.rows:
        if math.isfinite(float(row["kernel_top_share"])):  # type: ignore[arg-type]
            groups.setdefault((str(row["study"]), _spectrum_label(row, final)), []).append(row)
    out = []
    for (study, label), rows in groups.items():
        group = ResultsTable(rows)
        out.append(KernelSpectrum(
            study, label, finite_mean(group.column("kernel_effective_rank")),
            float(np.mean(group.column("kernel_top_share"))), len(rows),
            str(rows[0]["kernel"]) in REFERENCE_KERNELS,
        ))
    return tuple(out)
