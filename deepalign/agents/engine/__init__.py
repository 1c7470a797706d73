"""The batched exact GP bandit engine: many seeded bandit runs over finite arms at once.

`GPBanditEngine` (`core`) keeps every run's exact GP posterior over the arms and conditions it
on each reward by a rank-one update. Its parts:

* `core`: `GPBanditEngine`, the entry point (`simulate`, memory budgeting, chunking);
* `posterior`: `BatchedGPPosterior`, the batched rank-one updates and periodic refresh;
* `exact`: the posterior from scratch (`exact_posterior`, `robust_cholesky`, `kernel_factor`);
* `policies`: Thompson sampling, UCB, greedy, safe GP as batched policies;
* `loop`, `fused`, `planned`: the step loop, its TorchScript block kernel, and the planner
  that chooses block sizes;
* `calibrated`: the loop with per-run kernel calibration;
* `randomness`: every run's own reward and sample generators;
* `checks`: input checks; `runs`: `run_engine_seeds`, the engine behind an agent name.
"""

from deepalign.agents.engine.core import GPBanditEngine, Trajectory, usable_cores

__all__ = ["GPBanditEngine", "Trajectory", "usable_cores"]
