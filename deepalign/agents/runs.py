"""Many seeded runs of one agent, their metrics, and mean / standard-error summaries."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from deepalign.agents.base import AgentFactory, BanditAgent, run_bandit
from deepalign.errors import ConfigError

__all__ = ["BanditResults", "run_seeds", "summarize"]


@dataclass(frozen=True)
class BanditResults:
    """The runs of one agent on one bandit, stacked over seeds.

    Attributes:
        arms: LongTensor `n_runs x T`; rewards: float64 `n_runs x T`;
        predictions: float64 `n_runs x n_heldout` (generalization phase);
        seeds: the seed of each run.
        greedy_arms: LongTensor `n_runs x T`, the agents' best guesses after each step
            (`run_seeds(..., record_greedy=True)`), else None.
    """

    arms: Tensor
    rewards: Tensor
    predictions: Tensor
    seeds: tuple[int, ...]
    greedy_arms: Tensor | None = None

    def metrics(self, env, top_k: int = 5) -> dict[str, Tensor]:
        """Every metric (`ValueBandit.score`): personalization metrics, then with held-out
        items the generalization metrics and the primary `safe_general_score`; each a
        float64 tensor `n_runs` (see `deepalign.agents.metrics`)."""
        return env.score(self.arms, self.predictions, self.greedy_arms, top_k)


def run_seeds(
    env,
    agent: BanditAgent | AgentFactory,
    horizon: int,
    seeds: Sequence[int],
    progress: Callable[[int], None] | None = None,
    record_greedy: bool = False,
) -> BanditResults:
    """`run_bandit` for each seed (a fresh agent from the factory, or the same agent reset).

    Args:
        env: a `ValueBandit`; agent: a `BanditAgent` or a factory `env -> BanditAgent`;
        horizon: steps per run `T`; seeds: one int per run;
        progress: called with the number of finished runs after each run.
        record_greedy: record the agents' best guesses (adds `greedy_convergence`,
            `final_guess_value` and `simple_regret` to the metrics).
    """
    seeds = tuple(seeds)
    if not seeds:
        raise ConfigError("'seeds' should hold at least one seed but is empty")
    trajectories = []
    for done, seed in enumerate(seeds, start=1):
        trajectories.append(run_bandit(env, agent, horizon, seed, record_greedy))
        if progress is not None:
            progress(done)
    return BanditResults(
        arms=torch.stack([t.arms for t in trajectories]),
        rewards=torch.stack([t.rewards for t in trajectories]),
        predictions=torch.stack([t.predictions for t in trajectories]),
        seeds=seeds,
        greedy_arms=torch.stack([t.greedy_arms for t in trajectories]) if record_greedy else None,
    )


def summarize(metrics: dict[str, Tensor]) -> dict[str, dict[str, float | None]]:
    """Mean and standard error of the mean of each metric over runs.

    `sem` is `std(ddof=1) / sqrt(n_runs)`, and None for a single run (undefined).

    Args:
        metrics: name -> float tensor `n_runs`.
    """
    summary: dict[str, dict[str, float | None]] = {}
    for name, values in metrics.items():
        values = values.to(torch.float64).flatten()
        n_runs = values.numel()
        sem = float(values.std(unbiased=True) / math.sqrt(n_runs)) if n_runs > 1 else None
        summary[name] = {"mean": float(values.mean()), "sem": sem}
    return summary
