"""How many directions a kernel matrix spreads its variance over: effective rank, top share.

A kernel that calls every action alike (all ones) puts all its prior variance on one
eigenvector, so a GP with it learns one number for every arm; independent arms (the identity)
spread it evenly over ``n`` eigenvectors. `kernel_spectrum` measures where a kernel sits
between the two from the eigenvalues ``l_i`` of its matrix (negative ones clipped to 0,
``p_i = l_i / sum_j l_j``):

* **effective rank** ``exp(-sum_i p_i log p_i)`` (Roy & Vetterli 2007, "The effective rank:
  a measure of effective dimensionality"), 1 for a rank-1 matrix, ``n`` for the identity;
* **top share** ``max_i l_i / sum_j l_j``, the share of the variance on the top eigenvector
  (``1 / n`` for the identity, 1 for a rank-1 matrix).
"""

from __future__ import annotations

import torch
from torch import Tensor

from deepalign.errors import ConfigError

__all__ = ["NEAR_CONSTANT_TOP_SHARE", "kernel_spectrum"]

NEAR_CONSTANT_TOP_SHARE = 0.9
"""A kernel whose top eigenvector carries more than this share of its variance (its
`kernel_spectrum` top share > 0.9) is flagged *near-constant*: it calls almost every action
alike, so a GP with it behaves much like one with the all-ones reference kernel (for a blend
``a * ones + (1 - a) * I`` over ``n`` actions the top share is ``a + (1 - a) / n``: above 0.9
for ``a > 0.9`` as ``n`` grows). An effect such a kernel shows may come from not exploring
rather than from alignment."""


def kernel_spectrum(matrix: Tensor) -> tuple[Tensor, Tensor]:
    """Effective rank and top-eigenvector share of symmetric PSD kernel matrices.

    Args:
        matrix: ``n x n`` or ``b x n x n`` symmetric kernel matrix (a real floating tensor);
            eigenvalues below 0 (round-off, or an indefinite similarity) are clipped to 0.

    Returns:
        ``(effective_rank, top_share)``, each float64 of shape ``()`` (for ``n x n``) or
        ``b``: ``exp`` of the Shannon entropy of ``p_i = l_i / sum l`` (in ``[1, n]``), and
        ``max l / sum l`` (in ``[1/n, 1]``).

    Raises:
        ConfigError: `matrix` is not ``(b x) n x n``, not real floating, not finite, or has
            no positive eigenvalue (e.g. the zero matrix).
    """
    if not isinstance(matrix, Tensor) or matrix.dim() not in (2, 3) or (
        matrix.shape[-1] != matrix.shape[-2] or matrix.shape[-1] == 0
    ):
        got = tuple(matrix.shape) if isinstance(matrix, Tensor) else type(matrix).__name__
        raise ConfigError(
            f"'matrix' should be a tensor n x n or b x n x n (n >= 1) but got {got}; pass "
            "kernel.full_matrix() or stack several with torch.stack"
        )
    if not matrix.is_floating_point():
        raise ConfigError(
            f"'matrix' should be a real floating tensor but got {matrix.dtype}; use .double()"
        )
    if not bool(torch.isfinite(matrix).all()):
        raise ConfigError("'matrix' should be finite but has NaN or infinite entries")
    symmetric = matrix.to(torch.float64)
    symmetric = (symmetric + symmetric.mT) / 2
    eigenvalues = torch.linalg.eigvalsh(symmetric).clamp_min(0.0)  # ... x n, ascending
    total = eigenvalues.sum(dim=-1)
    if bool((total <= 0).any()):
        raise ConfigError(
            "'matrix' should have a positive eigenvalue but a matrix's eigenvalues are all "
            "<= 0 (e.g. the zero matrix); a kernel needs some prior variance"
        )
    shares = eigenvalues / total.unsqueeze(-1)
    entropy = -torch.special.xlogy(shares, shares).sum(dim=-1)
    return entropy.exp(), shares[..., -1]
