"""Means with standard errors along an axis (`Curve`) and the helpers the analyses share.

`centred_spearman` is the correlation of studies 2 and 3: a metric's unit means are centred
within each value (values have different scales), then ranked against alignment. Units whose
alignment is not finite (reference kernels: Spearman against a constant matrix is undefined)
are dropped *before* centring, so they neither enter the correlation nor shift the value
means the other units are centred on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deepalign.studies.results import METRICS, ResultsTable
from deepalign.studies.stats import CorrelationResult, spearman

__all__ = ["Curve", "centre_within", "centred_spearman", "finite_mean", "finite_metrics"]


@dataclass(frozen=True)
class Curve:
    """Means with standard errors along x: `x`, `y`, `y_sem` (`n_points`), `labels`."""

    x: np.ndarray
    y: np.ndarray
    y_sem: np.ndarray
    labels: tuple[str, ...] = ()


def finite_metrics(table: ResultsTable) -> tuple[str, ...]:
    """The metrics (in `METRICS` order) with at least one finite entry in `table`."""
    return tuple(m for m in METRICS if len(table) and np.isfinite(table.column(m)).any())


def finite_mean(values: np.ndarray) -> float:
    """Mean of the finite entries of `values` (`n`); nan when there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def centre_within(y: np.ndarray, groups: Sequence[str]) -> np.ndarray:
    """`y` (`n`) minus the mean of its group (`groups`, `n` labels): values differ in scale,
    so kernels are compared within a value."""
    out = np.array(y, dtype=np.float64)
    labels = np.array(list(groups), dtype=object)
    for label in set(labels.tolist()):
        where = labels == label
        out[where] = out[where] - np.nanmean(out[where])
    return out


def centred_spearman(x: np.ndarray, y: np.ndarray, groups: Sequence[str]) -> CorrelationResult:
    """Spearman between `x` and `y` centred within `groups` (all `n`), over the units whose
    `x` is finite (the others are dropped before centring)."""
    x = np.asarray(x, dtype=np.float64)
    keep = np.isfinite(x)
    kept_groups = [g for g, k in zip(groups, keep) if k]
    return spearman(x[keep], centre_within(np.asarray(y, dtype=np.float64)[keep], kept_groups))
