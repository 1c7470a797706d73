"""CKA loss: ``1 - CKA`` with masked centring (see `deepalign.alignment.centering`)."""

from __future__ import annotations

import torch
from torch import Tensor

from deepalign.alignment.base import AlignmentLoss
from deepalign.alignment.centering import ItemEffectCentering, cka_from_entries
from deepalign.alignment.similarity import observed_pairs
from deepalign.errors import DataError


class CKALoss(AlignmentLoss):
    """``1 - CKA(model_sim, human_sim)`` over observed off-diagonal pairs; in ``[0, 2]``.

    The same quantity as `linear_cka`, differentiable. Centring needs a Cholesky factor of an
    ``n_items x n_items`` matrix that depends on the mask only; it is built on the first call
    and reused while the mask (and dtype, device) stay the same.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cached_mask: Tensor | None = None
        self._centering: ItemEffectCentering | None = None

    def _centering_for(self, mask: Tensor, dtype: torch.dtype) -> ItemEffectCentering:
        cached = self._cached_mask
        if (
            cached is None
            or self._centering is None
            or cached.device != mask.device
            or self._centering.factor.dtype != dtype
            or cached.shape != mask.shape
            or not torch.equal(cached, mask)
        ):
            rows, cols = observed_pairs(mask)
            self._centering = ItemEffectCentering(rows, cols, mask.shape[0], dtype)
            self._cached_mask = mask.clone()
        return self._centering

    def compute_loss(self, model_sim: Tensor, human_sim: Tensor, mask: Tensor) -> Tensor:
        """See `AlignmentLoss.compute_loss`; returns ``1 - CKA`` (0-d)."""
        centering = self._centering_for(mask, model_sim.dtype)
        rows, cols = centering.rows, centering.cols
        human = human_sim[rows, cols]
        human_residual = centering(human)
        floor = (100.0 * torch.finfo(human.dtype).eps) ** 2
        if not bool((human_residual**2).sum() > floor * (human**2).sum()):
            raise DataError(
                "'human_sim' is fully explained by per-item effects on the observed pairs of "
                "'mask', so CKA is undefined (typical of sparse pair lists where most items "
                "occur in one or two pairs); use PearsonLoss or SoftSpearmanLoss instead."
            )
        cka, _ = cka_from_entries(model_sim[rows, cols], human, centering)
        return 1.0 - cka
