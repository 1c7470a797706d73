"""Keep the model's similarities near a reference model's (gLocal's "local" term)."""

from __future__ import annotations

import torch
from torch import Tensor

from deepalign.alignment.base import AlignmentLoss
from deepalign.alignment.similarity import cosine_similarity_matrix, observed_pairs
from deepalign.errors import ConfigError, DataError


class LocalSimilarityRegularizer(AlignmentLoss):
    """``weight * mean_p (s_p - s_ref_p)^2``: squared drift of cosine similarities.

    ``s`` are the model's cosine similarities, ``s_ref`` those of ``reference_embeddings``
    (the pretrained encoder's embeddings of the same items, in the same order). By default
    the mean runs over all off-diagonal pairs of the items, observed or not: the point is
    to keep the pretrained structure where no human judgment guides the model (gLocal keeps
    it with a contrastive term over nearest neighbours; this is the squared-error form). It
    uses no human judgment, only the reference model's similarities; set
    ``restrict_to_mask=True`` to average over the observed pairs only.

    Args:
        reference_embeddings: ``n_items x d_ref`` (``d_ref`` may differ from the model's
            ``d``); copied, never trained.
        weight: multiplier >= 0.
        restrict_to_mask: average over observed pairs only instead of all pairs.
    """

    def __init__(
        self, reference_embeddings: Tensor, weight: float = 1.0, restrict_to_mask: bool = False
    ) -> None:
        super().__init__()
        if not isinstance(reference_embeddings, Tensor):
            raise DataError(
                f"'reference_embeddings' should be a torch.Tensor n_items x d_ref but got "
                f"{type(reference_embeddings).__name__}; convert it with torch.as_tensor(...)."
            )
        if not weight >= 0.0:
            raise ConfigError(f"'weight' should be >= 0 but got {weight}; try 1.0.")
        reference = cosine_similarity_matrix(reference_embeddings.detach())
        finite = bool(torch.isfinite(reference).all())
        if reference.shape[0] < 2 or not finite:
            raise DataError(
                f"'reference_embeddings' should hold >= 2 finite rows but got shape "
                f"{tuple(reference_embeddings.shape)} (all finite: {finite}); pass the "
                f"pretrained encoder's embeddings of the same items."
            )
        self.weight = float(weight)
        self.restrict_to_mask = bool(restrict_to_mask)
        self.register_buffer("reference_similarity", reference, persistent=False)

    def compute_loss(self, model_sim: Tensor, human_sim: Tensor, mask: Tensor) -> Tensor:
        """See `AlignmentLoss.compute_loss`; ``human_sim`` is not used (0-d result)."""
        n_items = model_sim.shape[0]
        if self.reference_similarity.shape[0] != n_items:
            raise DataError(
                f"'embeddings' should have one row per reference item "
                f"({self.reference_similarity.shape[0]}) but has {n_items}; build the "
                f"regularizer with the reference embeddings of the same items, same order."
            )
        if self.restrict_to_mask:
            rows, cols = observed_pairs(mask)
        else:
            rows, cols = torch.triu_indices(n_items, n_items, offset=1, device=model_sim.device)
        return self._drift(model_sim, rows, cols)

    def _drift(self, model_sim: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
        reference = self.reference_similarity.to(model_sim)[rows, cols]
        return self.weight * ((model_sim[rows, cols] - reference) ** 2).mean()

    def penalty(self, embeddings: Tensor) -> Tensor:
        """The term over every pair of the reference items, no human judgment involved:
        ``embeddings`` (``n_items x d``, the reference items' order) -> 0-d tensor. For
        unlabeled texts (a preservation pool), where there is no mask to pass; every pair
        counts, whatever ``restrict_to_mask`` says."""
        n_items = self.reference_similarity.shape[0]
        if embeddings.dim() != 2 or embeddings.shape[0] != n_items:
            raise DataError(
                f"'embeddings' should be n_items x d with one row per reference item "
                f"({n_items}) but got shape {tuple(embeddings.shape)}; embed the reference "
                "texts in the same order."
            )
        rows, cols = torch.triu_indices(n_items, n_items, offset=1, device=embeddings.device)
        return self._drift(cosine_similarity_matrix(embeddings), rows, cols)
