"""Kernel regression, SVR, independent Thompson sampling and random: closed forms and checks."""

import numpy as np
import pytest
import torch
from sklearn.svm import SVR

from deepalign.agents.baselines import IndependentThompsonAgent, RandomAgent
from deepalign.agents.hyperparameters import GPHyperparameters
from deepalign.agents.regression import KernelRegressionAgent, SVRAgent, kernel_matrix
from deepalign.errors import ConfigError
from deepalign.kernels import MatrixKernel

K = torch.tensor(
    [
        [1.0, 0.5, 0.0, -0.2],
        [0.5, 1.0, 0.25, 0.0],
        [0.0, 0.25, 1.0, 0.0],
        [-0.2, 0.0, 0.0, 1.0],
    ],
    dtype=torch.float64,
)


def test_kernel_regression_is_nadaraya_watson_by_hand():
    agent = KernelRegressionAgent(K, torch.tensor([0, 1, 2]), 4, prior_mean=0.0)
    assert agent.predict(torch.arange(4)).tolist() == [0.0] * 4  # no evidence: prior mean
    agent.observe(0, 2.0)
    agent.observe(2, -1.0)
    agent.observe(0, 4.0)
    predicted = agent.predict(torch.arange(4))
    # item 0: weights (1, 0, 1) -> 3; item 1: (0.5, 0.25, 0.5) -> (1 - 0.25 + 2) / 1.25
    # item 2: (0, 1, 0) -> -1; item 3: weights (-0.2 -> 0, 0, 0) -> prior mean 0
    assert predicted.tolist() == pytest.approx([3.0, 2.75 / 1.25, -1.0, 0.0])


def test_svr_with_precomputed_kernel_equals_linear_svr_on_features():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(6, 2, generator=generator, dtype=torch.float64)
    gram = features @ features.T
    agent = SVRAgent(gram, torch.arange(4), 6, prior_mean=1.0, C=2.0, svr_epsilon=0.05)
    observations = [(0, 2.0), (1, 0.5), (3, -1.0), (1, 0.7), (2, 3.0)]
    for arm, reward in observations:
        agent.observe(arm, reward)
    reference = SVR(kernel="linear", C=2.0, epsilon=0.05)
    arms = [arm for arm, _ in observations]
    reference.fit(features[arms].numpy(), [reward - 1.0 for _, reward in observations])
    expected = reference.predict(features.numpy()) + 1.0
    assert agent.predict(torch.arange(6)).numpy() == pytest.approx(expected, abs=1e-6)


def test_epsilon_greedy_rule():
    greedy = KernelRegressionAgent(torch.eye(3, dtype=torch.float64), torch.arange(3), 3, 0.0, 0.0)
    greedy.observe(1, 5.0)
    generator = torch.Generator().manual_seed(0)
    assert {greedy.select(generator) for _ in range(30)} == {1}
    explorer = SVRAgent(torch.eye(3, dtype=torch.float64), torch.arange(3), 3, 0.0, epsilon=1.0)
    explorer.observe(1, 5.0)
    assert {explorer.select(generator) for _ in range(60)} == {0, 1, 2}


def test_kernel_matrix_from_a_gpytorch_kernel():
    matrix = kernel_matrix(MatrixKernel(K.abs() + torch.eye(4, dtype=torch.float64)), 4)
    assert torch.allclose(matrix, (K.abs() + torch.eye(4, dtype=torch.float64)), atol=1e-5)
    with pytest.raises(ConfigError, match="4 x 4"):
        kernel_matrix(torch.eye(3), 4)
    with pytest.raises(ConfigError, match="'epsilon'"):
        KernelRegressionAgent(K, torch.arange(4), 4, 0.0, epsilon=1.5)


HYPER = GPHyperparameters(mean=0.0, outputscale=4.0, noise_variance=1.0)


def test_independent_thompson_posterior_closed_form():
    agent = IndependentThompsonAgent(torch.tensor([0, 2, 3]), 5, HYPER)
    agent.observe(0, 2.0)
    agent.observe(0, 4.0)
    agent.observe(2, -1.0)
    mean, variance = agent.posterior()
    # arm 0: precision 1/4 + 2 = 2.25, mean 6 / 2.25; arm 2: 1.25, -1 / 1.25; arm 1: prior
    assert mean.tolist() == pytest.approx([6 / 2.25, 0.0, -1 / 1.25])
    assert variance.tolist() == pytest.approx([1 / 2.25, 4.0, 1 / 1.25])
    # items 0, 3 are arms 0, 2; items 1, 4 are not arms: the prior mean
    assert agent.predict(torch.tensor([0, 1, 3, 4])).tolist() == pytest.approx(
        [6 / 2.25, 0.0, -1 / 1.25, 0.0]
    )


def test_independent_thompson_exploits_and_random_is_uniform():
    agent = IndependentThompsonAgent(torch.arange(3), 3, HYPER)
    for _ in range(40):
        agent.observe(0, -2.0)
        agent.observe(1, 3.0)
        agent.observe(2, -1.0)
    generator = torch.Generator().manual_seed(0)
    assert {agent.select(generator) for _ in range(30)} == {1}
    random_agent = RandomAgent(torch.arange(4), 4, prior_mean=0.5)
    counts = torch.bincount(torch.tensor([random_agent.select(generator) for _ in range(4000)]))
    assert counts.tolist() == pytest.approx([1000] * 4, abs=100)
    assert random_agent.predict(torch.arange(4)).tolist() == [0.5] * 4


def _svr_on(kernel, rewards, reward_range=8.6, **options):
    agent = SVRAgent(kernel, torch.arange(kernel.shape[0]), kernel.shape[0], prior_mean=0.0,
                     epsilon=0.0, reward_range=reward_range, **options)
    for arm, reward in rewards:
        agent.observe(arm, reward)
    return agent


def test_svr_choices_depend_on_the_kernel_for_the_same_observations():
    # arms as unit vectors at angles (degrees); cosine kernels. Arm 0 was bad, arm 1 good:
    # the fit rises away from arm 0, so the greedy pick is the arm at 80 degrees, which is
    # arm 2 under the first kernel and arm 3 under the second
    def cosine(angles):
        radians = torch.tensor(angles, dtype=torch.float64).deg2rad()
        features = torch.stack([radians.cos(), radians.sin()], dim=1)
        return features @ features.T

    observed = [(0, -3.0), (1, 1.0)]
    picks = [_svr_on(cosine(angles), observed).select(torch.Generator().manual_seed(0))
             for angles in ([0, 40, 80, -40], [0, 40, -40, 80])]
    assert picks == [2, 3]


def test_svr_c_fits_the_reward_scale():
    # rewards on a -4.3..4.3 scale: with C = 1 every dual coefficient sat at the bound, the
    # fit ignored how large each residual was; C defaults to the scale's width instead
    gram = torch.eye(5, dtype=torch.float64) * 0.8 + 0.2
    rewards = [(0, -3.5), (1, 3.0), (2, 0.4), (3, 2.2)]
    fitted = _svr_on(gram, rewards)._model()
    assert fitted.C == 8.6 and fitted.epsilon == pytest.approx(0.086)
    assert abs(fitted.dual_coef_).max() < 8.6  # no coefficient at the bound
    prediction = _svr_on(gram, rewards).predict(torch.arange(4))
    np.testing.assert_allclose(prediction.numpy(), [r for _, r in rewards], atol=0.1)
    saturated = _svr_on(gram, rewards, C=1.0)._model()
    assert np.allclose(abs(saturated.dual_coef_), 1.0)  # what the old default did
