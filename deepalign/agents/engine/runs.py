"""Seeded runs of a GP agent on a `ValueBandit`, played by the batched engine.

The same agents as the BoTorch ones in `deepalign.agents.gp` ("gp-ts", "gp-ucb", "safe-gp",
"greedy"), the same GP posterior (tested against `SingleTaskGP` to 1e-6), the same
calibration (`deepalign.agents.calibration`), for many seeds at once: the CLI
(`python -m deepalign.bandit`, default `--backend engine`) and the studies both use it.

Shapes: `n_runs` runs, `T` horizon, `n_items` items (arms + held out), `n_heldout`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from deepalign.agents.engine.core import GPBanditEngine
from deepalign.agents.engine.policies import GreedyPolicy, SafePolicy, ThompsonPolicy, UCBPolicy
from deepalign.agents.environment import ValueBandit
from deepalign.agents.hyperparameters import GPHyperparameters
from deepalign.agents.registry import AgentOptions
from deepalign.agents.runs import BanditResults
from deepalign.errors import ConfigError

__all__ = ["ENGINE_AGENTS", "engine_policy", "run_engine_seeds"]

ENGINE_AGENTS = ("gp-ts", "gp-ucb", "safe-gp", "greedy")
"""The agents the batched engine plays (the others run one seed at a time); the same tuple as
`deepalign.studies.config.ENGINE_AGENTS`, which recipe validation reads without importing torch
(a test keeps the two equal)."""


def engine_policy(agent: str, env: ValueBandit, options: AgentOptions):
    """The engine policy of `agent` (a name in `ENGINE_AGENTS`) with `options`' settings."""
    if agent == "gp-ts":
        return ThompsonPolicy()
    if agent == "gp-ucb":
        return UCBPolicy(beta=options.beta)
    if agent == "greedy":
        return GreedyPolicy()
    if agent == "safe-gp":
        return SafePolicy(threshold=env.threshold, beta_safe=options.beta_safe,
                          fallback=options.safe_fallback)
    raise ConfigError(f"'agent' should be one of {ENGINE_AGENTS} but got {agent!r}")


def run_engine_seeds(
    env: ValueBandit,
    matrix: Tensor,
    agent: str,
    horizon: int,
    seeds: Sequence[int],
    options: AgentOptions | None = None,
    device: str = "cpu",
    memory_budget_bytes: int = 2**30,
    true_values: Tensor | None = None,
) -> tuple[BanditResults, Tensor | None]:
    """Play `agent` on `env` for each seed with the kernel `matrix`.

    Args:
        env: the bandit; matrix: unit-diagonal kernel over its items, `n_items x n_items`
            (every run) or `n_runs x n_items x n_items` (one per run).
        agent: one of `ENGINE_AGENTS`; horizon: `T`; seeds: one int per run.
        options: `AgentOptions` (beta, beta_safe, safe_fallback, prior_sd_fraction and
            `calibration`; `refit_every` is not supported here); default `AgentOptions()`.
        device, memory_budget_bytes: as `GPBanditEngine`.
        true_values: `n_runs x n_items`, one environment per run (e.g. GP draws; each row as
            `env.with_true_values` would hold it); default `env.true_values` for every run.

    Returns:
        (`BanditResults` with arms and best guesses as arm indices, held-out predictions =
        the final posterior mean; the runs' `n_runs x 4` calibration or None).
    """
    options = AgentOptions() if options is None else options
    if options.refit_every is not None:
        raise ConfigError(
            "the batched engine does not refit by BoTorch every k steps; use --backend botorch "
            "for --refit-every, or calibration"
        )
    policy = engine_policy(agent, env, options)
    hyper = GPHyperparameters.from_bandit(env, options.prior_sd_fraction)
    engine = GPBanditEngine(
        hyper.outputscale * matrix,
        mean=hyper.mean,
        noise_variance=hyper.noise_variance,
        memory_budget_bytes=memory_budget_bytes,
        calibration=options.calibration,
        device=device,
    )
    values = env.true_values if true_values is None else true_values
    trajectory = engine.simulate(
        policy, values, env.noise_sd, horizon, list(seeds), available=~env.heldout,
        record_greedy=True,
    )
    position = torch.full((env.n_items,), -1, dtype=torch.long)
    position[env.arm_items] = torch.arange(env.n_arms)
    results = BanditResults(
        arms=position[trajectory.arms.cpu()],
        rewards=trajectory.rewards.cpu(),
        predictions=trajectory.posterior_mean.cpu()[:, env.heldout_items],
        seeds=tuple(seeds),
        greedy_arms=position[trajectory.greedy_arms.cpu()],
    )
    calibration = None if trajectory.calibration is None else trajectory.calibration.cpu()
    return results, calibration
