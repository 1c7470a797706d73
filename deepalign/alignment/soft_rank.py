"""Differentiable soft ranks (Blondel, Teboul, Berthet & Djolonga, ICML 2020, "Fast
Differentiable Sorting and Ranking"), quadratic regularisation.

The ascending soft rank of ``theta`` (``n`` values) with strength ``eps`` is the Euclidean
projection of ``theta / eps`` onto the permutahedron of ``rho = (1, ..., n)`` (the convex hull
of all permutations of ``rho``):

    soft_rank(theta) = argmin_{mu in P(rho)} ||mu - theta / eps||^2.

Sort ``z = theta / eps`` decreasingly (``s``) and pair it with ``w = (n, ..., 1)``; then the
projection is ``s - v`` where ``v`` is the decreasing isotonic regression of ``s - w``, found by
pool-adjacent-violators (PAV) in O(n) after the O(n log n) sort. Inside each pooled block
``v`` is the block mean, so the Jacobian with respect to ``s`` is ``I - B`` with ``B`` the
block-averaging matrix, and the backward pass costs O(n).

Behaviour: as ``eps -> 0`` the soft ranks are exactly the hard ranks once every gap between
sorted values exceeds ``eps`` (tied values get their average rank, as
``scipy.stats.rankdata``); as ``eps -> inf`` every value pools into one block and the soft
ranks tend to ``(n + 1) / 2 + (theta - mean(theta)) / eps``. The gradient is non-zero only
inside pooled blocks, i.e. between values closer than about ``eps``.

Dimension names: ``n`` values to rank (``n_pairs`` in the losses), ``b`` rows of a batch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

from deepalign.errors import ConfigError, DataError


def _pav_decreasing(y: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Decreasing isotonic regression of ``y`` by pool-adjacent-violators.

    Returns:
        ``(means, sizes)``: the value and length of each block, in order (the fit is
        ``np.repeat(means, sizes)``).
    """
    sums: list[float] = []
    sizes: list[int] = []
    for value in y:
        block_sum = value
        block_size = 1
        # Pool while the previous block's mean is below this one's (decreasing violated).
        while sums and sums[-1] * block_size < block_sum * sizes[-1]:
            block_sum += sums.pop()
            block_size += sizes.pop()
        sums.append(block_sum)
        sizes.append(block_size)
    size_array = np.asarray(sizes, dtype=np.int64)
    return np.asarray(sums, dtype=np.float64) / size_array, size_array


class _SoftRank(torch.autograd.Function):
    """Soft ranks of each row of a ``b x n`` tensor (see module docstring)."""

    @staticmethod
    def forward(ctx: FunctionCtx, values: Tensor, strength: float) -> Tensor:
        n = values.shape[1]
        z = values.detach().to(torch.float64) / strength
        permutation = torch.argsort(z, dim=1, descending=True, stable=True)
        sorted_z = torch.gather(z, 1, permutation).cpu().numpy()
        weights = np.arange(n, 0, -1, dtype=np.float64)
        ranks = np.empty_like(sorted_z)
        block_ids = np.empty(sorted_z.shape, dtype=np.int64)
        block_sizes = []
        offset = 0
        for row in range(sorted_z.shape[0]):
            means, sizes = _pav_decreasing((sorted_z[row] - weights).tolist())
            ranks[row] = sorted_z[row] - np.repeat(means, sizes)
            # Block ids are unique across rows so one index_add serves the whole batch.
            block_ids[row] = np.repeat(np.arange(offset, offset + sizes.size), sizes)
            block_sizes.append(sizes)
            offset += sizes.size
        sorted_ranks = torch.from_numpy(ranks).to(device=values.device, dtype=values.dtype)
        output = torch.empty_like(sorted_ranks).scatter_(1, permutation, sorted_ranks)
        ctx.save_for_backward(permutation)
        ctx.block_ids = torch.from_numpy(block_ids).to(values.device)
        ctx.block_sizes = torch.from_numpy(np.concatenate(block_sizes)).to(
            device=values.device, dtype=values.dtype
        )
        ctx.strength = strength
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_output: Tensor) -> tuple[Tensor, None]:
        (permutation,) = ctx.saved_tensors
        block_ids = ctx.block_ids
        grad_sorted = torch.gather(grad_output, 1, permutation)
        block_sums = grad_output.new_zeros(ctx.block_sizes.shape[0]).index_add_(
            0, block_ids.reshape(-1), grad_sorted.reshape(-1)
        )
        block_means = (block_sums / ctx.block_sizes)[block_ids]
        grad_z_sorted = grad_sorted - block_means  # (I - B) is symmetric
        grad_z = torch.empty_like(grad_z_sorted).scatter_(1, permutation, grad_z_sorted)
        return grad_z / ctx.strength, None


def soft_rank(values: Tensor, regularization_strength: float = 1.0) -> Tensor:
    """Ascending differentiable ranks (1 = smallest), Blondel et al. (2020), L2 regularised.

    Args:
        values: ``n`` or ``b x n`` floating tensor; each row is ranked on its own.
        regularization_strength: ``eps`` > 0 in the units of ``values``; values closer than
            about ``eps`` share (soft) ranks and gradients, values farther apart get hard
            ranks and no gradient. ``eps -> 0`` gives ``scipy.stats.rankdata`` ranks.

    Returns:
        Tensor of the shape of ``values``: soft ranks in ``[1, n]`` summing to
        ``n (n + 1) / 2`` per row; differentiable (exact backward, O(n) per row).
    """
    if not isinstance(values, Tensor) or not values.is_floating_point():
        raise DataError(
            f"'values' should be a floating torch.Tensor but got "
            f"{getattr(values, 'dtype', type(values).__name__)}; cast it with .float()."
        )
    if values.dim() not in (1, 2) or values.shape[-1] == 0:
        raise DataError(
            f"'values' should be a non-empty 1-d (n) or 2-d (b x n) tensor but got shape "
            f"{tuple(values.shape)}; flatten the values to rank into the last dimension."
        )
    if not bool(torch.isfinite(values).all()):
        raise DataError("'values' should be finite but contain NaN/inf; check their source.")
    if not regularization_strength > 0.0:
        raise ConfigError(
            f"'regularization_strength' should be > 0 but got {regularization_strength}; "
            f"use a small positive value (e.g. 1e-3) for nearly hard ranks."
        )
    if values.dim() == 1:
        return _SoftRank.apply(values.unsqueeze(0), float(regularization_strength)).squeeze(0)
    return _SoftRank.apply(values, float(regularization_strength))
