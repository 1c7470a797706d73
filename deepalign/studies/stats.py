"""Statistics for study tables: Spearman with p-values, paired tests, bootstrap intervals.

Everything takes plain 1-d arrays (one entry per run, or per paired unit) and returns small
frozen dataclasses, so the report layer never touches scipy. The formulas are implemented
here (ranks with averaged ties, Student-t p-value for Spearman, exact or normal Wilcoxon
signed-rank, percentile bootstrap) and tested against scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from deepalign.errors import ConfigError

__all__ = [
    "CorrelationResult",
    "PairedResult",
    "bootstrap_ci",
    "mean_sem",
    "paired_comparison",
    "rank_average",
    "spearman",
    "wilcoxon_signed_rank",
]


@dataclass(frozen=True)
class CorrelationResult:
    """Spearman correlation `rho`, its two-sided `p_value`, and the number of pairs `n`.

    `rho` and `p_value` are nan when fewer than 3 finite pairs remain or one side is constant.
    """

    rho: float
    p_value: float
    n: int


@dataclass(frozen=True)
class PairedResult:
    """A paired comparison `after - before` over `n` units.

    `mean_difference` with a percentile bootstrap interval `(ci_low, ci_high)` at
    `confidence`, and the Wilcoxon signed-rank `statistic` (min of W+ and W-) and two-sided
    `p_value` (nan when every difference is zero or `n < 1`).
    """

    mean_difference: float
    ci_low: float
    ci_high: float
    confidence: float
    statistic: float
    p_value: float
    n: int
    mean_before: float
    mean_after: float


def _as_1d(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ConfigError(
            f"'{name}' should be a 1-d array (one entry per run) but got shape {array.shape}; "
            "flatten it or pass one column of the results table."
        )
    return array


def rank_average(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Ranks 1..n of `values` (`n`), ties given the average of the ranks they span."""
    array = _as_1d("values", values)
    order = np.argsort(array, kind="mergesort")
    sorted_values = array[order]
    ranks = np.empty(len(array), dtype=np.float64)
    start = 0
    n = len(array)
    while start < n:
        stop = start + 1
        while stop < n and sorted_values[stop] == sorted_values[start]:
            stop += 1
        ranks[order[start:stop]] = (start + stop + 1) / 2.0  # mean of start+1 .. stop
        start = stop
    return ranks


def spearman(x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray) -> CorrelationResult:
    """Spearman correlation of `x` and `y` (both `n`) over pairs where both are finite.

    The p-value is two-sided from Student's t with `n - 2` degrees of freedom, as scipy's
    `spearmanr` computes it.
    """
    x_array, y_array = _as_1d("x", x), _as_1d("y", y)
    if x_array.shape != y_array.shape:
        raise ConfigError(
            f"spearman needs x and y of equal length but got {len(x_array)} and {len(y_array)}."
        )
    keep = np.isfinite(x_array) & np.isfinite(y_array)
    x_array, y_array = x_array[keep], y_array[keep]
    n = int(len(x_array))
    if n < 3:
        return CorrelationResult(math.nan, math.nan, n)
    rx, ry = rank_average(x_array), rank_average(y_array)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = math.sqrt(float((rx * rx).sum() * (ry * ry).sum()))
    if denominator == 0.0:
        return CorrelationResult(math.nan, math.nan, n)
    rho = float(np.clip((rx * ry).sum() / denominator, -1.0, 1.0))
    return CorrelationResult(rho, _spearman_p_value(rho, n), n)


def _spearman_p_value(rho: float, n: int) -> float:
    dof = n - 2
    if abs(rho) >= 1.0:
        return 0.0
    t = rho * math.sqrt(dof / ((1.0 - rho) * (1.0 + rho)))
    return float(2.0 * special.stdtr(dof, -abs(t)))


def wilcoxon_signed_rank(
    differences: Sequence[float] | np.ndarray, method: str = "auto"
) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of `differences` (`n`) against zero.

    Zero differences are dropped (Wilcoxon's convention). `method`: "exact" (the null
    distribution of W+ by counting sign assignments; needs no ties), "approx" (normal
    approximation with the tie correction, no continuity correction) or "auto" (exact when
    at most 50 nonzero differences and no ties, else approx). Returns (min(W+, W-), p-value);
    nan p-value when no nonzero difference is left.
    """
    if method not in ("auto", "exact", "approx"):
        raise ConfigError(f"'method' should be 'auto', 'exact' or 'approx' but got {method!r}.")
    d = _as_1d("differences", differences)
    d = d[np.isfinite(d) & (d != 0.0)]
    n = len(d)
    if n == 0:
        return math.nan, math.nan
    ranks = rank_average(np.abs(d))
    w_plus = float(ranks[d > 0].sum())
    w_minus = float(ranks[d < 0].sum())
    statistic = min(w_plus, w_minus)
    has_ties = len(np.unique(np.abs(d))) < n
    if method == "auto":
        method = "exact" if (n <= 50 and not has_ties) else "approx"
    if method == "exact":
        if has_ties:
            raise ConfigError(
                "wilcoxon_signed_rank(method='exact') needs differences without ties; "
                "use method='approx' or 'auto'."
            )
        return statistic, _wilcoxon_exact_p(int(round(statistic)), n)
    mean = n * (n + 1) / 4.0
    _, counts = np.unique(np.abs(d), return_counts=True)
    variance = n * (n + 1) * (2 * n + 1) / 24.0 - float((counts**3 - counts).sum()) / 48.0
    if variance <= 0.0:
        return statistic, math.nan
    z = (statistic - mean) / math.sqrt(variance)
    return statistic, float(min(1.0, 2.0 * special.ndtr(-abs(z))))


def _wilcoxon_exact_p(statistic: int, n: int) -> float:
    """P(min(W+, W-) <= statistic) under the null, W+ the sum of a random subset of 1..n."""
    max_sum = n * (n + 1) // 2
    counts = np.zeros(max_sum + 1, dtype=np.float64)
    counts[0] = 1.0
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    cdf = counts[: statistic + 1].sum() / 2.0**n
    return float(min(1.0, 2.0 * cdf))


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` (default: the mean) over `values` (`n`).

    `statistic` maps an `n_resamples x n` array to `n_resamples` (vectorised along rows).
    Seeded by `seed`, so the same input gives the same interval. nan when `n < 2`.
    """
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"'confidence' should be in (0, 1) but got {confidence}.")
    if n_resamples < 10:
        raise ConfigError(f"'n_resamples' should be at least 10 but got {n_resamples}.")
    array = _as_1d("values", values)
    array = array[np.isfinite(array)]
    if len(array) < 2:
        return math.nan, math.nan
    function = statistic if statistic is not None else (lambda a: a.mean(axis=-1))
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(array), size=(n_resamples, len(array)))
    replicates = np.asarray(function(array[indices]), dtype=np.float64)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [alpha, 1.0 - alpha])
    return float(low), float(high)


def mean_sem(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and standard error (sample SD / sqrt(n)) of the finite entries of `values` (`n`)."""
    array = _as_1d("values", values)
    array = array[np.isfinite(array)]
    if len(array) == 0:
        return math.nan, math.nan
    if len(array) == 1:
        return float(array[0]), math.nan
    return float(array.mean()), float(array.std(ddof=1) / math.sqrt(len(array)))


def paired_comparison(
    before: Sequence[float] | np.ndarray,
    after: Sequence[float] | np.ndarray,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedResult:
    """Compare paired `after` and `before` (both `n`): mean difference, bootstrap CI, Wilcoxon.

    Pairs where either side is not finite are dropped.
    """
    b, a = _as_1d("before", before), _as_1d("after", after)
    if a.shape != b.shape:
        raise ConfigError(
            f"paired_comparison needs before and after of equal length but got {len(b)} "
            f"and {len(a)}; pair the runs by seed first."
        )
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    differences = a - b
    n = int(len(differences))
    if n == 0:
        nan = math.nan
        return PairedResult(nan, nan, nan, confidence, nan, nan, 0, nan, nan)
    low, high = bootstrap_ci(differences, None, n_resamples, confidence, seed)
    statistic, p_value = wilcoxon_signed_rank(differences)
    return PairedResult(
        mean_difference=float(differences.mean()),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        statistic=statistic,
        p_value=p_value,
        n=n,
        mean_before=float(b.mean()),
        mean_after=float(a.mean()),
    )
