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

The marginal likelihood uses the per-arm sufficient statistics (counts `c`, sums, sums of
squares), so it is batched over runs and grid points with one eigendecomposition per run and
temperature: with `B = C_S^1/2 K_S C_S^1/2` over the observed arms `S` (eigenvalues `l`,
eigenvectors `U`), `z = U^T C_S^1/2 (ybar - mean)`, `N` observations and `SS` the within-arm
sum of squares,

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
    "EVIDENCE_TIE_TOL",
    "MIN_DISTANCE_SCALE",
    "CalibrationChoice",
    "KernelCalibration",
    "calibrated_kernel",
    "DEFAULT_CALIBRATION",
    "distance_scale",
    "median_heuristic_kernel",
    "observation_statistics",
    "select_hyperparameters",
]

_RUN_CHUNK = 64
"""Most runs per chunk of the batched marginal-likelihood grid."""

_FIT_BYTES = 2**28
"""Memory a chunk of the grid may take (256 MiB): about six `n_temperatures x m x m` float64
arrays per run, `m` the most distinct arms a run has observed, so long horizons over many
arms get smaller chunks."""

EVIDENCE_TIE_TOL = 1e-9
"""Grid points whose log evidence is within this much (relative to `max(1, |best|)`) of the
best are ties, resolved towards the grid centre: with one distinct arm observed, say, every
temperature explains the data equally well, and the first grid point (the smallest
temperature, near-independent arms) would switch the kernel off for no reason."""

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
    if width.dim() == 0 and outputscale.dim() == 0:
        tempered = torch.exp((correlation - 1.0) / width)
        result = outputscale * root.unsqueeze(-1) * tempered * root.unsqueeze(-2)
    else:
        width = width.reshape(-1, 1, 1)
        tempered = torch.exp((correlation - 1.0) / width)
        outer = (root.unsqueeze(-1) * root.unsqueeze(-2))
        result = outputscale.reshape(-1, 1, 1) * outer * tempered
    return 0.5 * (result + result.transpose(-2, -1))


def observation_statistics(
    items: Tensor, rewards: Tensor, n_items: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-item counts, sums and sums of squares (each `n_runs x n_items`, float64) of
    observations `items` (LongTensor `n_runs x n_obs`) with `rewards` (`n_runs x n_obs`)."""
    items = items.long()
    rewards = rewards.to(torch.float64)
    shape = (items.shape[0], n_items)
    counts = torch.zeros(shape, dtype=torch.float64, device=items.device)
    counts.scatter_add_(1, items, torch.ones_like(rewards))
    sums = torch.zeros(shape, dtype=torch.float64, device=items.device).scatter_add_(
        1, items, rewards
    )
    squares = torch.zeros(shape, dtype=torch.float64, device=items.device).scatter_add_(
        1, items, rewards * rewards
    )
    return counts, sums, squares


def select_hyperparameters(
    kernel: Tensor,
    scale: Tensor,
    counts: Tensor,
    sums: Tensor,
    squares: Tensor,
    prior_mean: Tensor | float,
    prior_variance: Tensor | float,
    noise_variance: Tensor | float,
    calibration: KernelCalibration,
) -> CalibrationChoice:
    """The grid point of highest marginal likelihood of each run's observations.

    Only kernel entries among each run's observed items matter (so neither held-out items
    nor their values can): the padding rows of unobserved items are gathered but multiplied
    by zero counts. Runs are processed in chunks whose memory `_FIT_BYTES` bounds.

    Args:
        kernel: `n_items x n_items` (shared) or `n_runs x n_items x n_items`, the kernel as
            given (before calibration); its scale does not matter, only its correlations.
        scale: `h` (0-d or `n_runs`) from `distance_scale` over the arms.
        counts, sums, squares: `n_runs x n_items` per-item observation statistics
            (`observation_statistics`).
        prior_mean: the constant prior mean (float or `n_runs`).
        prior_variance: the default prior variance that `outputscales` multiply (float or
            `n_runs`).
        noise_variance: the known reward-noise variance that `noise_scales` multiply.
        calibration: the grid.

    Returns:
        a `CalibrationChoice`; a run with no observation gets the grid centre. Points within
        `EVIDENCE_TIE_TOL` of the best are ties, resolved towards the grid centre (the
        smallest `|log t| + |log s| + |log q|`), then by grid order.
    """
    n_runs = counts.shape[0]
    dtype, device = torch.float64, counts.device
    options = {"dtype": dtype, "device": device}

    def per_run(value) -> Tensor:
        return torch.as_tensor(value, **options).expand(n_runs).clone()

    mean, variance, noise = per_run(prior_mean), per_run(prior_variance), per_run(noise_variance)
    scale = per_run(scale)
    chosen = CalibrationChoice.default(calibration, n_runs, dtype, device)
    width = max(1, int((counts > 0).sum(dim=1).max())) if n_runs else 1
    per_run_bytes = 6 * len(calibration.temperatures) * width * width * 8
    chunk = max(1, min(_RUN_CHUNK, _FIT_BYTES // per_run_bytes))
    parts = [
        _select_chunk(kernel, scale, counts, sums, squares, mean, variance, noise, calibration,
                      slice(start, min(start + chunk, n_runs)))
        for start in range(0, n_runs, chunk)
    ]
    picked = [torch.cat(values) for values in zip(*parts)]
    observed = counts.sum(dim=1) > 0
    return CalibrationChoice(*(torch.where(observed, new, old) for new, old in zip(
        picked, (chosen.temperature, chosen.outputscale, chosen.noise_scale,
                 chosen.log_evidence))))


def _centre_distance(calibration: KernelCalibration, device) -> Tensor:
    """`|log t| + |log s| + |log q|` of every grid point, flattened in (t, s, q) order."""
    logs = [torch.tensor(grid, dtype=torch.float64, device=device).log().abs()
            for grid in (calibration.temperatures, calibration.outputscales,
                         calibration.noise_scales)]
    return (logs[0].view(-1, 1, 1) + logs[1].view(1, -1, 1) + logs[2].view(1, 1, -1)).flatten()


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


def _select_chunk(kernel, scale, counts, sums, squares, mean, variance, noise, calibration,
                  runs: slice):
    """`select_hyperparameters` for the runs `runs` (one memory chunk)."""
    counts, sums, squares = counts[runs], sums[runs], squares[runs]
    mean, variance, noise, scale = mean[runs], variance[runs], noise[runs], scale[runs]
    n_runs = counts.shape[0]
    observed = counts > 0
    n_distinct = observed.sum(dim=1)
    width = max(1, int(n_distinct.max()))
    # the observed items of each run first (stable order), padded with unobserved ones
    order = torch.sort((~observed).to(torch.int8), dim=1, stable=True).indices[:, :width]
    valid = observed.gather(1, order)  # n_runs x m
    c = torch.where(valid, counts.gather(1, order), 0.0)
    s = torch.where(valid, sums.gather(1, order), 0.0)
    root = c.sqrt()
    safe_root = torch.where(valid, root, 1.0)
    centred = torch.where(valid, (s - c * mean.unsqueeze(-1)) / safe_root, 0.0)  # C^1/2 (ybar-m)
    within = torch.where(
        valid, squares.gather(1, order) - s * s / torch.where(valid, c, 1.0), 0.0
    ).sum(dim=1).clamp_min(0.0)  # within-item sum of squares
    total = counts.sum(dim=1)
    if kernel.dim() == 3:
        sub = kernel[runs]
        sub = sub.gather(1, order.unsqueeze(-1).expand(-1, -1, sub.shape[-1]))
        sub = sub.gather(2, order.unsqueeze(1).expand(-1, width, -1))
    else:
        sub = kernel[order.unsqueeze(-1), order.unsqueeze(-2)]  # n_runs x m x m
    diagonal_root, correlation = _correlation(sub)
    temperatures = torch.tensor(calibration.temperatures, dtype=torch.float64,
                                device=counts.device)
    widths = temperatures.view(1, -1, 1, 1) * scale.view(-1, 1, 1, 1)  # n_runs x G x 1 x 1
    tempered = torch.exp((correlation.unsqueeze(1) - 1.0) / widths)  # n_runs x G x m x m
    weight = root * diagonal_root  # C^1/2 D^1/2
    pair = (weight.unsqueeze(-1) * weight.unsqueeze(-2)).unsqueeze(1)
    system = tempered * pair * (valid.unsqueeze(-1) & valid.unsqueeze(-2)).unsqueeze(1)
    system = 0.5 * (system + system.transpose(-2, -1))
    eigenvalues, eigenvectors = torch.linalg.eigh(system)  # n_runs x G x m (x m)
    eigenvalues = eigenvalues.clamp_min(0.0)
    projected = (eigenvectors.transpose(-2, -1) @ centred.view(n_runs, 1, width, 1)).squeeze(-1)
    outputscales = torch.tensor(calibration.outputscales, dtype=torch.float64,
                                device=counts.device).view(1, 1, -1, 1, 1) * variance.view(
                                    -1, 1, 1, 1, 1)
    noises = torch.tensor(calibration.noise_scales, dtype=torch.float64,
                          device=counts.device).view(1, 1, 1, -1, 1) * noise.view(-1, 1, 1, 1, 1)
    lam = eigenvalues.view(n_runs, -1, 1, 1, width)
    denominator = outputscales * lam + noises  # n_runs x G x S x N x m
    padded = (width - n_distinct).to(torch.float64).view(-1, 1, 1, 1)
    noise_grid = noises.squeeze(-1)  # n_runs x 1 x 1 x N
    log_noise = noise_grid.log()
    fit = (denominator.log() + projected.view(n_runs, -1, 1, 1, width) ** 2 / denominator).sum(-1)
    fit = fit - padded * log_noise  # padded directions have eigenvalue 0: remove log(n)
    repeats = (total - n_distinct.to(torch.float64)).view(-1, 1, 1, 1)
    fit = fit + repeats * log_noise + within.view(-1, 1, 1, 1) / noise_grid
    log_evidence = -0.5 * (fit + total.view(-1, 1, 1, 1) * math.log(2 * math.pi))
    flat = log_evidence.reshape(n_runs, -1)
    top = flat.amax(dim=1, keepdim=True)
    tied = flat >= top - EVIDENCE_TIE_TOL * top.abs().clamp_min(1.0)
    best = torch.where(tied, -_centre_distance(calibration, counts.device), -math.inf).argmax(1)
    n_s, n_n = len(calibration.outputscales), len(calibration.noise_scales)
    ti, rest = best // (n_s * n_n), best % (n_s * n_n)
    si, ni = rest // n_n, rest % n_n
    grid = lambda values, index: torch.tensor(values, dtype=torch.float64,  # noqa: E731
                                              device=counts.device)[index]
    return (
        grid(calibration.temperatures, ti),
        grid(calibration.outputscales, si),
        grid(calibration.noise_scales, ni),
        flat.gather(1, best.unsqueeze(1)).squeeze(1),
    )
