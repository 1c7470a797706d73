"""Convergence as the paper defines it (the step after which the pulled arm never changes)
is finite for a deterministic agent: GP-UCB settles on a clearly best arm long before the
horizon, while Thompson sampling keeps trying other arms now and then."""

import torch

from deepalign.agents.engine import GPBanditEngine
from deepalign.agents.engine.policies import ThompsonPolicy, UCBPolicy
from deepalign.agents.metrics import personalization_metrics


def _ten_arm_runs(policy):
    values = torch.zeros(10, dtype=torch.float64)
    values[7] = 1.0  # one clearly best arm
    position = torch.arange(10, dtype=torch.float64)
    kernel = torch.exp(-(position[:, None] - position[None]) ** 2 / 2)
    engine = GPBanditEngine(kernel, mean=0.0, noise_variance=0.01)
    trajectory = engine.simulate(policy, values, reward_noise_sd=0.1, horizon=100,
                                 seeds=range(20))
    return trajectory, personalization_metrics(trajectory.arms, values, 0.5)


def test_gp_ucb_converges_on_the_best_arm_well_before_the_horizon():
    trajectory, metrics = _ten_arm_runs(UCBPolicy(beta=2.0))
    settled = metrics["iterations_to_convergence"]
    assert float(settled.max()) <= 40  # every run has settled by step 40 of 100
    assert (trajectory.arms[:, -1] == 7).all()  # ... on the best arm


def test_thompson_sampling_settles_later_than_gp_ucb():
    _, ucb = _ten_arm_runs(UCBPolicy(beta=2.0))
    _, thompson = _ten_arm_runs(ThompsonPolicy())
    ucb_mean = float(ucb["iterations_to_convergence"].mean())
    thompson_mean = float(thompson["iterations_to_convergence"].mean())
    assert thompson_mean > 2 * ucb_mean
