"""Model similarity of embeddings and the observed pairs of a similarity matrix.

Dimension names (as in the package docstring): ``n_items`` items, ``d`` embedding
dimension, ``n_pairs`` observed off-diagonal pairs of the upper triangle.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from deepalign.errors import DataError

# Rows with a norm below this are treated as the zero vector (cosine 0 with everything).
_NORM_EPS = 1e-12


def cosine_similarity_matrix(embeddings: Tensor) -> Tensor:
    """Cosine similarity of every pair of rows.

    Args:
        embeddings: ``n_items x d`` floating tensor.

    Returns:
        ``n_items x n_items`` tensor of cosines in ``[-1, 1]`` (diagonal 1 for non-zero rows),
        same dtype and device as ``embeddings``; differentiable. A zero row has cosine 0 with
        every item, itself included.
    """
    if not isinstance(embeddings, Tensor):
        raise DataError(
            f"'embeddings' should be a torch.Tensor of shape n_items x d but got "
            f"{type(embeddings).__name__}; wrap it with torch.as_tensor(...)."
        )
    if embeddings.dim() != 2 or not embeddings.is_floating_point():
        raise DataError(
            f"'embeddings' should be a 2-d floating tensor n_items x d but got shape "
            f"{tuple(embeddings.shape)} and dtype {embeddings.dtype}; stack one row per item "
            f"and cast with .float()."
        )
    unit = F.normalize(embeddings, p=2.0, dim=1, eps=_NORM_EPS)
    return unit @ unit.T


def observed_pairs(mask: Tensor) -> tuple[Tensor, Tensor]:
    """Row and column indices of the observed pairs of the strict upper triangle.

    Args:
        mask: ``n_items x n_items`` bool tensor, True where a pair is observed (the
            diagonal is ignored).

    Returns:
        ``(rows, cols)``, two ``n_pairs`` long tensors with ``rows < cols``, in row-major order.
    """
    upper = torch.triu(mask, diagonal=1)
    rows, cols = upper.nonzero(as_tuple=True)
    return rows, cols
