"""Mean squared error between model cosine similarities and (mapped) human similarities."""

from __future__ import annotations

from torch import Tensor

from deepalign.alignment.base import AlignmentLoss
from deepalign.alignment.similarity import observed_pairs
from deepalign.errors import ConfigError


class SimilarityMSELoss(AlignmentLoss):
    """``mean_p (s_p - (scale * h_p + offset))^2`` over observed pairs ``p``.

    ``s`` is the model's cosine similarity in ``[-1, 1]``, ``h`` the human similarity in
    ``[0, 1]``. The map is fixed; by default ``target = h``: human 1 (most alike) is cosine 1
    (same direction) and human 0 (least alike) is cosine 0 (orthogonal). So the model's
    similarity matrix, used as a GP kernel, is trained toward the human matrix itself, on its
    absolute scale. Two alternatives were rejected:

    - a closed-form least-squares affine fit per call (scale-free) makes the minimum equal to
      ``var(h) (1 - r^2)``: zero at ``r = -1`` as at ``r = +1``, so it cannot tell aligned
      from anti-aligned; use `PearsonLoss` for a scale-free loss;
    - ``target = 2h - 1`` asks many pairs for negative cosines, but ``n_items`` unit vectors
      have mean pairwise cosine at least ``-1 / (n_items - 1)``, so it is unreachable.

    Args:
        scale: multiplies the human similarity in the target.
        offset: added to the target.
    """

    def __init__(self, scale: float = 1.0, offset: float = 0.0) -> None:
        super().__init__()
        if not scale > 0.0:
            raise ConfigError(
                f"'scale' should be > 0 (higher human similarity = higher target cosine) but "
                f"got {scale}; use scale=1.0, offset=0.0 to compare with human similarity as is."
            )
        self.scale = float(scale)
        self.offset = float(offset)

    def compute_loss(self, model_sim: Tensor, human_sim: Tensor, mask: Tensor) -> Tensor:
        """See `AlignmentLoss.compute_loss`; returns the mean squared error (0-d)."""
        rows, cols = observed_pairs(mask)
        target = self.scale * human_sim[rows, cols] + self.offset
        return ((model_sim[rows, cols] - target) ** 2).mean()
