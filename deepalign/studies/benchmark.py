"""Benchmark encoders side by side: human alignment on every bundled similarity set, and the
study's primary value-learning score with each encoder as the agent's kernel.

For each encoder (`benchmark_encoders`: zoo names, exported encoders, trainer runs):

- **alignment**: Spearman of the cosine similarities of its embeddings with the human
  similarities, on every bundled dataset with judgments (`spearman_alignment` over the
  dataset's observed pairs). When an encoder in the list was trained on a set of judgments,
  every encoder is scored on that set's **held-out pairs** (both items held out by the
  trainer's split, `build_alignment_data(...).masks["heldout"]`), so the column compares
  like with like; a subset of those judgments (`spa-verb-act` of `spa-verb`) too;
- **value learning**: GP Thompson sampling on `spa-verb-act`, calibrated, with the encoder's
  unit-diagonal cosine kernel, `seeds` runs of `horizon` pulls on each value, on the batched
  engine (`runner.evaluate_kernel`, as the studies play it); `safe_general_score` mean and
  standard error over all runs (values x seeds), and its mean per value. The bandit holds out
  the items of the split an encoder trained on (the shared split, seed 0, otherwise).

`run_benchmark` returns a `BenchmarkResult` (one `BenchmarkRow` per encoder);
`benchmark_output` prints and writes it; `python -m deepalign.benchmark` wraps both.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from deepalign.agents.calibration import DEFAULT_CALIBRATION
from deepalign.alignment import cosine_similarity_matrix, spearman_alignment
from deepalign.alignment.preservation import judgment_source, similarity_datasets
from deepalign.data import Dataset
from deepalign.data.spa_verb_act import VALUE_NAMES
from deepalign.errors import ConfigError
from deepalign.studies.benchmark_encoders import TrainedSplit, resolve_encoders, trained_splits
from deepalign.studies.runner import evaluate_kernel
from deepalign.studies.sources import StudySources
from deepalign.studies.stats import mean_sem

__all__ = [
    "BANDIT_DATASET", "BenchmarkColumn", "BenchmarkResult", "BenchmarkRow", "BenchmarkSettings",
    "run_benchmark",
]

BANDIT_DATASET = "spa-verb-act"
PRIMARY_METRIC = "safe_general_score"
#: `--quick`: the settings of the quick study's small benchmark.
QUICK_SEEDS = 5
QUICK_VALUES = ("act_evaluation", "glasgow_valence")


@dataclass(frozen=True)
class BenchmarkColumn:
    """One alignment column: a dataset and the pairs scored.

    Attributes:
        dataset: the bundled dataset; pairs: "all" (every judged pair) or "heldout" (new x
        new pairs of `split`); n_pairs: pairs scored; split: the trained split (or None).
    """

    dataset: str
    pairs: str
    n_pairs: int
    split: TrainedSplit | None = None

    @property
    def label(self) -> str:
        return self.dataset if self.pairs == "all" else f"{self.dataset} (held-out)"


@dataclass(frozen=True)
class BenchmarkRow:
    """One encoder's numbers.

    Attributes:
        encoder: the name as given; source: "zoo" or its export directory; aligned_on: the
        datasets it was trained on; alignment: column label -> Spearman; score_mean,
        score_sem: `safe_general_score` over `n_runs` runs; score_by_value: value -> mean.
    """

    encoder: str
    source: str
    aligned_on: tuple[str, ...]
    alignment: dict[str, float]
    score_mean: float
    score_sem: float
    n_runs: int
    score_by_value: dict[str, float]


@dataclass(frozen=True)
class BenchmarkSettings:
    """What the value-learning score was played with (recorded beside the numbers)."""

    dataset: str
    values: tuple[str, ...]
    seeds: int
    horizon: int
    agent: str
    calibration: bool
    split_seed: int
    heldout_fraction: float


@dataclass(frozen=True)
class BenchmarkResult:
    """Columns (datasets), rows (encoders), settings and the wall time in seconds."""

    columns: tuple[BenchmarkColumn, ...]
    rows: tuple[BenchmarkRow, ...]
    settings: BenchmarkSettings
    seconds: float

    def to_dict(self) -> dict:
        """JSON-ready (NaN becomes None)."""
        def clean(x):
            return None if isinstance(x, float) and x != x else x

        return {
            "primary_metric": PRIMARY_METRIC,
            "settings": {**asdict(self.settings), "values": list(self.settings.values)},
            "columns": [{"label": c.label, "dataset": c.dataset, "pairs": c.pairs,
                         "n_pairs": c.n_pairs, "split": c.split and c.split.to_dict()}
                        for c in self.columns],
            "rows": [{"encoder": r.encoder, "source": r.source,
                      "aligned_on": list(r.aligned_on),
                      "alignment": {k: clean(v) for k, v in r.alignment.items()},
                      PRIMARY_METRIC: {"mean": clean(r.score_mean), "sem": clean(r.score_sem),
                                       "n_runs": r.n_runs,
                                       "by_value": {k: clean(v)
                                                    for k, v in r.score_by_value.items()}}}
                     for r in self.rows],
            "seconds": self.seconds,
        }


def _columns(datasets: dict[str, Dataset], splits: dict[str, TrainedSplit]
             ) -> list[tuple[BenchmarkColumn, torch.Tensor]]:
    """(column, bool `n_items x n_items` pair mask) per dataset: held-out pairs where an
    encoder trained on its judgments, else every judged pair."""
    from trainers.splits import build_alignment_data

    out = []
    for name, dataset in datasets.items():
        split = splits.get(judgment_source(dataset))
        mask = dataset.similarity.mask
        if split is not None:
            data = build_alignment_data(dataset, split.split_seed, split.heldout_fraction,
                                        split.val_fraction)
            mask = data.masks["heldout"]
        n_pairs = int(torch.triu(mask.to(torch.bool), diagonal=1).sum())
        if n_pairs < 3:
            raise ConfigError(
                f"dataset {name!r}: the split of {split.encoders} leaves {n_pairs} held-out "
                "pairs, too few to score; train with a larger --data.heldout_fraction"
            )
        out.append((BenchmarkColumn(name, "all" if split is None else "heldout", n_pairs,
                                    split), mask))
    return out


def _check_options(values: Sequence[str], seeds: int, horizon: int) -> tuple[str, ...]:
    values = tuple(values)
    unknown = [v for v in values if v not in VALUE_NAMES]
    if not values or unknown or len(set(values)) != len(values):
        raise ConfigError(
            f"values: expected one or more distinct {BANDIT_DATASET} values from "
            f"{list(VALUE_NAMES)}, got {list(values)}; pass e.g. ['act_evaluation']"
        )
    for name, number in (("seeds", seeds), ("horizon", horizon)):
        if isinstance(number, bool) or not isinstance(number, int) or number < 1:
            raise ConfigError(f"{name}: expected a positive int, got {number!r}")
    return values


def run_benchmark(
    encoders: Sequence[str],
    values: Sequence[str] = VALUE_NAMES,
    seeds: int = 50,
    horizon: int = 100,
    progress: bool = True,
) -> BenchmarkResult:
    """Benchmark `encoders` (zoo names or encoder / trainer-run directories).

    Args:
        encoders: one or more specs, each once (`resolve_encoders`).
        values: `spa-verb-act` value columns the agent learns (default all six).
        seeds: runs per value (seeds 0 .. seeds - 1); horizon: pulls per run.
        progress: a tqdm bar on stderr.

    Raises `ConfigError` for a bad spec or option before any encoder is loaded, and
    `CheckpointError` for an export whose files are damaged.
    """
    from tqdm.auto import tqdm

    started = time.perf_counter()
    values = _check_options(values, seeds, horizon)
    resolved = resolve_encoders(encoders)
    datasets = {d.name: d for d in similarity_datasets(own_judgments_only=False)}
    sources_of = {name: judgment_source(d) for name, d in datasets.items()}
    splits = trained_splits(resolved, sources_of)
    columns = _columns(datasets, splits)
    bandit_split = splits.get(sources_of[BANDIT_DATASET])
    settings = BenchmarkSettings(
        BANDIT_DATASET, values, seeds, horizon, "gp-ts", True,
        0 if bandit_split is None else bandit_split.split_seed,
        0.3 if bandit_split is None else bandit_split.heldout_fraction,
    )
    sources = StudySources(settings.split_seed, settings.heldout_fraction, noise=None)
    bar = tqdm(total=len(resolved) * (len(columns) + len(values)), desc="benchmark",
               unit="step", disable=None if progress else True, dynamic_ncols=True)
    rows = []
    try:
        for spec in resolved:
            bar.set_postfix_str(f"{spec.name}: loading", refresh=True)
            encoder = spec.build()
            alignment = {}
            for column, mask in columns:
                bar.set_postfix_str(f"{spec.name}: {column.label}", refresh=True)
                dataset = datasets[column.dataset]
                with torch.no_grad():
                    embeddings = encoder(tuple(dataset.items.texts))
                similarity = cosine_similarity_matrix(embeddings).double()
                alignment[column.label] = float(spearman_alignment(
                    similarity, dataset.similarity.matrix.double(), mask))
                bar.update(1)
            scores: list[float] = []
            by_value = {}
            for value in values:
                bar.set_postfix_str(f"{spec.name}: {PRIMARY_METRIC} {value}", refresh=True)
                dataset = sources.dataset(BANDIT_DATASET, value)
                env = sources.bandit(BANDIT_DATASET, dataset, value)
                with torch.no_grad():
                    matrix = sources.encoder_matrix(encoder, tuple(dataset.items.texts))
                run = evaluate_kernel(env, matrix, settings.agent, horizon, range(seeds),
                                      calibration=DEFAULT_CALIBRATION)[PRIMARY_METRIC]
                scores += run.tolist()
                by_value[value] = float(run.mean())
                bar.update(1)
            mean, sem = mean_sem(scores)
            rows.append(BenchmarkRow(spec.name, spec.source,
                                     tuple(r["dataset"] for r in spec.aligned_on), alignment,
                                     mean, sem, len(scores), by_value))
            del encoder
    finally:
        bar.close()
    return BenchmarkResult(tuple(c for c, _ in columns), tuple(rows), settings,
                           time.perf_counter() - started)
