"""TorchScript kernels of the engine's hot path: immediate rank-one updates, pathwise
Thompson samples, and whole stretches of Thompson-sampling steps.

Shapes: `n_runs` runs, `n_arms` arms, `L` steps. These functions are the only
implementation of the immediate (`block = 1`) update and sample: `BatchedGPPosterior` calls
them step by step and `thompson_steps` calls them in a loop, so both paths run the same ATen
operations in the same order and give bit-identical results. Compiled by TorchScript, a
stretch of steps runs in C++ without the Python interpreter between its ~20 small operations
per step, and without holding the GIL (so a prefetching random-number thread does not stall
it).
"""

from __future__ import annotations

import functools
import warnings

import torch
from torch import Tensor

__all__ = ["compiled", "immediate_update", "pathwise_sample", "scripted", "thompson_steps"]


def immediate_update(
    base: Tensor,
    mean: Tensor,
    precision: Tensor,
    root_precision: Tensor,
    sums: Tensor,
    rows: Tensor,
    noise_column: Tensor,
    inverse_noise: Tensor,
    arms: Tensor,
    rewards: Tensor,
) -> None:
    """Condition every run on reward `rewards[r]` at arm `arms[r]`, in place.

    Args:
        base: `n_runs x n_arms x n_arms` covariance; mean, precision (counts / s2),
            root_precision (its square root), sums (reward sums): `n_runs x n_arms`.
        rows: `n_runs`, `r * n_arms`; noise_column: `n_runs x 1`, s2; inverse_noise: `n_runs`.
        arms: LongTensor `n_runs`; rewards: `n_runs`.
    """
    n_arms = base.shape[-1]
    picked = arms.unsqueeze(1)
    flat = rows + arms
    column = base.view(-1, n_arms).index_select(0, flat)  # row a == column a
    scale = column.gather(1, picked).add_(noise_column).rsqrt_()
    step = column.mul_(scale)
    # u_i u_j and u_j u_i round alike, so the covariance stays exactly symmetric
    base.addcmul_(step.unsqueeze(2), step.unsqueeze(1), value=-1.0)
    residual = rewards.unsqueeze(1) - mean.gather(1, picked)
    mean.addcmul_(step, residual.mul_(scale))
    precision.view(-1).index_add_(0, flat, inverse_noise)
    root = precision.view(-1).index_select(0, flat).sqrt_()
    root_precision.view(-1).index_copy_(0, flat, root)
    sums.view(-1).index_add_(0, flat, rewards)


def pathwise_sample(
    base: Tensor,
    mean: Tensor,
    precision: Tensor,
    root_precision: Tensor,
    deviation: Tensor,
    noise: Tensor,
    weights: Tensor,
    sample: Tensor,
) -> Tensor:
    """`mean + f0 - S (D f0 / s2 + D^1/2 z2 / s)` (see `BatchedGPPosterior.sample`) into the
    buffer `sample` (`n_runs x n_arms`, returned), using `weights` (same shape) as scratch.

    S w is computed as the row product w^T S (S is symmetric): a matrix product whose result
    for one run does not depend on the batch size (a batched matrix-vector product takes
    another BLAS path for a batch of one).
    """
    torch.mul(precision, deviation, out=weights)
    weights.addcmul_(root_precision, noise)
    torch.add(mean, deviation, out=sample)
    sample.unsqueeze(1).baddbmm_(weights.unsqueeze(1), base, alpha=-1.0)
    return sample


def thompson_steps(
    base: Tensor,
    mean: Tensor,
    precision: Tensor,
    root_precision: Tensor,
    sums: Tensor,
    rows: Tensor,
    noise_column: Tensor,
    inverse_noise: Tensor,
    weights: Tensor,
    sample: Tensor,
    values: Tensor,
    deviations: Tensor,
    noises: Tensor,
    reward_noise: Tensor,
    noise_sd: Tensor,
    uniform_sd: float,
    blocked: Tensor | None,
    arms_out: Tensor,
    rewards_out: Tensor,
    greedy_out: Tensor | None,
    first: int,
    stop: int,
    offset: int,
) -> None:
    """Steps `first..stop-1` of a block of Thompson sampling with immediate updates.

    Args:
        base ... sample: the posterior state and buffers (`immediate_update`,
            `pathwise_sample`), updated in place.
        values: `n_runs x n_arms` true values.
        deviations, noises: `L x n_runs x n_arms`, the block's `f0` and `z2`;
            reward_noise: `L x n_runs`.
        noise_sd: `n_runs x n_arms` reward noise SD, used when `uniform_sd < 0`; else every
            reward's noise is `uniform_sd * e`.
        blocked: bool `n_runs x n_arms`, True where an arm may not be pulled, or None.
        arms_out, rewards_out: `n_runs x T`, written at columns `offset + step`;
            greedy_out: likewise, the best guess after each step, or None.
        first, stop: the steps of the block to play; offset: the block's first step in `T`.
    """
    for step in range(first, stop):
        drawn = pathwise_sample(
            base, mean, precision, root_precision, deviations[step], noises[step], weights, sample
        )
        if blocked is not None:
            drawn = drawn.masked_fill(blocked, -float("inf"))
        arms = drawn.argmax(dim=-1)
        picked = arms.unsqueeze(1)
        rewards = values.gather(1, picked).squeeze(1)
        if uniform_sd >= 0.0:
            rewards.add_(reward_noise[step], alpha=uniform_sd)
        else:
            rewards.addcmul_(noise_sd.gather(1, picked).squeeze(1), reward_noise[step])
        immediate_update(
            base, mean, precision, root_precision, sums, rows, noise_column, inverse_noise,
            arms, rewards,
        )
        arms_out[:, offset + step] = arms
        rewards_out[:, offset + step] = rewards
        if greedy_out is not None:
            guess = mean if blocked is None else mean.masked_fill(blocked, -float("inf"))
            greedy_out[:, offset + step] = guess.argmax(dim=-1)


@functools.cache
def compiled(function):
    """`function` compiled by TorchScript (once per process), or `function` itself.

    TorchScript is deprecated in recent torch releases (it warns, and may go): it is only a
    speed-up here, so its deprecation warning is silenced, and where scripting is missing or
    fails the plain Python function is used instead: the same operations, the same numbers.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.script.*deprecated")
            return torch.jit.script(function)
    except Exception:  # noqa: BLE001 - any failure to compile falls back to eager
        return function


def scripted(name: str):
    """`compiled` of one of this module's functions, by name."""
    return compiled(globals()[name])
