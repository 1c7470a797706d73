"""Study 3's analysis: trained vs untrained encoders paired by encoder seed.

`analyse_trained` gives the gain in alignment and the change in each metric (after minus
before) with bootstrap intervals and a Wilcoxon signed-rank test, the same change against the
uniformity-matched control when the table has it (after minus control: what the trained
kernel gives beyond being as uniform), the dose-response over training checkpoints (the
training stages only), and the transfer variant. Reference-kernel rows (condition
"reference") pair with nothing and are left out. Re-exported by `deepalign.studies.analysis`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from deepalign.studies.curves import Curve, centred_spearman, finite_mean, finite_metrics
from deepalign.studies.references import UNIFORMITY_KERNEL
from deepalign.studies.results import ResultsTable
from deepalign.studies.stats import (
    CorrelationResult,
    PairedResult,
    mean_sem,
    paired_comparison,
)

__all__ = ["TrainedAnalysis", "analyse_trained", "final_controls"]


@dataclass(frozen=True)
class TrainedAnalysis:
    """Study 3. `alignment[split]`: PairedResult of alignment (before -> after) over encoder
    seeds, split in train/heldout/all; `metrics[agent][metric]`: PairedResult over units
    (encoder seed x value, bandit seeds averaged); `dose[agent][metric]`: Curve over
    checkpoints (x = held-out alignment) with `dose_correlations`; `transfer[(train dataset,
    test dataset, value, agent)][metric]` with `transfer_alignment[train dataset]`;
    `control[agent][metric]`: after vs the uniformity-matched control of the final stage
    (`mean_before` is the control's), empty without control rows."""

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
    control: dict[str, dict[str, PairedResult]] = field(default_factory=dict)


def _stage_key(row: dict) -> tuple[float, float]:
    epoch = float(row["epoch"])  # a nan epoch is the final stage (`stages.stage_at`)
    return float(row["encoder_seed"]), -1.0 if math.isnan(epoch) else epoch


def final_controls(rows: ResultsTable) -> ResultsTable:
    """The uniformity-matched control rows of `rows` that match an "after" stage (same
    encoder seed and epoch): the control of the trained encoder, not of a checkpoint."""
    final = {_stage_key(r) for r in rows.where(kernel="after").rows}
    return ResultsTable([r for r in rows.where(kernel=UNIFORMITY_KERNEL).rows
                         if _stage_key(r) in final])


def _paired(before: ResultsTable, after: ResultsTable, keys: tuple[str, ...], column: str,
            seed: int) -> PairedResult:
    """Pair rows by `keys` (means inside each key), then compare `column` after vs before."""
    b = {k: finite_mean(g.column(column)) for k, g in before.group_by(*keys).items()}
    a = {k: finite_mean(g.column(column)) for k, g in after.group_by(*keys).items()}
    shared = [k for k in b if k in a]
    return paired_comparison([b[k] for k in shared], [a[k] for k in shared], seed=seed)


def _is_stage(row: dict) -> bool:
    """A training stage ("before", "epoch-k", "after") with a recorded epoch."""
    kernel = str(row["kernel"])
    return (kernel in ("before", "after") or kernel.startswith("epoch-")) and math.isfinite(
        float(row["epoch"]))


def analyse_trained(table: ResultsTable):
    """Study 3 from the rows with `study` "trained" / "transfer" (None when there are none)."""
    rows = table.where(study="trained")
    transfer_rows = table.where(study="transfer")
    if not len(rows) and not len(transfer_rows):
        return None
    metrics = finite_metrics(rows if len(rows) else transfer_rows)
    agents = tuple(rows.unique("agent"))
    before, after = rows.where(kernel="before"), rows.where(kernel="after")
    alignment = {
        split: _paired(before, after, ("encoder_seed",), f"alignment_{split}", seed=0)
        for split in ("train", "heldout", "cross", "all")
    }
    controls = final_controls(rows)
    metric_results: dict[str, dict[str, PairedResult]] = {}
    control: dict[str, dict[str, PairedResult]] = {}
    dose: dict[str, dict[str, Curve]] = {}
    dose_correlations: dict[str, dict[str, CorrelationResult]] = {}
    for agent in agents:
        b, a = before.where(agent=agent), after.where(agent=agent)
        metric_results[agent] = {
            m: _paired(b, a, ("encoder_seed", "value"), m, seed=i) for i, m in enumerate(metrics)
        }
        c = controls.where(agent=agent)
        if len(c):
            control[agent] = {m: _paired(c, a, ("encoder_seed", "value"), m, seed=i)
                              for i, m in enumerate(metrics)}
        runs = ResultsTable([r for r in rows.where(agent=agent).rows if _is_stage(r)])
        checkpoints = sorted(runs.group_by("epoch").items(), key=lambda kv: float(kv[0][0]))
        if len(checkpoints) >= 2:
            dose[agent], dose_correlations[agent] = {}, {}
            for metric in metrics:
                units = runs.group_by("epoch", "encoder_seed", "value")
                ux = np.array([np.nanmean(g.column("alignment_heldout")) for g in units.values()])
                uy = np.array([np.nanmean(g.column(metric)) for g in units.values()])
                dose_correlations[agent][metric] = centred_spearman(
                    ux, uy, [str(k[2]) for k in units]
                )
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
        if not len(tb) or not len(ta):  # the reference kernels' condition
            continue
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
        transfer_alignment, sources, control,
    )
