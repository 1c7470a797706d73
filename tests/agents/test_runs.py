"""run_bandit / run_seeds: reproducible, common random numbers, every agent valid and finite."""

import math
import warnings

import pytest
import torch

from deepalign.agents import (
    AGENTS,
    AgentOptions,
    GPThompsonAgent,
    RandomAgent,
    ValueBandit,
    agent_factory,
    build_kernel,
    run_bandit,
    run_seeds,
    seed_generators,
)
from deepalign.agents.hyperparameters import GPHyperparameters
from deepalign.data import load_dataset
from deepalign.errors import ConfigError
from deepalign.kernels import MatrixKernel

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def setting():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = load_dataset("spa-verb-act", values=("act_evaluation",))
        kernel = build_kernel("human", dataset)
    return ValueBandit(dataset, "act_evaluation"), kernel


def same(a, b) -> bool:
    return (
        torch.equal(a.arms, b.arms)
        and torch.equal(a.rewards, b.rewards)
        and torch.equal(a.predictions, b.predictions)
    )


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_every_agent_valid_reproducible_and_finite(setting, name):
    env, kernel = setting
    factory = agent_factory(name, kernel, AgentOptions())
    first = run_bandit(env, factory, horizon=12, seed=3)
    again = run_bandit(env, factory, horizon=12, seed=3)
    assert same(first, again)  # same seed, same trajectory
    assert first.arms.shape == (12,) and first.arms.dtype == torch.long
    assert int(first.arms.min()) >= 0 and int(first.arms.max()) < env.n_arms
    assert first.predictions.shape == (env.n_heldout,)
    # reward = true value of the pulled arm + its noise: common random numbers per seed
    z = env.noise_draws(12, seed_generators(3)[0])
    expected = env.arm_values[first.arms] + env.arm_noise_sd[first.arms] * z
    assert torch.allclose(first.rewards, expected, atol=1e-12)
    # an agent instance is reset between runs and gives the same trajectory
    agent = factory(env)
    run_bandit(env, agent, horizon=5, seed=0)
    assert same(run_bandit(env, agent, horizon=12, seed=3), first)
    results = run_seeds(env, factory, horizon=12, seeds=[3, 4])
    assert torch.equal(results.arms[0], first.arms)
    metrics = results.metrics(env)
    assert len(metrics) == 12  # 11 metrics + the primary safe_general_score
    for metric, values in metrics.items():
        assert values.shape == (2,) and bool(torch.isfinite(values).all()), metric
    assert bool((metrics["bad_actions"] <= 12).all())
    assert bool((metrics["unique_actions"] >= 1).all())


def test_different_seeds_differ(setting):
    env, kernel = setting
    factory = agent_factory("gp-ts", kernel, AgentOptions())
    assert not torch.equal(
        run_bandit(env, factory, 10, seed=0).arms, run_bandit(env, factory, 10, seed=1).arms
    )


def test_gp_agent_learns_on_human_kernel(setting):
    """After 40 pulls GP Thompson's held-out predictions rank the true values (rho > 0.5)."""
    env, kernel = setting
    hyper = GPHyperparameters.from_bandit(env)
    agent = GPThompsonAgent(kernel, env.arm_items, env.n_items, hyper)
    trajectory = run_bandit(env, agent, horizon=40, seed=0)
    rho = env.generalization_metrics(trajectory.predictions.unsqueeze(0))[
        "generalization_spearman"
    ]
    assert rho.item() > 0.5


def test_run_bandit_bad_input(setting):
    env, kernel = setting
    agent = RandomAgent(env.arm_items, env.n_items)
    with pytest.raises(ConfigError, match="'horizon'"):
        run_bandit(env, agent, 0, 0)
    with pytest.raises(ConfigError, match="'seed'"):
        run_bandit(env, agent, 5, -1)
    with pytest.raises(ConfigError, match="'agent'"):
        run_bandit(env, "gp-ts", 5, 0)
    with pytest.raises(ConfigError, match="not the bandit's arms"):
        run_bandit(env, RandomAgent(torch.arange(3), env.n_items), 5, 0)
    with pytest.raises(ConfigError, match="unknown agent"):
        agent_factory("gp-thompson", kernel, AgentOptions())
    with pytest.raises(ConfigError, match="needs a kernel"):
        agent_factory("gp-ts", None, AgentOptions())
    with pytest.raises(ConfigError, match="'seeds'"):
        run_seeds(env, agent, 5, [])


def test_hyperparameter_defaults(setting):
    env, _ = setting
    hyper = GPHyperparameters.from_bandit(env)
    assert hyper.mean == 0.0  # midpoint of -4.3 .. 4.3
    assert hyper.outputscale == pytest.approx((0.25 * 8.6) ** 2)
    assert hyper.noise_variance == pytest.approx(0.86**2)
    assert math.isfinite(hyper.outputscale)


def test_matrix_kernel_is_the_human_similarity(setting):
    env, kernel = setting
    assert isinstance(kernel, MatrixKernel)
    assert kernel.covariance.shape == (env.n_items, env.n_items)


@pytest.mark.parametrize("name", ["lexical", "length"])
def test_control_kernels_cover_every_item(setting, name):
    env, _ = setting
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = load_dataset("spa-verb-act", values=("act_evaluation",))
    kernel = build_kernel(name, dataset)
    matrix = kernel.full_matrix()
    assert matrix.shape == (env.n_items, env.n_items)
    assert torch.allclose(matrix.diagonal(), torch.ones(env.n_items, dtype=matrix.dtype))
    assert float(torch.linalg.eigvalsh(matrix.double()).min()) > -1e-6
    trajectory = run_bandit(env, agent_factory("gp-ts", kernel, AgentOptions()), 5, seed=0)
    assert bool(torch.isfinite(trajectory.predictions).all())


@pytest.mark.parametrize("name", ["kernel-regression", "gp-ts"])
def test_recorded_best_guesses_are_the_agents_top_predictions(setting, name):
    env, kernel = setting
    factory = agent_factory(name, kernel, AgentOptions())
    recorded = run_bandit(env, factory, horizon=8, seed=2, record_greedy=True)
    assert same(recorded, run_bandit(env, factory, horizon=8, seed=2))  # recording is passive
    assert run_bandit(env, factory, horizon=8, seed=2).greedy_arms is None
    # replay the pulls into a fresh agent: its top prediction after each step is the record
    agent = factory(env)
    agent.reset()
    for step in range(8):
        agent.observe(int(recorded.arms[step]), float(recorded.rewards[step]))
        assert int(agent.predict(env.arm_items).argmax()) == int(recorded.greedy_arms[step])
    scored = env.personalization_metrics(recorded.arms[None], recorded.greedy_arms[None])
    assert 1.0 <= scored["greedy_convergence"].item() <= 8.0
