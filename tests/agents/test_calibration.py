"""Kernel calibration: the marginal-likelihood grid against a brute-force reference, the
family's invariances, and the schedule."""

import math

import pytest
import torch

from deepalign.agents.calibration import (
    KernelCalibration,
    calibrated_kernel,
    distance_scale,
)
from deepalign.agents.calibration_fit import observation_statistics, select_hyperparameters
from deepalign.errors import ConfigError


def _kernel(n: int, seed: int, d: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=generator, dtype=torch.float64)
    x = x / x.norm(dim=1, keepdim=True)
    return x @ x.T


def _brute_force(kernel, items, rewards, mean, variance, noise, calibration, scale):
    """log p(y) of every grid point by a dense multivariate normal over all observations."""
    best, best_point = -math.inf, None
    for t in calibration.temperatures:
        for s in calibration.outputscales:
            for q in calibration.noise_scales:
                cal = calibrated_kernel(kernel, t, scale, s * variance)
                covariance = cal[items][:, items] + q * noise * torch.eye(len(items),
                                                                          dtype=torch.float64)
                mvn = torch.distributions.MultivariateNormal(
                    torch.full((len(items),), mean, dtype=torch.float64), covariance
                )
                value = float(mvn.log_prob(rewards))
                if value > best + 1e-12:
                    best, best_point = value, (t, s, q)
    return best, best_point


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_grid_matches_dense_marginal_likelihood(seed):
    n = 12
    kernel = 0.7 * _kernel(n, seed)  # a non-unit diagonal: only correlations and D matter
    generator = torch.Generator().manual_seed(100 + seed)
    items = torch.randint(0, 8, (15,), generator=generator)  # repeats, only 8 of 12 items
    rewards = torch.randn(15, generator=generator, dtype=torch.float64) * 2 + 1
    calibration = KernelCalibration(noise_scales=(0.5, 1.0, 2.0))
    scale = distance_scale(kernel, torch.arange(8))
    counts, sums, squares = observation_statistics(items[None], rewards[None], n)
    choice = select_hyperparameters(kernel, scale, counts, sums, squares, 0.5, 1.5, 0.3,
                                    calibration)
    value, point = _brute_force(kernel, items, rewards, 0.5, 1.5, 0.3, calibration, scale)
    assert float(choice.log_evidence[0]) == pytest.approx(value, abs=1e-8)
    assert (float(choice.temperature[0]), float(choice.outputscale[0]),
            float(choice.noise_scale[0])) == point


def test_batched_equals_one_run_at_a_time_and_per_run_kernels():
    n, n_runs = 10, 5
    kernels = torch.stack([_kernel(n, seed) for seed in range(n_runs)])
    generator = torch.Generator().manual_seed(7)
    items = torch.randint(0, n, (n_runs, 9), generator=generator)
    rewards = torch.randn(n_runs, 9, generator=generator, dtype=torch.float64)
    calibration = KernelCalibration()
    scale = distance_scale(kernels)
    stats = observation_statistics(items, rewards, n)
    batched = select_hyperparameters(kernels, scale, *stats, 0.0, 1.0, 0.1, calibration)
    for run in range(n_runs):
        alone = select_hyperparameters(
            kernels[run], scale[run], *(s[run : run + 1] for s in stats), 0.0, 1.0, 0.1,
            calibration,
        )
        assert float(alone.temperature[0]) == float(batched.temperature[run])
        assert float(alone.log_evidence[0]) == pytest.approx(float(batched.log_evidence[run]),
                                                             abs=1e-9)


def test_unobserved_items_never_matter():
    """Kernel entries and statistics of items no run observed cannot change the choice."""
    n = 10
    kernel = _kernel(n, 3)
    items = torch.tensor([[0, 1, 2, 1, 3, 0]])
    rewards = torch.tensor([[1.0, 0.2, -0.5, 0.4, 0.9, 1.1]], dtype=torch.float64)
    stats = observation_statistics(items, rewards, n)
    scale = distance_scale(kernel, torch.arange(6))
    first = select_hyperparameters(kernel, scale, *stats, 0.0, 1.0, 0.1, KernelCalibration())
    other = kernel.clone()
    other[8:, :8] = other[:8, 8:].T.flip(0) * 0.0
    other[:8, 8:] = 0.0
    second = select_hyperparameters(other, scale, *stats, 0.0, 1.0, 0.1, KernelCalibration())
    assert torch.equal(first.temperature, second.temperature)
    assert torch.equal(first.log_evidence, second.log_evidence)


def test_uniformity_blend_calibrates_to_the_same_kernel():
    kernel = _kernel(20, 4)
    arms = torch.arange(14)
    blend = 0.6 + 0.4 * kernel
    for t in (0.25, 1.0, 4.0):
        a = calibrated_kernel(kernel, t, distance_scale(kernel, arms))
        b = calibrated_kernel(blend, t, distance_scale(blend, arms))
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


def test_constant_kernel_stays_constant_and_family_is_psd():
    ones = torch.ones(6, 6, dtype=torch.float64)
    scale = distance_scale(ones)
    assert float(scale) == 1.0
    torch.testing.assert_close(calibrated_kernel(ones, 0.125, scale), ones)
    kernel = _kernel(30, 5, d=8)
    scale = distance_scale(kernel)
    for t in (0.125, 1.0, 8.0):
        cal = calibrated_kernel(kernel, t, scale)
        assert float(torch.linalg.eigvalsh(cal).min()) > -1e-10
        torch.testing.assert_close(cal.diagonal(), torch.ones(30, dtype=torch.float64))
    # monotone in the similarities: the rank order (Spearman alignment) is kept
    upper = torch.triu_indices(30, 30, 1)
    raw = kernel[upper[0], upper[1]]
    cal = calibrated_kernel(kernel, 0.5, scale)[upper[0], upper[1]]
    assert torch.equal(raw.argsort(), cal.argsort())


def test_median_distance_scale():
    kernel = torch.tensor([[1.0, 0.8, 0.2], [0.8, 1.0, 0.5], [0.2, 0.5, 1.0]],
                          dtype=torch.float64)
    assert float(distance_scale(kernel)) == pytest.approx(0.5)  # distances 0.2, 0.8, 0.5
    assert float(distance_scale(kernel, torch.tensor([0, 1]))) == pytest.approx(0.2)


def test_schedule_and_validation():
    calibration = KernelCalibration()
    assert calibration.schedule(100) == (5, 10, 20, 40, 80)
    assert KernelCalibration(first=3, growth=1.5).schedule(20) == (3, 5, 8, 12, 18)
    assert calibration.default_index == (3, 2, 0)
    with pytest.raises(ConfigError, match="temperatures"):
        KernelCalibration(temperatures=(0.0, 1.0))
    with pytest.raises(ConfigError, match="growth"):
        KernelCalibration(growth=1.0)
    with pytest.raises(ConfigError, match="first"):
        KernelCalibration(first=0)


def test_one_distinct_arm_keeps_the_centre_temperature():
    """With every observation on one arm, all temperatures explain the data alike: the tie
    goes to the grid centre (t = 1), never to near-independent arms (t = 0.125)."""
    kernel = _kernel(10, 6)
    items = torch.tensor([[3, 3, 3, 3, 3, 3]])
    rewards = torch.tensor([[1.0, 1.2, 0.8, 1.1, 0.9, 1.0]], dtype=torch.float64)
    stats = observation_statistics(items, rewards, 10)
    choice = select_hyperparameters(kernel, distance_scale(kernel), *stats, 0.0, 1.0, 0.1,
                                    KernelCalibration())
    assert float(choice.temperature[0]) == 1.0


def test_round_off_level_distance_scale_is_refused():
    from deepalign.agents.calibration import check_distance_scale
    from deepalign.agents.engine import GPBanditEngine
    from deepalign.agents.engine.policies import ThompsonPolicy

    x = torch.randn(30, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    kernel = torch.ones(30, 30, dtype=torch.float64) - 1e-9 * torch.cdist(x, x)
    check_distance_scale(torch.tensor(1e-3), "fine")  # a random-weight encoder's scale
    engine = GPBanditEngine(kernel, calibration=KernelCalibration())
    with pytest.raises(ConfigError, match="round-off"):
        engine.simulate(ThompsonPolicy(), torch.zeros(30, dtype=torch.float64), 0.1, 5, [0])
