"""Study 3's analysis: trained vs untrained encoders paired by encoder seed.

`analyse_trained` gives the gain in alignment and the change in each metric (after minus
before) with bootstrap intervals and a Wilcoxon signed-rank test, the same change against the
uniformity-matched control when the table has it (after minus control: what the trained
kernel gives beyond being as uniform), the dose-response over training checkpoints (the
training stages only), and the transfer variant. Reference-kernel rows (condition
"reference") pair with nothing and are left out. Re-exported by `deepalign.studies.analysis`.

What the encoder runs themselves reported (their `summary.json`: the preservation suite and
the held-out generalization gains) is not in the results table: the pipeline saves it per run
(`EncoderRecord`) in `DIR/encoder_runs.json` beside `results.csv` (`write_encoder_records`),
and the report reads it back (`read_encoder_records`; () for a study that predates it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from deepalign.errors import DataError
from deepalign.studies.curves import Curve, centred_spearman, finite_mean, finite_metrics
from deepalign.studies.references import UNIFORMITY_KERNEL
from deepalign.studies.results import ResultsTable, _atomic_write
from deepalign.studies.stats import (
    CorrelationResult,
    PairedResult,
    mean_sem,
    paired_comparison,
)

if TYPE_CHECKING:
    from deepalign.studies.encoders import EncoderRun

__all__ = [
    "ENCODER_RUNS", "EncoderRecord", "TrainedAnalysis", "analyse_trained", "final_controls",
    "read_encoder_records", "write_encoder_records",
]

#: The file beside `results.csv` holding the `EncoderRecord`s of study 3's encoder runs.
ENCODER_RUNS = "encoder_runs.json"


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


@dataclass(frozen=True)
class EncoderRecord:
    """What one of study 3's encoder runs reported in its `summary.json`.

    Attributes:
        study: "trained" (the paired study, one run per encoder seed) or "transfer" (one run
        per transfer training set); train_dataset: what it was aligned on; encoder_seed;
        directory: the run directory; preservation: {set: {"before", "after", "change",
        "pairs"}} ({} when the run did not record the suite); excluded: {set: why it is not
        in the suite}; generalization: {"new_x_new" / "cross": {"before", "after", "gain"}}.
    """

    study: str
    train_dataset: str
    encoder_seed: int
    directory: str = ""
    preservation: dict[str, dict[str, float]] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    generalization: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_run(cls, study: str, run: EncoderRun) -> EncoderRecord:
        return cls(study, run.train_dataset, run.seed, str(run.directory), run.preservation(),
                   run.preservation_excluded(), run.generalization())


def _json_numbers(block: dict, to_json: bool) -> dict[str, dict[str, float | None]]:
    """{name: {key: number}} with nan written as null (`to_json`) or null read as nan."""
    def convert(x):
        if to_json:
            return None if math.isnan(x) else x
        return math.nan if x is None else float(x)

    return {str(name): {str(k): convert(v) for k, v in row.items()} for name, row in block.items()}


def write_encoder_records(path: str | Path, records: Sequence[EncoderRecord]) -> Path:
    """Write `records` to `path` as JSON (nan as null), atomically."""
    runs = [{"study": r.study, "train_dataset": r.train_dataset, "encoder_seed": r.encoder_seed,
             "directory": r.directory, "excluded": dict(r.excluded),
             "preservation": _json_numbers(r.preservation, True),
             "generalization": _json_numbers(r.generalization, True)} for r in records]
    file = Path(path)
    _atomic_write(file, json.dumps({"runs": runs}, indent=1, allow_nan=False) + "\n")
    return file


def read_encoder_records(path: str | Path) -> tuple[EncoderRecord, ...]:
    """The records `write_encoder_records` wrote to `path`; () when there is no such file
    (a study that predates it); DataError naming the file when it is damaged."""
    file = Path(path)
    if not file.is_file():
        return ()
    try:
        runs = json.loads(file.read_text(encoding="utf-8"))["runs"]
        return tuple(
            EncoderRecord(str(r["study"]), str(r["train_dataset"]), int(r["encoder_seed"]),
                          str(r.get("directory", "")),
                          _json_numbers(r.get("preservation") or {}, False),
                          {str(k): str(v) for k, v in (r.get("excluded") or {}).items()},
                          _json_numbers(r.get("generalization") or {}, False))
            for r in runs
        )
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise DataError(
            f"{file}: not the encoder record `python -m deepalign.study` writes ({error!r}); "
            "delete it (the next run of the study writes it again) or restore it."
        ) from error
