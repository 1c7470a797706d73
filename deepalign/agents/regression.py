"""The paper's kernel agents: kernel regression and support vector regression, epsilon-greedy."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from gpytorch.kernels import Kernel
from sklearn.svm import SVR
from torch import Generator, Tensor

from deepalign.agents.base import BanditAgent, argmax_random_tie
from deepalign.agents.posterior import item_inputs
from deepalign.errors import ConfigError

__all__ = [
    "DECAY_STEPS", "DEFAULT_EPSILON", "EPSILON_SCHEDULES", "KernelRegressionAgent", "SVRAgent",
    "kernel_matrix",
]

DEFAULT_EPSILON = 0.1
"""Exploration rate of the epsilon-greedy regression agents."""
EPSILON_SCHEDULES = ("constant", "decay")
"""How epsilon changes with the step t (observations so far): "constant" keeps `epsilon`;
"decay" is `min(1, epsilon * DECAY_STEPS / (t + 1))`, fully random at first, `epsilon` at
step `DECAY_STEPS - 1` and falling as 1/t after it (the GLIE schedule of Singh et al. 2000)."""
DECAY_STEPS = 10


def kernel_matrix(kernel: Kernel | Tensor, n_items: int) -> Tensor:
    """The full `n_items x n_items` float64 kernel matrix of a gpytorch kernel over item
    indices (evaluated once, without gradients), or a given matrix after checks."""
    if isinstance(kernel, Kernel):
        x = item_inputs(torch.arange(n_items))
        with torch.no_grad():
            matrix = kernel(x, x).to_dense().to(torch.float64)
    elif isinstance(kernel, Tensor):
        matrix = kernel.detach().to(torch.float64).cpu()
    else:
        raise ConfigError(
            f"'kernel' should be a gpytorch Kernel over item indices or an n_items x n_items "
            f"tensor but got {type(kernel).__name__}"
        )
    if matrix.shape != (n_items, n_items):
        raise ConfigError(
            f"the kernel matrix should be {n_items} x {n_items} (n_items x n_items) but is "
            f"{tuple(matrix.shape)}"
        )
    if not torch.isfinite(matrix).all():
        raise ConfigError("the kernel matrix contains NaN or inf; every entry must be finite")
    return matrix


class _EpsilonGreedyRegression(BanditAgent):
    """epsilon-greedy on a regression of the observed rewards.

    Each step: with probability `epsilon` (or, with `epsilon_schedule="decay"`, the decayed
    `epsilon_t` of `EPSILON_SCHEDULES`) a uniformly random arm, else the arm with the highest
    prediction (ties at random). Each step draws the same random numbers whichever branch is
    taken. Before the first observation every prediction is `prior_mean`.
    """

    def __init__(
        self,
        kernel: Kernel | Tensor,
        arm_items: Tensor,
        n_items: int,
        prior_mean: float,
        epsilon: float = DEFAULT_EPSILON,
        epsilon_schedule: str = "constant",
    ) -> None:
        super().__init__(arm_items, n_items)
        if isinstance(epsilon, bool) or not 0.0 <= float(epsilon) <= 1.0:
            raise ConfigError(f"'epsilon' should be a probability in [0, 1] but got {epsilon!r}")
        if epsilon_schedule not in EPSILON_SCHEDULES:
            raise ConfigError(f"'epsilon_schedule' should be one of {EPSILON_SCHEDULES} but got "
                              f"{epsilon_schedule!r}")
        if not math.isfinite(float(prior_mean)):
            raise ConfigError(f"'prior_mean' should be finite but got {prior_mean!r}")
        self.matrix = kernel_matrix(kernel, n_items)
        self.prior_mean = float(prior_mean)
        self.epsilon = float(epsilon)
        self.epsilon_schedule = epsilon_schedule

    def current_epsilon(self) -> float:
        """The exploration probability of the next step."""
        if self.epsilon_schedule == "constant":
            return self.epsilon
        return min(1.0, self.epsilon * DECAY_STEPS / (len(self._arms) + 1))

    def _select(self, generator: Generator) -> int:
        draw = float(torch.rand((), generator=generator, dtype=torch.float64))
        explore = draw < self.current_epsilon()
        random_arm = int(torch.randint(self.n_arms, (), generator=generator))
        greedy_arm = argmax_random_tie(self._predict(self.arm_items), generator)
        return random_arm if explore else greedy_arm


class KernelRegressionAgent(_EpsilonGreedyRegression):
    """Nadaraya-Watson kernel regression, epsilon-greedy.

    The prediction at item `i` is the kernel-weighted mean of the observed rewards,
    `sum_j w_ij y_j / sum_j w_ij` with `w_ij = max(k(i, x_j), 0)` over the observations
    `(x_j, y_j)` (negative similarities carry no weight); an item with zero weight to every
    observation (e.g. another block of a block-wise human matrix) gets `prior_mean`.

    Args:
        kernel: gpytorch `Kernel` over item indices, or an `n_items x n_items` matrix.
        arm_items: LongTensor `n_arms`; n_items: items the kernel covers.
        prior_mean: prediction without evidence (default: the scale's midpoint).
        epsilon: exploration probability (`DEFAULT_EPSILON` = 0.1); epsilon_schedule:
            "constant" or "decay" (`EPSILON_SCHEDULES`).
    """

    def _predict(self, items: Tensor) -> Tensor:
        if not self._arms:
            return torch.full((items.numel(),), self.prior_mean, dtype=torch.float64)
        weights = self.matrix[items][:, self.observed_items].clamp_min(0)  # m x n_obs
        total = weights.sum(dim=1)
        weighted = weights @ self.observed_rewards
        has_weight = total > 1e-12
        return torch.where(
            has_weight,
            weighted / torch.where(has_weight, total, torch.ones_like(total)),
            torch.full_like(total, self.prior_mean),
        )


class SVRAgent(_EpsilonGreedyRegression):
    """Support vector regression with a precomputed kernel, epsilon-greedy.

    scikit-learn `SVR(kernel="precomputed", C=C, epsilon=svr_epsilon)` fitted on all
    observations (repeated pulls are repeated samples), refitted after each new observation
    when a prediction is needed. The targets are centred on `prior_mean` before fitting.

    **C must fit the reward scale.** The dual coefficients are bounded by C, and with a
    unit-diagonal kernel an observation's coefficient is about its residual. With
    scikit-learn's C = 1 on a rating scale of width 8.6 (ACT's -4.3..4.3) every coefficient
    sat at +-1, the fit became "+1 near good observations, -1 near bad ones", and the greedy
    pick was the same observed arm whatever the kernel (Study 1's SVR curves were flat at
    every alignment level). So C defaults to `reward_range` (the value scale's width: no
    residual inside the scale reaches it) and the tube to 1 % of it.

    Args:
        reward_range: width `hi - lo` of the value's scale (default 1.0: unit-scale rewards).
        C: SVR regularisation (default `reward_range`); svr_epsilon: width of the SVR tube in
            rating units (default `0.01 * reward_range`). Other arguments as
            `KernelRegressionAgent`.
    """

    def __init__(
        self,
        kernel: Kernel | Tensor,
        arm_items: Tensor,
        n_items: int,
        prior_mean: float,
        epsilon: float = DEFAULT_EPSILON,
        reward_range: float = 1.0,
        C: float | None = None,
        svr_epsilon: float | None = None,
        epsilon_schedule: str = "constant",
    ) -> None:
        super().__init__(kernel, arm_items, n_items, prior_mean, epsilon, epsilon_schedule)
        if not (math.isfinite(float(reward_range)) and reward_range > 0):
            raise ConfigError(f"'reward_range' should be a positive number (the width of the "
                              f"value's scale) but got {reward_range!r}")
        C = float(reward_range) if C is None else C
        svr_epsilon = 0.01 * float(reward_range) if svr_epsilon is None else svr_epsilon
        if not (math.isfinite(float(C)) and C > 0):
            raise ConfigError(f"'C' should be a positive number but got {C!r}")
        if not (math.isfinite(float(svr_epsilon)) and svr_epsilon >= 0):
            raise ConfigError(f"'svr_epsilon' should be >= 0 but got {svr_epsilon!r}")
        self.C = float(C)
        self.svr_epsilon = float(svr_epsilon)
        self._fitted: tuple[int, SVR] | None = None

    def reset(self) -> None:
        super().reset()
        self._fitted = None

    def _model(self) -> SVR:
        n_obs = len(self._arms)
        if self._fitted is None or self._fitted[0] != n_obs:
            observed = self.observed_items
            gram = self.matrix[observed][:, observed].numpy()
            model = SVR(kernel="precomputed", C=self.C, epsilon=self.svr_epsilon)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(gram, self.observed_rewards.numpy() - self.prior_mean)
            self._fitted = (n_obs, model)
        return self._fitted[1]

    def _predict(self, items: Tensor) -> Tensor:
        if not self._arms:
            return torch.full((items.numel(),), self.prior_mean, dtype=torch.float64)
        cross = self.matrix[items][:, self.observed_items].numpy()
        prediction = self._model().predict(np.ascontiguousarray(cross)) + self.prior_mean
        return torch.as_tensor(prediction, dtype=torch.float64)
