"""The fit of kernel calibration: the grid point of highest marginal likelihood of each run's
own observations, batched over runs (`deepalign.agents.calibration` has the family, the grid
and the formula).

Shapes: `n_runs` runs, `n_items` items, `m` the most distinct arms any run has observed,
`G` temperatures.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from deepalign.agents.calibration import CalibrationChoice, KernelCalibration, _correlation

__all__ = ["EVIDENCE_TIE_TOL", "observation_statistics", "select_hyperparameters"]

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
