"""Study 2 across language models: the paper's real-data table.

Over the zoo kernels of a study 2 run (every zoo encoder pretrained, "mpnet", and aligned in
the study, "aligned-mpnet"; `deepalign.studies.config.zoo_kernels`), one point per (kernel,
value): x = the kernel's measured alignment with the human similarity, y = the metric's mean
over seeds, centred within the value (values differ in scale and difficulty). For each agent,
each alignment measure (all pairs, personalization pairs only, cross pairs between
personalization and held-out items) and each metric (the primary score, the personalization
metrics, the generalization metrics) the table holds Spearman's rho with its p-value.

The points share their x within a kernel (alignment hardly changes between values), so
`per_encoder` repeats the all-pairs correlation with one point per kernel (its value-mean
score): n = the number of encoders, the honest sample size for "across encoders". Aligned
kernels sit far to the right of pretrained ones, so a correlation over both can be the
training effect alone: `within` repeats it inside each group ("pretrained", "aligned"), and
`training` pairs each model with its aligned self (aligned minus pretrained score).

Two controls ride along, so a reviewer can see what else could make the same pattern:
`uniformity` correlates each metric with the kernel's top-eigenvector share (a near-uniform
kernel explores little and can look safe); the greedy agent, when the recipe runs it, shows
whether the relation needs exploration at all. Human, constant and identity kernels are
reference rows (`references`), never points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deepalign.studies.config import ALIGNED_PREFIX
from deepalign.studies.curves import centred_spearman, finite_mean
from deepalign.studies.results import (
    GENERALIZATION_METRICS,
    PRIMARY_METRICS,
    ResultsTable,
)
from deepalign.studies.stats import CorrelationResult, spearman

__all__ = ["MODELS_MEASURES", "MODELS_METRICS", "ModelsAnalysis", "analyse_models"]

#: The three alignment measures of the paper's table: (column, label).
MODELS_MEASURES = (
    ("alignment_all", "all pairs"),
    ("alignment_train", "personalization pairs"),
    ("alignment_cross", "cross pairs"),
)
#: Metrics of the table: the primary score, personalization, generalization.
MODELS_METRICS = PRIMARY_METRICS + (
    "mean_reward", "unique_actions", "non_optimal_actions", "bad_actions",
    "iterations_to_convergence", "greedy_convergence",
) + GENERALIZATION_METRICS[:2] + ("bad_in_top5",)


@dataclass(frozen=True)
class ModelsAnalysis:
    """`correlations[(agent, measure)][metric]` across the (kernel, value) points;
    `uniformity[agent][metric]` the same against the kernel's top-eigenvector share;
    `per_encoder[agent][metric]` all-pairs alignment against the value-mean score, one point
    per kernel; `within[(agent, group)][metric]` the same inside group "pretrained" or
    "aligned"; `training[agent][model][metric]` aligned minus pretrained score per model;
    `alignment[kernel][measure]` and `scores[(agent, kernel)][metric]` (mean over values of
    the value means); `references[(agent, kernel)][metric]` for non-zoo kernels."""

    agents: tuple[str, ...]
    kernels: tuple[str, ...]
    values: tuple[str, ...]
    metrics: tuple[str, ...]
    correlations: dict[tuple[str, str], dict[str, CorrelationResult]]
    uniformity: dict[str, dict[str, CorrelationResult]]
    per_encoder: dict[str, dict[str, CorrelationResult]]
    within: dict[tuple[str, str], dict[str, CorrelationResult]]
    training: dict[str, dict[str, dict[str, float]]]
    alignment: dict[str, dict[str, float]]
    scores: dict[tuple[str, str], dict[str, float]]
    references: dict[tuple[str, str], dict[str, float]]
    n_points: int


def _value_mean(rows: ResultsTable, metric: str) -> float:
    return finite_mean(np.array([finite_mean(g.column(metric))
                                 for g in rows.group_by("value").values()]))


def analyse_models(table: ResultsTable) -> ModelsAnalysis | None:
    """The cross-model table from the study 2 rows (condition "human") of `table`; None when
    fewer than three zoo kernels ran."""
    from deepalign.studies.config import zoo_kernels  # the zoo registry, imported on use

    rows = table.where(study="real", condition="human")
    zoo = set(zoo_kernels())
    kernels = tuple(k for k in rows.unique("kernel") if k in zoo)
    if len(kernels) < 3:
        return None
    metrics = tuple(m for m in MODELS_METRICS
                    if len(rows) and np.isfinite(rows.column(m)).any())
    agents = tuple(a for a in rows.unique("agent") if a != "none" and
                   len(rows.where(agent=a, kernel=kernels[0])))
    points = ResultsTable([r for r in rows.rows if r["kernel"] in zoo])
    alignment = {str(k): {col: finite_mean(points.where(kernel=k).column(col))
                          for col, _ in MODELS_MEASURES} for k in kernels}
    correlations: dict[tuple[str, str], dict[str, CorrelationResult]] = {}
    uniformity: dict[str, dict[str, CorrelationResult]] = {}
    scores: dict[tuple[str, str], dict[str, float]] = {}
    per_encoder: dict[str, dict[str, CorrelationResult]] = {}
    within: dict[tuple[str, str], dict[str, CorrelationResult]] = {}
    training: dict[str, dict[str, dict[str, float]]] = {}
    n_points = 0
    for agent in agents:
        groups = points.where(agent=agent).group_by("kernel", "value")
        values = [str(v) for _, v in groups]
        y = {m: np.array([finite_mean(g.column(m)) for g in groups.values()]) for m in metrics}
        n_points = max(n_points, len(groups))
        for column, _ in MODELS_MEASURES:
            x = np.array([finite_mean(g.column(column)) for g in groups.values()])
            correlations[(agent, column)] = {m: centred_spearman(x, y[m], values)
                                             for m in metrics}
        top = np.array([finite_mean(g.column("kernel_top_share")) for g in groups.values()])
        uniformity[agent] = {m: centred_spearman(top, y[m], values) for m in metrics}
        for kernel in kernels:
            runs = points.where(agent=agent, kernel=kernel)
            scores[(agent, str(kernel))] = {m: _value_mean(runs, m) for m in metrics}
        per_encoder[agent] = _per_kernel(kernels, alignment, scores, agent, metrics)
        for group, aligned in (("pretrained", False), ("aligned", True)):
            members = tuple(k for k in kernels if k.startswith(ALIGNED_PREFIX) == aligned)
            within[(agent, group)] = _per_kernel(members, alignment, scores, agent, metrics)
        training[agent] = {
            str(k): {m: scores[(agent, ALIGNED_PREFIX + k)][m] - scores[(agent, k)][m]
                     for m in metrics}
            for k in kernels if ALIGNED_PREFIX + str(k) in kernels}
    references = {
        (str(a), str(k)): {m: _value_mean(g, m) for m in metrics}
        for (a, k), g in rows.group_by("agent", "kernel").items()
        if k not in zoo and len(g)
    }
    return ModelsAnalysis(agents, kernels, tuple(str(v) for v in rows.unique("value")),
                          metrics, correlations, uniformity, per_encoder, within, training,
                          alignment, scores, references, n_points)


def _per_kernel(kernels, alignment, scores, agent, metrics) -> dict[str, CorrelationResult]:
    """All-pairs alignment against the value-mean score, one point per kernel."""
    x = [alignment[str(k)]["alignment_all"] for k in kernels]
    return {m: spearman(x, [scores[(agent, str(k))][m] for k in kernels]) for m in metrics}
