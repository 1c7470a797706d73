"""Pearson-correlation loss: ``1 - r`` between model and human similarities."""

from __future__ import annotations

import torch
from torch import Tensor

from deepalign.alignment.base import AlignmentLoss
from deepalign.alignment.similarity import observed_pairs


def pearson_correlation(x: Tensor, y: Tensor) -> Tensor:
    """Differentiable Pearson's r of two ``n_pairs`` vectors.

    Returns:
        0-d tensor; 0 when either vector is constant (so its loss is 1, with finite gradient).
    """
    xc = x - x.mean()
    yc = y - y.mean()
    energy = ((xc * xc).sum() * (yc * yc).sum()).clamp_min(torch.finfo(x.dtype).tiny)
    return (xc * yc).sum() / torch.sqrt(energy)


class PearsonLoss(AlignmentLoss):
    """``1 - r`` with r Pearson's correlation over observed pairs; in ``[0, 2]``.

    Invariant to any positive affine map of either similarity, so the cosine range
    ``[-1, 1]`` and the human range ``[0, 1]`` need no reconciling.
    """

    def compute_loss(self, model_sim: Tensor, human_sim: Tensor, mask: Tensor) -> Tensor:
        """See `AlignmentLoss.compute_loss`; returns ``1 - r`` (0-d)."""
        rows, cols = observed_pairs(mask)
        return 1.0 - pearson_correlation(model_sim[rows, cols], human_sim[rows, cols])
