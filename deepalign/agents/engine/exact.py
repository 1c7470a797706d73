"""Exact GP posteriors over finite arms from scratch, and kernel square roots.

Shapes: `n_runs` runs, `n_arms` arms. With finite arms the posterior depends on the data only
through the per-arm observation counts and reward sums, so it can be recomputed exactly at
any time; `BatchedGPPosterior.refresh` uses this to bound the drift of its rank-one updates.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from deepalign.errors import ConfigError

__all__ = ["SYMMETRY_TOL", "exact_posterior", "kernel_factor", "psd_eigh"]

SYMMETRY_TOL = 1e-8
"""Relative tolerance for a kernel matrix's asymmetry and negative eigenvalues."""

RANK_TOL = 1e-12
"""Eigenvalues at most this fraction of the largest are dropped from a kernel's square root."""


def psd_eigh(kernel: Tensor, name: str = "kernel") -> tuple[Tensor, Tensor, Tensor]:
    """(eigenvalues ascending, eigenvectors, eigenvalues relative to the largest |one|) of a
    symmetric `... x n x n` kernel; ConfigError naming `name` if an eigenvalue is below
    `-SYMMETRY_TOL` times the largest (not PSD)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(kernel)  # ascending
    top = eigenvalues.abs().amax(dim=-1, keepdim=True).clamp_min(torch.finfo(kernel.dtype).tiny)
    relative = eigenvalues / top
    worst = relative.amin()
    if worst < -SYMMETRY_TOL:
        raise ConfigError(
            f"'{name}' should be positive semi-definite but its smallest eigenvalue is "
            f"{float(worst):.3g} times its largest; repair it first (e.g. "
            "deepalign.kernels.MatrixKernel clips eigenvalues, or add jitter to the diagonal)"
        )
    return eigenvalues, eigenvectors, relative


def kernel_factor(kernel: Tensor) -> Tensor:
    """A square root `F` with `F F^T = K`, for prior samples `F z`.

    From the eigendecomposition `K = V diag(l) V^T`: `F = V diag(sqrt(l))`, eigenvalues
    clipped at 0, and the columns of eigenvalues at most `1e-12` of the largest (in every
    run) dropped, so a low-rank kernel (say a linear kernel on `d < n_arms` features) needs
    only `rank` normals per sample. The dropped part changes `F F^T` by at most 1e-12 of `K`'s
    scale.

    Args:
        kernel: `n_arms x n_arms` or `n_runs x n_arms x n_arms`, symmetric PSD.

    Returns:
        `F`: `n_arms x rank` or `n_runs x n_arms x rank` (`rank` the largest over runs).

    Raises:
        ConfigError: if an eigenvalue is below `-1e-8 * max eigenvalue` (not PSD).
    """
    eigenvalues, eigenvectors, relative = psd_eigh(kernel)
    kept = relative > RANK_TOL
    rank = max(1, int(kept.reshape(-1, kept.shape[-1]).sum(-1).max()))
    factor = eigenvectors * eigenvalues.clamp_min(0).sqrt().unsqueeze(-2)
    return factor[..., -rank:].contiguous()


#: Relative diagonal jitters tried, in order, for a system whose Cholesky factorisation fails
#: in floating point (noise variance far below the kernel's scale on a rank-deficient kernel:
#: `M` is positive definite in exact arithmetic, not after round-off).
JITTERS = (1e-12, 1e-10, 1e-8, 1e-6)


def robust_cholesky(system: Tensor) -> Tensor:
    """`cholesky(system)` of a batch of symmetric matrices; a matrix whose factorisation
    fails is retried with a diagonal jitter of `JITTERS` times its mean diagonal, then with
    its eigenvalues clipped to the largest jitter, with a warning naming what was added.
    Never raises for a finite input."""
    chol, info = torch.linalg.cholesky_ex(system)
    failed = info > 0
    if not bool(failed.any()):
        return chol
    scale = system.diagonal(dim1=-2, dim2=-1).mean(-1).abs().clamp_min(1e-300)
    eye = torch.eye(system.shape[-1], dtype=system.dtype, device=system.device)
    used = None
    for jitter in JITTERS:
        index = failed.nonzero().flatten()
        trial = system[index] + (jitter * scale[index])[:, None, None] * eye
        fixed, trial_info = torch.linalg.cholesky_ex(trial)
        ok = trial_info == 0
        chol[index[ok]] = fixed[ok]
        failed[index[ok]] = False
        used = jitter
        if not bool(failed.any()):
            break
    how = f"a diagonal jitter of up to {used:g} x its mean diagonal"
    if bool(failed.any()):
        index = failed.nonzero().flatten()
        values, vectors = torch.linalg.eigh(system[index])
        floor = (JITTERS[-1] * scale[index])[:, None]
        clipped = (vectors * values.clamp_min(floor).unsqueeze(-2)) @ vectors.transpose(-2, -1)
        chol[index] = torch.linalg.cholesky(0.5 * (clipped + clipped.transpose(-2, -1)))
        how += f", then eigenvalues clipped to {JITTERS[-1]:g} x it"
    warnings.warn(f"GP posterior refresh: the system of {int((info > 0).sum())} run(s) was not "
                  f"numerically positive definite (reward noise far below the kernel's scale "
                  f"on a rank-deficient kernel); factorised with {how}. The posterior is "
                  "exact up to that jitter.", RuntimeWarning, stacklevel=2)
    return chol


def exact_posterior(
    kernel: Tensor, mean: Tensor, noise_variance: Tensor, counts: Tensor, sums: Tensor
) -> tuple[Tensor, Tensor]:
    """The GP posterior over all arms, from scratch, given per-arm counts and reward sums.

    With `C = diag(counts)` and `r = sqrt(counts)`: `M = C^1/2 K C^1/2 + s2 I` (unobserved
    arms give rows of zeros, so they drop out), `L = chol(M)`, `W = L^-1 C^1/2 K`,

        cov = K - W^T W,   mean = m + W^T L^-1 r (ybar - m),

    i.e. the usual `K - K_xX (K_XX + s2 I)^-1 K_Xx` with repeated observations at an arm
    merged into their average (noise `s2 / c`). `M`'s eigenvalues are >= s2, so it is well
    conditioned whatever `K`'s rank.

    Args:
        kernel: `n_arms x n_arms` (shared) or `n_runs x n_arms x n_arms`.
        mean: `n_runs`, the prior constant mean of each run.
        noise_variance: `n_runs`, > 0.
        counts: `n_runs x n_arms`, observations per arm (float).
        sums: `n_runs x n_arms`, the sum of the rewards observed at each arm.

    Returns:
        (`n_runs x n_arms` posterior mean, `n_runs x n_arms x n_arms` posterior covariance,
        exactly symmetric).
    """
    # Memory: every `n_runs x n_arms x n_arms` intermediate is released as soon as it is
    # used, so at most three are alive at once (the engine's `bytes_per_run` budgets for the
    # caller's covariance plus these and the solvers' workspace).
    n_runs, n_arms = counts.shape
    root = counts.sqrt()
    scaled = root.unsqueeze(-1) * kernel  # C^1/2 K
    system = scaled * root.unsqueeze(-2)
    system.diagonal(dim1=-2, dim2=-1).add_(noise_variance.unsqueeze(-1))
    chol = robust_cholesky(system)
    del system
    observed = counts > 0
    safe_root = torch.where(observed, root, 1.0)  # no 0/0 in the unused branch (or its grad)
    centred = torch.where(observed, (sums - counts * mean.unsqueeze(-1)) / safe_root, 0.0)
    rhs = torch.cat([scaled, centred.unsqueeze(-1)], dim=-1)
    del scaled
    solved = torch.linalg.solve_triangular(chol, rhs, upper=False)  # [W, L^-1 b]
    del chol, rhs
    gram = torch.bmm(solved[..., :n_arms].transpose(-2, -1), solved)  # [W^T W, W^T L^-1 b]
    del solved
    posterior_mean = mean.unsqueeze(-1) + gram[..., n_arms]
    covariance = kernel.expand(n_runs, n_arms, n_arms) - gram[..., :n_arms]
    del gram
    covariance = torch.add(covariance, covariance.transpose(-2, -1)).mul_(0.5)
    return posterior_mean, covariance
