"""The batched engine's policies and simulation: closed forms, seeding, batch invariance."""

import math

import pytest
import torch

from deepalign.agents.engine import GPBanditEngine, Trajectory
from deepalign.agents.engine.policies import SafePolicy, ThompsonPolicy, UCBPolicy
from deepalign.agents.engine.randomness import sample_seed
from deepalign.errors import ConfigError, DataError

DTYPE = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


def rbf_kernel(n_arms: int, dim: int, lengthscale: float, seed: int, scale: float = 1.0):
    points = torch.randn(n_arms, dim, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)
    return scale * torch.exp(-0.5 * (torch.cdist(points, points) / lengthscale) ** 2)


def problem(n_arms: int = 12, seed: int = 0):
    kernel = rbf_kernel(n_arms, 3, 1.2, seed)
    values = torch.randn(n_arms, generator=torch.Generator().manual_seed(seed + 1), dtype=DTYPE)
    return kernel, values


POLICIES = {
    "thompson": lambda: ThompsonPolicy(),
    "ucb": lambda: UCBPolicy(beta=4.0),
    "safe-thompson": lambda: SafePolicy(threshold=-0.5, beta_safe=1.0),
    "safe-ucb": lambda: SafePolicy(threshold=-0.5, beta_safe=1.0, inner=UCBPolicy()),
}


def test_ucb_closed_form_and_lowest_index_ties():
    policy = UCBPolicy(beta=1.0)
    mean = torch.full((1, 4), 0.5, dtype=DTYPE)
    variance = torch.ones(1, 4, dtype=DTYPE)
    assert torch.equal(policy.scores(mean, variance), torch.full((1, 4), 1.5, dtype=DTYPE))
    arms, safe = policy.select(mean, variance)
    assert arms.tolist() == [0] and safe is None  # four-way tie: lowest index
    available = torch.tensor([False, False, True, True])
    assert policy.select(mean, variance, available=available)[0].tolist() == [2]
    variance[0, 3] = 1.21  # UCB 0.5 + 1.1 beats 1.5
    assert policy.select(mean, variance)[0].tolist() == [3]


def test_thompson_picks_sample_argmax_with_lowest_index_ties():
    sample = torch.tensor([[0.1, 0.9, 0.9, -1.0], [2.0, 0.0, 0.0, 3.0]], dtype=DTYPE)
    zeros = torch.zeros_like(sample)
    assert ThompsonPolicy().select(zeros, zeros, sample)[0].tolist() == [1, 3]
    with pytest.raises(ConfigError, match="sample"):
        ThompsonPolicy().select(zeros, zeros)


def test_safe_policy_restricts_to_safe_arms_and_falls_back_when_none_is_safe():
    #           arm:    0     1     2     3
    mean = torch.tensor(
        [
            [1.0, 3.0, 0.5, 0.9],  # run 0: LCBs 0, 1, 0.4, 0.8 -> safe {1, 2, 3} (>= 0.3)
            [1.0, 3.0, 0.5, 0.9],
        ],  # run 1: threshold 2: none safe -> highest LCB = arm 1
        dtype=DTYPE,
    )
    variance = torch.tensor([[1.0, 4.0, 0.01, 0.01]] * 2, dtype=DTYPE)
    sample = torch.tensor([[9.0, 0.0, 1.0, 2.0], [9.0, 0.0, 1.0, 2.0]], dtype=DTYPE)
    policy = SafePolicy(threshold=torch.tensor([0.3, 2.0], dtype=DTYPE), beta_safe=1.0)
    assert torch.allclose(
        policy.lower_bounds(mean, variance)[0], torch.tensor([0.0, 1.0, 0.4, 0.8], dtype=DTYPE)
    )
    arms, safe = policy.select(mean, variance, sample)
    assert arms.tolist() == [3, 1]  # run 0: sample argmax over safe arms (arm 0 unsafe)
    assert safe.tolist() == [True, False]
    ucb_safe = SafePolicy(threshold=0.3, beta_safe=1.0, inner=UCBPolicy(beta=1.0))
    assert ucb_safe.select(mean[:1], variance[:1])[0].tolist() == [1]  # UCB 5 among safe
    assert ucb_safe.select(mean[:1], variance[:1], available=torch.tensor([1, 0, 1, 1]).bool())[
        0
    ].tolist() == [3]
    tied = torch.zeros(1, 4, dtype=DTYPE)
    assert SafePolicy(threshold=1.0).select(tied, tied + 1, tied)[0].tolist() == [0]


def test_safe_fallbacks_when_no_arm_is_safe():
    """A known bad arm (mean -1, sd 0.1) against an untried one (mean 0, sd 2), threshold 0.5:
    the highest LCB is the bad arm (-1.2 > -4); the most probably good arm is the untried one
    ((0 - 0.5) / 2 > (-1 - 0.5) / 0.1)."""
    mean = torch.tensor([[-1.0, 0.0]], dtype=DTYPE)
    variance = torch.tensor([[0.01, 4.0]], dtype=DTYPE)
    sample = torch.zeros(1, 2, dtype=DTYPE)
    lcb = SafePolicy(0.5, beta_safe=4.0, fallback="lcb").select(mean, variance, sample)
    probability = SafePolicy(0.5, beta_safe=4.0).select(mean, variance, sample)
    assert lcb[0].tolist() == [0] and probability[0].tolist() == [1]
    assert lcb[1].tolist() == [False] and probability[1].tolist() == [False]
    with pytest.raises(ConfigError, match="fallback"):
        SafePolicy(0.5, fallback="mean")


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_run_in_a_batch_equals_the_same_seed_alone(name):
    kernel, values = problem()
    engine = GPBanditEngine(kernel, 0.0, 0.3, refresh_every=20, rng_chunk=16)
    seeds = [11, 3, 7, 123456789, 0, 42, 5, 99]
    batch = engine.simulate(POLICIES[name](), values, 0.4, 50, seeds)
    for index in (0, 3, 7):
        alone = engine.simulate(POLICIES[name](), values, 0.4, 50, [seeds[index]])
        assert torch.equal(batch.arms[index], alone.arms[0])
        assert torch.equal(batch.rewards[index], alone.rewards[0])
        assert torch.equal(batch.posterior_mean[index], alone.posterior_mean[0])
        assert torch.equal(batch.posterior_var[index], alone.posterior_var[0])
        if batch.safe_pulls is not None:
            assert torch.equal(batch.safe_pulls[index], alone.safe_pulls[0])


@pytest.mark.parametrize("update_block", [1, 6])
def test_blocked_updates_are_batch_invariant_and_match_immediate_updates(update_block):
    kernel, values = problem(n_arms=20)
    engine = GPBanditEngine(kernel, 0.0, 0.3, update_block=update_block, refresh_every=None)
    seeds = [4, 8, 15, 16, 23, 42]
    batch = engine.simulate(ThompsonPolicy(), values, 0.4, 45, seeds, return_covariance=True)
    alone = engine.simulate(ThompsonPolicy(), values, 0.4, 45, seeds[2:3])
    assert torch.equal(batch.arms[2], alone.arms[0])
    assert torch.equal(batch.posterior_mean[2], alone.posterior_mean[0])
    immediate = GPBanditEngine(kernel, 0.0, 0.3, update_block=1, refresh_every=None)
    reference = immediate.prior(6)
    for step in range(45):
        reference.observe(batch.arms[:, step], batch.rewards[:, step])
    assert (batch.posterior_covariance - reference.covariance).abs().max() < 1e-12
    assert (batch.posterior_mean - reference.mean).abs().max() < 1e-12


def test_policies_share_the_reward_noise_of_a_seed():
    kernel, values = problem()
    engine = GPBanditEngine(kernel, 0.0, 0.3)
    noises = []
    for policy in (ThompsonPolicy(), UCBPolicy(), SafePolicy(-0.5)):
        trajectory = engine.simulate(policy, values, 0.4, 30, [7, 8])
        noises.append(trajectory.rewards - values[trajectory.arms])
    assert torch.allclose(noises[0], noises[1], atol=1e-12)
    assert torch.allclose(noises[0], noises[2], atol=1e-12)
    assert sample_seed(7) != 7 and sample_seed(7) == sample_seed(7) < 2**64


def test_same_seed_twice_is_identical_and_seeds_differ():
    kernel, values = problem()
    engine = GPBanditEngine(kernel, 0.0, 0.3)
    first = engine.simulate(ThompsonPolicy(), values, 0.4, 40, [5, 5, 6])
    second = engine.simulate(ThompsonPolicy(), values, 0.4, 40, [5, 5, 6])
    assert torch.equal(first.arms, second.arms) and torch.equal(first.rewards, second.rewards)
    assert torch.equal(first.posterior_mean, second.posterior_mean)
    assert torch.equal(first.arms[0], first.arms[1])
    assert not torch.equal(first.rewards[0], first.rewards[2])


def test_memory_chunking_and_horizon_prefix_do_not_change_trajectories():
    kernel, values = problem()
    seeds = list(range(10))
    whole = GPBanditEngine(kernel, 0.0, 0.3, rng_chunk=8).simulate(
        ThompsonPolicy(), values, 0.4, 30, seeds
    )
    small_budget = GPBanditEngine(kernel, 0.0, 0.3, rng_chunk=8, memory_budget_bytes=50_000)
    assert small_budget.memory_budget_bytes // small_budget.bytes_per_run(30) == 3
    chunked = small_budget.simulate(ThompsonPolicy(), values, 0.4, 30, seeds)
    assert torch.equal(whole.arms, chunked.arms) and torch.equal(whole.rewards, chunked.rewards)
    assert torch.equal(whole.posterior_mean, chunked.posterior_mean)
    shorter = GPBanditEngine(kernel, 0.0, 0.3, rng_chunk=8).simulate(
        ThompsonPolicy(), values, 0.4, 21, seeds
    )
    assert torch.equal(whole.arms[:, :21], shorter.arms)


def test_per_run_kernels_means_noises_and_thresholds():
    n_arms = 10
    kernels = torch.stack([rbf_kernel(n_arms, 2, 0.5 + run, run) for run in range(4)])
    means = torch.tensor([0.0, 1.0, -1.0, 0.5], dtype=DTYPE)
    noises = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=DTYPE)
    thresholds = torch.tensor([-1.0, 0.0, -2.0, 0.5], dtype=DTYPE)
    values = torch.randn(4, n_arms, generator=torch.Generator().manual_seed(0), dtype=DTYPE)
    seeds = [3, 1, 4, 1]
    engine = GPBanditEngine(kernels, means, noises, memory_budget_bytes=20_000)
    batch = engine.simulate(SafePolicy(thresholds), values, 0.3, 25, seeds)
    for run in range(4):
        alone = GPBanditEngine(kernels[run], float(means[run]), float(noises[run])).simulate(
            SafePolicy(float(thresholds[run])), values[run], 0.3, 25, [seeds[run]]
        )
        assert torch.equal(batch.arms[run], alone.arms[0])
        assert torch.equal(batch.posterior_mean[run], alone.posterior_mean[0])
    with pytest.raises(ConfigError, match="len\\(seeds\\)"):
        engine.simulate(ThompsonPolicy(), values, 0.3, 5, [1, 2])


def test_thompson_converges_to_the_best_arm_on_an_easy_problem():
    n_arms = 10
    values = torch.linspace(0.0, 1.0, n_arms, dtype=DTYPE).flip(0)  # best arm = 0
    kernel = 0.25 * torch.eye(n_arms, dtype=DTYPE) + 0.05
    engine = GPBanditEngine(kernel, 0.5, 0.01)
    trajectory = engine.simulate(ThompsonPolicy(), values, 0.1, 150, range(32))
    late_best = (trajectory.arms[:, -50:] == 0).to(DTYPE).mean()
    assert late_best > 0.9
    assert (trajectory.posterior_mean.argmax(-1) == 0).all()
    early_best = (trajectory.arms[:, :10] == 0).to(DTYPE).mean()
    assert early_best < 0.5
    # rewards are the true values of the pulled arms plus N(0, 0.1^2) noise
    residual = trajectory.rewards - values[trajectory.arms]
    assert abs(float(residual.std()) - 0.1) < 0.005 and abs(float(residual.mean())) < 0.005


def test_safe_policy_takes_fewer_bad_actions_than_thompson():
    n_arms = 30
    points = torch.linspace(0, 3, n_arms, dtype=DTYPE).unsqueeze(-1)
    kernel = torch.exp(-0.5 * (torch.cdist(points, points) / 0.5) ** 2)
    values = torch.sin(2 * points[:, 0])  # smooth, half the arms below 0
    engine = GPBanditEngine(kernel, 0.0, 0.01)
    seeds = range(16)
    thompson = engine.simulate(ThompsonPolicy(), values, 0.1, 60, seeds)
    safe = engine.simulate(SafePolicy(threshold=-0.3, beta_safe=4.0), values, 0.1, 60, seeds)
    bad_thompson = (values[thompson.arms] < -0.3).to(DTYPE).sum(-1).mean()
    bad_safe = (values[safe.arms] < -0.3).to(DTYPE).sum(-1).mean()
    assert bad_safe < 0.5 * bad_thompson
    assert safe.safe_pulls is not None and safe.safe_pulls.shape == (16, 60)
    assert thompson.safe_pulls is None


def test_available_arms_are_the_only_ones_pulled_and_the_posterior_covers_the_rest():
    kernel, values = problem(n_arms=12)
    available = torch.arange(12) % 3 != 0
    engine = GPBanditEngine(kernel, 0.0, 0.1)
    trajectory = engine.simulate(UCBPolicy(), values, 0.2, 40, range(4), available=available)
    assert available[trajectory.arms].all()
    assert isinstance(trajectory, Trajectory)
    assert trajectory.posterior_mean.shape == (4, 12)
    held_out = ~available
    assert (trajectory.posterior_var[:, held_out] < kernel.diagonal()[held_out]).all()


def test_bytes_per_run_formula():
    kernel, _ = problem(n_arms=12)
    engine = GPBanditEngine(kernel, rng_chunk=8)
    assert engine.bytes_per_run(30) == 8 * 8 * 144 + 32 * 8 * 25 + 16 * 30
    per_run = GPBanditEngine(kernel.expand(3, 12, 12), rng_chunk=8)
    assert per_run.bytes_per_run(30) == 8 * 10 * 144 + 32 * 8 * 25 + 16 * 30


def test_errors_name_the_argument():
    kernel, values = problem(n_arms=5)
    engine = GPBanditEngine(kernel)
    with pytest.raises(DataError, match="true_values"):
        engine.simulate(ThompsonPolicy(), torch.full((5,), math.nan), 0.1, 5, [0])
    with pytest.raises(ConfigError, match="true_values"):
        engine.simulate(ThompsonPolicy(), torch.zeros(4), 0.1, 5, [0])
    with pytest.raises(ConfigError, match="reward_noise_sd"):
        engine.simulate(ThompsonPolicy(), values, -1.0, 5, [0])
    with pytest.raises(ConfigError, match="seeds"):
        engine.simulate(ThompsonPolicy(), values, 0.1, 5, [-1])
    with pytest.raises(ConfigError, match="horizon"):
        engine.simulate(ThompsonPolicy(), values, 0.1, 0, [0])
    with pytest.raises(ConfigError, match="available"):
        engine.simulate(ThompsonPolicy(), values, 0.1, 5, [0], available=torch.zeros(5).bool())
    with pytest.raises(ConfigError, match="policy"):
        engine.simulate("thompson", values, 0.1, 5, [0])
    with pytest.raises(ConfigError, match="noise_variance"):
        GPBanditEngine(kernel, 0.0, 0.0)
    with pytest.raises(ConfigError, match="kernel"):
        GPBanditEngine(torch.ones(3, 4))
    with pytest.raises(ConfigError, match="kernel"):
        GPBanditEngine(torch.full((3, 3), math.inf))
    with pytest.raises(ConfigError, match="beta"):
        UCBPolicy(beta=-1.0)
    with pytest.raises(ConfigError, match="threshold"):
        engine.simulate(SafePolicy(torch.zeros(3)), values, 0.1, 5, [0, 1])


@pytest.mark.parametrize("update_block", [5, 16])
def test_planned_thompson_samples_and_prefetch_leave_trajectories_unchanged(update_block):
    """Blocked updates with planned samples, and drawing random numbers on a worker thread,
    change the speed only: the same arms as immediate updates drawn on this thread."""
    kernel, values = problem(n_arms=20)
    seeds = [1, 2, 3, 4, 5]

    def run(block: int, prefetch: bool) -> Trajectory:
        engine = GPBanditEngine(kernel, 0.0, 0.3, update_block=block, rng_chunk=8,
                                refresh_every=30, prefetch=prefetch)
        return engine.simulate(ThompsonPolicy(), values, 0.4, 70, seeds)

    reference = run(1, prefetch=False)
    for prefetch in (False, True):
        trajectory = run(update_block, prefetch)
        assert torch.equal(trajectory.arms, reference.arms)
        assert (trajectory.posterior_mean - reference.posterior_mean).abs().max() < 1e-10
    assert torch.equal(run(1, prefetch=True).arms, reference.arms)
    with pytest.raises(ConfigError, match="prefetch"):
        GPBanditEngine(kernel, prefetch="yes")


def test_recorded_best_guesses_are_the_masked_posterior_mean_argmax():
    kernel, values = problem(n_arms=15)
    available = torch.ones(15, dtype=torch.bool)
    available[[0, 7]] = False
    engine = GPBanditEngine(kernel, 0.0, 0.3)
    trajectory = engine.simulate(
        ThompsonPolicy(), values, 0.4, 25, [3, 9], available=available, record_greedy=True
    )
    assert trajectory.greedy_arms.shape == (2, 25)
    assert not bool(torch.isin(trajectory.greedy_arms, torch.tensor([0, 7])).any())
    final = trajectory.posterior_mean.masked_fill(~available, -math.inf).argmax(dim=-1)
    assert torch.equal(trajectory.greedy_arms[:, -1], final)
    # replaying the pulls step by step gives the same best guesses
    replay = engine.prior(2)
    for step in range(25):
        replay.observe(trajectory.arms[:, step], trajectory.rewards[:, step])
        guess = replay.mean.masked_fill(~available, -math.inf).argmax(dim=-1)
        assert torch.equal(guess, trajectory.greedy_arms[:, step])
    plain = engine.simulate(ThompsonPolicy(), values, 0.4, 25, [3, 9], available=available)
    assert plain.greedy_arms is None and torch.equal(plain.arms, trajectory.arms)


def test_fused_thompson_steps_equal_the_step_by_step_loop():
    """The TorchScript stretch of Thompson steps (`engine_fused`) gives bit-identical runs
    to the Python loop over the same operations (a subclass takes the Python loop), across
    refresh points, an availability mask, per-arm noise and best-guess recording."""

    class StepByStep(ThompsonPolicy):
        pass

    kernel, values = problem(n_arms=16)
    available = torch.ones(16, dtype=torch.bool)
    available[[2, 11]] = False
    noise_sd = torch.linspace(0.2, 0.6, 16, dtype=DTYPE)
    engine = GPBanditEngine(kernel, 0.1, 0.3, refresh_every=7, rng_chunk=8)
    runs = [
        engine.simulate(policy, values, noise_sd, 30, [4, 5, 6], available=available,
                        record_greedy=True, return_covariance=True)
        for policy in (ThompsonPolicy(), StepByStep())
    ]
    for name in ("arms", "rewards", "posterior_mean", "posterior_var", "greedy_arms",
                 "posterior_covariance"):
        assert torch.equal(getattr(runs[0], name), getattr(runs[1], name)), name


def test_compiled_falls_back_to_the_python_function():
    from deepalign.agents.engine.fused import compiled

    def not_scriptable(x):
        return {frozenset([1]): x}  # TorchScript cannot type this

    assert compiled(not_scriptable) is not_scriptable
