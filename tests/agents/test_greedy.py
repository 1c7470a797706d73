"""Greedy reference agent: engine `GreedyPolicy` and BoTorch `GPGreedyAgent` on one posterior."""

import pytest
import torch

from deepalign.agents import (
    AGENTS,
    AgentOptions,
    GPBanditEngine,
    GPGreedyAgent,
    GPHyperparameters,
    GreedyPolicy,
    ThompsonPolicy,
    ValueBandit,
    agent_factory,
    run_bandit,
)
from deepalign.agents.base import seed_generators
from deepalign.agents.gp import GREEDY_TIE_TOLERANCE
from deepalign.data import Dataset, ItemSet, ValueRatings
from deepalign.errors import ConfigError
from deepalign.kernels import MatrixKernel, constant_kernel
from deepalign.studies.runner import evaluate_kernel

DTYPE = torch.float64
HYPER = GPHyperparameters(mean=0.0, outputscale=1.0, noise_variance=0.25)
#: items 0 and 2 correlated (0.8), item 1 independent of both
K = torch.tensor([[1.0, 0.0, 0.8], [0.0, 1.0, 0.0], [0.8, 0.0, 1.0]], dtype=DTYPE)


pytestmark = pytest.mark.usefixtures("one_thread")


def toy_bandit(values, noise_sd: float = 0.5) -> ValueBandit:
    n = len(values)
    items = ItemSet(ids=tuple(f"a{i}" for i in range(n)), texts=tuple(f"do {i}" for i in range(n)))
    ratings = ValueRatings(items=items, names=("goodness",),
                           ratings=torch.tensor(values, dtype=DTYPE).unsqueeze(1),
                           scales=((-4.0, 4.0),))
    dataset = Dataset(name="toy", items=items, values=ratings)
    return ValueBandit(dataset, "goodness", heldout=torch.zeros(n, dtype=torch.bool),
                       noise_sd=noise_sd)


def test_engine_and_sequential_agent_pick_the_same_arm_of_a_closed_form_posterior():
    # one reward -1 at item 0: mean = K[:, 0] / (1 + 0.25) * (-1) = [-0.8, 0, -0.64]
    expected = torch.tensor([-0.8, 0.0, -0.64], dtype=DTYPE)
    agent = GPGreedyAgent(MatrixKernel(K), torch.arange(3), 3, HYPER)
    agent.observe(0, -1.0)
    assert torch.allclose(agent.mean(), expected, atol=1e-12)
    engine = GPBanditEngine(K, mean=0.0, noise_variance=0.25)
    posterior = engine.prior(1)
    posterior.observe(torch.tensor([0]), torch.tensor([-1.0], dtype=DTYPE))
    assert torch.allclose(posterior.mean, expected.unsqueeze(0), atol=1e-12)
    # the untried, independent item 1 keeps the prior mean 0 and wins on both paths
    arms, safe = GreedyPolicy().select(posterior.mean, None)
    assert arms.tolist() == [1] and safe is None
    assert agent.select(torch.Generator().manual_seed(0)) == 1
    # item 1 unavailable: item 2 (-0.64) beats item 0 (-0.8) on both paths
    subset = GPGreedyAgent(MatrixKernel(K), torch.tensor([0, 2]), 3, HYPER)
    subset.observe(0, -1.0)
    assert subset.select(torch.Generator().manual_seed(0)) == 1  # arm 1 = item 2
    available = torch.tensor([True, False, True])
    assert GreedyPolicy().select(posterior.mean, None, available=available)[0].tolist() == [2]


def test_policy_ties_lowest_index_and_reads_neither_sample_nor_variance():
    policy = GreedyPolicy()
    assert not policy.needs_sample and not policy.needs_variance
    mean = torch.tensor([[0.5, 0.9, 0.9, -1.0], [2.0, 2.0, 0.0, 2.0]], dtype=DTYPE)
    assert policy.select(mean, None)[0].tolist() == [1, 0]
    assert policy.select(mean, None, available=torch.tensor([False, False, True, True]))[
        0
    ].tolist() == [2, 3]
    assert policy.for_runs(0, 1) is policy
    policy.check_runs(7)  # no per-run settings
    with pytest.raises(ConfigError, match="'mean'"):
        policy.select(mean[0], None)


def test_sequential_ties_are_random_within_the_tolerance():
    agent = GPGreedyAgent(MatrixKernel(torch.eye(4, dtype=DTYPE)), torch.arange(4), 4, HYPER)
    picks = {agent.select(torch.Generator().manual_seed(seed)) for seed in range(40)}
    assert picks == {0, 1, 2, 3}  # four-way tie of the prior means
    assert GREEDY_TIE_TOLERANCE == 1e-9
    agent.observe(2, 1e-12)  # a mean within the tolerance of the others still ties ...
    assert len({agent.select(torch.Generator().manual_seed(s)) for s in range(40)}) == 4
    agent.observe(2, 1e-6)  # ... one beyond it does not
    assert {agent.select(torch.Generator().manual_seed(s)) for s in range(10)} == {2}


def test_greedy_never_pulls_an_arm_that_is_not_the_mean_argmax():
    generator = torch.Generator().manual_seed(3)
    features = torch.nn.functional.normalize(torch.randn(8, 3, generator=generator,
                                                         dtype=DTYPE), dim=1)
    kernel = features @ features.T
    values = torch.randn(8, generator=generator, dtype=DTYPE).tolist()
    env = toy_bandit(values, noise_sd=0.3)
    hyper = GPHyperparameters.from_bandit(env)
    # sequential: replay each run, checking every choice against the current posterior mean
    agent = GPGreedyAgent(MatrixKernel(kernel), env.arm_items, env.n_items, hyper)
    for seed in range(3):
        env_generator, agent_generator = seed_generators(seed)
        z = env.noise_draws(15, env_generator)
        agent.reset()
        for t in range(15):
            mean = agent.mean()
            arm = agent.select(agent_generator)
            assert float(mean[arm]) >= float(mean.max()) - 1e-9
            agent.observe(arm, env.reward(arm, float(z[t])))
    # engine: each pull is the masked mean argmax after the previous step (the recorded
    # best guess), and the first is the lowest index (every prior mean ties)
    engine = GPBanditEngine(hyper.outputscale * kernel, hyper.mean, hyper.noise_variance)
    available = torch.tensor([True, True, False, True, True, True, False, True])
    trajectory = engine.simulate(GreedyPolicy(), env.true_values, 0.3, 15, [0, 1, 2],
                                 available=available, record_greedy=True)
    assert trajectory.arms[:, 0].tolist() == [0, 0, 0]
    assert torch.equal(trajectory.arms[:, 1:], trajectory.greedy_arms[:, :-1])
    assert not bool(torch.isin(trajectory.arms, torch.tensor([2, 6])).any())


def test_constant_kernel_two_arms_engine_sticks_to_one_arm_only_without_calibration():
    env = toy_bandit([1.0, -1.0])
    hyper = GPHyperparameters.from_bandit(env)
    ones = torch.ones(2, 2, dtype=DTYPE)
    metrics = evaluate_kernel(env, ones, agent="greedy", horizon=20, seeds=range(6),
                              calibration=None)
    # fixed prior (the fast path): every run pulls arm 0 (both means equal at every step;
    # lowest index wins)
    assert metrics["unique_actions"].tolist() == [1.0] * 6
    assert metrics["mean_reward"].tolist() == [1.0] * 6
    # calibrated (the default): near-ties are broken at random, so arm order cannot matter
    metrics = evaluate_kernel(env, ones, agent="greedy", horizon=20, seeds=range(6))
    assert metrics["unique_actions"].tolist() == [2.0] * 6
    # the BoTorch agent sees the same tie at every step and breaks it at random
    factory = agent_factory("greedy", constant_kernel(2, fit_outputscale=False),
                            AgentOptions())
    unique = [run_bandit(env, factory, 20, seed).arms.unique().numel() for seed in range(6)]
    assert unique == [2] * 6  # a fair coin per step: both arms within 20 steps
    agent = GPGreedyAgent(constant_kernel(2), env.arm_items, 2, hyper)
    for arm, reward in [(0, 1.3), (1, -0.7), (0, 0.2)]:
        agent.observe(arm, reward)
        mean = agent.mean()
        assert abs(float(mean[0] - mean[1])) <= 1e-12
    assert type(factory(env)) is GPGreedyAgent


def test_registered_as_a_kernel_agent():
    spec = AGENTS["greedy"]
    assert spec.uses_kernel and "no exploration" in spec.description
    with pytest.raises(ConfigError, match="needs a kernel"):
        agent_factory("greedy", None, AgentOptions())
    # same reward noise per seed as Thompson sampling: the engine accepts it like the others
    engine = GPBanditEngine(torch.eye(3, dtype=DTYPE), 0.0, 1.0)
    greedy = engine.simulate(GreedyPolicy(), torch.tensor([0.0, 1.0, 2.0]), 0.1, 5, [4])
    thompson = engine.simulate(ThompsonPolicy(), torch.tensor([0.0, 1.0, 2.0]), 0.1, 5, [4])
    assert greedy.arms.shape == thompson.arms.shape == (1, 5)


def test_engine_agent_lists_agree():
    """The studies' recipe validation (no torch import) and the engine runner name the same
    engine agents."""
    from deepalign.agents.engine.runs import ENGINE_AGENTS as RUNNER
    from deepalign.studies.config import ENGINE_AGENTS as RECIPES

    assert RUNNER == RECIPES
