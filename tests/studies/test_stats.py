"""deepalign.studies.stats against scipy."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from deepalign.errors import ConfigError
from deepalign.studies.stats import (
    bootstrap_ci,
    mean_sem,
    paired_comparison,
    rank_average,
    spearman,
    wilcoxon_signed_rank,
)


@pytest.mark.parametrize("n", [3, 7, 40, 300])
def test_spearman_matches_scipy(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n)
    y = 0.5 * x + rng.normal(size=n)
    ours = spearman(x, y)
    reference = scipy_stats.spearmanr(x, y)
    assert ours.n == n
    assert ours.rho == pytest.approx(reference.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(reference.pvalue, rel=1e-9, abs=1e-300)


def test_spearman_with_ties_and_nan():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 4, size=60).astype(float)
    y = x + rng.integers(0, 3, size=60)
    x[[3, 9]] = np.nan
    ours = spearman(x, y)
    keep = np.isfinite(x)
    reference = scipy_stats.spearmanr(x[keep], y[keep])
    assert ours.n == 58
    assert ours.rho == pytest.approx(reference.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(reference.pvalue, rel=1e-9)


def test_spearman_constant_is_nan():
    result = spearman([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0])
    assert math.isnan(result.rho) and math.isnan(result.p_value)
    assert math.isnan(spearman([1.0, 2.0], [2.0, 1.0]).rho)


def test_rank_average_matches_scipy():
    values = np.array([3.0, 1.0, 3.0, 2.0, 1.0, 3.0])
    np.testing.assert_allclose(rank_average(values), scipy_stats.rankdata(values))


@pytest.mark.parametrize("n", [4, 9, 20, 45])
def test_wilcoxon_exact_matches_scipy(n):
    rng = np.random.default_rng(10 + n)
    d = rng.normal(size=n) + 0.4
    statistic, p = wilcoxon_signed_rank(d)
    reference = scipy_stats.wilcoxon(d, method="exact")
    assert statistic == pytest.approx(float(reference.statistic))
    assert p == pytest.approx(float(reference.pvalue), rel=1e-10)


def test_wilcoxon_approx_with_ties_matches_scipy():
    rng = np.random.default_rng(3)
    d = np.round(rng.normal(size=70) + 0.2, 1)
    d = d[d != 0]
    statistic, p = wilcoxon_signed_rank(d, method="approx")
    reference = scipy_stats.wilcoxon(d, method="asymptotic", correction=False)
    assert statistic == pytest.approx(float(reference.statistic))
    assert p == pytest.approx(float(reference.pvalue), rel=1e-10)
    # "auto" switches to the normal approximation because of the ties
    assert wilcoxon_signed_rank(d)[1] == pytest.approx(p)


def test_wilcoxon_drops_zeros_and_refuses_exact_with_ties():
    d = np.array([0.0, 1.0, -2.0, 3.0, 4.0, 0.0, 5.0])
    assert wilcoxon_signed_rank(d) == wilcoxon_signed_rank(d[d != 0])
    assert all(math.isnan(v) for v in wilcoxon_signed_rank(np.zeros(5)))
    with pytest.raises(ConfigError, match="ties"):
        wilcoxon_signed_rank([1.0, 1.0, -2.0], method="exact")


def test_bootstrap_ci_close_to_scipy_percentile():
    rng = np.random.default_rng(5)
    values = rng.exponential(size=80)
    low, high = bootstrap_ci(values, n_resamples=4000, seed=1)
    reference = scipy_stats.bootstrap(
        (values,), np.mean, n_resamples=4000, method="percentile", random_state=2
    ).confidence_interval
    width = reference.high - reference.low
    assert low == pytest.approx(reference.low, abs=0.08 * width)
    assert high == pytest.approx(reference.high, abs=0.08 * width)
    assert bootstrap_ci(values, seed=1) == bootstrap_ci(values, seed=1)  # seeded


def test_bootstrap_ci_of_a_constant_is_the_constant():
    assert bootstrap_ci([2.5] * 10) == (2.5, 2.5)
    assert all(math.isnan(v) for v in bootstrap_ci([1.0]))


def test_mean_sem_matches_scipy():
    values = np.array([1.0, 4.0, 2.0, 8.0, np.nan])
    mean, sem = mean_sem(values)
    assert mean == pytest.approx(3.75)
    assert sem == pytest.approx(scipy_stats.sem(values[:4]))


def test_paired_comparison_consistent_with_parts():
    rng = np.random.default_rng(7)
    before = rng.normal(size=12)
    after = before + 0.5 + 0.1 * rng.normal(size=12)
    result = paired_comparison(before, after, seed=3)
    difference = after - before
    assert result.n == 12
    assert result.mean_difference == pytest.approx(difference.mean())
    assert result.mean_before == pytest.approx(before.mean())
    assert (result.ci_low, result.ci_high) == bootstrap_ci(difference, seed=3)
    reference = scipy_stats.wilcoxon(after, before, method="exact")
    assert result.p_value == pytest.approx(float(reference.pvalue))
    assert result.ci_low > 0
    with pytest.raises(ConfigError, match="equal length"):
        paired_comparison([1.0, 2.0], [1.0])
