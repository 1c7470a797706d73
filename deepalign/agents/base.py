"""The agent interface (`select` / `observe` / `predict`) and the loop that runs one bandit."""

from __future__ import annotations

import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Generator, Tensor

from deepalign.errors import ConfigError, DeepAlignError

__all__ = ["BanditAgent", "RunTrajectory", "argmax_random_tie", "run_bandit", "seed_generators"]


def argmax_random_tie(scores: Tensor, generator: Generator) -> int:
    """Index of the largest of `scores` (`n`), ties broken uniformly with `generator`.

    Always draws exactly one random number, so a run's random stream does not depend on
    whether a tie happened.
    """
    best = scores.max()
    candidates = torch.nonzero(scores == best).flatten()
    u = torch.rand((), generator=generator, dtype=torch.float64)
    return int(candidates[min(int(u * candidates.numel()), candidates.numel() - 1)])


def _as_index(value, name: str, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not (
        0 <= int(value) < upper
    ):
        raise ConfigError(f"'{name}' should be an int in [0, {upper - 1}] but got {value!r}")
    return int(value)


class BanditAgent(ABC):
    """An agent of the value bandit.

    Arms are indices `0..n_arms-1` into `arm_items`, the item index of each arm; the agent's
    kernel (where it has one) is over ALL `n_items` items, so it can predict held-out items
    through their covariance with the arms it tried.

    The public methods validate and keep the observation history; subclasses implement two
    hooks, `_select(generator) -> int` and `_predict(items) -> Tensor`.

    Args:
        arm_items: LongTensor `n_arms`, the item index of each arm.
        n_items: number of items the agent can be asked to predict.
    """

    def __init__(self, arm_items: Tensor, n_items: int) -> None:
        if not isinstance(arm_items, Tensor) or arm_items.dim() != 1 or arm_items.numel() == 0:
            raise ConfigError(
                "'arm_items' should be a non-empty 1-d LongTensor (the item index of each "
                f"arm) but got {type(arm_items).__name__}"
            )
        if arm_items.min() < 0 or arm_items.max() >= n_items:
            raise ConfigError(
                f"'arm_items' should index items in [0, {n_items - 1}] but holds "
                f"[{int(arm_items.min())}, {int(arm_items.max())}]"
            )
        self.arm_items: Tensor = arm_items.long().cpu()
        self.n_items: int = int(n_items)
        self._arms: list[int] = []
        self._rewards: list[float] = []

    @property
    def n_arms(self) -> int:
        return self.arm_items.numel()

    @property
    def observed_arms(self) -> Tensor:
        """LongTensor `n_obs`: the arms observed so far, in order."""
        return torch.tensor(self._arms, dtype=torch.long)

    @property
    def observed_items(self) -> Tensor:
        """LongTensor `n_obs`: the item index of each observed arm."""
        return self.arm_items[self.observed_arms]

    @property
    def observed_rewards(self) -> Tensor:
        """float64 `n_obs`: the rewards observed so far, in order."""
        return torch.tensor(self._rewards, dtype=torch.float64)

    def reset(self) -> None:
        """Forget every observation (a fresh run)."""
        self._arms = []
        self._rewards = []

    def select(self, generator: Generator) -> int:
        """The arm to pull next (an index among the `n_arms` arms), drawing from `generator`."""
        if not isinstance(generator, Generator):
            raise ConfigError(
                f"'generator' should be a torch.Generator but got {type(generator).__name__}; "
                "seed one with torch.Generator().manual_seed(seed)"
            )
        arm = self._select(generator)
        if isinstance(arm, bool) or not isinstance(arm, numbers.Integral):
            raise DeepAlignError(f"{type(self).__name__}._select returned {arm!r}, not an int")
        if not 0 <= int(arm) < self.n_arms:
            raise DeepAlignError(
                f"{type(self).__name__}._select returned arm {arm}, outside [0, {self.n_arms - 1}]"
            )
        return int(arm)

    def observe(self, arm: int, reward: float) -> None:
        """Record that pulling `arm` returned `reward`."""
        arm = _as_index(arm, "arm", self.n_arms)
        reward = float(reward)
        if not torch.isfinite(torch.tensor(reward)):
            raise ConfigError(f"'reward' should be finite but got {reward!r}")
        self._arms.append(arm)
        self._rewards.append(reward)

    def predict(self, items: Tensor) -> Tensor:
        """Predicted values (float64 `m`) of items (LongTensor `m` of item indices)."""
        if not isinstance(items, Tensor) or items.dim() != 1:
            raise ConfigError(
                f"'items' should be a 1-d LongTensor of item indices but got "
                f"{type(items).__name__}"
            )
        if items.numel() and (items.min() < 0 or items.max() >= self.n_items):
            raise ConfigError(
                f"'items' should index items in [0, {self.n_items - 1}] but holds "
                f"[{int(items.min())}, {int(items.max())}]"
            )
        return self._predict(items.long().cpu()).to(torch.float64).detach()

    @abstractmethod
    def _select(self, generator: Generator) -> int:
        """Choose an arm given the observations so far."""

    @abstractmethod
    def _predict(self, items: Tensor) -> Tensor:
        """Predict the values of `items` (LongTensor `m`) -> float64 `m`."""


@dataclass(frozen=True)
class RunTrajectory:
    """One bandit run.

    Attributes:
        arms: LongTensor `T`, the arm pulled at each step.
        rewards: float64 `T`, the noisy reward observed at each step.
        predictions: float64 `n_heldout`, the agent's predictions of the held-out items after
            the last step (the generalization phase).
        seed: the run's seed.
        greedy_arms: LongTensor `T`, the arm the agent predicted best after each step's
            observation (`run_bandit(..., record_greedy=True)`), else None.
    """

    arms: Tensor
    rewards: Tensor
    predictions: Tensor
    seed: int
    greedy_arms: Tensor | None = None


def seed_generators(seed: int) -> tuple[Generator, Generator]:
    """The two generators of run `seed`: (environment noise, agent).

    The environment's generator is seeded with `2 * seed` and the agent's with
    `2 * seed + 1`, so the two streams never collide across seeds and every agent meets
    the same reward noise for the same seed.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ConfigError(f"'seed' should be a non-negative int but got {seed!r}")
    return (
        torch.Generator().manual_seed(2 * int(seed)),
        torch.Generator().manual_seed(2 * int(seed) + 1),
    )


AgentFactory = Callable[[object], BanditAgent]
"""A callable `ValueBandit -> BanditAgent` that builds a fresh agent for one run."""


def run_bandit(
    env, agent: BanditAgent | AgentFactory, horizon: int, seed: int, record_greedy: bool = False
) -> RunTrajectory:
    """Run one agent on a `ValueBandit` for `horizon` steps, then its generalization phase.

    Args:
        env: a `ValueBandit`.
        agent: a `BanditAgent` (reset first) or a factory `env -> BanditAgent`.
        horizon: number of pulls `T` >= 1.
        seed: run seed; same seed, same trajectory (see `seed_generators`).
        record_greedy: also record the agent's best guess after each step (one `predict`
            over the arms per step; the lowest index wins ties).

    Returns:
        A `RunTrajectory`: arms and rewards (`T`) and held-out predictions (`n_heldout`).
    """
    if isinstance(horizon, bool) or not isinstance(horizon, numbers.Integral) or horizon < 1:
        raise ConfigError(f"'horizon' should be a positive int but got {horizon!r}")
    env_generator, agent_generator = seed_generators(seed)
    if not isinstance(agent, BanditAgent):
        if not callable(agent):
            raise ConfigError(
                f"'agent' should be a BanditAgent or a callable env -> BanditAgent but got "
                f"{type(agent).__name__}"
            )
        agent = agent(env)
        if not isinstance(agent, BanditAgent):
            raise ConfigError(
                f"the agent factory returned {type(agent).__name__}, not a BanditAgent"
            )
    if agent.n_arms != env.n_arms or not torch.equal(agent.arm_items, env.arm_items):
        raise ConfigError(
            f"the agent's arms ({agent.n_arms}) are not the bandit's arms ({env.n_arms}); "
            "build the agent with arm_items=env.arm_items"
        )
    agent.reset()
    z = env.noise_draws(int(horizon), env_generator)
    arms = torch.empty(int(horizon), dtype=torch.long)
    rewards = torch.empty(int(horizon), dtype=torch.float64)
    greedy = torch.empty(int(horizon), dtype=torch.long) if record_greedy else None
    for t in range(int(horizon)):
        arm = agent.select(agent_generator)
        reward = env.reward(arm, float(z[t]))
        agent.observe(arm, reward)
        arms[t] = arm
        rewards[t] = reward
        if greedy is not None:
            greedy[t] = agent.predict(env.arm_items).argmax()
    predictions = agent.predict(env.heldout_items)
    return RunTrajectory(
        arms=arms, rewards=rewards, predictions=predictions, seed=int(seed), greedy_arms=greedy
    )
