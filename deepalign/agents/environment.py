"""The value bandit: a finite-arm bandit whose rewards are human value ratings plus noise."""

from __future__ import annotations

import copy
import math
import numbers

import torch
from torch import Generator, Tensor

from deepalign.agents.metrics import (
    generalization_metrics,
    personalization_metrics,
    safe_general_score,
)
from deepalign.data import Dataset, split_items
from deepalign.errors import ConfigError, DataError

__all__ = ["DEFAULT_NOISE_FRACTION", "ValueBandit"]

DEFAULT_NOISE_FRACTION = 0.1
"""Reward noise SD, as a fraction of the value scale's range, where raters' SD is unknown."""


class ValueBandit:
    """A finite-arm bandit over a dataset's items for one value column.

    The items are split into **personalization** items (the arms the agent may pull) and
    **held-out** items (the generalization phase: the agent predicts their values without
    ever trying them). Pulling arm `a` (the personalization item `arm_items[a]`) returns

        reward = true_value[item] + noise_sd[item] * z,    z ~ N(0, 1),

    where `true_value` is the mean human rating. The default `noise_sd` of an item is the
    raters' standard deviation of that rating where the data has one
    (`ValueRatings.spread`), else `DEFAULT_NOISE_FRACTION` (10 %) of the scale's range.
    A *bad action* is an arm whose true rating is strictly below the value's threshold.

    Args:
        dataset: a `deepalign.data.Dataset` with value ratings.
        value: the value column to learn (one of `dataset.values.names`).
        heldout: bool `n_items`, True for held-out items; default
            `split_items(dataset.items.ids, seed=split_seed)`.
        noise_sd: one reward noise SD for every item (overrides the default), > 0.
        split_seed: seed of the default item split.

    Attributes:
        true_values: float64 `n_items`, the true rating of every item.
        noise_sd: float64 `n_items`, the reward noise SD of every item.
        heldout: bool `n_items`.
        arm_items: LongTensor `n_arms`, the item index of each arm (personalization items in
            dataset order).
        heldout_items: LongTensor `n_heldout`, the held-out item indices (dataset order).
        arm_values: float64 `n_arms`; heldout_values: float64 `n_heldout`.
        threshold: float, bad-action threshold; scale: (lo, hi) of the value.
    """

    def __init__(
        self,
        dataset: Dataset,
        value: str,
        heldout: Tensor | None = None,
        noise_sd: float | None = None,
        split_seed: int = 0,
    ) -> None:
        ratings = getattr(dataset, "values", None)
        if ratings is None:
            raise DataError(
                f"dataset '{getattr(dataset, 'name', dataset)}' has no value ratings, so it "
                "cannot drive a value bandit; pick a dataset with values "
                "(deepalign.data.list_datasets())"
            )
        if value not in ratings.names:
            raise ConfigError(
                f"'value' should be one of {list(ratings.names)} for dataset "
                f"'{dataset.name}' but got {value!r}"
            )
        column = ratings.names.index(value)
        n_items = len(dataset.items)
        self.dataset_name: str = dataset.name
        self.value: str = value
        self.items = dataset.items
        self.scale: tuple[float, float] = (
            float(ratings.scales[column][0]),
            float(ratings.scales[column][1]),
        )
        self.threshold: float = float(ratings.thresholds[column])
        self.true_values: Tensor = torch.as_tensor(ratings.ratings, dtype=torch.float64)[
            :, column
        ].clone()
        self.noise_sd: Tensor = self._noise_sd(ratings, column, n_items, noise_sd)
        self.heldout: Tensor = self._heldout(dataset, heldout, split_seed, n_items)
        self.arm_items: Tensor = torch.nonzero(~self.heldout).flatten()
        self.heldout_items: Tensor = torch.nonzero(self.heldout).flatten()
        self.arm_values: Tensor = self.true_values[self.arm_items]
        self.heldout_values: Tensor = self.true_values[self.heldout_items]

    def _noise_sd(self, ratings, column: int, n_items: int, noise_sd: float | None) -> Tensor:
        if noise_sd is not None:
            if isinstance(noise_sd, bool) or not math.isfinite(float(noise_sd)) or noise_sd <= 0:
                raise ConfigError(
                    f"'noise_sd' should be a positive finite number (reward noise SD in rating "
                    f"units) or None for the default but got {noise_sd!r}"
                )
            return torch.full((n_items,), float(noise_sd), dtype=torch.float64)
        lo, hi = self.scale
        fallback = torch.full((n_items,), DEFAULT_NOISE_FRACTION * (hi - lo), dtype=torch.float64)
        spread = getattr(ratings, "spread", None)
        if spread is None:
            return fallback
        rater_sd = torch.as_tensor(spread, dtype=torch.float64)[:, column]
        known = torch.isfinite(rater_sd) & (rater_sd > 0)
        return torch.where(known, rater_sd, fallback)

    @staticmethod
    def _heldout(dataset, heldout: Tensor | None, split_seed: int, n_items: int) -> Tensor:
        if heldout is None:
            heldout = split_items(dataset.items.ids, seed=split_seed)
        if not isinstance(heldout, Tensor) or heldout.dtype != torch.bool:
            raise ConfigError(
                f"'heldout' should be a bool tensor of length n_items={n_items} (True = "
                f"held-out item) but got {type(heldout).__name__}"
                + (f" of dtype {heldout.dtype}" if isinstance(heldout, Tensor) else "")
            )
        if heldout.shape != (n_items,):
            raise ConfigError(
                f"'heldout' should have shape ({n_items},), one flag per item of dataset "
                f"'{dataset.name}', but got {tuple(heldout.shape)}"
            )
        if bool(heldout.all()):
            raise ConfigError(
                "'heldout' marks every item as held out, leaving no arm to pull; keep at "
                "least one personalization item"
            )
        return heldout.clone().cpu()

    def with_true_values(self, true_values: Tensor) -> ValueBandit:
        """A copy of this bandit (same items, split, noise, scale and threshold) whose true
        values are `true_values` (float64 `n_items`, finite): e.g. values drawn from a GP
        (`deepalign.studies.environments`)."""
        values = torch.as_tensor(true_values, dtype=torch.float64).detach().cpu()
        if values.shape != (self.n_items,) or not bool(torch.isfinite(values).all()):
            raise ConfigError(
                f"'true_values' should be {self.n_items} finite numbers, one per item of "
                f"dataset '{self.dataset_name}', but got shape {tuple(values.shape)}"
            )
        other = copy.copy(self)
        other.true_values = values.clone()
        other.arm_values = other.true_values[self.arm_items]
        other.heldout_values = other.true_values[self.heldout_items]
        return other

    @property
    def n_items(self) -> int:
        return self.true_values.numel()

    @property
    def n_arms(self) -> int:
        return self.arm_items.numel()

    @property
    def n_heldout(self) -> int:
        return self.heldout_items.numel()

    @property
    def arm_noise_sd(self) -> Tensor:
        """float64 `n_arms`: the reward noise SD of each arm."""
        return self.noise_sd[self.arm_items]

    @property
    def best_arm_value(self) -> float:
        return float(self.arm_values.max())

    def noise_draws(self, horizon: int, generator: Generator) -> Tensor:
        """Standard-normal draws `z` (float64 `T`) of one run, one per step.

        The reward of step `t` is `reward(arm_t, z[t])`; drawing all of a run's noise up
        front gives every agent the same noise for the same seed (common random numbers).
        """
        return torch.randn(horizon, generator=generator, dtype=torch.float64)

    def reward(self, arm: int, z: float) -> float:
        """The reward of pulling `arm` with the standard-normal draw `z`."""
        self._check_arm(arm)
        arm = int(arm)
        return float(self.arm_values[arm] + self.arm_noise_sd[arm] * z)

    def pull(self, arm: int, generator: Generator) -> float:
        """Pull `arm` once, drawing its noise from `generator`."""
        z = float(torch.randn(1, generator=generator, dtype=torch.float64))
        return self.reward(arm, z)

    def is_bad(self, arm: int) -> bool:
        self._check_arm(arm)
        return bool(self.arm_values[arm] < self.threshold)

    def personalization_metrics(
        self, arms: Tensor, greedy_arms: Tensor | None = None
    ) -> dict[str, Tensor]:
        """`personalization_metrics` of pulled arms (`n_runs x T`) on this bandit (and of
        the agent's best guesses `greedy_arms`, `n_runs x T`, when given)."""
        return personalization_metrics(arms, self.arm_values, self.threshold, greedy_arms)

    def generalization_metrics(self, predicted: Tensor, top_k: int = 5) -> dict[str, Tensor]:
        """`generalization_metrics` of predictions (`n_runs x n_heldout`) on this bandit."""
        if self.n_heldout == 0:
            raise ConfigError(
                "this bandit has no held-out items, so there is no generalization phase; "
                "pass a 'heldout' mask with at least one True"
            )
        return generalization_metrics(predicted, self.heldout_values, self.threshold, top_k)

    def score(
        self,
        arms: Tensor,
        predictions: Tensor | None,
        greedy_arms: Tensor | None = None,
        top_k: int = 5,
    ) -> dict[str, Tensor]:
        """Every metric of runs on this bandit, one float64 tensor `n_runs` each: the
        personalization metrics of `arms` (and `greedy_arms`), and, with held-out items, the
        generalization metrics of `predictions` (`n_runs x n_heldout`) and the primary
        `safe_general_score` (`deepalign.agents.metrics`; top-k capped at `n_heldout`)."""
        metrics = dict(self.personalization_metrics(arms, greedy_arms))
        if self.n_heldout == 0 or predictions is None:
            return metrics
        metrics.update(self.generalization_metrics(predictions, top_k))
        k = min(top_k, self.n_heldout)
        primary = safe_general_score(
            metrics["bad_actions"], arms.shape[1], metrics[f"bad_in_top{top_k}"], k
        )
        return {"safe_general_score": primary, **metrics}  # the primary score first

    def _check_arm(self, arm: int) -> None:
        if (
            isinstance(arm, bool)
            or not isinstance(arm, numbers.Integral)
            or not 0 <= int(arm) < self.n_arms
        ):
            raise ConfigError(
                f"'arm' should be an int in [0, {self.n_arms - 1}] (an index among the "
                f"personalization arms) but got {arm!r}"
            )

    def __repr__(self) -> str:
        return (
            f"ValueBandit(dataset={self.dataset_name!r}, value={self.value!r}, "
            f"n_arms={self.n_arms}, n_heldout={self.n_heldout}, threshold={self.threshold})"
        )
