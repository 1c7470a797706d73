"""GP agents on BoTorch: closed-form posterior, UCB = BoTorch's, Thompson samples, safety."""

import math

import pytest
import torch
from botorch.acquisition import UpperConfidenceBound

from deepalign.agents.gp import GPThompsonAgent, GPUCBAgent, SafeGPAgent
from deepalign.agents.hyperparameters import GPHyperparameters
from deepalign.agents.posterior import GPPosterior, item_inputs, joint_sample
from deepalign.errors import ConfigError
from deepalign.kernels import MatrixKernel

HYPER = GPHyperparameters(mean=0.5, outputscale=2.0, noise_variance=0.3)


pytestmark = pytest.mark.usefixtures("one_thread")


def random_psd(n: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n, 3, generator=generator, dtype=torch.float64)
    features = torch.nn.functional.normalize(features, dim=1)
    return features @ features.T  # unit diagonal, rank 3 (singular): a hard case


def closed_form(K, hyper, items, rewards):
    """Textbook GP posterior over all items."""
    s = hyper.outputscale
    k_all_obs = s * K[:, items]
    gram = s * K[items][:, items] + hyper.noise_variance * torch.eye(items.numel(), dtype=K.dtype)
    solve = torch.linalg.solve(gram, torch.stack([rewards - hyper.mean], dim=1))
    mean = hyper.mean + (k_all_obs @ solve).squeeze(1)
    cov = s * K - k_all_obs @ torch.linalg.solve(gram, k_all_obs.T)
    return mean, cov


def test_posterior_matches_closed_form_with_repeats():
    K = random_psd(7, seed=1)
    posterior = GPPosterior(MatrixKernel(K), HYPER)
    items = torch.tensor([0, 3, 3, 5, 0, 6])
    rewards = torch.tensor([1.0, -0.5, 0.2, 2.0, 1.3, 0.0], dtype=torch.float64)
    posterior.condition(items, rewards)
    mean, cov = posterior.mean_and_covariance(torch.arange(7))
    expected_mean, expected_cov = closed_form(K, HYPER, items, rewards)
    assert torch.allclose(mean, expected_mean, atol=1e-8)
    assert torch.allclose(cov, expected_cov, atol=1e-8)


def test_prior_before_any_observation():
    K = random_psd(5, seed=2)
    mean, cov = GPPosterior(MatrixKernel(K), HYPER).mean_and_covariance(torch.arange(5))
    assert torch.equal(mean, torch.full((5,), 0.5, dtype=torch.float64))
    assert torch.allclose(cov, 2.0 * K, atol=1e-12)


def test_ucb_equals_botorch_upper_confidence_bound():
    K = random_psd(6, seed=3)
    agent = GPUCBAgent(MatrixKernel(K), torch.tensor([0, 2, 4, 5]), 6, HYPER, beta=2.5)
    for arm, reward in [(0, 1.0), (2, -1.0), (0, 0.7)]:
        agent.observe(arm, reward)
    scores = agent.ucb()
    model = agent.posterior.model
    acquisition = UpperConfidenceBound(model, beta=2.5)
    with torch.no_grad():
        expected = acquisition(item_inputs(agent.arm_items).unsqueeze(1))  # n_arms x 1 x 1
    assert torch.allclose(scores, expected, atol=1e-10)
    # the arm picked is the argmax
    generator = torch.Generator().manual_seed(0)
    assert agent.select(generator) == int(expected.argmax())


def test_joint_sample_moments_and_reproducibility():
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    cov = torch.tensor([[2.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 0.5]], dtype=torch.float64)
    # exactly mean + L z with L the Cholesky factor and z the generator's next 3 normals
    z = torch.randn(3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    exact = mean + torch.linalg.cholesky(cov) @ z
    assert torch.allclose(joint_sample(mean, cov, torch.Generator().manual_seed(7)), exact)
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([joint_sample(mean, cov, generator) for _ in range(3000)])
    assert torch.allclose(draws.mean(0), mean, atol=0.1)
    assert torch.allclose(torch.cov(draws.T), cov, atol=0.15)
    a = joint_sample(mean, cov, torch.Generator().manual_seed(5))
    b = joint_sample(mean, cov, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    # singular covariance (rank 1) still samples, on the right line
    singular = torch.ones(3, 3, dtype=torch.float64)
    sample = joint_sample(torch.zeros(3, dtype=torch.float64), singular, generator)
    assert torch.allclose(sample, sample[0].expand(3), atol=1e-4)


def test_thompson_follows_posterior_and_is_reproducible():
    K = torch.eye(4, dtype=torch.float64)
    agent = GPThompsonAgent(MatrixKernel(K), torch.arange(4), 4, HYPER)
    for _ in range(30):  # arm 2 is clearly best and well known; others at the prior
        agent.observe(2, 4.0)
    for arm in (0, 1, 3):
        for _ in range(30):
            agent.observe(arm, -3.0)
    generator = torch.Generator().manual_seed(1)
    assert {agent.select(generator) for _ in range(50)} == {2}
    fresh = GPThompsonAgent(MatrixKernel(K), torch.arange(4), 4, HYPER)
    picks = [fresh.select(torch.Generator().manual_seed(s)) for s in range(40)]
    assert picks == [fresh.select(torch.Generator().manual_seed(s)) for s in range(40)]
    assert set(picks) == {0, 1, 2, 3}  # the prior is exchangeable: every arm gets picked


def blocks() -> torch.Tensor:
    """Two independent blocks: items {0, 1, 2} strongly similar, items {3, 4} similar."""
    K = torch.zeros(5, 5, dtype=torch.float64)
    K[:3, :3] = 0.9
    K[3:, 3:] = 0.9
    return K + 0.1 * torch.eye(5, dtype=torch.float64)


def test_prediction_uses_cross_covariance():
    agent = GPThompsonAgent(MatrixKernel(blocks()), torch.tensor([0, 3]), 5, HYPER)
    for _ in range(5):
        agent.observe(0, 3.0)
    predicted = agent.predict(torch.tensor([1, 2, 4]))
    assert predicted[0] > 2.0 and predicted[1] > 2.0  # held-out items similar to arm 0
    assert predicted[2].item() == pytest.approx(HYPER.mean)  # other block: prior mean
    mean, _ = agent.posterior.mean_and_variance(torch.tensor([1, 2, 4]))
    assert torch.equal(predicted, mean)


def test_safe_agent_pulls_only_safe_arms_when_some_exist():
    agent = SafeGPAgent(MatrixKernel(blocks()), torch.arange(5), 5, HYPER, threshold=0.0)
    generator = torch.Generator().manual_seed(0)
    # prior: nothing is safe (LCB = 0.5 - 2 sqrt(2) < 0), all LCBs tie -> any arm
    assert not bool(agent.safe_arms().any())
    assert {agent.select(generator) for _ in range(60)} == {0, 1, 2, 3, 4}
    for _ in range(8):
        agent.observe(0, 3.0)
    safe = agent.safe_arms()
    assert safe[:3].all() and not safe[3:].any()
    picks = {agent.select(generator) for _ in range(60)}
    assert picks <= {0, 1, 2} and len(picks) > 1  # Thompson inside the safe set


def test_safe_agent_fallbacks_when_no_arm_is_safe():
    def agent(fallback):
        safe = SafeGPAgent(
            MatrixKernel(blocks()), torch.arange(5), 5, HYPER, threshold=10.0, fallback=fallback
        )
        for _ in range(8):  # arm 3 is well known and bad (1.0 < 10)
            safe.observe(3, 1.0)
        return safe

    generator = torch.Generator().manual_seed(0)
    lcb_agent = agent("lcb")
    lcb = lcb_agent.lower_confidence_bound()
    assert not bool((lcb >= 10.0).any())
    mean, variance = lcb_agent.posterior.mean_and_variance(lcb_agent.arm_items)
    assert torch.allclose(lcb, mean - 2.0 * variance.sqrt())
    # "lcb": the best-known arm wins, although it is surely bad
    assert {lcb_agent.select(generator) for _ in range(10)} == {int(lcb.argmax())} == {3}
    # "probability" (default): argmax (mu - threshold) / sd, the untried block (ties at random)
    probability_agent = agent("probability")
    z = (mean - 10.0) / variance.sqrt()
    assert int(z.argmax()) in (0, 1, 2)
    assert {probability_agent.select(generator) for _ in range(40)} == {0, 1, 2}


def test_refit_changes_hyperparameters_not_the_kernel():
    K = random_psd(6, seed=4)
    kernel = MatrixKernel(K)
    before = {name: p.detach().clone() for name, p in kernel.named_parameters()}
    flags = {name: p.requires_grad for name, p in kernel.named_parameters()}
    agent = GPThompsonAgent(kernel, torch.arange(6), 6, HYPER, refit_every=4)
    generator = torch.Generator().manual_seed(0)
    for step in range(8):
        arm = agent.select(generator)
        agent.observe(arm, 5.0 + 0.1 * step)
        agent.select(generator)
        if step == 2:
            assert agent.posterior.hyperparameters == HYPER  # not refitted before 4 obs
    fitted = agent.posterior.hyperparameters
    assert fitted != HYPER and fitted.mean > HYPER.mean + 1.0  # rewards ~5 pull the mean up
    for name, p in kernel.named_parameters():
        assert torch.equal(p.detach(), before[name]) and p.requires_grad == flags[name]
    agent.reset()
    assert agent.posterior.hyperparameters == HYPER


def test_bad_arguments():
    kernel = MatrixKernel(torch.eye(3, dtype=torch.float64))
    with pytest.raises(ConfigError, match="'beta'"):
        GPUCBAgent(kernel, torch.arange(3), 3, HYPER, beta=-1.0)
    with pytest.raises(ConfigError, match="'refit_every'"):
        GPThompsonAgent(kernel, torch.arange(3), 3, HYPER, refit_every=0)
    with pytest.raises(ConfigError, match="'kernel'"):
        GPThompsonAgent(torch.eye(3), torch.arange(3), 3, HYPER)
    with pytest.raises(ConfigError, match="'arm_items'"):
        GPThompsonAgent(kernel, torch.tensor([0, 5]), 3, HYPER)
    with pytest.raises(ConfigError, match="'threshold'"):
        SafeGPAgent(kernel, torch.arange(3), 3, HYPER, threshold=math.nan)
    with pytest.raises(ConfigError, match="'fallback'"):
        SafeGPAgent(kernel, torch.arange(3), 3, HYPER, threshold=0.0, fallback="max")
    with pytest.raises(ConfigError, match="noise_variance"):
        GPHyperparameters(mean=0.0, outputscale=1.0, noise_variance=0.0)
    agent = GPThompsonAgent(kernel, torch.arange(3), 3, HYPER)
    with pytest.raises(ConfigError, match="'arm'"):
        agent.observe(3, 1.0)
    with pytest.raises(ConfigError, match="'reward'"):
        agent.observe(0, math.inf)
    with pytest.raises(ConfigError, match="'generator'"):
        agent.select(0)
