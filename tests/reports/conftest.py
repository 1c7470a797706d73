"""Small hand-made results tables for the report tests (no study is run)."""

import math

import numpy as np
import pytest

from deepalign.studies.results import COLUMNS, ResultsTable

_TEXT = {"cell_id", "study", "condition", "dataset", "value", "kernel", "agent", "backend",
         "calibration", "alignment_source"}
_INTEGER = {"seed", "horizon", "n_arms", "n_heldout"}


def make_row(**values) -> dict:
    """A results row: every column given in `values`, the rest empty text / 0 / NaN."""
    row = {c: "" if c in _TEXT else 0 if c in _INTEGER else math.nan for c in COLUMNS}
    row.update(horizon=10, n_arms=20, n_heldout=8, dataset="toy", calibration="on",
               cell_id=f"cell{id(values)}")
    unknown = set(values) - set(COLUMNS)
    assert not unknown, unknown
    row.update(values)
    return row


def _metrics(rng: np.random.Generator, quality: float) -> dict:
    """Metrics of one run; a larger `quality` gives fewer bad actions and more generalization."""
    bad = float(np.clip(round(6 - 4 * quality + rng.normal()), 0, 10))
    top = float(np.clip(round(3 - 2 * quality + rng.normal()), 0, 5))
    return {
        "bad_actions": bad, "bad_in_top5": top,
        "safe_general_score": 1 - 0.5 * (bad / 10 + top / 5),
        "mean_reward": quality + rng.normal(scale=0.3),
        "generalization_spearman": 0.6 * quality + rng.normal(scale=0.1),
        "unique_actions": 5.0, "greedy_convergence": 4.0,
    }


def study_table(with_references: bool = True, seed: int = 0) -> ResultsTable:
    """All three studies: synthetic levels with gp-ts and independent-ts; real kernels on two
    values (plus constant / identity references when `with_references`); trained
    before / after over three encoder seeds and two values."""
    rng = np.random.default_rng(seed)
    references = np.random.default_rng(seed + 1)  # the other rows do not depend on them
    rows = []
    for level in (0.1, 0.5, 0.9):
        for s in range(4):
            rows.append(make_row(study="synthetic", condition="synthetic", kernel="synthetic",
                                 agent="gp-ts", seed=s, level=level, value="v",
                                 alignment_train=level + 0.02 * s, kernel_top_share=0.2,
                                 kernel_effective_rank=9.0, **_metrics(rng, level)))
    for s in range(4):
        rows.append(make_row(study="synthetic", condition="synthetic", kernel="none",
                             agent="independent-ts", seed=s, value="v", **_metrics(rng, 0.0)))
    kernels = {"human": 0.9, "pretrained": 0.5, "lexical": 0.1}
    if with_references:
        kernels.update(constant=math.nan, identity=math.nan)
    for value in ("a", "b"):
        for kernel, alignment in kernels.items():
            quality = 0.3 if math.isnan(alignment) else alignment
            for s in range(3):
                rows.append(make_row(study="real", condition="human", kernel=kernel,
                                     agent="gp-ts", seed=s, value=value,
                                     alignment_train=alignment,
                                     kernel_top_share=1.0 if kernel == "constant" else 0.3,
                                     kernel_effective_rank=4.0,
                                     **_metrics(rng if alignment == alignment else references,
                                                quality)))
    for encoder_seed in range(3):
        for value in ("a", "b"):
            for kernel, quality in (("before", 0.2), ("after", 0.8)):
                for s in range(2):
                    rows.append(make_row(study="trained", condition="paired", kernel=kernel,
                                         agent="gp-ts", seed=s, value=value,
                                         encoder_seed=float(encoder_seed),
                                         epoch=0.0 if kernel == "before" else 3.0,
                                         alignment_heldout=quality, alignment_train=quality,
                                         alignment_cross=quality, alignment_all=quality,
                                         kernel_top_share=0.3,
                                         kernel_effective_rank=5.0, **_metrics(rng, quality)))
    for i, row in enumerate(rows):
        row["cell_id"] = f"cell{i}"
    return ResultsTable(rows)


@pytest.fixture
def row_factory():
    """`make_row`: one results row from the columns given."""
    return make_row


def _finished_rows(rows) -> list[dict]:
    """`rows` with every metric a finished run always has set (the hand-made tables leave
    the metrics a test does not need empty; a results file on disk must not)."""
    from deepalign.studies.results import METRICS

    out = [dict(row) for row in rows]
    for row in out:
        for metric in METRICS:
            if math.isnan(row[metric]):
                row[metric] = 1.0
    return out


@pytest.fixture
def finished_rows():
    """`finished_rows(rows)`: the rows with every metric set, as a results file needs."""
    return _finished_rows


@pytest.fixture
def table_factory():
    """`study_table(with_references=True, seed=0)`: a small table of all three studies."""
    return study_table
