"""Kernel-free baselines: independent-arm Thompson sampling (the paper's) and random."""

from __future__ import annotations

import torch
from torch import Generator, Tensor

from deepalign.agents.base import BanditAgent, argmax_random_tie
from deepalign.agents.hyperparameters import GPHyperparameters

__all__ = ["IndependentThompsonAgent", "RandomAgent"]


class IndependentThompsonAgent(BanditAgent):
    """Thompson sampling with an independent Gaussian posterior per arm (no kernel).

    Arm `a`'s rating has the prior `N(mean, outputscale)` and rewards have the known noise
    variance `noise_variance` (the same numbers the GP agents use, so the only difference is
    the kernel: here the identity). After `n_a` pulls with reward sum `s_a`:

        precision_a = 1 / outputscale + n_a / noise_variance
        mean_a      = (mean / outputscale + s_a / noise_variance) / precision_a

    Each step draws one sample per arm (`n_arms` standard normals) and pulls the argmax.
    It cannot generalize: the prediction of an item that is not an arm is the prior mean
    (an arm's prediction is its posterior mean).

    Args:
        arm_items: LongTensor `n_arms`; n_items: number of items.
        hyperparameters: prior mean, prior variance (`outputscale`), noise variance.
    """

    def __init__(self, arm_items: Tensor, n_items: int, hyperparameters: GPHyperparameters) -> None:
        super().__init__(arm_items, n_items)
        self.hyperparameters = hyperparameters

    def posterior(self) -> tuple[Tensor, Tensor]:
        """Posterior mean and variance of every arm (each float64 `n_arms`)."""
        hyper = self.hyperparameters
        counts = torch.zeros(self.n_arms, dtype=torch.float64)
        sums = torch.zeros(self.n_arms, dtype=torch.float64)
        if self._arms:
            arms = self.observed_arms
            counts.index_add_(0, arms, torch.ones(arms.numel(), dtype=torch.float64))
            sums.index_add_(0, arms, self.observed_rewards)
        precision = 1.0 / hyper.outputscale + counts / hyper.noise_variance
        mean = (hyper.mean / hyper.outputscale + sums / hyper.noise_variance) / precision
        return mean, 1.0 / precision

    def _select(self, generator: Generator) -> int:
        mean, variance = self.posterior()
        z = torch.randn(self.n_arms, generator=generator, dtype=torch.float64)
        return argmax_random_tie(mean + variance.sqrt() * z, generator)

    def _predict(self, items: Tensor) -> Tensor:
        prediction = torch.full((items.numel(),), self.hyperparameters.mean, dtype=torch.float64)
        mean, _ = self.posterior()
        arm_of_item = torch.full((self.n_items,), -1, dtype=torch.long)
        arm_of_item[self.arm_items] = torch.arange(self.n_arms)
        arms = arm_of_item[items]
        is_arm = arms >= 0
        prediction[is_arm] = mean[arms[is_arm]]
        return prediction


class RandomAgent(BanditAgent):
    """Pulls a uniformly random arm each step; predicts `prior_mean` for every item.

    Args:
        arm_items: LongTensor `n_arms`; n_items: number of items.
        prior_mean: its (constant) prediction, e.g. the scale's midpoint.
    """

    def __init__(self, arm_items: Tensor, n_items: int, prior_mean: float = 0.0) -> None:
        super().__init__(arm_items, n_items)
        self.prior_mean = float(prior_mean)

    def _select(self, generator: Generator) -> int:
        return int(torch.randint(self.n_arms, (), generator=generator))

    def _predict(self, items: Tensor) -> Tensor:
        return torch.full((items.numel(),), self.prior_mean, dtype=torch.float64)
