"""The engine with kernel calibration: BoTorch equality with the fitted hyperparameters,
personalization data only, batch invariance."""

import pytest
import torch

from deepalign.agents.calibration import (
    KernelCalibration,
    calibrated_kernel,
    distance_scale,
)
from deepalign.agents.calibration_fit import observation_statistics, select_hyperparameters
from deepalign.agents.engine import GPBanditEngine
from deepalign.agents.engine.policies import SafePolicy, ThompsonPolicy, UCBPolicy

from .test_engine_posterior import botorch_posterior, rbf_kernel

DTYPE = torch.float64
pytestmark = pytest.mark.usefixtures("one_thread")


def _setting(n_items=40, n_heldout=12, seed=0):
    kernel = 0.2 + 0.8 * rbf_kernel(n_items, 3, 1.5, seed)  # a fairly uniform kernel
    values = torch.randn(n_items, generator=torch.Generator().manual_seed(seed + 50),
                         dtype=DTYPE)
    available = torch.ones(n_items, dtype=torch.bool)
    available[-n_heldout:] = False
    return kernel, values, available


@pytest.mark.parametrize("policy", [ThompsonPolicy(), UCBPolicy(2.0), SafePolicy(0.0, 4.0)])
def test_calibrated_posterior_matches_botorch_with_the_fitted_hyperparameters(policy):
    kernel, values, available = _setting()
    calibration = KernelCalibration(noise_scales=(0.5, 1.0, 2.0))
    engine = GPBanditEngine(0.8 * kernel, mean=0.1, noise_variance=0.09,
                            calibration=calibration)
    trajectory = engine.simulate(policy, values, 0.3, 45, seeds=range(4), available=available,
                                 return_covariance=True)
    scale = distance_scale(kernel, torch.nonzero(available).flatten())
    for run in range(4):
        t, s, q, _ = trajectory.calibration[run].tolist()
        # the last fit was after 40 observations: refit here and compare the choice
        stats = observation_statistics(trajectory.arms[run : run + 1, :40],
                                       trajectory.rewards[run : run + 1, :40], 40)
        again = select_hyperparameters(0.8 * kernel, scale, *stats, 0.1, 1.0, 0.09,
                                       calibration)
        assert (float(again.temperature[0]), float(again.outputscale[0]),
                float(again.noise_scale[0])) == (t, s, q)
        covariance = calibrated_kernel(0.8 * kernel, t, scale, s)
        mean, cov = botorch_posterior(covariance, 0.1, 0.09 * q, trajectory.arms[run],
                                      trajectory.rewards[run])
        torch.testing.assert_close(trajectory.posterior_mean[run], mean, rtol=0, atol=1e-6)
        torch.testing.assert_close(trajectory.posterior_covariance[run], cov, rtol=0, atol=1e-6)
    assert not bool((~available[trajectory.arms]).any())


def test_fits_vary_with_the_kernel_and_a_constant_kernel_stays_constant():
    kernel, values, available = _setting()
    engine = GPBanditEngine(kernel, mean=0.0, noise_variance=0.09,
                            calibration=KernelCalibration())
    trajectory = engine.simulate(ThompsonPolicy(), values, 0.3, 30, seeds=range(16),
                                 available=available)
    assert len(set(trajectory.calibration[:, 0].tolist())) > 1  # not one fixed prior
    ones = torch.ones(40, 40, dtype=DTYPE)
    flat = GPBanditEngine(ones, mean=0.0, noise_variance=0.09, calibration=KernelCalibration())
    trajectory = flat.simulate(ThompsonPolicy(), values, 0.3, 30, seeds=range(4),
                               available=available)
    heldout = trajectory.posterior_mean[:, ~available]
    spread = heldout.max(dim=1).values - heldout.min(dim=1).values
    assert float(spread.max()) < 1e-12


def test_heldout_values_never_change_the_choices():
    kernel, values, available = _setting()
    engine = GPBanditEngine(kernel, mean=0.0, noise_variance=0.09,
                            calibration=KernelCalibration())
    first = engine.simulate(ThompsonPolicy(), values, 0.3, 50, seeds=range(8),
                            available=available, record_greedy=True)
    changed = values.clone()
    changed[~available] = torch.linspace(-5, 5, int((~available).sum()), dtype=DTYPE)
    second = engine.simulate(ThompsonPolicy(), changed, 0.3, 50, seeds=range(8),
                             available=available, record_greedy=True)
    assert torch.equal(first.arms, second.arms)
    assert torch.equal(first.greedy_arms, second.greedy_arms)
    assert torch.equal(first.calibration, second.calibration)
    assert torch.equal(first.posterior_mean, second.posterior_mean)


def test_calibrated_runs_are_batch_invariant_and_chunked_alike():
    kernel, values, available = _setting()
    engine = GPBanditEngine(kernel, mean=0.0, noise_variance=0.09,
                            calibration=KernelCalibration())
    batch = engine.simulate(ThompsonPolicy(), values, 0.3, 25, seeds=[3, 5, 7],
                            available=available)
    small = GPBanditEngine(kernel, mean=0.0, noise_variance=0.09,
                           calibration=KernelCalibration(),
                           memory_budget_bytes=engine.bytes_per_run(25))
    chunked = small.simulate(ThompsonPolicy(), values, 0.3, 25, seeds=[3, 5, 7],
                             available=available)
    alone = engine.simulate(ThompsonPolicy(), values, 0.3, 25, seeds=[5], available=available)
    assert torch.equal(batch.arms, chunked.arms)
    assert torch.equal(batch.arms[1], alone.arms[0])
    torch.testing.assert_close(batch.posterior_mean[1], alone.posterior_mean[0], rtol=0,
                               atol=1e-12)


def test_sequential_agent_calibrates_like_the_engine():
    """A BoTorch agent with calibration picks the same grid point as the shared rule on its
    own observations, and its posterior is SingleTaskGP's with that calibrated kernel."""
    from deepalign.agents.gp import GPThompsonAgent
    from deepalign.agents.hyperparameters import GPHyperparameters
    from deepalign.kernels import MatrixKernel

    kernel, values, available = _setting(n_items=20, n_heldout=5)
    hyper = GPHyperparameters(mean=0.0, outputscale=0.8, noise_variance=0.09)
    arms = torch.nonzero(available).flatten()
    agent = GPThompsonAgent(MatrixKernel(kernel), arms, 20, hyper,
                            calibration=KernelCalibration())
    generator = torch.Generator().manual_seed(0)
    noise = torch.Generator().manual_seed(1)
    for _ in range(12):
        arm = agent.select(generator)
        agent.observe(arm, float(values[arms[arm]]) + 0.3 * float(torch.randn(1, generator=noise)))
    items, rewards = agent.observed_items, agent.observed_rewards
    stats = observation_statistics(items[:10][None], rewards[:10][None], 20)
    scale = distance_scale(kernel, arms)
    choice = select_hyperparameters(kernel, scale, *stats, 0.0, 0.8, 0.09, KernelCalibration())
    agent.predict(arms)  # conditions on all 12 observations; last fit after 10
    assert float(agent.posterior.choice.temperature[0]) == float(choice.temperature[0])
    s = 0.8 * float(choice.outputscale[0])
    covariance = calibrated_kernel(kernel, float(choice.temperature[0]), scale, s)
    mean, _ = botorch_posterior(covariance, 0.0, 0.09, items, rewards)
    torch.testing.assert_close(agent.predict(torch.arange(20)), mean, rtol=0, atol=1e-6)
    with pytest.raises(Exception, match="choose one"):
        GPThompsonAgent(MatrixKernel(kernel), arms, 20, hyper, refit_every=5,
                        calibration=KernelCalibration())
