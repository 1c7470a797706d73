"""A batched exact GP bandit engine: many seeded bandit runs over finite arms at once.

Shapes: `n_runs` runs, `n_arms` arms, horizon `T`. The engine keeps, for every run, the exact
GP posterior mean (`n_runs x n_arms`) and covariance (`n_runs x n_arms x n_arms`) over the
arms and conditions it on each reward by a rank-one update (`BatchedGPPosterior`): O(n_arms^2)
per run-step instead of refitting a model. It is the same posterior as BoTorch's
`SingleTaskGP` with the same fixed kernel, constant mean and noise (tested to 1e-6).

GP hyperparameters are fixed as given (the fast path), e.g. the constant mean from the value's
prior (the midpoint of its scale), the kernel's outputscale from the variance of the ratings,
and the noise variance from the reward noise variance; with `calibration` each run instead
fits a temperature, outputscale (and optionally noise) to its own rewards on a schedule
(`deepalign.agents.calibration`, `engine.calibrated`).

Example:
    engine = GPBanditEngine(kernel, mean=0.5, noise_variance=0.01)
    trajectory = engine.simulate(ThompsonPolicy(), true_values, reward_noise_sd=0.1,
                                 horizon=200, seeds=range(256))
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import Tensor

from deepalign.agents.calibration import (
    KernelCalibration,
    check_distance_scale,
    distance_scale,
)
from deepalign.agents.engine.calibrated import run_calibrated_loop
from deepalign.agents.engine.checks import availability, check_kernel, environment, per_run
from deepalign.agents.engine.exact import kernel_factor
from deepalign.agents.engine.loop import Trajectory, run_bandit_loop
from deepalign.agents.engine.policies import EnginePolicy
from deepalign.agents.engine.posterior import BatchedGPPosterior
from deepalign.agents.engine.randomness import RunNoise, check_seeds
from deepalign.errors import ConfigError

__all__ = ["GPBanditEngine", "Trajectory", "usable_cores"]


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class GPBanditEngine:
    """Exact GP posteriors over finite arms for many independent, seeded bandit runs.

    Args:
        kernel: the prior covariance over the arms, `n_arms x n_arms` (shared by every run)
            or `n_runs x n_arms x n_arms` (one per run, e.g. an alignment sweep); symmetric
            (relative asymmetry <= 1e-8, then symmetrised) and PSD (eigenvalues >= -1e-8 of the
            largest) with finite entries.
        mean: the prior constant mean, a float or a tensor `n_runs`.
        noise_variance: the GP's observation noise variance, > 0, a float or a tensor
            `n_runs`.
        refresh_every: recompute each posterior from scratch from per-arm counts and reward
            sums after every this many observations (bounds rounding drift); None never does.
        update_block: rank-one updates kept pending and folded into the covariance by one
            batched product every this many steps (`BatchedGPPosterior`); 1 updates the
            covariance at every step; None picks 1 below 64 arms, else 16 (measured on a
            CPU with Thompson sampling: equal at 50 arms, 2.2x faster at 500 arms).
        rng_chunk: steps of random numbers drawn per block and run (fixed, so a run's numbers
            never depend on the batch).
        memory_budget_bytes: runs are simulated in chunks of at most
            `memory_budget_bytes // bytes_per_run(T)` runs (see `bytes_per_run`).
        prefetch: draw the next block of random numbers on a worker thread while the runs
            step through the current one (`RunNoise`; never changes the numbers). None: on
            an accelerator, or on a CPU when torch uses one thread and a second core is free
            (measured ~15 % faster at 50 arms; with several torch threads the worker competes
            with them and it is slower).
        calibration: a `KernelCalibration` to put the kernel on an equal footing with any
            other (`deepalign.agents.calibration`): each run fits a temperature on the
            kernel's distances, an outputscale (multiples of the given kernel's scale) and
            optionally the noise (multiples of `noise_variance`) to its own observations at
            the calibration schedule, batched over runs; None (default) keeps the kernel,
            mean and noise fixed as given (the fast path).
        dtype: floating dtype of the state (float64 by default; float32 loses the 1e-6
            agreement with BoTorch).
        device: where the state lives; default the kernel's device.
    """

    def __init__(
        self,
        kernel: Tensor,
        mean: float | Tensor = 0.0,
        noise_variance: float | Tensor = 1.0,
        *,
        refresh_every: int | None = 250,
        update_block: int | None = None,
        rng_chunk: int = 64,
        memory_budget_bytes: int = 2**30,
        prefetch: bool | None = None,
        calibration: KernelCalibration | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> None:
        if not isinstance(kernel, Tensor) or kernel.dim() not in (2, 3):
            raise ConfigError(
                "'kernel' should be a tensor n_arms x n_arms or n_runs x n_arms x n_arms but "
                f"got {type(kernel).__name__} {tuple(getattr(kernel, 'shape', ()))}"
            )
        if kernel.shape[-1] != kernel.shape[-2] or kernel.shape[-1] == 0:
            raise ConfigError(
                f"'kernel' should be square over >= 1 arm but got {tuple(kernel.shape)}"
            )
        if not dtype.is_floating_point:
            raise ConfigError(f"'dtype' should be a floating dtype but got {dtype}")
        for name, value in (("rng_chunk", rng_chunk), ("memory_budget_bytes", memory_budget_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"'{name}' should be an int >= 1 but got {value!r}")
        if refresh_every is not None and (
            isinstance(refresh_every, bool)
            or not isinstance(refresh_every, int)
            or refresh_every < 1
        ):
            raise ConfigError(
                f"'refresh_every' should be an int >= 1 or None but got {refresh_every!r}"
            )
        self.device = torch.device(device) if device is not None else kernel.device
        self.dtype = dtype
        self.kernel = check_kernel(kernel.to(self.device, dtype))
        self.n_arms = self.kernel.shape[-1]
        self.n_runs: int | None = self.kernel.shape[0] if self.kernel.dim() == 3 else None
        self.mean = per_run(mean, "mean", False, self.n_runs, self.device, dtype)
        self.noise_variance = per_run(
            noise_variance, "noise_variance", True, self.n_runs, self.device, dtype
        )
        self.refresh_every = refresh_every
        if update_block is None:
            update_block = 1 if self.n_arms < 64 else 16
        if isinstance(update_block, bool) or not isinstance(update_block, int) or update_block < 1:
            raise ConfigError(
                f"'update_block' should be an int >= 1 or None but got {update_block!r}"
            )
        self.update_block = update_block
        self.rng_chunk = rng_chunk
        self.memory_budget_bytes = memory_budget_bytes
        if prefetch is not None and not isinstance(prefetch, bool):
            raise ConfigError(f"'prefetch' should be True, False or None but got {prefetch!r}")
        self.prefetch = prefetch
        if calibration is not None and not isinstance(calibration, KernelCalibration):
            raise ConfigError(
                f"'calibration' should be a KernelCalibration or None but got "
                f"{type(calibration).__name__}"
            )
        self.calibration = calibration
        self.factor = kernel_factor(self.kernel.to(torch.float64))

    def _run_count(self, n_runs: int) -> None:
        counts = {"mean": self.mean.numel(), "noise_variance": self.noise_variance.numel()}
        if self.n_runs is not None:
            counts["kernel"] = self.n_runs
        for name, count in counts.items():
            if count not in (1, n_runs):
                raise ConfigError(
                    f"'{name}' is set for {count} runs but {n_runs} runs were asked for "
                    f"(len(seeds)); give one seed per run"
                )

    def prior(self, n_runs: int, runs: slice | None = None) -> BatchedGPPosterior:
        """The prior posterior state of `n_runs` runs (or of the runs `runs` of them)."""
        self._run_count(n_runs)
        runs = slice(0, n_runs) if runs is None else runs
        count = len(range(n_runs)[runs])
        kernel = self.kernel[runs] if self.kernel.dim() == 3 else self.kernel

        def take(tensor: Tensor) -> Tensor:
            return tensor.expand(count) if tensor.numel() == 1 else tensor[runs]

        return BatchedGPPosterior(
            kernel,
            take(self.mean),
            take(self.noise_variance),
            self.refresh_every,
            self.update_block,
        )

    def uses_prefetch(self) -> bool:
        """Whether `simulate` draws random numbers on a worker thread (see `prefetch`)."""
        if self.prefetch is not None:
            return self.prefetch
        if self.device.type != "cpu":
            return True
        return torch.get_num_threads() == 1 and usable_cores() > 1

    def bytes_per_run(self, horizon: int) -> int:
        """Memory of one run while simulating, in bytes:

        `itemsize * (8 n_arms^2 [+ 2 n_arms^2 for a per-run kernel and its factor])
        + 32 * rng_chunk * (1 + 2 n_arms) + 16 * horizon` (plus `4 n_arms^2` numbers with
        calibration: each run's calibrated kernel, its square root and their transients): the
        covariance and a refresh's
        transient matrices (which also cover the planned-sample buffers, at most
        `2 block n_arms + block^2` numbers with `block <= n_arms`), two blocks of random
        numbers (the one in use and the one prefetched; each float32 as drawn, its `F z1`,
        and both in the state's dtype as used), and the trajectory (arms and rewards).
        """
        itemsize = torch.empty((), dtype=self.dtype).element_size()
        squares = 8 + (2 if self.kernel.dim() == 3 else 0)
        if self.calibration is not None:  # per-run calibrated kernel and its square root
            squares += 4
        return (
            itemsize * squares * self.n_arms**2
            + 32 * self.rng_chunk * (1 + 2 * self.n_arms)
            + 16 * horizon
        )

    def simulate(
        self,
        policy: EnginePolicy,
        true_values: Tensor,
        reward_noise_sd: float | Tensor,
        horizon: int,
        seeds: Sequence[int],
        available: Tensor | None = None,
        return_covariance: bool = False,
        record_greedy: bool = False,
    ) -> Trajectory:
        """Run `policy` for `horizon` steps in `len(seeds)` independent runs.

        The reward of pulling arm `a` in run `r` at step `t` is
        `true_values[r, a] + reward_noise_sd[r, a] * e`, `e ~ N(0, 1)` from run `r`'s own
        generator (`engine.randomness`). Run `i` of a batch gives the same trajectory as its seed
        run alone (exactly on a CPU; with calibration, the recorded log evidence of a fit can
        differ in the last digits, ~1e-14, since its padding depends on the batch).

        Args:
            policy: a `ThompsonPolicy`, `UCBPolicy` or `SafePolicy`.
            true_values: `n_arms` (every run) or `n_runs x n_arms`, finite.
            reward_noise_sd: >= 0; a float, or a tensor broadcastable to `n_runs x n_arms`:
                `n_arms` (per arm), `n_runs x 1` (per run) or `n_runs x n_arms`.
            horizon: `T`, steps per run, >= 1.
            seeds: one int per run (`n_runs = len(seeds)`).
            available: bool `n_arms` or `n_runs x n_arms`, arms the agent may pull (e.g. the
                personalization items, so the posterior still covers held-out items);
                None allows all.
            return_covariance: also return the final `n_runs x n_arms x n_arms` covariance.
            record_greedy: also return each step's best guess (`Trajectory.greedy_arms`).

        Returns:
            a `Trajectory`.
        """
        seeds = check_seeds(seeds)
        n_runs = len(seeds)
        self._run_count(n_runs)
        if not isinstance(policy, EnginePolicy):
            raise ConfigError(
                f"'policy' should be a ThompsonPolicy, UCBPolicy or SafePolicy but got "
                f"{type(policy).__name__}"
            )
        policy.check_runs(n_runs)
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ConfigError(f"'horizon' should be an int >= 1 but got {horizon!r}")
        values = environment(
            true_values, "true_values", n_runs, self.n_arms, False, self.device, self.dtype
        )
        noise_sd = environment(
            reward_noise_sd, "reward_noise_sd", n_runs, self.n_arms, True, self.device, self.dtype
        )
        available = availability(available, n_runs, self.n_arms, self.device)
        per_chunk = max(1, self.memory_budget_bytes // self.bytes_per_run(horizon))
        parts = [
            self._simulate_chunk(
                policy,
                slice(start, min(start + per_chunk, n_runs)),
                n_runs,
                values,
                noise_sd,
                horizon,
                seeds,
                available,
                return_covariance,
                record_greedy,
            )
            for start in range(0, n_runs, per_chunk)
        ]
        return Trajectory.concatenate(parts)

    def _simulate_chunk(
        self, policy, runs: slice, n_runs, values, noise_sd, horizon, seeds, available, keep_cov,
        record_greedy,
    ) -> Trajectory:
        """Simulate the runs `runs` (one memory chunk) with `run_bandit_loop`."""
        if self.calibration is not None:
            return self._simulate_calibrated(
                policy, runs, n_runs, values, noise_sd, horizon, seeds, available, keep_cov,
                record_greedy,
            )
        posterior = self.prior(n_runs, runs)
        factor = None
        if policy.needs_sample:
            factor = self.factor[runs] if self.factor.dim() == 3 else self.factor
        noise = RunNoise(
            seeds[runs],
            self.n_arms,
            factor,
            self.rng_chunk,
            self.dtype,
            self.device,
            prefetch=self.uses_prefetch(),
        )
        return run_bandit_loop(
            posterior,
            policy.for_runs(runs.start, runs.stop),
            noise,
            values[runs],
            noise_sd[runs],
            horizon,
            None if available is None else available[runs],
            seeds[runs],
            keep_cov,
            record_greedy,
        )

    def _simulate_calibrated(
        self, policy, runs: slice, n_runs, values, noise_sd, horizon, seeds, available,
        keep_cov, record_greedy,
    ) -> Trajectory:
        """Simulate the runs `runs` with calibration (`engine.calibrated`)."""
        count = len(range(n_runs)[runs])
        kernel = self.kernel[runs] if self.kernel.dim() == 3 else self.kernel
        run_available = None if available is None else available[runs]
        scale = _distance_scales(kernel, run_available, count)
        check_distance_scale(scale, "GPBanditEngine(calibration=...)")

        def take(tensor: Tensor) -> Tensor:
            return tensor.expand(count).clone() if tensor.numel() == 1 else tensor[runs]

        identity = None
        if policy.needs_sample:
            identity = torch.eye(self.n_arms, dtype=torch.float64)
        noise = RunNoise(
            seeds[runs], self.n_arms, identity, self.rng_chunk, self.dtype, self.device,
            prefetch=self.uses_prefetch(),
        )
        return run_calibrated_loop(
            kernel, scale, take(self.mean), take(self.noise_variance), self.calibration,
            policy.for_runs(runs.start, runs.stop), noise, values[runs], noise_sd[runs],
            horizon, run_available, seeds[runs], keep_cov, record_greedy, self.refresh_every,
        )


def _distance_scales(kernel: Tensor, available: Tensor | None, n_runs: int) -> Tensor:
    """`n_runs` median arm distances (`distance_scale`) over each run's available arms."""
    if available is None or bool((available == available[:1]).all()):
        arms = None if available is None else torch.nonzero(available[0]).flatten()
        return distance_scale(kernel, arms).expand(n_runs).clone()
    return torch.stack([
        distance_scale(kernel[run] if kernel.dim() == 3 else kernel,
                       torch.nonzero(available[run]).flatten())
        for run in range(n_runs)
    ])
