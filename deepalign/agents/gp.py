"""GP bandit agents on BoTorch: Thompson sampling, UCB, safe exploration, and greedy."""

from __future__ import annotations

import math

import torch
from gpytorch.kernels import Kernel
from torch import Generator, Tensor

from deepalign.agents.base import BanditAgent, argmax_random_tie
from deepalign.agents.calibration import KernelCalibration
from deepalign.agents.hyperparameters import GPHyperparameters
from deepalign.agents.posterior import GPPosterior, joint_sample
from deepalign.errors import ConfigError

__all__ = [
    "DEFAULT_BETA",
    "DEFAULT_SAFE_BETA",
    "GREEDY_TIE_TOLERANCE",
    "SAFE_FALLBACKS",
    "GPGreedyAgent",
    "GPThompsonAgent",
    "GPUCBAgent",
    "SafeGPAgent",
]

DEFAULT_BETA = 2.0
"""GP-UCB's fixed beta (BoTorch's convention): the agent maximises `mu + sqrt(beta) * sd`,
about `mu + 1.41 sd`; the batched engine's `UCBPolicy` default is the same."""

DEFAULT_SAFE_BETA = 4.0
"""SafeGPAgent's beta: an arm is safe when `mu - sqrt(beta) * sd` = `mu - 2 sd` clears the
threshold (about 97.7 % one-sided posterior probability of not being bad)."""


SAFE_FALLBACKS: tuple[str, ...] = ("probability", "lcb")
"""SafeGPAgent's rules while no arm is safe (see its docstring)."""


def _check_beta(beta: float, name: str) -> float:
    if isinstance(beta, bool) or not math.isfinite(float(beta)) or beta < 0:
        raise ConfigError(f"'{name}' should be a finite number >= 0 but got {beta!r}")
    return float(beta)


class _GPAgent(BanditAgent):
    """Shared plumbing: a `GPPosterior` conditioned on the observations when needed."""

    def __init__(
        self,
        kernel: Kernel,
        arm_items: Tensor,
        n_items: int,
        hyperparameters: GPHyperparameters,
        refit_every: int | None = None,
        calibration: KernelCalibration | None = None,
    ) -> None:
        super().__init__(arm_items, n_items)
        self.posterior = GPPosterior(
            kernel, hyperparameters, refit_every, calibration, self.arm_items, self.n_items
        )
        self._conditioned_on = -1

    def reset(self) -> None:
        super().reset()
        self.posterior.reset()
        self._conditioned_on = -1

    def _update(self) -> None:
        n_obs = len(self._arms)
        if n_obs != self._conditioned_on:
            self.posterior.condition(self.observed_items, self.observed_rewards)
            self._conditioned_on = n_obs

    def _predict(self, items: Tensor) -> Tensor:
        """Posterior mean of the rating at `items` (through the kernel's cross-covariance)."""
        self._update()
        return self.posterior.mean_and_variance(items)[0]


class GPThompsonAgent(_GPAgent):
    """GP Thompson sampling: pull the argmax of one joint posterior sample over all arms.

    Args:
        kernel: gpytorch `Kernel` over item indices (all `n_items` items).
        arm_items: LongTensor `n_arms`, the item index of each arm.
        n_items: number of items the kernel covers.
        hyperparameters: prior mean, outputscale, noise variance (see `GPPosterior`);
            `GPHyperparameters.from_bandit(env)` gives the defaults.
        refit_every: refit mean/outputscale/noise every k observations; None = never.
        calibration: a `KernelCalibration` (`deepalign.agents.calibration`: the kernel's
            temperature, outputscale and noise fitted to the observations on a schedule, as
            the batched engine does); None keeps the kernel and hyperparameters as given.
    """

    def _select(self, generator: Generator) -> int:
        self._update()
        mean, covariance = self.posterior.mean_and_covariance(self.arm_items)
        return argmax_random_tie(joint_sample(mean, covariance, generator), generator)


class GPUCBAgent(_GPAgent):
    """GP-UCB: pull the arm maximising `mu + sqrt(beta) * sd` of the posterior.

    Same score as BoTorch's `UpperConfidenceBound(model, beta)`; beta is fixed
    (`DEFAULT_BETA` = 2), not a schedule. Ties are broken at random.
    Other arguments as `GPThompsonAgent`.
    """

    def __init__(
        self,
        kernel: Kernel,
        arm_items: Tensor,
        n_items: int,
        hyperparameters: GPHyperparameters,
        refit_every: int | None = None,
        beta: float = DEFAULT_BETA,
        calibration: KernelCalibration | None = None,
    ) -> None:
        super().__init__(kernel, arm_items, n_items, hyperparameters, refit_every, calibration)
        self.beta = _check_beta(beta, "beta")

    def ucb(self) -> Tensor:
        """The UCB score of every arm (`n_arms`)."""
        self._update()
        mean, variance = self.posterior.mean_and_variance(self.arm_items)
        return mean + math.sqrt(self.beta) * variance.sqrt()

    def _select(self, generator: Generator) -> int:
        return argmax_random_tie(self.ucb(), generator)


GREEDY_TIE_TOLERANCE = 1e-9
"""GPGreedyAgent counts arms whose posterior means are within this much of the largest
(relative to `max(1, max |mean|)`) as tied. Equal means in exact arithmetic are not always
equal in floating point: under the constant kernel, BoTorch's means of the 127 spa-verb-act
arms differ by up to 4.4e-16 after six observations, which would otherwise pick the arm."""


class GPGreedyAgent(_GPAgent):
    """Greedy reference: pull the arm of largest posterior mean (no exploration bonus).

    The agent that could fake an effect by not exploring. Ties (means within
    `GREEDY_TIE_TOLERANCE` of the largest) are broken at random (`argmax_random_tie`, one
    random number per step), as the other BoTorch agents do; the batched engine's
    `GreedyPolicy` takes the lowest index instead. Under a constant kernel every arm has the
    same mean, so this agent then pulls uniformly at random, where the engine's keeps pulling
    the lowest arm. Arguments as `GPThompsonAgent`.
    """

    def mean(self) -> Tensor:
        """The posterior mean of every arm (`n_arms`)."""
        self._update()
        return self.posterior.mean_and_variance(self.arm_items)[0]

    def _select(self, generator: Generator) -> int:
        mean = self.mean()
        best = mean.max()
        tolerance = GREEDY_TIE_TOLERANCE * max(1.0, float(mean.abs().max()))
        return argmax_random_tie(torch.where(mean >= best - tolerance, best, mean), generator)


class SafeGPAgent(_GPAgent):
    """Safe exploration by the kernel's own uncertainty.

    Each step: the lower confidence bound `LCB = mu - sqrt(beta_safe) * sd` of every arm.
    The *safe set* is the arms with `LCB >= threshold`, i.e. whose posterior probability of
    not being bad is at least `Phi(sqrt(beta_safe))` (97.7 % for beta 4). If it is non-empty,
    the agent does Thompson sampling restricted to it (one joint posterior sample over all
    arms, argmax over the safe arms). If no arm is safe yet, `fallback` decides:

    * `"probability"` (default): the arm most likely to be good, `argmax (mu - threshold) /
      sd`, i.e. the arm closest to entering the safe set by the safe set's own criterion;
    * `"lcb"`: the arm with the highest LCB. Measured on spa-verb-act / ACT Evaluation this
      locks onto the first arm pulled when that arm is bad: a well-known bad arm (LCB near
      its value, e.g. -2) beats every untried arm (LCB = prior mean - 2 prior SDs, -4.3),
      so it is kept only to reproduce that rule.

    Ties are broken at random. In every branch the same random numbers are drawn, so runs
    stay aligned across seeds.

    Args:
        threshold: the bad-action threshold of the value (`env.threshold`).
        beta_safe: confidence parameter of the LCB (`DEFAULT_SAFE_BETA` = 4: two SDs).
        fallback: "probability" | "lcb", the rule while no arm is safe.
        Other arguments as `GPThompsonAgent`.
    """

    def __init__(
        self,
        kernel: Kernel,
        arm_items: Tensor,
        n_items: int,
        hyperparameters: GPHyperparameters,
        threshold: float,
        refit_every: int | None = None,
        beta_safe: float = DEFAULT_SAFE_BETA,
        fallback: str = "probability",
        calibration: KernelCalibration | None = None,
    ) -> None:
        super().__init__(kernel, arm_items, n_items, hyperparameters, refit_every, calibration)
        if isinstance(threshold, bool) or not math.isfinite(float(threshold)):
            raise ConfigError(f"'threshold' should be a finite number but got {threshold!r}")
        if fallback not in SAFE_FALLBACKS:
            raise ConfigError(f"'fallback' should be one of {SAFE_FALLBACKS} but got {fallback!r}")
        self.threshold = float(threshold)
        self.beta_safe = _check_beta(beta_safe, "beta_safe")
        self.fallback = fallback

    def lower_confidence_bound(self) -> Tensor:
        """`mu - sqrt(beta_safe) * sd` of every arm (`n_arms`)."""
        self._update()
        mean, variance = self.posterior.mean_and_variance(self.arm_items)
        return mean - math.sqrt(self.beta_safe) * variance.sqrt()

    def safe_arms(self) -> Tensor:
        """bool `n_arms`: arms whose LCB clears the threshold."""
        return self.lower_confidence_bound() >= self.threshold

    def _select(self, generator: Generator) -> int:
        self._update()
        mean, covariance = self.posterior.mean_and_covariance(self.arm_items)
        sd = covariance.diagonal().clamp_min(0).sqrt()
        lcb = mean - math.sqrt(self.beta_safe) * sd
        safe = lcb >= self.threshold
        sample = joint_sample(mean, covariance, generator)
        if bool(safe.any()):
            scores = torch.where(safe, sample, torch.full_like(sample, -math.inf))
        elif self.fallback == "lcb":
            scores = lcb
        else:
            scores = (mean - self.threshold) / sd.clamp_min(1e-12)
        return argmax_random_tie(scores, generator)
