"""Analyses of a results table, one function per study; pure functions of the table.

* `analyse_synthetic` (study 1): per agent, Spearman between the kernel's measured alignment
  and each metric across runs (the paper's table), and per-level curves with standard
  errors; kernel-free agents (independent TS, random) give reference lines.
* `analyse_real` (study 2): per condition (human judgments / length control) and agent, the
  mean of each metric per (kernel, value), and Spearman between kernel alignment and the
  metric across kernels and values, after centring each value's metric (values have
  different scales); the control also correlates with the kernels' *human* alignment.
* `analyse_trained` (study 3): trained vs untrained encoders paired by encoder seed, the
  gain in alignment and the change in each metric with bootstrap intervals and a Wilcoxon
  signed-rank test; the dose-response over checkpoints; the transfer variant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from deepalign.studies.results import METRICS, ResultsTable
from deepalign.studies.stats import (
    CorrelationResult,
    PairedResult,
    mean_sem,
    paired_comparison,
    spearman,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "KERNEL_FREE_AGENTS",
    "PAPER_METRICS",
    "Curve",
    "RealAnalysis",
    "SyntheticAnalysis",
    "TrainedAnalysis",
    "analyse_real",
    "analyse_synthetic",
    "analyse_trained",
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
HIGHER_IS_BETTER = frozenset({"mean_reward", "generalization_spearman", "greedy_value"})
#: Agents whose choices do not depend on the kernel: reference lines, not points.
KERNEL_FREE_AGENTS = ("independent-ts", "random")


@dataclass(frozen=True)
class Curve:
    """Means with standard errors along x: `x`, `y`, `y_sem` (`n_points`), `labels`."""

    x: np.ndarray
    y: np.ndarray
    y_sem: np.ndarray
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyntheticAnalysis:
    """Study 1. `correlations[agent][metric]`; `curves[agent][metric]` (x = mean measured
    alignment per level); `references[agent][metric]` = (mean, sem) for kernel-free agents."""

    alignment_column: str
    agents: tuple[str, ...]
    correlations: dict[str, dict[str, CorrelationResult]]
    curves: dict[str, dict[str, Curve]]
    references: dict[str, dict[str, tuple[float, float]]]
    n_runs: int


def _finite_metrics(table: ResultsTable) -> tuple[str, ...]:
    return tuple(m for m in METRICS if len(table) and np.isfinite(table.column(m)).any())


def analyse_synthetic(table: ResultsTable, alignment_column: str = "alignment_train"):
    """Study 1 from the rows with `study == "synthetic"` (None when there are none)."""
    rows = table.where(study="synthetic")
    if not len(rows):
        return None
    metrics = _finite_metrics(rows)
    agents = tuple(a for a in rows.unique("agent") if a not in KERNEL_FREE_AGENTS)
    correlations: dict[str, dict[str, CorrelationResult]] = {}
    curves: dict[str, dict[str, Curve]] = {}
    for agent in agents:
        runs = rows.where(agent=agent)
        x = runs.column(alignment_column)
        correlations[agent] = {m: spearman(x, runs.column(m)) for m in metrics}
        by_level = sorted(runs.group_by("level").items(), key=lambda kv: float(kv[0][0]))
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
                             len(rows))


@dataclass(frozen=True)
class RealAnalysis:
    """Study 2, for each (condition, agent): `points[(condition, agent)][metric]` holds one
    curve point per (kernel, value) (labels "kernel|value"); `correlations[(condition,
    agent)][metric]` across those points (value-centred metric); for the length control,
    `human_correlations` use each kernel's human alignment instead. Kernel-free agents are
    `references[(condition, agent)][metric]` (mean over values of the value means)."""

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


def analyse_real(table: ResultsTable, alignment_column: str = "alignment_train"):
    """Study 2 from the rows with `study == "real"` (None when there are none)."""
    rows = table.where(study="real")
    if not len(rows):
        return None
    metrics = _finite_metrics(rows)
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
        (str(k[0]), str(k[1])): _finite_mean(g.column(alignment_column))
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
            x = np.array([np.nanmean(g.column(alignment_column)) for g in groups.values()])
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
                centred = _centre_within(stats[:, 0], values)
                correlations[key][metric] = spearman(x, centred)
                if condition != "human":
                    human_correlations[key][metric] = spearman(human_x, centred)
    return RealAnalysis(
        alignment_column, conditions, agents,
        tuple(k for k in rows.unique("kernel") if k != "none"),
        tuple(rows.unique("value")), kernel_alignment, points, correlations,
        human_correlations, references,
    )


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def _centre_within(y: np.ndarray, groups: list[str]) -> np.ndarray:
    """`y` minus the mean of its group (values differ in scale; kernels are compared
    within a value)."""
    out = np.array(y, dtype=np.float64)
    labels = np.array(groups, dtype=object)
    for label in set(groups):
        where = labels == label
        out[where] = out[where] - np.nanmean(out[where])
    return out


@dataclass(frozen=True)
class TrainedAnalysis:
    """Study 3. `alignment[split]`: PairedResult of alignment (before -> after) over encoder
    seeds, split in train/heldout/all; `metrics[agent][metric]`: PairedResult over units
    (encoder seed x value, bandit seeds averaged); `dose[agent][metric]`: Curve over
    checkpoints (x = held-out alignment) with `dose_correlations`; `transfer[(train dataset,
    test dataset, value, agent)][metric]` with `transfer_alignment[train dataset]`."""

    agents: tuple[str, ...]
    alignment: dict[str, PairedResult]
    metrics: dict[str, dict[str, PairedResult]]
    dose: dict[str, dict[str, Curve]]
    dose_correlations: dict[str, dict[str, CorrelationResult]]
    transfer: dict[tuple[str, str, str, str], dict[str, PairedResult]] = field(
        default_factory=dict
    )
    transfer_alignment: dict[str, PairedResult] = field(default_factory=dict)
    transfer_alignment_source: dict[str, str] = field(default_factory=dict)


def _paired(before: ResultsTable, after: ResultsTable, keys: tuple[str, ...], column: str,
            seed: int) -> PairedResult:
    """Pair rows by `keys` (means inside each key), then compare `column` after vs before."""
    b = {k: np.nanmean(g.column(column)) for k, g in before.group_by(*keys).items()}
    a = {k: np.nanmean(g.column(column)) for k, g in after.group_by(*keys).items()}
    shared = [k for k in b if k in a]
    return paired_comparison([b[k] for k in shared], [a[k] for k in shared], seed=seed)


def analyse_trained(table: ResultsTable):
    """Study 3 from the rows with `study` "trained" / "transfer" (None when there are none)."""
    rows = table.where(study="trained")
    transfer_rows = table.where(study="transfer")
    if not len(rows) and not len(transfer_rows):
        return None
    metrics = _finite_metrics(rows if len(rows) else transfer_rows)
    agents = tuple(rows.unique("agent"))
    before, after = rows.where(kernel="before"), rows.where(kernel="after")
    alignment = {
        split: _paired(before, after, ("encoder_seed",), f"alignment_{split}", seed=0)
        for split in ("train", "heldout", "cross", "all")
    }
    metric_results: dict[str, dict[str, PairedResult]] = {}
    dose: dict[str, dict[str, Curve]] = {}
    dose_correlations: dict[str, dict[str, CorrelationResult]] = {}
    for agent in agents:
        b, a = before.where(agent=agent), after.where(agent=agent)
        metric_results[agent] = {
            m: _paired(b, a, ("encoder_seed", "value"), m, seed=i) for i, m in enumerate(metrics)
        }
        runs = ResultsTable([r for r in rows.where(agent=agent).rows
                             if math.isfinite(float(r["epoch"]))])  # type: ignore[arg-type]
        checkpoints = sorted(runs.group_by("epoch").items(), key=lambda kv: float(kv[0][0]))
        if len(checkpoints) >= 2:
            dose[agent], dose_correlations[agent] = {}, {}
            for metric in metrics:
                units = runs.group_by("epoch", "encoder_seed", "value")
                ux = np.array([np.nanmean(g.column("alignment_heldout")) for g in units.values()])
                uy = _centre_within(
                    np.array([np.nanmean(g.column(metric)) for g in units.values()]),
                    [str(k[2]) for k in units],
                )
                dose_correlations[agent][metric] = spearman(ux, uy)
                stats = np.array(
                    [(np.nanmean(g.column("alignment_heldout")), *mean_sem(g.column(metric)))
                     for _, g in checkpoints]
                ).reshape(-1, 3)
                labels = tuple(f"epoch {float(k[0]):g}" for k, _ in checkpoints)
                dose[agent][metric] = Curve(stats[:, 0], stats[:, 1], stats[:, 2], labels)
    transfer: dict[tuple[str, str, str, str], dict[str, PairedResult]] = {}
    transfer_alignment: dict[str, PairedResult] = {}
    sources: dict[str, str] = {}
    for (condition,), group in transfer_rows.group_by("condition").items():
        tb, ta = group.where(kernel="before"), group.where(kernel="after")
        transfer_alignment[str(condition)] = _paired(
            tb, ta, ("encoder_seed",), "alignment_heldout", seed=0
        )
        sources[str(condition)] = str(group.rows[0]["alignment_source"])
        for (dataset, value, agent), g in group.group_by("dataset", "value", "agent").items():
            gb, ga = g.where(kernel="before"), g.where(kernel="after")
            transfer[(str(condition), str(dataset), str(value), str(agent))] = {
                m: _paired(gb, ga, ("encoder_seed", "seed"), m, seed=i)
                for i, m in enumerate(metrics)
            }
    return TrainedAnalysis(
        agents, alignment, metric_results, dose, dose_correlations, transfer,
        transfer_alignment, sources,
    )
