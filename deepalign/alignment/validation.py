"""Shared checks of (model similarities or embeddings, human similarities, mask) inputs.

Measures and losses call the same checks, so a bad input fails the same way everywhere: a
`DataError` naming the argument, what was expected, what came, and the fix.

Dimension names: ``n_items`` items, ``d`` embedding dimension.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from deepalign.errors import DataError

# Symmetry is checked up to this tolerance (float32 matrix products are not always exactly
# symmetric).
_SYMMETRY_RTOL = 1e-5
_SYMMETRY_ATOL = 1e-6


def as_tensor(value: Tensor | np.ndarray, name: str) -> Tensor:
    """Accept a torch tensor or a numpy array; anything else is a `DataError`."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    raise DataError(
        f"'{name}' should be a torch.Tensor or numpy.ndarray but got {type(value).__name__}; "
        f"convert it with torch.as_tensor(...)."
    )


def check_embeddings(embeddings: Tensor) -> int:
    """``embeddings`` must be a finite floating ``n_items x d`` tensor; returns ``n_items``."""
    if embeddings.dim() != 2 or not embeddings.is_floating_point():
        raise DataError(
            f"'embeddings' should be a 2-d floating tensor n_items x d but got shape "
            f"{tuple(embeddings.shape)} and dtype {embeddings.dtype}; stack one row per item."
        )
    if not bool(torch.isfinite(embeddings).all()):
        raise DataError(
            "'embeddings' should be finite but contain NaN/inf; the encoder diverged "
            "(lower the learning rate) or its input was bad."
        )
    return embeddings.shape[0]


def check_square(matrix: Tensor, name: str, n_items: int | None = None) -> int:
    """``matrix`` must be a floating ``n_items x n_items`` tensor; returns ``n_items``."""
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise DataError(
            f"'{name}' should be a square n_items x n_items matrix but got shape "
            f"{tuple(matrix.shape)}; pass the full similarity matrix, not a pair list."
        )
    if n_items is not None and matrix.shape[0] != n_items:
        raise DataError(
            f"'{name}' should be {n_items} x {n_items} (one row per item of the embeddings / "
            f"model similarities) but got {tuple(matrix.shape)}; subset both to the same items."
        )
    if not matrix.is_floating_point():
        raise DataError(
            f"'{name}' should be a floating tensor but got dtype {matrix.dtype}; "
            f"cast it with .double() or .float()."
        )
    return matrix.shape[0]


def check_observed(matrix: Tensor, name: str, observed: Tensor) -> None:
    """``matrix`` must be finite and symmetric on the ``observed`` (off-diagonal) entries."""
    values = matrix[observed]
    if not bool(torch.isfinite(values).all()):
        raise DataError(
            f"'{name}' should be finite on every observed pair but has NaN/inf there; "
            f"set mask False where the similarity is missing."
        )
    if not torch.allclose(values, matrix.T[observed], rtol=_SYMMETRY_RTOL, atol=_SYMMETRY_ATOL):
        raise DataError(
            f"'{name}' should be symmetric on observed pairs but (i, j) != (j, i) somewhere; "
            f"average it with (m + m.T) / 2."
        )


def check_mask(mask: Tensor, n_items: int, first_name: str, min_pairs: int = 2) -> Tensor:
    """``mask`` must be a symmetric bool ``n_items x n_items`` tensor with enough pairs.

    Args:
        mask: True where a pair is observed; the diagonal is ignored.
        n_items: items of the embeddings / model similarities.
        first_name: what ``n_items`` came from, for messages.
        min_pairs: fewest observed off-diagonal pairs accepted.

    Returns:
        ``n_items x n_items`` bool: ``mask`` with the diagonal set False.
    """
    if mask.dtype != torch.bool:
        raise DataError(
            f"'mask' should be a bool tensor (True = observed pair) but got dtype {mask.dtype}; "
            f"pass mask.bool() or the .mask of SimilarityJudgments."
        )
    if tuple(mask.shape) != (n_items, n_items):
        raise DataError(
            f"'mask' should be {n_items} x {n_items} to match '{first_name}' but got "
            f"{tuple(mask.shape)}; subset the mask to the same items."
        )
    if not torch.equal(mask, mask.T):
        raise DataError(
            "'mask' should be symmetric (pair (i, j) observed iff (j, i) is) but it is not; "
            "symmetrise it with mask | mask.T."
        )
    observed = mask & ~torch.eye(n_items, dtype=torch.bool, device=mask.device)
    n_pairs = int(observed.sum().item()) // 2
    if n_pairs < min_pairs:
        raise DataError(
            f"'mask' should mark at least {min_pairs} off-diagonal pairs as observed but "
            f"marks {n_pairs}; pass a mask over more items or pairs."
        )
    return observed
