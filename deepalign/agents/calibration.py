"""Kernel calibration: every kernel on an equal footing before a GP agent uses it.

Shapes: `n_runs` runs, `n_items` items (the kernel's rows), `n_arms` the items an agent may
pull (the personalization items), `m` the most distinct arms any run has observed.

Why. A fixed GP prior suits one kernel and not another. A near-constant kernel (every pair of
actions alike: a random-weight transformer, the length control) under the same outputscale
tells the GP that all arms share one value, so the agent sticks to the first good arm it
meets: few bad actions, no exploration, no generalization. That made "more aligned kernels
are safer" indistinguishable from "this kernel makes the agent greedy". BoTorch users fit
hyperparameters to their observations; so does every deepalign GP agent, the same way, from
the rewards it has seen and nothing else.

The family. A kernel `K` (any PSD matrix with a positive diagonal) is read as correlations
`C = D^-1/2 K D^-1/2` (`D = diag K`) and distances `1 - C`, and calibrated to

    K_cal = outputscale * D^1/2 exp((C - 1) / (t * h)) D^1/2,

with `h` the kernel's median off-diagonal distance among the arms (its own scale: the mean
distance when the median is 0, and 1 when every distance is 0, a constant kernel). Three
properties make it the defensible choice:

* it is a monotone transform of the similarities, so the kernel's rank order, and hence its
  measured (Spearman) alignment with people, is unchanged: calibration changes how much the
  agent trusts similarity, never which actions it finds similar;
* it is invariant to the kernel's uniformity: a blend `a + (1 - a) K` (more alike overall)
  has distances `(1 - a)(1 - C)` and median `(1 - a) h`, so it calibrates to exactly the
  same matrix. Training that only made a kernel more uniform cannot win through it;
* `exp` of a PSD matrix taken element-wise is PSD (Schur), so `K_cal` is a valid
  covariance for every `t`; `t -> 0` gives independent arms, `t -> inf` a constant kernel.
  A constant kernel stays constant (its distances are all 0): the reference it is meant to be.

The fit. `t` (a multiple of `h`), the outputscale (a multiple of the value's default prior
variance) and optionally the noise variance (a multiple of the known reward-noise variance)
are chosen on a small grid (`KernelCalibration`) by the exact GP marginal likelihood of the
run's own observations: the rewards of the arms it pulled, i.e. personalization data only;
held-out items and their values never enter (only the kernel entries among OBSERVED arms
are used). Before the first fit the agent uses the grid's centre (`t = 1`, the median
heuristic; default outputscale and noise). It refits after `first`, `first * growth`, ...
observations (5, 10, 20, 40, 80, ... by default): log(T) fits per run, not one per step.

The fit (`deepalign.agents.calibration_fit`) uses the per-arm sufficient statistics (counts
`c`, sums, sums of squares), so it is batched over runs and grid points with one
eigendecomposition per run and temperature: with `B = C_S^1/2 K_S C_S^1/2` over the observed
arms `S` (eigenvalues `l`, eigenvectors `U`), `z = U^T C_S^1/2 (ybar - mean)`, `N`
observations and `SS` the within-arm sum of squares,

    -2 log p(y) = sum_i [log(s l_i + n) + z_i^2 / (s l_i + n)]
                  + (N - |S|) log n + SS / n + N log(2 pi)

for outputscale `s` and noise variance `n`, so the outputscale and noise grids cost nothing
extra. The constant mean stays the value's prior (the scale's midpoint).

Agents without a likelihood (kernel regression, SVR) have nothing to fit a temperature by;
they get the grid centre, `t = 1`: the median heuristic, the standard bandwidth rule for
kernel smoothers and SVMs (`median_heuristic_kernel`). So every kernel agent sees every
kernel on its own distance scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from deepalign.errors import ConfigError

__all__ = [
    "MIN_DISTANCE_SCALE",
    "CalibrationChoice",
    "KernelCalibration",
    "calibrated_kernel",
    "DEFAULT_CALIBRATION",
    "distance_scale",
    "median_heuristic_kernel",
]

MIN_DISTANCE_SCALE = 1e-6
"""The smallest median arm distance `h` calibration accepts: below it the kernel's
round-off (1e-16 of its entries) is amplified by `1 / (t h)` in `exp((C - 1) / (t h))`, and the
calibrated matrix can be far from PSD."""


def _positive_grid(values, name: str) -> tuple[float, ...]:
    try:
        grid = tuple(float(value) for value in values)
    except (TypeError, ValueError):
        raise ConfigError(
            f"'{name}' should be a list of positive numbers but got {values!r}"
        ) from None
    if not grid or not all(math.isfinite(v) and v > 0 for v in grid):
        raise ConfigError(
            f"'{name}' should be a non-empty list of finite numbers > 0 but got {values!r}"
        )
    return grid


@dataclass(frozen=True)
class KernelCalibration:
    """The grid and schedule of kernel calibration (see the module docstring).

    Attributes:
        temperatures: `t`, multiples of the kernel's median arm distance `h`.
        outputscales: multiples of the value's default prior variance
            (`GPHyperparameters.from_bandit`: `(0.25 * scale range)^2`).
        noise_scales: multiples of the known reward-noise variance; `(1.0,)` keeps the
            environment's own noise (it is a property of the raters, the same for every
            kernel, so fitting it would only add variance).
        first: the first fit happens after this many observations.
        growth: later fits after `first * growth^k` observations (rounded up).
    """

    temperatures: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
    outputscales: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    noise_scales: tuple[float, ...] = (1.0,)
    first: int = 5
    growth: float = 2.0

    def __post_init__(self) -> None:
        for name in ("temperatures", "outputscales", "noise_scales"):
            object.__setattr__(self, name, _positive_grid(getattr(self, name), name))
        if isinstance(self.first, bool) or not isinstance(self.first, int) or self.first < 1:
            raise ConfigError(f"'first' should be an int >= 1 but got {self.first!r}")
        if not isinstance(self.growth, int | float) or not self.growth > 1:
            raise ConfigError(f"'growth' should be a number > 1 but got {self.growth!r}")

    @property
    def default_index(self) -> tuple[int, int, int]:
        """Grid indices (temperature, outputscale, noise) of the point used before the first
        fit: the entries closest to 1 (in log scale)."""
        return tuple(
            min(range(len(grid)), key=lambda i, grid=grid: abs(math.log(grid[i])))
            for grid in (self.temperatures, self.outputscales, self.noise_scales)
        )

    def fits_after(self, n_observed: int) -> bool:
        """Whether a fit is due right after the `n_observed`-th observation."""
        point = float(self.first)
        while point < n_observed:
            point = math.ceil(point * self.growth)
        return int(point) == n_observed

    def schedule(self, horizon: int) -> tuple[int, ...]:
        """The observation counts `<= horizon` after which a fit happens."""
        return tuple(t for t in range(1, horizon + 1) if self.fits_after(t))


DEFAULT_CALIBRATION = KernelCalibration()
"""The calibration the CLI, the registry's agents and the studies use unless told otherwise."""


def median_heuristic_kernel(matrix: Tensor, arms: Tensor | None = None) -> Tensor:
    """`calibrated_kernel(matrix, 1, h)`: `matrix` (`n_items x n_items`, or one per run) on
    its own distance scale `h` among `arms` (the median heuristic), for agents that fit
    nothing (kernel regression, SVR)."""
    return calibrated_kernel(matrix, 1.0, distance_scale(matrix, arms))


@dataclass(frozen=True)
class CalibrationChoice:
    """The calibration chosen for each run: multiples and the resulting values.

    Attributes:
        temperature: `n_runs`, `t` (multiple of the median distance).
        outputscale: `n_runs`, the outputscale multiple.
        noise_scale: `n_runs`, the noise-variance multiple.
        log_evidence: `n_runs`, the log marginal likelihood of the chosen point (0 before
            any fit).
    """

    temperature: Tensor
    outputscale: Tensor
    noise_scale: Tensor
    log_evidence: Tensor

    @classmethod
    def default(cls, calibration: KernelCalibration, n_runs: int, dtype=torch.float64,
                device=None) -> CalibrationChoice:
        """The grid centre for every run (used before the first fit)."""
        ti, si, ni = calibration.default_index
        full = lambda value: torch.full((n_runs,), value, dtype=dtype, device=device)  # noqa: E731
        return cls(
            full(calibration.temperatures[ti]),
            full(calibration.outputscales[si]),
            full(calibration.noise_scales[ni]),
            full(0.0),
        )


def _correlation(kernel: Tensor) -> tuple[Tensor, Tensor]:
    """(`sqrt(diag K)` `... x n`, correlations `... x n x n`) of a PSD kernel."""
    root = kernel.diagonal(dim1=-2, dim2=-1).clamp_min(torch.finfo(kernel.dtype).tiny).sqrt()
    correlation = kernel / (root.unsqueeze(-1) * root.unsqueeze(-2))
    return root, correlation.clamp(-1.0, 1.0)


def distance_scale(kernel: Tensor, arms: Tensor | None = None) -> Tensor:
    """`h`: the median off-diagonal distance `1 - C_ij` among `arms` (the mean when the
    median is 0, 1 when every distance is 0), per run.

    Args:
        kernel: `n_items x n_items` or `n_runs x n_items x n_items`.
        arms: LongTensor `n_arms` of the items an agent may pull; None uses every item.

    Returns:
        a 0-d tensor (shared kernel) or `n_runs`.
    """
    _, correlation = _correlation(kernel)
    if arms is not None:
        correlation = correlation[..., arms, :][..., :, arms]
    n = correlation.shape[-1]
    if n < 2:
        return torch.ones(correlation.shape[:-2], dtype=kernel.dtype, device=kernel.device)
    upper = torch.triu_indices(n, n, 1, device=kernel.device)
    distances = (1.0 - correlation[..., upper[0], upper[1]]).clamp_min(0.0)
    median = distances.median(dim=-1).values
    mean = distances.mean(dim=-1)
    scale = torch.where(median > 0, median, mean)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def calibrated_kernel(
    kernel: Tensor, temperature: Tensor | float, scale: Tensor, outputscale: Tensor | float = 1.0
) -> Tensor:
    """`outputscale * D^1/2 exp((C - 1) / (temperature * scale)) D^1/2` (module docstring).

    Args:
        kernel: `n_items x n_items` (shared) or `n_runs x n_items x n_items`.
        temperature: a float, or `n_runs` (then the result is one matrix per run).
        scale: `h` from `distance_scale` (0-d or `n_runs`).
        outputscale: a float or `n_runs`.

    Returns:
        `n_items x n_items` or `n_runs x n_items x n_items`, exactly symmetric.
    """
    root, correlation = _correlation(kernel)
    width = torch.as_tensor(temperature, dtype=kernel.dtype, device=kernel.device) * scale
    outputscale = torch.as_tensor(outputscale, dtype=kernel.dtype, device=kernel.device)
    if width.dim() or outputscale.dim():  # one matrix per run
        width, outputscale = width.reshape(-1, 1, 1), outputscale.reshape(-1, 1, 1)
    tempered = torch.exp((correlation - 1.0) / width)
    result = outputscale * root.unsqueeze(-1) * tempered * root.unsqueeze(-2)
    return 0.5 * (result + result.transpose(-2, -1))


def check_distance_scale(scale: Tensor, where: str) -> None:
    """ConfigError when a kernel's median arm distance is at round-off level
    (`MIN_DISTANCE_SCALE`): calibrating it would amplify round-off into a non-PSD matrix."""
    smallest = float(torch.as_tensor(scale).min())
    if smallest < MIN_DISTANCE_SCALE:
        raise ConfigError(
            f"{where}: the kernel's median distance between arms is {smallest:.3g}, at the "
            f"level of round-off (< {MIN_DISTANCE_SCALE:g}): every arm is alike to within "
            "rounding, so calibration cannot resolve it; use the kernel in float64, or "
            "calibration off (--calibration off / calibration: false)"
        )
