"""Run the cells of a grid: batched engine where the agent allows, BoTorch/sklearn otherwise.

A *plan* (one per study, see `deepalign.studies.plans`) says, for a batch of cells that
share everything but the seed, which bandit they play (`plan.bandit(cell)`) and which
kernels the runs use with their measured alignment (`plan.kernels(cells)`). `simulate_batch`
plays one batch and returns one results row per cell; `run_grid` plays every cell not yet in
the `ResultsStore`, writing each finished batch atomically, with a tqdm progress bar.

Agents and their path:

* "gp-ts", "gp-ucb", "safe-gp", "greedy": `deepalign.agents.engine.GPBanditEngine` (exact
  GP posterior over every item, personalization items `available`, held-out predictions =
  the final posterior mean), policies `ThompsonPolicy`, `UCBPolicy(beta)`,
  `SafePolicy(threshold, beta_safe)`, `GreedyPolicy` with the agents' default
  `AgentOptions`;
* "kernel-regression", "svr" (and their "-decay" variants, epsilon decaying as 1/t),
  "independent-ts", "random": the agents of `deepalign.agents`
  run one seed at a time by `run_bandit`.

GP hyperparameters start from `GPHyperparameters.from_bandit(env)`: constant mean at the
scale's midpoint, outputscale `(0.25 * range)^2` times the unit-diagonal kernel, noise
variance the environment's mean reward-noise variance. With the plan's `calibration` (the
default) each run then fits a temperature and outputscale to its own rewards
(`deepalign.agents.calibration`), and kernel regression / SVR use the kernel on its median
distance scale; with calibration off everything stays fixed (the paper's protocol).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from deepalign.agents import (
    AgentOptions,
    GPHyperparameters,
    IndependentThompsonAgent,
    KernelRegressionAgent,
    RandomAgent,
    SVRAgent,
    ValueBandit,
    run_bandit,
)
from deepalign.agents.calibration import (
    DEFAULT_CALIBRATION,
    KernelCalibration,
    median_heuristic_kernel,
)
from deepalign.agents.engine.runs import run_engine_seeds
from deepalign.errors import ConfigError
from deepalign.kernels import kernel_spectrum
from deepalign.studies.config import ENGINE_AGENTS
from deepalign.studies.grid import Cell, batches
from deepalign.studies.results import METRICS, ResultsStore

__all__ = [
    "DEFAULT_MEMORY_BUDGET", "GridRun", "KernelBatch", "StudyPlan", "evaluate_kernel", "run_grid",
    "simulate_batch",
]

KERNEL_AGENTS = (
    "gp-ts", "gp-ucb", "safe-gp", "greedy", "kernel-regression", "svr",
    "kernel-regression-decay", "svr-decay",
)
#: Default memory budget of one batch's engine state (bytes): 1 GiB, as `GPBanditEngine`'s.
DEFAULT_MEMORY_BUDGET = 2**30


@dataclass(frozen=True)
class KernelBatch:
    """The kernels of the runs of one batch.

    Attributes:
        matrix: unit-diagonal kernel over all items, `n_items x n_items` (every run) or
            `n_runs x n_items x n_items` (one per run); None for kernel-free agents.
        alignment: "train" / "heldout" / "cross" / "all" -> float64 `n_runs`.
        source: what the alignment was measured against (e.g. "spa-verb-act human").
    """

    matrix: Tensor | None
    alignment: Mapping[str, Tensor]
    source: str


class StudyPlan(Protocol):
    """What `run_grid` needs from a study: its bandits and its kernels, and whether its
    kernels are calibrated (`calibration`: a `KernelCalibration`, or None for off)."""

    calibration: KernelCalibration | None

    def bandit(self, cell: Cell) -> ValueBandit:
        """The bandit of `cell` (cached by the plan: cells of a batch share it)."""

    def kernels(self, cells: Sequence[Cell]) -> KernelBatch:
        """The kernels of `cells` (one group, differing only in seed)."""

    def horizon(self, cell: Cell) -> int:
        """Steps T of the runs of `cell`."""


def evaluate_kernel(
    env: ValueBandit,
    matrix: Tensor,
    agent: str = "gp-ts",
    horizon: int = 50,
    seeds: Sequence[int] = tuple(range(16)),
    device: str = "cpu",
    calibration: KernelCalibration | None = DEFAULT_CALIBRATION,
) -> dict[str, Tensor]:
    """Play `len(seeds)` runs of an engine agent (one of `ENGINE_AGENTS`) on `env` with the
    kernel `matrix` (`n_items x n_items`, unit diagonal, or one per run
    `n_runs x n_items x n_items`), calibrated unless `calibration` is None, and return every
    metric, each a float64 tensor `n_runs`."""
    if agent not in ENGINE_AGENTS:
        raise ConfigError(f"'agent' should be one of {ENGINE_AGENTS} but got {agent!r}")
    hyper = GPHyperparameters.from_bandit(env)
    arms, predictions, greedy, _ = _engine_runs(
        agent, env, hyper, matrix, horizon, list(seeds), device, calibration=calibration
    )
    return _score(env, arms, predictions, greedy)


def _score(
    env: ValueBandit | Sequence[ValueBandit], arms: Tensor, predictions: Tensor, greedy: Tensor
) -> dict[str, Tensor]:
    """Every metric of the runs: on one bandit, or run `i` on bandit `env[i]`."""
    if isinstance(env, ValueBandit):
        return env.score(arms, predictions, greedy)
    scores = [e.score(arms[i : i + 1], predictions[i : i + 1], greedy[i : i + 1])
              for i, e in enumerate(env)]
    return {name: torch.cat([s[name] for s in scores]) for name in scores[0]}


def _engine_runs(agent, env, hyper, matrix, horizon, seeds, device,
                 memory_budget_bytes=DEFAULT_MEMORY_BUDGET, calibration=None, true_values=None):
    """(arms, held-out predictions, best guesses, `n_runs x 4` calibration or None) of
    `run_engine_seeds` with the agents' default options (same beta and beta_safe as the
    BoTorch agents); `true_values` (`n_runs x n_items`) gives each run its environment."""
    options = AgentOptions(calibration=calibration)
    results, calibrated = run_engine_seeds(
        env, matrix, agent, horizon, seeds, options, device, memory_budget_bytes, true_values
    )
    return results.arms, results.predictions, results.greedy_arms, calibrated


def _agent_factory(agent: str, env: ValueBandit, hyper: GPHyperparameters, matrix: Tensor | None,
                   calibration: KernelCalibration | None = None):
    if matrix is not None and calibration is not None:
        matrix = median_heuristic_kernel(matrix, env.arm_items)  # nothing to fit a temperature by

    schedule = "decay" if agent.endswith("-decay") else "constant"

    def build(_env):
        if agent in ("kernel-regression", "kernel-regression-decay"):
            return KernelRegressionAgent(matrix, env.arm_items, env.n_items, hyper.mean,
                                         epsilon_schedule=schedule)
        if agent in ("svr", "svr-decay"):
            return SVRAgent(matrix, env.arm_items, env.n_items, hyper.mean,
                            reward_range=env.scale[1] - env.scale[0], epsilon_schedule=schedule)
        if agent == "independent-ts":
            return IndependentThompsonAgent(env.arm_items, env.n_items, hyper)
        if agent == "random":
            return RandomAgent(env.arm_items, env.n_items, hyper.mean)
        raise ConfigError(f"agent {agent!r} has no sequential implementation in the runner")

    return build


def _sequential_runs(agent, envs, hyper, matrix, horizon, seeds, progress, calibration=None):
    """Run `i` plays `agent` on `envs[i]` with seed `seeds[i]`."""
    arms, predictions, greedy = [], [], []
    for i, (env, seed) in enumerate(zip(envs, seeds)):
        run_matrix = None if matrix is None else (matrix[i] if matrix.dim() == 3 else matrix)
        factory = _agent_factory(agent, env, hyper, run_matrix, calibration)
        trajectory = run_bandit(env, factory, horizon, seed, record_greedy=True)
        arms.append(trajectory.arms)
        predictions.append(trajectory.predictions)
        greedy.append(trajectory.greedy_arms)
        if progress is not None:
            progress(1)
    return torch.stack(arms), torch.stack(predictions), torch.stack(greedy)


def simulate_batch(
    plan: StudyPlan,
    cells: Sequence[Cell],
    device: str = "cpu",
    progress: Callable[[int], None] | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
) -> list[dict[str, object]]:
    """Play the runs of `cells` (one group) and return one results row per cell.

    Engine agents simulate the runs in chunks of at most
    `memory_budget_bytes // GPBanditEngine.bytes_per_run(T)` runs (at least one); the rows do
    not depend on the chunking (each run has its own seeded generator). When the plan gives
    the runs different bandits (same items, split and noise; other true values, as Study 1's
    gp-sample environment), each run plays and is scored on its own."""
    first = cells[0]
    envs = [plan.bandit(cell) for cell in cells]
    env = envs[0]
    shared = all(e is env for e in envs)
    kernels = plan.kernels(cells)
    horizon = plan.horizon(first)
    seeds = [cell.seed for cell in cells]
    hyper = GPHyperparameters.from_bandit(env)
    needs_kernel = first.agent in KERNEL_AGENTS
    if needs_kernel and kernels.matrix is None:
        raise ConfigError(f"agent {first.agent!r} needs a kernel but cell {first.cell_id} has none")
    calibration = plan.calibration
    calibrated = None
    if first.agent in ENGINE_AGENTS:
        true_values = None if shared else torch.stack([e.true_values for e in envs])
        arms, predictions, greedy, calibrated = _engine_runs(
            first.agent, env, hyper, kernels.matrix, horizon, seeds, device, memory_budget_bytes,
            calibration, true_values,
        )
        backend = "engine"
        if progress is not None:
            progress(len(cells))
    else:
        matrix = kernels.matrix if needs_kernel else None
        arms, predictions, greedy = _sequential_runs(
            first.agent, envs, hyper, matrix, horizon, seeds, progress, calibration
        )
        backend = "sequential"
    metrics = _score(env if shared else envs, arms, predictions, greedy)
    rank, top_share = _spectrum(kernels.matrix if needs_kernel else None, len(cells))
    rows = []
    for i, cell in enumerate(cells):
        row: dict[str, object] = {
            "cell_id": cell.cell_id, "study": cell.study, "condition": cell.condition,
            "dataset": cell.dataset, "value": cell.value, "kernel": cell.kernel,
            "agent": cell.agent, "seed": cell.seed, "level": cell.level,
            "encoder_seed": cell.encoder_seed, "epoch": cell.epoch, "horizon": horizon,
            "n_arms": env.n_arms, "n_heldout": env.n_heldout, "backend": backend,
            "calibration": "off" if calibration is None else "on",
            "alignment_source": kernels.source,
            "kernel_effective_rank": float(rank[i]), "kernel_top_share": float(top_share[i]),
            "calibration_temperature": math.nan if calibrated is None else float(calibrated[i, 0]),
            "calibration_outputscale": math.nan if calibrated is None else float(calibrated[i, 1]),
        }
        for split in ("train", "heldout", "cross", "all"):
            values = kernels.alignment.get(split)
            row[f"alignment_{split}"] = math.nan if values is None else float(values[i])
        for name in METRICS:
            row[name] = float(metrics[name][i]) if name in metrics else math.nan
        rows.append(row)
    return rows


def _spectrum(matrix: Tensor | None, n_runs: int) -> tuple[Tensor, Tensor]:
    """(effective rank, top-eigenvector share), each `n_runs`, of the runs' kernels as given
    (NaN for kernel-free agents)."""
    if matrix is None:
        nan = torch.full((n_runs,), math.nan, dtype=torch.float64)
        return nan, nan
    rank, share = kernel_spectrum(matrix.to(torch.float64))
    return rank.expand(n_runs), share.expand(n_runs)


@dataclass(frozen=True)
class GridRun:
    """What `run_grid` did: cells in the grid, skipped (already written), run now."""

    n_cells: int
    n_skipped: int
    n_run: int


def run_grid(
    plans: Mapping[str, StudyPlan],
    cells: Sequence[Cell],
    store: ResultsStore,
    batch_runs: int = 512,
    device: str = "cpu",
    progress: bool = True,
    after_batch: Callable[[int], None] | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
) -> GridRun:
    """Play every cell of `cells` not already in `store`, batch by batch.

    Args:
        plans: study name -> plan (a cell's plan is `plans[cell.study]`).
        cells: the grid (its order is the table's order).
        store: where finished batches go (one atomic part file per batch).
        batch_runs: most runs per batch.
        progress: show a tqdm bar over runs (on a terminal only: a log file gets none).
        after_batch: called with the number of batches written so far, after each write
            (tests use it to interrupt a study).
        memory_budget_bytes: most bytes of engine state per batch (see `simulate_batch`).
    """
    from tqdm.auto import tqdm

    done = store.completed()
    todo = [cell for cell in cells if cell.cell_id not in done]
    bar = tqdm(total=len(todo), desc="study runs", unit="run", disable=None if progress else True,
               dynamic_ncols=True)
    written = 0
    try:
        for batch in batches(todo, batch_runs):
            first = batch[0]
            bar.set_postfix_str(f"{first.study}/{first.condition}/{first.kernel}/{first.agent}",
                                False)
            rows = simulate_batch(plans[batch[0].study], batch, device, bar.update,
                                  memory_budget_bytes)
            store.write_batch(rows)
            written += 1
            if after_batch is not None:
                after_batch(written)
    finally:
        bar.close()
    return GridRun(len(cells), len(cells) - len(todo), len(todo))
