"""The step loop of the batched GP bandit engine, and the trajectory it returns.

Shapes: `n_runs` runs, `n_arms` arms, horizon `T`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from deepalign.agents.engine.fused import scripted
from deepalign.agents.engine.policies import EnginePolicy, ThompsonPolicy, masked
from deepalign.agents.engine.posterior import BatchedGPPosterior
from deepalign.agents.engine.randomness import RunNoise

__all__ = ["Trajectory", "loop_trajectory", "run_bandit_loop"]


@dataclass(frozen=True)
class Trajectory:
    """What `GPBanditEngine.simulate` returns.

    Attributes:
        arms: LongTensor `n_runs x T`, the arm pulled at each step.
        rewards: `n_runs x T`, the noisy reward observed.
        posterior_mean: `n_runs x n_arms`, after the last step.
        posterior_var: `n_runs x n_arms`, after the last step.
        seeds: the seed of each run.
        safe_pulls: bool `n_runs x T`, whether the pulled arm's lower confidence bound cleared
            the threshold (safe policies only, else None).
        posterior_covariance: `n_runs x n_arms x n_arms` after the last step, when asked for.
        greedy_arms: LongTensor `n_runs x T`, the arm with the highest posterior mean among
            the available arms after each step's observation, when asked for.
        calibration: `n_runs x 4` with calibration on (`GPBanditEngine(calibration=...)`):
            the final temperature, outputscale and noise-variance multiples and the log
            evidence of the last fit; else None.
    """

    arms: Tensor
    rewards: Tensor
    posterior_mean: Tensor
    posterior_var: Tensor
    seeds: tuple[int, ...]
    safe_pulls: Tensor | None = None
    posterior_covariance: Tensor | None = None
    greedy_arms: Tensor | None = None
    calibration: Tensor | None = None

    @classmethod
    def concatenate(cls, parts: Sequence[Trajectory]) -> Trajectory:
        """The trajectories of consecutive chunks of runs, as one."""

        def cat(name: str) -> Tensor | None:
            tensors = [getattr(part, name) for part in parts]
            return None if tensors[0] is None else torch.cat(tensors)

        return cls(
            arms=cat("arms"),
            rewards=cat("rewards"),
            posterior_mean=cat("posterior_mean"),
            posterior_var=cat("posterior_var"),
            seeds=tuple(seed for part in parts for seed in part.seeds),
            safe_pulls=cat("safe_pulls"),
            posterior_covariance=cat("posterior_covariance"),
            greedy_arms=cat("greedy_arms"),
            calibration=cat("calibration"),
        )


def run_bandit_loop(
    posterior: BatchedGPPosterior,
    policy: EnginePolicy,
    noise: RunNoise,
    values: Tensor,
    noise_sd: Tensor,
    horizon: int,
    available: Tensor | None,
    seeds: Sequence[int],
    keep_covariance: bool,
    record_greedy: bool = False,
) -> Trajectory:
    """Run `policy` on `posterior` for `horizon` steps (arguments validated by the engine).

    Args:
        posterior: the prior state of `n_runs` runs.
        policy: chooses the arms; noise: the runs' random numbers.
        values: `n_runs x n_arms` true values; noise_sd: `n_runs x n_arms` reward noise SD.
        available: bool `n_runs x n_arms` or None.
        seeds: the runs' seeds (recorded in the trajectory).
        keep_covariance: also return the final covariance.
        record_greedy: also return the best guess after each step (`Trajectory.greedy_arms`).
    """
    n_runs = values.shape[0]
    arms_out = torch.empty(n_runs, horizon, dtype=torch.long, device=values.device)
    rewards_out = torch.empty(n_runs, horizon, dtype=values.dtype, device=values.device)
    greedy_out = torch.empty_like(arms_out) if record_greedy else None
    safe_out = []
    sample = None
    uniform_sd = float(noise_sd[0, 0]) if bool((noise_sd == noise_sd[0, 0]).all()) else None
    fused = type(policy) is ThompsonPolicy and posterior.block == 1
    offset = 0
    for block in noise.blocks(horizon):
        if fused:
            _fused_thompson_block(
                posterior, block, values, noise_sd, uniform_sd, available, arms_out,
                rewards_out, greedy_out, offset,
            )
            offset += block.reward.shape[0]
            continue
        if block.deviation is not None:
            posterior.plan(block.deviation, block.sample_noise)
        for step, reward_noise in enumerate(block.reward):
            if block.deviation is not None:
                sample = posterior.sample_planned(step)
            variance = posterior.variance if policy.needs_variance else None
            # the engine validated the shapes once: call the hook, not the checking `select`
            arms, safe = policy._select(posterior.mean, variance, sample, available)
            picked = arms.unsqueeze(1)
            rewards = values.gather(1, picked).squeeze(1)
            if uniform_sd is None:
                rewards.addcmul_(noise_sd.gather(1, picked).squeeze(1), reward_noise)
            else:
                rewards.add_(reward_noise, alpha=uniform_sd)
            posterior.observe(arms, rewards, picked)
            if greedy_out is not None:
                greedy_out[:, offset + step] = masked(posterior.mean, available).argmax(dim=-1)
            arms_out[:, offset + step] = arms
            rewards_out[:, offset + step] = rewards
            if safe is not None:
                safe_out.append(safe)
        offset += block.reward.shape[0]
    return loop_trajectory(
        arms_out, rewards_out, posterior, seeds, safe_out, keep_covariance, greedy_out
    )


def loop_trajectory(
    arms: Tensor,
    rewards: Tensor,
    posterior: BatchedGPPosterior,
    seeds: Sequence[int],
    safe: list[Tensor],
    keep_covariance: bool,
    greedy: Tensor | None,
    calibration: Tensor | None = None,
) -> Trajectory:
    """The `Trajectory` of a finished step loop (`run_bandit_loop`, `run_calibrated_loop`):
    its recorded arms and rewards, the final posterior, per-step safety flags (`safe`, one
    bool `n_runs` per step, or empty), best guesses and calibration."""
    return Trajectory(
        arms=arms,
        rewards=rewards,
        posterior_mean=posterior.mean,
        posterior_var=posterior.variance,
        seeds=tuple(seeds),
        safe_pulls=torch.stack(safe, dim=1) if safe else None,
        posterior_covariance=posterior.covariance if keep_covariance else None,
        greedy_arms=greedy,
        calibration=calibration,
    )


def _fused_thompson_block(
    posterior, block, values, noise_sd, uniform_sd, available, arms_out, rewards_out,
    greedy_out, offset,
) -> None:
    """One block of Thompson sampling with immediate updates, played by the TorchScript
    `engine.fused.thompson_steps` in stretches that end at the posterior's refresh points
    (the same operations as the step-by-step path, so the same numbers)."""
    steps = scripted("thompson_steps")
    blocked = None if available is None else ~available
    first, length = 0, block.reward.shape[0]
    while first < length:
        to_refresh = posterior.steps_to_refresh()
        stop = length if to_refresh is None else min(length, first + to_refresh)
        steps(
            *posterior.immediate_state(), posterior._weights, posterior._sample, values,
            block.deviation, block.sample_noise, block.reward, noise_sd,
            -1.0 if uniform_sd is None else uniform_sd, blocked, arms_out, rewards_out,
            greedy_out, first, stop, offset,
        )
        posterior.count_observations(stop - first)
        first = stop
