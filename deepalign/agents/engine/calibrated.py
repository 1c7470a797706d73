"""The batched engine's step loop with kernel calibration (`deepalign.agents.calibration`).

Shapes: `n_runs` runs, `n_arms` arms (the engine's items), horizon `T`.

Each run starts from the calibration grid's centre. After the observation counts of the
schedule (5, 10, 20, ... by default) every run's hyperparameters are chosen again, batched
over runs, from its own per-arm counts, sums and sums of squares; its posterior is then
rebuilt exactly (`BatchedGPPosterior.restart`) under the new kernel and noise, and its prior
square root (for Thompson samples) recomputed. Between fits the loop is the engine's
step-by-step loop with immediate updates.

Random numbers come from the same per-run streams as the uncalibrated engine, drawn with an
identity square root (`[z1 (n_arms), z2 (n_arms)]` per step), and each step's prior deviation
is `F_r z1` with the run's current square root `F_r`. So a run's numbers never depend on the
batch, as elsewhere in the engine; they differ from an uncalibrated run's.

Ties. Calibration keeps a constant kernel constant, and under it every arm's Thompson sample
and mean are equal (up to round-off). Breaking such ties by the lowest index, as the fast
path does, would make every run pull arm 0 throughout, so its results would depend on item
order. This loop breaks near-ties at random instead (`engine.policies.argmax`), with a
third per-run stream of uniform priorities (`n_arms` per step), as the BoTorch agents do
with `argmax_random_tie`; the recorded best guess uses the same priorities.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from deepalign.agents.calibration import (
    CalibrationChoice,
    KernelCalibration,
    calibrated_kernel,
)
from deepalign.agents.calibration_fit import select_hyperparameters
from deepalign.agents.engine.exact import RANK_TOL, psd_eigh
from deepalign.agents.engine.loop import Trajectory, loop_trajectory
from deepalign.agents.engine.policies import EnginePolicy, argmax, masked
from deepalign.agents.engine.posterior import BatchedGPPosterior
from deepalign.agents.engine.randomness import RunNoise, sample_seed

__all__ = ["run_calibrated_loop"]


class TiePriorities:
    """Per-run uniform priorities for breaking near-ties, `n_arms` per step, from a stream of
    each run's own (`sample_seed(sample_seed(seed))`), so never dependent on the batch."""

    def __init__(self, seeds: Sequence[int], n_arms: int, dtype, device) -> None:
        self.generators = [
            torch.Generator().manual_seed(sample_seed(sample_seed(seed))) for seed in seeds
        ]
        self.n_arms, self.dtype, self.device = n_arms, dtype, device

    def block(self, length: int) -> Tensor:
        """`length x n_runs x n_arms` priorities of the next `length` steps."""
        drawn = torch.empty(len(self.generators), length, self.n_arms, dtype=torch.float32)
        for run, generator in enumerate(self.generators):
            torch.rand(drawn[run].shape, generator=generator, out=drawn[run])
        return drawn.transpose(0, 1).to(self.device, self.dtype)


class SquareRoots:
    """Square roots `F_r` of the runs' calibrated kernels, for Thompson samples.

    With one kernel and one distance scale for every run (the usual case), the root of each
    temperature's kernel is computed once per simulation and shared: a run's root is then
    `sqrt(outputscale_r) F_t` (the principal root of `c A` is `sqrt(c)` times `A`'s), so a
    fit costs no per-run eigendecomposition. Otherwise (one kernel per run) each run's root
    is computed at each fit.
    """

    def __init__(self, kernel: Tensor, scale: Tensor, calibration: KernelCalibration) -> None:
        self.kernel, self.scale, self.calibration = kernel, scale, calibration
        self.shared = kernel.dim() == 2 and bool((scale == scale[0]).all())
        self._roots: dict[float, Tensor] = {}

    def __call__(self, covariance: Tensor, choice: CalibrationChoice) -> Tensor:
        """`n_runs x n_arms x n_arms` roots of the runs' `covariance` (made by `choice`)."""
        if not self.shared:
            return _square_root(covariance)
        roots = []
        for temperature in choice.temperature.tolist():
            if temperature not in self._roots:
                unit = calibrated_kernel(self.kernel, temperature, self.scale[0])
                self._roots[temperature] = _square_root(unit.unsqueeze(0))[0]
            roots.append(self._roots[temperature])
        return torch.stack(roots) * choice.outputscale.sqrt().view(-1, 1, 1)


def _rebuild(kernel, scale, choice, mean, noise_variance, counts, sums, n_observed,
             refresh_every, roots: SquareRoots | None):
    covariance = calibrated_kernel(kernel, choice.temperature, scale, choice.outputscale)
    noise = noise_variance * choice.noise_scale
    posterior = BatchedGPPosterior(covariance, mean, noise, refresh_every, block=1)
    if n_observed:
        posterior.restart(counts, sums, n_observed)
    factor = None if roots is None else roots(covariance, choice)
    return posterior, factor


def _square_root(covariance: Tensor) -> Tensor:
    """The principal square root `F = V diag(sqrt(l)) V^T` (`F F^T = K`) of each run's
    calibrated kernel. Unlike `kernel_factor`'s `V diag(sqrt(l))`, it is unique, so a run's
    numbers cannot depend on the runs beside it: with repeated eigenvalues (a TF-IDF kernel's
    many orthogonal items) the eigenvectors themselves are arbitrary, and rounding that
    depends on the batch's memory layout picks different ones. Checked PSD by
    `kernel_factor`'s rule (eigenvalues >= -1e-8 of the largest)."""
    eigenvalues, eigenvectors, relative = psd_eigh(covariance, "calibrated kernel")
    # eigenvalues at most RANK_TOL of the largest are round-off (a constant kernel's n - 1
    # zeros come out near 1e-16 n): their square roots (1e-8) would swamp exact ties
    kept = torch.where(relative > RANK_TOL, eigenvalues, 0.0)
    scaled = eigenvectors * kept.sqrt().unsqueeze(-2)
    return scaled @ eigenvectors.transpose(-2, -1)


def run_calibrated_loop(
    kernel: Tensor,
    scale: Tensor,
    mean: Tensor,
    noise_variance: Tensor,
    calibration: KernelCalibration,
    policy: EnginePolicy,
    noise: RunNoise,
    values: Tensor,
    noise_sd: Tensor,
    horizon: int,
    available: Tensor | None,
    seeds: Sequence[int],
    keep_covariance: bool,
    record_greedy: bool,
    refresh_every: int | None,
) -> Trajectory:
    """Run `policy` for `horizon` steps with calibration (arguments validated by the engine).

    Args:
        kernel: the prior covariance as given, `n_arms x n_arms` or `n_runs x n_arms x n_arms`.
        scale: `n_runs`, each run's median arm distance (`distance_scale`).
        mean: `n_runs` prior mean; noise_variance: `n_runs` known reward-noise variance.
        calibration: the grid and schedule.
        policy: the engine policy; noise: the runs' random numbers, drawn with an identity
            square root when the policy needs samples.
        values, noise_sd: `n_runs x n_arms`; available: bool `n_runs x n_arms` or None.
        seeds, keep_covariance, record_greedy: as `run_bandit_loop`.
        refresh_every: as `GPBanditEngine`.

    Returns:
        a `Trajectory` whose `calibration` is `n_runs x 4`: the final temperature, outputscale
        and noise multiples and the log evidence of the last fit.
    """
    n_runs, n_arms = values.shape
    options = {"dtype": values.dtype, "device": values.device}
    squares = torch.zeros(n_runs, n_arms, **options)  # counts and sums: the posterior's
    choice = CalibrationChoice.default(calibration, n_runs, values.dtype, values.device)
    roots = SquareRoots(kernel, scale, calibration) if policy.needs_sample else None
    posterior, factor = _rebuild(kernel, scale, choice, mean, noise_variance, None, None, 0,
                                 refresh_every, roots)
    arms_out = torch.empty(n_runs, horizon, dtype=torch.long, device=values.device)
    rewards_out = torch.empty(n_runs, horizon, **options)
    greedy_out = torch.empty_like(arms_out) if record_greedy else None
    safe_out = []
    priorities = TiePriorities(seeds, n_arms, values.dtype, values.device)
    t = 0
    for block in noise.blocks(horizon):
        block_ties = priorities.block(block.reward.shape[0])
        for step, reward_noise in enumerate(block.reward):
            ties = block_ties[step]
            sample = None
            if policy.needs_sample:
                z1 = block.deviation[step, :, : factor.shape[-1]].unsqueeze(-1)
                deviation = torch.matmul(factor, z1).squeeze(-1)
                sample = posterior.sample(deviation, block.sample_noise[step])
            variance = posterior.variance if policy.needs_variance else None
            arms, safe = policy._select(posterior.mean, variance, sample, available, ties)
            picked = arms.unsqueeze(1)
            rewards = values.gather(1, picked).squeeze(1)
            rewards.addcmul_(noise_sd.gather(1, picked).squeeze(1), reward_noise)
            posterior.observe(arms, rewards, picked)
            squares.scatter_add_(1, picked, (rewards * rewards).unsqueeze(1))
            t += 1
            if calibration.fits_after(t):
                counts, sums = posterior.counts, posterior.sums.clone()
                choice = select_hyperparameters(
                    kernel, scale, counts, sums, squares, mean, 1.0, noise_variance,
                    calibration,
                )
                posterior, factor = _rebuild(kernel, scale, choice, mean, noise_variance,
                                             counts, sums, t, refresh_every, roots)
            if greedy_out is not None:
                greedy_out[:, t - 1] = argmax(masked(posterior.mean, available), ties)
            arms_out[:, t - 1] = arms
            rewards_out[:, t - 1] = rewards
            if safe is not None:
                safe_out.append(safe)
    final = torch.stack(
        [choice.temperature, choice.outputscale, choice.noise_scale, choice.log_evidence], dim=1
    )
    return loop_trajectory(
        arms_out, rewards_out, posterior, seeds, safe_out, keep_covariance, greedy_out, final
    )
