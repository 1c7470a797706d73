"""Soft ranks (Blondel et al. 2020): hard-rank and Pearson limits, an independent
projection solver, PAV against scipy, gradcheck, batch and permutation consistency."""

import itertools
import time

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from deepalign.alignment import soft_rank
from deepalign.alignment.soft_rank import _pav_decreasing
from deepalign.errors import ConfigError, DataError


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_small_strength_gives_hard_ranks(dtype):
    values = torch.randn(200, dtype=dtype)
    gaps = torch.sort(values).values.diff().min().item()
    ranks = soft_rank(values, regularization_strength=0.5 * gaps)
    expected = stats.rankdata(values.double().numpy())
    assert np.allclose(
        ranks.double().numpy(), expected, atol=1e-3 if dtype == torch.float32 else 1e-9
    )


def test_ties_get_average_ranks_like_scipy_for_any_small_strength():
    values = torch.tensor([3.0, 1.0, 2.0, 2.0, 5.0, 1.0, 2.0], dtype=torch.float64)
    for strength in (1e-6, 1e-3, 0.1):
        assert np.allclose(soft_rank(values, strength).numpy(), stats.rankdata(values.numpy()))


def test_large_strength_gives_centred_values():
    """Everything pools into one block: (n + 1) / 2 + (theta - mean theta) / eps."""
    values = torch.randn(50, dtype=torch.float64)
    eps = 1e4
    expected = (50 + 1) / 2 + (values - values.mean()) / eps
    assert torch.allclose(soft_rank(values, eps), expected, atol=1e-12)


def _projection_onto_permutahedron(z):
    """Independent reference: minimise ||mu - z||^2 subject to the permutahedron's
    inequalities (every subset sum <= sum of as many largest ranks; total equal)."""
    n = z.size
    w = np.arange(1, n + 1, dtype=np.float64)
    top = np.concatenate([[0.0], np.cumsum(w[::-1])])
    constraints = [{"type": "eq", "fun": lambda mu: mu.sum() - w.sum()}]
    for size in range(1, n):
        for subset in itertools.combinations(range(n), size):
            idx = list(subset)
            constraints.append(
                {"type": "ineq", "fun": lambda mu, idx=idx, size=size: top[size] - mu[idx].sum()}
            )
    result = optimize.minimize(
        lambda mu: ((mu - z) ** 2).sum(),
        x0=np.full(n, w.mean()),
        jac=lambda mu: 2 * (mu - z),
        constraints=constraints,
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return result.x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_rank_is_the_projection_onto_the_permutahedron(seed):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(5)
    eps = 0.7
    got = soft_rank(torch.from_numpy(values), eps).numpy()
    assert np.allclose(got, _projection_onto_permutahedron(values / eps), atol=1e-5)


def test_pav_matches_scipy_isotonic_regression():
    rng = np.random.default_rng(3)
    for _ in range(20):
        y = np.round(rng.standard_normal(60) * 3, 1)
        means, sizes = _pav_decreasing(y.tolist())
        reference = optimize.isotonic_regression(y, increasing=False).x
        assert np.allclose(np.repeat(means, sizes), reference, atol=1e-12)
        assert np.all(np.diff(means) < 0)  # blocks are pooled until strictly decreasing


@pytest.mark.parametrize("strength", [0.05, 0.3, 2.0])
def test_gradcheck(strength):
    values = torch.randn(3, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: soft_rank(v, strength), (values,))
    single = torch.randn(12, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: soft_rank(v, strength), (single,))


def test_batch_equals_stacked_rows_and_permutation_equivariance():
    values = torch.randn(4, 30, dtype=torch.float64)
    batched = soft_rank(values, 0.2)
    stacked = torch.stack([soft_rank(row, 0.2) for row in values])
    assert torch.allclose(batched, stacked, atol=1e-12)
    perm = torch.randperm(30)
    assert torch.allclose(soft_rank(values[:, perm], 0.2), batched[:, perm], atol=1e-12)


def test_sum_order_and_range():
    values = torch.randn(100, dtype=torch.float64) * 0.01
    ranks = soft_rank(values, 0.001)
    assert ranks.sum().item() == pytest.approx(100 * 101 / 2, abs=1e-8)
    assert torch.equal(torch.argsort(ranks), torch.argsort(values))
    assert ranks.min() >= 1.0 - 1e-12 and ranks.max() <= 100.0 + 1e-12


def test_thirty_thousand_values_forward_and_backward_well_under_a_second(one_thread):
    values = torch.randn(30_000, requires_grad=True)
    weights = torch.randn(30_000)
    soft_rank(values, 1e-4)  # warm-up
    start = time.perf_counter()
    (soft_rank(values, 1e-4) * weights).sum().backward()
    assert time.perf_counter() - start < 0.5
    assert values.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "values,strength,error,message",
    [
        (torch.randn(4), 0.0, ConfigError, "regularization_strength"),
        (torch.tensor([1.0, float("nan")]), 1.0, DataError, "finite"),
        (torch.randn(2, 2, 2), 1.0, DataError, "1-d"),
        (torch.tensor([1, 2, 3]), 1.0, DataError, "floating"),
    ],
)
def test_bad_arguments(values, strength, error, message):
    with pytest.raises(error, match=message):
        soft_rank(values, strength)
