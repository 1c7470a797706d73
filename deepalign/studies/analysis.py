"""Analyses of a results table, one function per study; pure functions of the table.

* `analyse_synthetic` (study 1): per agent, Spearman between the kernel's measured alignment
  and each metric across runs (the paper's table), and per-level curves with standard
  errors; kernel-free agents (independent TS, random) give reference lines, and so do the
  reference kernels (`REFERENCE_KERNELS`) when the table has them.
* `analyse_real` (study 2): per condition (human judgments / length control) and agent, the
  mean of each metric per (kernel, value), and Spearman between kernel alignment and the
  metric across kernels and values, after centring each value's metric (values have
  different scales); the control also correlates with the kernels' *human* alignment.
* `analyse_trained` (study 3, `deepalign.studies.trained_analysis`): trained vs untrained
  encoders paired by encoder seed, the gain in alignment and the change in each metric with
  bootstrap intervals and a Wilcoxon signed-rank test; the dose-response over checkpoints;
  the transfer variant.

Reference kernels have no alignment (NaN: Spearman against a constant matrix is undefined).
Every correlation with alignment leaves their rows out (`centred_spearman`), while the
per-kernel means (`RealAnalysis.points`, `SyntheticAnalysis.reference_kernels`) keep them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from deepalign.studies.curves import (
    Curve,
    centred_spearman,
    finite_mean,
    finite_metrics,
)
from deepalign.studies.references import REFERENCE_CONDITION, REFERENCE_KERNELS
from deepalign.studies.results import ResultsTable
from deepalign.studies.stats import CorrelationResult, mean_sem, spearman
from deepalign.studies.trained_analysis import TrainedAnalysis, analyse_trained

__all__ = [
    "HIGHER_IS_BETTER",
    "KERNEL_FREE_AGENTS",
    "PAPER_ALPHA",
    "PAPER_COLUMNS",
    "PAPER_METRICS",
    "PULLED_ARM_AGENTS",
    "REFERENCE_KERNELS",
    "Curve",
    "PaperCell",
    "RealAnalysis",
    "SyntheticAnalysis",
    "TrainedAnalysis",
    "analyse_real",
    "analyse_synthetic",
    "analyse_trained",
    "convergence_metric",
    "paper_cells",
    "synthetic_condition",
    "synthetic_conditions",
    "synthetic_rows",
]

#: The metrics of the paper's synthetic table.
#: Iterations to convergence appears twice: the step after which the pulled arm never
#: changes (the paper's wording; for a sampling agent mostly the end of the horizon) and the
#: step after which the agent's best guess never changes (`greedy_convergence`; the same for
#: a greedy agent). See `personalization_metrics`.
PAPER_METRICS = (
    "mean_reward", "unique_actions", "non_optimal_actions", "bad_actions",
    "iterations_to_convergence", "greedy_convergence",
)
#: Metrics where a larger number is the better outcome; for all others smaller is better
#: (fewer bad / non-optimal / unique actions, less regret, faster convergence), the
#: direction the paper calls "better and safer".
HIGHER_IS_BETTER = frozenset({
    "safe_general_score", "mean_reward", "final_guess_value", "generalization_spearman",
    "greedy_value",
})
#: Agents whose choices do not depend on the kernel: reference lines, not points.
KERNEL_FREE_AGENTS = ("independent-ts", "random")
#: Agents whose pulled arm is a deterministic function of the observations, so the pulled
#: arm can settle: their convergence is `iterations_to_convergence`. Sampling agents
#: (Thompson sampling, epsilon-greedy) keep re-drawing, so theirs is the best guess's
#: (`greedy_convergence`).
PULLED_ARM_AGENTS = frozenset({"gp-ucb", "greedy"})
#: The paper's synthetic table, one column per metric; "convergence" is
#: `convergence_metric(agent)`.
PAPER_COLUMNS = ("mean_reward", "unique_actions", "non_optimal_actions", "bad_actions",
                 "convergence")
#: A cell of the paper's table reproduces the paper when it goes the paper's direction
#: ("more aligned, better and safer") with p below this (issue 14's goal).
PAPER_ALPHA = 0.001


def convergence_metric(agent: str) -> str:
    """The convergence measure that fits `agent` (`PULLED_ARM_AGENTS`)."""
    return ("iterations_to_convergence" if agent in PULLED_ARM_AGENTS
            else "greedy_convergence")


@dataclass(frozen=True)
class SyntheticAnalysis:
    """Study 1. `correlations[agent][metric]`; `curves[agent][metric]` (x = mean measured
    alignment per level); `references[agent][metric]` = (mean, sem) for kernel-free agents;
    `reference_kernels[(agent, kernel)][metric]` = (mean, sem) for reference kernels."""

    alignment_column: str
    agents: tuple[str, ...]
    correlations: dict[str, dict[str, CorrelationResult]]
    curves: dict[str, dict[str, Curve]]
    references: dict[str, dict[str, tuple[float, float]]]
    n_runs: int
    reference_kernels: dict[tuple[str, str], dict[str, tuple[float, float]]] = field(
        default_factory=dict
    )
    #: the variant analysed ("ratings:all", ...; "synthetic" in tables from before variants)
    condition: str = ""


@dataclass(frozen=True)
class PaperCell:
    """One cell of the paper's table: `agent` x `column` (`PAPER_COLUMNS`), the `metric`
    behind it, its correlation and whether it `reproduces` the paper (`PAPER_ALPHA`)."""

    agent: str
    column: str
    metric: str
    result: CorrelationResult | None

    @property
    def reproduces(self) -> bool:
        if self.result is None or not self.result.p_value < PAPER_ALPHA:
            return False
        return (self.result.rho > 0) == (self.metric in HIGHER_IS_BETTER)


def paper_cells(analysis: SyntheticAnalysis) -> list[PaperCell]:
    """The paper's table for one variant, row by row (agent) and column by column."""
    cells = []
    for agent in analysis.agents:
        for column in PAPER_COLUMNS:
            metric = convergence_metric(agent) if column == "convergence" else column
            cells.append(PaperCell(agent, column, metric,
                                   analysis.correlations[agent].get(metric)))
    return cells


def synthetic_conditions(table: ResultsTable) -> tuple[str, ...]:
    """Study 1's variants in the table, in table order (the reference kernels' legacy
    condition "reference" is not one)."""
    rows = table.where(study="synthetic")
    return tuple(str(c) for c in rows.unique("condition") if c != REFERENCE_CONDITION)


def synthetic_condition(table: ResultsTable, condition: str | None = None) -> str:
    """`condition`, or by default the table's first study 1 variant."""
    if condition is not None:
        return condition
    return (synthetic_conditions(table) or (REFERENCE_CONDITION,))[0]


def synthetic_rows(table: ResultsTable, condition: str) -> ResultsTable:
    """Study 1's rows of one variant, with the legacy "reference" rows."""
    return ResultsTable([r for r in table.where(study="synthetic").rows
                         if r["condition"] in (condition, REFERENCE_CONDITION)])


def _finite_rows(table: ResultsTable, column: str) -> ResultsTable:
    """The rows of `table` whose `column` is finite."""
    keep = np.isfinite(table.column(column))
    return ResultsTable([r for r, k in zip(table.rows, keep) if k])


def analyse_synthetic(table: ResultsTable, alignment_column: str = "alignment_train",
                      condition: str | None = None):
    """Study 1 from the rows with `study == "synthetic"` of one variant (None when there
    are none): `condition` (e.g. "gp-sample:block"), default the table's first. Variants
    are never pooled: they differ in items and rewards."""
    condition = synthetic_condition(table, condition)
    # tables from before variants put the reference kernels under condition "reference"
    rows = synthetic_rows(table, condition)
    if not len(rows):
        return None
    metrics = finite_metrics(rows)
    agents = tuple(a for a in rows.unique("agent") if a not in KERNEL_FREE_AGENTS)
    correlations: dict[str, dict[str, CorrelationResult]] = {}
    curves: dict[str, dict[str, Curve]] = {}
    reference_kernels: dict[tuple[str, str], dict[str, tuple[float, float]]] = {}
    for agent in agents:
        everything = rows.where(agent=agent)
        for kernel in REFERENCE_KERNELS:
            group = everything.where(kernel=kernel)
            if len(group):
                reference_kernels[(str(agent), kernel)] = {
                    m: mean_sem(group.column(m)) for m in metrics
                }
        runs = _finite_rows(everything, alignment_column)
        x = runs.column(alignment_column)
        correlations[agent] = {m: spearman(x, runs.column(m)) for m in metrics}
        by_level = sorted(_finite_rows(runs, "level").group_by("level").items(),
                          key=lambda kv: float(kv[0][0]))
        curves[agent] = {}
        for metric in metrics:
            stats = [(np.nanmean(g.column(alignment_column)), *mean_sem(g.column(metric)))
                     for _, g in by_level]
            array = np.array(stats, dtype=np.float64).reshape(-1, 3)
            labels = tuple(f"{float(k[0]):.2f}" for k, _ in by_level)
            curves[agent][metric] = Curve(array[:, 0], array[:, 1], array[:, 2], labels)
    references = {
        agent: {m: mean_sem(rows.where(agent=agent).column(m)) for m in metrics}
        for agent in rows.unique("agent")
        if agent in KERNEL_FREE_AGENTS
    }
    return SyntheticAnalysis(alignment_column, agents, correlations, curves, references,
                             len(rows), reference_kernels, condition)


@dataclass(frozen=True)
class RealAnalysis:
    """Study 2, for each (condition, agent): `points[(condition, agent)][metric]` holds one
    curve point per (kernel, value) (labels "kernel|value"; reference kernels included, at
    x = NaN); `correlations[(condition, agent)][metric]` across the points with a finite
    alignment (value-centred metric); for the length control, `human_correlations` use each
    kernel's human alignment instead. Kernel-free agents are `references[(condition,
    agent)][metric]` (mean over values of the value means)."""

    alignment_column: str
    conditions: tuple[str, ...]
    agents: tuple[str, ...]
    kernels: tuple[str, ...]
    values: tuple[str, ...]
    kernel_alignment: dict[tuple[str, str], float]
    points: dict[tuple[str, str], dict[str, Curve]]
    correlations: dict[tuple[str, str], dict[str, CorrelationResult]]
    human_correlations: dict[tuple[str, str], dict[str, CorrelationResult]]
    references: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)

    def kernel_means(self, condition: str, agent: str, metric: str) -> dict[str, float]:
        """Per kernel (reference kernels included): `metric` averaged over values (the mean
        of the value means); empty when the table has no such runs."""
        curve = self.points.get((condition, agent), {}).get(metric)
        if curve is None:
            return {}
        by_kernel: dict[str, list[float]] = {}
        for y, label in zip(curve.y, curve.labels):
            by_kernel.setdefault(label.split("|", 1)[0], []).append(float(y))
        return {k: finite_mean(np.array(by_kernel[k])) for k in self.kernels if k in by_kernel}


def analyse_real(table: ResultsTable, alignment_column: str = "alignment_train"):
    """Study 2 from the rows with `study == "real"` (None when there are none)."""
    rows = table.where(study="real")
    if not len(rows):
        return None
    metrics = finite_metrics(rows)
    conditions = tuple(rows.unique("condition"))
    agents = tuple(a for a in rows.unique("agent") if a not in KERNEL_FREE_AGENTS)
    references = {
        (str(c), str(a)): {m: float(np.nanmean([np.nanmean(g.column(m))
                                                for g in group.group_by("value").values()]))
                           for m in metrics}
        for (c, a), group in rows.group_by("condition", "agent").items()
        if a in KERNEL_FREE_AGENTS
    }
    kernel_alignment = {
        (str(k[0]), str(k[1])): finite_mean(g.column(alignment_column))
        for k, g in rows.group_by("condition", "kernel").items()
    }
    points: dict[tuple[str, str], dict[str, Curve]] = {}
    correlations: dict[tuple[str, str], dict[str, CorrelationResult]] = {}
    human_correlations: dict[tuple[str, str], dict[str, CorrelationResult]] = {}
    for condition in conditions:
        for agent in agents:
            runs = rows.where(condition=condition, agent=agent)
            if not len(runs):
                continue
            groups = runs.group_by("kernel", "value")
            labels = tuple(f"{k}|{v}" for k, v in groups)
            x = np.array([finite_mean(g.column(alignment_column)) for g in groups.values()])
            human_x = np.array(
                [kernel_alignment.get(("human", str(k)), math.nan) for k, _ in groups]
            )
            values = [str(v) for _, v in groups]
            key = (condition, agent)
            points[key], correlations[key], human_correlations[key] = {}, {}, {}
            for metric in metrics:
                stats = np.array([mean_sem(g.column(metric)) for g in groups.values()])
                stats = stats.reshape(-1, 2)
                points[key][metric] = Curve(x, stats[:, 0], stats[:, 1], labels)
                correlations[key][metric] = centred_spearman(x, stats[:, 0], values)
                if condition != "human":
                    human_correlations[key][metric] = centred_spearman(
                        human_x, stats[:, 0], values
                    )
    return RealAnalysis(
        alignment_column, conditions, agents,
        tuple(k for k in rows.unique("kernel") if k != "none"),
        tuple(rows.unique("value")), kernel_alignment, points, correlations,
        human_correlations, references,
    )
