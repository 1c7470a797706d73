"""The step loop of the batched GP bandit engine, and the trajectory it returns.

Shapes: `n_runs` runs, `n_arms` arms, horizon `T`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from deepalign.agents.engine_policies import EnginePolicy, masked
from deepalign.agents.engine_posterior import BatchedGPPosterior
from deepalign.agents.engine_random import RunNoise

__all__ = ["Trajectory", "run_bandit_loop"]


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
    """

    arms: Tensor
    rewards: Tensor
    posterior_mean: Tensor
    posterior_var: Tensor
    seeds: tuple[int, ...]
    safe_pulls: Tensor | None = None
    posterior_covariance: Tensor | None = None
    greedy_arms: Tensor | None = None

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
    arms_out, rewards_out, safe_out, greedy_out = [], [], [], []
    sample = None
    uniform_sd = float(noise_sd[0, 0]) if bool((noise_sd == noise_sd[0, 0]).all()) else None
    for block in noise.blocks(horizon):
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
            if record_greedy:
                greedy_out.append(masked(posterior.mean, available).argmax(dim=-1))
            arms_out.append(arms)
            rewards_out.append(rewards)
            if safe is not None:
                safe_out.append(safe)
    return Trajectory(
        arms=torch.stack(arms_out, dim=1),
        rewards=torch.stack(rewards_out, dim=1),
        posterior_mean=posterior.mean,
        posterior_var=posterior.variance,
        seeds=tuple(seeds),
        safe_pulls=torch.stack(safe_out, dim=1) if safe_out else None,
        posterior_covariance=posterior.covariance if keep_covariance else None,
        greedy_arms=torch.stack(greedy_out, dim=1) if greedy_out else None,
    )
