"""Arm-selection policies of the batched GP bandit engine.

Each policy turns the posterior of every run (`mean`, `variance`: `n_runs x n_arms`) and,
for Thompson sampling, one joint posterior sample per run (`n_runs x n_arms`) into one arm
per run. Arms an `available` mask (bool `n_arms` or `n_runs x n_arms`) excludes are never
chosen. Every argmax breaks ties by the lowest arm index, unless the caller passes `ties`
(`n_runs x n_arms` random priorities, as the calibrated loop does): then scores within
`TIE_TOLERANCE` of the best count as tied, and the tied arm of highest priority wins, so a
degenerate kernel (a constant one: every arm's sample equal) does not make every run pull
the lowest-numbered arm.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from deepalign.errors import ConfigError

__all__ = [
    "TIE_TOLERANCE", "EnginePolicy", "GreedyPolicy", "SafePolicy", "ThompsonPolicy", "UCBPolicy",
    "argmax", "masked",
]

TIE_TOLERANCE = 1e-9
"""Scores within this much of the best (relative to `max(1, |best|)`) are ties when the caller
breaks ties at random (`argmax(..., ties)`)."""


def masked(scores: Tensor, allowed: Tensor | None) -> Tensor:
    """`scores` (`n_runs x n_arms`) with the arms `allowed` excludes set to -inf."""
    return scores if allowed is None else scores.masked_fill(~allowed, -math.inf)


def argmax(scores: Tensor, ties: Tensor | None = None) -> Tensor:
    """LongTensor `n_runs`: the best arm of each row of `scores` (`n_runs x n_arms`); ties by
    the lowest index, or with `ties` (`n_runs x n_arms` priorities in [0, 1)) among scores
    within `TIE_TOLERANCE` of the best by the highest priority."""
    if ties is None:
        return scores.argmax(dim=-1)
    best = scores.amax(dim=-1, keepdim=True)
    tolerance = TIE_TOLERANCE * best.abs().clamp_min(1.0)
    tied = (scores >= best - tolerance) & (scores > -math.inf)
    return torch.where(tied, ties, -1.0).argmax(dim=-1)


def _nonnegative_float(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ConfigError(f"'{name}' should be a finite number >= 0 but got {value!r}")
    if not math.isfinite(value):
        raise ConfigError(f"'{name}' should be a finite number >= 0 but got {value!r}")
    return float(value)


class EnginePolicy:
    """Base class: `select` (validated use) wraps the `_select` hook a policy implements.

    Attributes:
        needs_sample: whether `select` needs a posterior sample (Thompson-like policies);
            the engine only draws samples for those.
        needs_variance: whether `select` reads the posterior variance.
    """

    needs_sample: bool = False
    needs_variance: bool = True

    def select(
        self,
        mean: Tensor,
        variance: Tensor | None,
        sample: Tensor | None = None,
        available: Tensor | None = None,
        ties: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Choose one arm per run.

        Args:
            mean: `n_runs x n_arms` posterior mean.
            variance: `n_runs x n_arms` posterior variance (>= 0); may be None when not
                `needs_variance`.
            sample: `n_runs x n_arms` posterior sample; required when `needs_sample`.
            available: bool `n_arms` or `n_runs x n_arms`, True where an arm may be pulled;
                None allows every arm.
            ties: `n_runs x n_arms` random priorities for breaking near-ties (`argmax`);
                None breaks exact ties by the lowest index.

        Returns:
            (LongTensor `n_runs` chosen arms, bool `n_runs` whether the chosen arm's lower
            confidence bound cleared the safety threshold, or None for policies without one).
        """
        if mean.dim() != 2 or (
            self.needs_variance and (variance is None or variance.shape != mean.shape)
        ):
            got = None if variance is None else tuple(variance.shape)
            raise ConfigError(
                f"'mean' and 'variance' should both be n_runs x n_arms but got "
                f"{tuple(mean.shape)} and {got}"
            )
        if self.needs_sample and (sample is None or sample.shape != mean.shape):
            got = None if sample is None else tuple(sample.shape)
            raise ConfigError(
                f"{type(self).__name__} needs a posterior 'sample' of shape "
                f"{tuple(mean.shape)} but got {got}"
            )
        if available is not None and (
            available.dtype != torch.bool or available.shape[-1] != mean.shape[1]
        ):
            raise ConfigError(
                f"'available' should be a bool tensor n_arms or n_runs x n_arms with "
                f"n_arms={mean.shape[1]} but got {available.dtype} {tuple(available.shape)}"
            )
        return self._select(mean, variance, sample, available, ties)

    def _select(
        self, mean: Tensor, variance: Tensor, sample: Tensor | None, available: Tensor | None,
        ties: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def check_runs(self, n_runs: int) -> None:
        """Raise ConfigError if a per-run setting does not have `n_runs` entries."""

    def for_runs(self, start: int, stop: int) -> EnginePolicy:
        """This policy restricted to runs `start:stop` (per-run settings sliced)."""
        return self


class ThompsonPolicy(EnginePolicy):
    """Thompson sampling: pull the argmax of one joint posterior sample per run."""

    needs_sample = True
    needs_variance = False

    def _select(self, mean, variance, sample, available, ties=None):
        return argmax(masked(sample, available), ties), None


class GreedyPolicy(EnginePolicy):
    """Greedy reference: pull the argmax of the posterior mean (no exploration bonus).

    The agent that could fake an effect by not exploring: it keeps pulling the first arm
    whose mean beats the others. Ties go to the lowest arm index on the fixed-prior path (so
    under a constant kernel, where every arm has the same mean, every run pulls the lowest
    available arm throughout), and to random priorities in the calibrated loop.
    No per-run settings; reads neither a sample nor the variance.
    """

    needs_sample = False
    needs_variance = False

    def _select(self, mean, variance, sample, available, ties=None):
        return argmax(masked(mean, available), ties), None


class UCBPolicy(EnginePolicy):
    """GP-UCB: pull the argmax of `mean + beta^1/2 * sd` (fixed `beta`, no schedule).

    Args:
        beta: >= 0, the squared width of the confidence band (BoTorch's convention).
    """

    def __init__(self, beta: float = 2.0) -> None:
        self.beta = _nonnegative_float(beta, "beta")

    def scores(self, mean: Tensor, variance: Tensor) -> Tensor:
        """`n_runs x n_arms` upper confidence bounds."""
        return mean + math.sqrt(self.beta) * variance.sqrt()

    def _select(self, mean, variance, sample, available, ties=None):
        return argmax(masked(self.scores(mean, variance), available), ties), None


class SafePolicy(EnginePolicy):
    """Safe exploration by the GP's own uncertainty.

    An arm is *safe* when its lower confidence bound `mean - beta_safe^1/2 * sd` is at least
    `threshold` (a bad action is one whose true value is below the threshold). When a run has
    safe arms, `inner` (Thompson sampling by default, or UCB) chooses among them only. When it
    has none, `fallback` decides (the same rules as the BoTorch `SafeGPAgent`):

    * `"probability"` (default): the arm most likely to be good, `argmax (mean - threshold)
      / sd`, i.e. the arm closest to entering the safe set by the safe set's own criterion;
    * `"lcb"`: the arm with the highest lower confidence bound (under a wide prior this keeps
      pulling a known bad arm, whose bound beats every untried arm's).

    Args:
        threshold: the bad-action threshold, a float or a tensor `n_runs` (one per run).
        beta_safe: >= 0, squared width of the lower confidence bound.
        inner: the policy that chooses among safe arms (`ThompsonPolicy` or `UCBPolicy`).
        fallback: "probability" or "lcb", the rule while no arm is safe.
    """

    FALLBACKS = ("probability", "lcb")

    def __init__(
        self,
        threshold: float | Tensor,
        beta_safe: float = 4.0,
        inner: ThompsonPolicy | UCBPolicy | None = None,
        fallback: str = "probability",
    ) -> None:
        if isinstance(threshold, Tensor):
            if threshold.dim() != 1 or not bool(torch.isfinite(threshold).all()):
                raise ConfigError(
                    f"'threshold' should be a float or a finite 1-d tensor (n_runs) but got "
                    f"shape {tuple(threshold.shape)}"
                )
        elif isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ConfigError(f"'threshold' should be a float or a tensor but got {threshold!r}")
        elif not math.isfinite(threshold):
            raise ConfigError(f"'threshold' should be finite but got {threshold!r}")
        inner = ThompsonPolicy() if inner is None else inner
        if not isinstance(inner, ThompsonPolicy | UCBPolicy):
            raise ConfigError(
                f"'inner' should be a ThompsonPolicy or a UCBPolicy but got {type(inner).__name__}"
            )
        if fallback not in self.FALLBACKS:
            raise ConfigError(f"'fallback' should be one of {self.FALLBACKS} but got {fallback!r}")
        self.threshold = threshold
        self.beta_safe = _nonnegative_float(beta_safe, "beta_safe")
        self.inner = inner
        self.fallback = fallback
        self.needs_sample = inner.needs_sample

    def lower_bounds(self, mean: Tensor, variance: Tensor) -> Tensor:
        """`n_runs x n_arms` lower confidence bounds."""
        return mean - math.sqrt(self.beta_safe) * variance.sqrt()

    def check_runs(self, n_runs: int) -> None:
        if isinstance(self.threshold, Tensor) and self.threshold.shape[0] != n_runs:
            raise ConfigError(
                f"'threshold' has {self.threshold.shape[0]} entries but there are {n_runs} "
                "runs; give a float or one threshold per run"
            )

    def for_runs(self, start: int, stop: int) -> SafePolicy:
        if not isinstance(self.threshold, Tensor):
            return self
        return SafePolicy(self.threshold[start:stop], self.beta_safe, self.inner, self.fallback)

    def _select(self, mean, variance, sample, available, ties=None):
        threshold = self.threshold
        if isinstance(threshold, Tensor):
            threshold = threshold.to(mean).unsqueeze(-1)
        sd = variance.sqrt()
        lower = masked(mean - math.sqrt(self.beta_safe) * sd, available)
        safe = lower >= threshold
        inner_arms, _ = self.inner._select(mean, variance, sample, safe, ties)
        if self.fallback == "lcb":
            fallback = lower
        else:
            fallback = masked((mean - threshold) / sd.clamp_min(1e-12), available)
        arms = torch.where(safe.any(dim=-1), inner_arms, argmax(fallback, ties))
        return arms, safe.gather(1, arms.unsqueeze(1)).squeeze(1)
