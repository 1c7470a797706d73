"""The batched engine's GP posterior: BoTorch equality, closed forms, long-horizon stability."""

import math
import warnings

import gpytorch
import pytest
import torch
from botorch.models import SingleTaskGP

from deepalign.agents.engine import GPBanditEngine
from deepalign.agents.engine.exact import exact_posterior, kernel_factor
from deepalign.agents.engine.policies import ThompsonPolicy
from deepalign.errors import ConfigError

DTYPE = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


class FixedMatrixKernel(gpytorch.kernels.Kernel):
    """Test-local gpytorch kernel: arms given as an index column, covariance read from K."""

    def __init__(self, matrix: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("matrix", matrix)

    def forward(self, x1, x2, diag=False, last_dim_is_batch=False, **params):
        rows = x1[..., 0].round().long()
        cols = x2[..., 0].round().long()
        if diag:
            return self.matrix[rows, cols]
        return self.matrix[rows.unsqueeze(-1), cols.unsqueeze(-2)]


def rbf_kernel(n_arms: int, dim: int, lengthscale: float, seed: int, scale: float = 1.0):
    points = torch.randn(n_arms, dim, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)
    return scale * torch.exp(-0.5 * (torch.cdist(points, points) / lengthscale) ** 2)


def linear_kernel(n_arms: int, rank: int, seed: int):
    """A rank-deficient PSD kernel (rank `rank`)."""
    features = torch.randn(n_arms, rank, generator=torch.Generator().manual_seed(seed), dtype=DTYPE)
    return features @ features.T / rank


def botorch_posterior(kernel, mean, noise, arms, rewards):
    """Mean `n_arms` and covariance `n_arms x n_arms` of a fixed SingleTaskGP."""
    train_x = arms.to(DTYPE).unsqueeze(-1)
    train_y = rewards.unsqueeze(-1)
    mean_module = gpytorch.means.ConstantMean()
    mean_module.initialize(constant=mean)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SingleTaskGP(
            train_x,
            train_y,
            train_Yvar=torch.full_like(train_y, noise),
            covar_module=FixedMatrixKernel(kernel),
            mean_module=mean_module,
            outcome_transform=None,
        )
        model.eval()
        with torch.no_grad():
            posterior = model.posterior(torch.arange(kernel.shape[0], dtype=DTYPE).unsqueeze(-1))
            return posterior.mean.squeeze(-1), posterior.distribution.covariance_matrix


def dense_posterior(kernel, mean, noise, arms, rewards):
    """The textbook formula with one row per observation: K - K_xX (K_XX + s2 I)^-1 K_Xx."""
    cross = kernel[:, arms]
    gram = kernel[arms][:, arms] + noise * torch.eye(arms.numel(), dtype=DTYPE)
    solved = torch.linalg.solve(gram, torch.cat([cross.T, (rewards - mean).unsqueeze(-1)], -1))
    return mean + cross @ solved[:, -1], kernel - cross @ solved[:, :-1]


@pytest.mark.parametrize(("refresh_every", "update_block"), [(None, 1), (30, 1), (None, 7)])
def test_posterior_matches_botorch_single_task_gp_after_100_observations(
    refresh_every, update_block
):
    n_arms, n_obs = 30, 100
    generator = torch.Generator().manual_seed(1)
    kernels = torch.stack([rbf_kernel(n_arms, 4, 1.5, seed, scale=0.5 + seed) for seed in range(3)])
    means = torch.tensor([0.0, 2.5, -1.0], dtype=DTYPE)
    noises = torch.tensor([0.1, 0.5, 0.02], dtype=DTYPE)
    arms = torch.randint(0, n_arms // 2, (3, n_obs), generator=generator)  # repeats included
    rewards = torch.randn(3, n_obs, generator=generator, dtype=DTYPE) + means.unsqueeze(-1)

    engine = GPBanditEngine(
        kernels, means, noises, refresh_every=refresh_every, update_block=update_block
    )
    posterior = engine.prior(3)
    for step in range(n_obs):
        posterior.observe(arms[:, step], rewards[:, step])

    for run in range(3):
        mean, covariance = botorch_posterior(
            kernels[run], float(means[run]), float(noises[run]), arms[run], rewards[run]
        )
        assert (posterior.mean[run] - mean).abs().max() < 1e-6
        assert (posterior.covariance[run] - covariance).abs().max() < 1e-6
        assert (posterior.variance[run] - covariance.diagonal()).abs().max() < 1e-6


def test_shared_kernel_matches_botorch_and_dense_formula():
    n_arms, n_obs = 20, 100
    kernel = rbf_kernel(n_arms, 3, 1.0, seed=5)
    generator = torch.Generator().manual_seed(2)
    arms = torch.randint(0, n_arms, (n_obs,), generator=generator)
    rewards = torch.randn(n_obs, generator=generator, dtype=DTYPE)
    posterior = GPBanditEngine(kernel, 0.3, 0.2, refresh_every=None).prior(1)
    for step in range(n_obs):
        posterior.observe(arms[step : step + 1], rewards[step : step + 1])
    mean, covariance = botorch_posterior(kernel, 0.3, 0.2, arms, rewards)
    dense_mean, dense_covariance = dense_posterior(kernel, 0.3, 0.2, arms, rewards)
    assert (posterior.mean[0] - mean).abs().max() < 1e-6
    assert (posterior.covariance[0] - covariance).abs().max() < 1e-6
    assert (posterior.mean[0] - dense_mean).abs().max() < 1e-10
    assert (posterior.covariance[0] - dense_covariance).abs().max() < 1e-10


def test_exact_posterior_from_counts_equals_dense_formula_for_rank_deficient_kernel():
    n_arms = 12
    kernel = linear_kernel(n_arms, rank=3, seed=3)
    generator = torch.Generator().manual_seed(4)
    arms = torch.randint(0, 6, (40,), generator=generator)  # half the arms never observed
    rewards = torch.randn(40, generator=generator, dtype=DTYPE)
    counts = torch.zeros(1, n_arms, dtype=DTYPE).index_add_(1, arms, torch.ones(1, 40, dtype=DTYPE))
    sums = torch.zeros(1, n_arms, dtype=DTYPE).index_add_(1, arms, rewards.unsqueeze(0))
    mean, covariance = exact_posterior(
        kernel, torch.tensor([0.7], dtype=DTYPE), torch.tensor([0.05], dtype=DTYPE), counts, sums
    )
    dense_mean, dense_covariance = dense_posterior(kernel, 0.7, 0.05, arms, rewards)
    assert (mean[0] - dense_mean).abs().max() < 1e-10
    assert (covariance[0] - dense_covariance).abs().max() < 1e-10
    assert torch.equal(covariance, covariance.transpose(-2, -1))


def test_exact_posterior_gradcheck_float64():
    kernel = rbf_kernel(5, 2, 1.0, seed=0)
    counts = torch.tensor([[2.0, 0.0, 1.0, 3.0, 0.0]], dtype=DTYPE)
    sums = torch.tensor([[1.0, 0.0, -0.5, 2.0, 0.0]], dtype=DTYPE, requires_grad=True)
    noise = torch.tensor([0.3], dtype=DTYPE, requires_grad=True)
    mean = torch.tensor([0.1], dtype=DTYPE, requires_grad=True)

    def function(sums, noise, mean):
        return exact_posterior(kernel, mean, noise, counts, sums)

    assert torch.autograd.gradcheck(function, (sums, noise, mean))


def test_kernel_factor_reproduces_kernel_and_rejects_indefinite():
    kernel = linear_kernel(10, rank=4, seed=1)
    factor = kernel_factor(kernel)
    assert factor.shape == (10, 4)  # rank 4: only 4 normals per prior sample
    assert (factor @ factor.T - kernel).abs().max() < 1e-12
    kernels = torch.stack([kernel, linear_kernel(10, rank=6, seed=2)])
    batched = kernel_factor(kernels)  # one width for all runs: the largest rank
    assert batched.shape == (2, 10, 6)
    assert (batched @ batched.transpose(1, 2) - kernels).abs().max() < 1e-12
    indefinite = kernel - 0.5 * torch.eye(10, dtype=DTYPE)
    with pytest.raises(ConfigError, match="positive semi-definite"):
        GPBanditEngine(indefinite)
    with pytest.raises(ConfigError, match="symmetric"):
        GPBanditEngine(kernel + torch.triu(torch.ones(10, 10, dtype=DTYPE), 1))


def test_pathwise_sample_equals_precision_form():
    """With F = chol(K): mu + F z1 - S(D F z1/s2 + D^1/2 z2/s) == mu + S(L^-T z1 - D^1/2 z2/s)."""
    n_arms = 8
    kernel = rbf_kernel(n_arms, 2, 1.0, seed=2) + 1e-3 * torch.eye(n_arms, dtype=DTYPE)
    noise = 0.2
    posterior = GPBanditEngine(kernel, 0.0, noise, refresh_every=None).prior(1)
    for arm, reward in [(0, 1.0), (3, -0.5), (0, 0.7), (5, 0.2), (0, 1.1)]:
        posterior.observe(torch.tensor([arm]), torch.tensor([reward], dtype=DTYPE))
    generator = torch.Generator().manual_seed(3)
    z1 = torch.randn(n_arms, generator=generator, dtype=DTYPE)
    z2 = torch.randn(n_arms, generator=generator, dtype=DTYPE)
    chol = torch.linalg.cholesky(kernel)
    sample = posterior.sample((chol @ z1).unsqueeze(0), z2.unsqueeze(0))[0]
    counts = posterior.counts[0]
    precision_term = torch.linalg.solve_triangular(chol.T, z1.unsqueeze(-1), upper=True)[:, 0]
    expected = posterior.mean[0] + posterior.covariance[0] @ (
        precision_term - counts.sqrt() * z2 / math.sqrt(noise)
    )
    assert (sample - expected).abs().max() < 1e-10


@pytest.mark.parametrize("kernel_kind", ["rbf", "rank2"])
def test_thompson_samples_are_distributed_as_the_posterior(kernel_kind):
    n_arms, n_samples = 6, 40_000
    kernel = rbf_kernel(n_arms, 2, 1.0, seed=7) if kernel_kind == "rbf" else linear_kernel(6, 2, 7)
    engine = GPBanditEngine(kernel, 0.5, 0.1)
    posterior = engine.prior(n_samples)
    for arm, reward in [(1, 1.0), (1, 0.8), (4, -0.3), (2, 0.1)]:
        posterior.observe(
            torch.full((n_samples,), arm), torch.full((n_samples,), reward, dtype=DTYPE)
        )
    generator = torch.Generator().manual_seed(11)
    rank = engine.factor.shape[-1]
    assert rank == (n_arms if kernel_kind == "rbf" else 2)
    z1 = torch.randn(n_samples, rank, generator=generator, dtype=DTYPE)
    z2 = torch.randn(n_samples, n_arms, generator=generator, dtype=DTYPE)
    samples = posterior.sample(z1 @ engine.factor.T, z2)
    mean, covariance = posterior.mean[0], posterior.covariance[0]
    empirical_mean = samples.mean(0)
    centred = samples - empirical_mean
    empirical_covariance = centred.T @ centred / (n_samples - 1)
    sd = covariance.diagonal().clamp_min(1e-12).sqrt()
    # standard errors: sd / sqrt(N) for the mean, about sd_i sd_j sqrt(2 / N) for covariances
    assert ((empirical_mean - mean).abs() / sd).max() < 5 / math.sqrt(n_samples)
    bound = 5 * math.sqrt(2 / n_samples) * torch.outer(sd, sd) + 1e-9
    assert ((empirical_covariance - covariance).abs() <= bound).all()


@pytest.mark.parametrize("update_block", [1, 8])
def test_1000_step_horizon_stays_symmetric_psd_and_exact(update_block):
    """64 runs, 1000 Thompson steps, no refresh: the rank-one updates alone stay exact."""
    n_runs, n_arms, horizon = 64, 20, 1000
    kernel = linear_kernel(n_arms, rank=5, seed=0) + rbf_kernel(n_arms, 2, 2.0, seed=1)
    engine = GPBanditEngine(kernel, 0.0, 1e-3, refresh_every=None, update_block=update_block)
    assert engine.factor.shape == (n_arms, n_arms)  # full rank
    posterior = engine.prior(n_runs)
    true_values = torch.linspace(-1, 1, n_arms, dtype=DTYPE)
    generator = torch.Generator().manual_seed(0)
    policy = ThompsonPolicy()
    worst_eigenvalue = math.inf
    for step in range(horizon):
        z = torch.randn(n_runs, 2 * n_arms + 1, generator=generator, dtype=DTYPE)
        sample = posterior.sample(z[:, :n_arms] @ engine.factor.T, z[:, n_arms:-1])
        arms, _ = policy.select(posterior.mean, posterior.variance, sample)
        posterior.observe(arms, true_values[arms] + 0.03 * z[:, -1])
        covariance = posterior.covariance
        assert torch.equal(covariance, covariance.transpose(-2, -1)), step
        if step % 10 == 9:
            eigenvalues = torch.linalg.eigvalsh(covariance)
            relative = eigenvalues[:, 0] / eigenvalues[:, -1]
            worst_eigenvalue = min(worst_eigenvalue, float(relative.min()))
    assert worst_eigenvalue > -1e-8
    fresh_mean, fresh_covariance = exact_posterior(
        engine.kernel,
        engine.mean.expand(n_runs),
        engine.noise_variance.expand(n_runs),
        posterior.counts,
        posterior.sums,
    )
    scale = fresh_covariance.abs().amax()
    assert (posterior.covariance - fresh_covariance).abs().max() / scale < 1e-9
    assert (posterior.mean - fresh_mean).abs().max() < 1e-9
    assert posterior.counts.sum(-1).eq(horizon).all()


def test_simulate_1000_steps_final_posterior_equals_fresh_posterior():
    n_runs, n_arms, horizon = 64, 15, 1000
    kernel = rbf_kernel(n_arms, 3, 1.0, seed=4)
    true_values = torch.randn(n_arms, generator=torch.Generator().manual_seed(2), dtype=DTYPE)
    for refresh_every in (None, 250):
        engine = GPBanditEngine(kernel, 0.0, 0.05, refresh_every=refresh_every)
        trajectory = engine.simulate(
            ThompsonPolicy(), true_values, 0.2, horizon, range(n_runs), return_covariance=True
        )
        ones = torch.ones(n_runs, horizon, dtype=DTYPE)
        counts = torch.zeros(n_runs, n_arms, dtype=DTYPE).scatter_add_(1, trajectory.arms, ones)
        sums = torch.zeros(n_runs, n_arms, dtype=DTYPE).scatter_add_(
            1, trajectory.arms, trajectory.rewards
        )
        mean, covariance = exact_posterior(
            engine.kernel,
            engine.mean.expand(n_runs),
            engine.noise_variance.expand(n_runs),
            counts,
            sums,
        )
        final = trajectory.posterior_covariance
        assert torch.equal(final, final.transpose(-2, -1))
        assert float((torch.linalg.eigvalsh(final)[:, 0] / final.abs().amax((1, 2))).min()) > -1e-8
        assert (final - covariance).abs().max() < 1e-10
        assert (trajectory.posterior_mean - mean).abs().max() < 1e-10
        assert (trajectory.posterior_var - covariance.diagonal(dim1=1, dim2=2)).abs().max() < 1e-10


@pytest.mark.parametrize("block", [3, 8])
def test_planned_samples_equal_direct_samples_with_pending_updates(block):
    """`plan` + `sample_planned` (B w0 batched, O(n block) corrections) == `sample`."""
    n_arms, n_runs, steps = 10, 4, 13
    kernel = rbf_kernel(n_arms, 2, 1.0, seed=5)
    engine = GPBanditEngine(kernel, 0.2, 0.3, refresh_every=None, update_block=block)
    planned, direct = engine.prior(n_runs), engine.prior(n_runs)
    generator = torch.Generator().manual_seed(9)
    deviations = torch.randn(steps, n_runs, n_arms, generator=generator, dtype=DTYPE)
    noises = torch.randn(steps, n_runs, n_arms, generator=generator, dtype=DTYPE)
    # two planned stretches (5 and 8 steps), so a plan starts with updates pending
    for start, stop in [(0, 5), (5, steps)]:
        planned.plan(deviations[start:stop], noises[start:stop])
        for step in range(start, stop):
            got = planned.sample_planned(step - start).clone()
            expected = direct.sample(deviations[step], noises[step])
            assert (got - expected).abs().max() < 1e-12
            arms = torch.tensor([(3 * step + run) % n_arms for run in range(n_runs)])
            arms[0] = 2  # one run pulls the same arm again and again
            rewards = torch.randn(n_runs, generator=generator, dtype=DTYPE)
            planned.observe(arms, rewards)
            direct.observe(arms, rewards)
    assert (planned.covariance - direct.covariance).abs().max() < 1e-12
