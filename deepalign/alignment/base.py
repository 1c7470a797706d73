"""The shared shape of every alignment loss: the public `forward` validates, a small
`compute_loss` hook computes.

Dimension names: ``n_items`` items, ``d`` embedding dimension, ``n_pairs`` observed
off-diagonal pairs of the upper triangle.
"""

from __future__ import annotations

from torch import Tensor, nn

from deepalign.alignment.similarity import cosine_similarity_matrix
from deepalign.alignment.validation import (
    check_embeddings,
    check_mask,
    check_observed,
    check_square,
)
from deepalign.errors import DataError


class AlignmentLoss(nn.Module):
    """Base class of the alignment losses.

    ``forward(embeddings, human_sim, mask)`` checks the inputs, turns the embeddings into the
    model similarity matrix (`cosine_similarity_matrix`), casts the human matrix to its dtype
    and device, drops the diagonal from the mask, and calls `compute_loss`. A new loss
    overrides `compute_loss` only.
    """

    #: Fewest observed off-diagonal pairs a subclass accepts.
    min_pairs: int = 2

    def forward(self, embeddings: Tensor, human_sim: Tensor, mask: Tensor) -> Tensor:
        """Loss of the model's similarities against the human ones.

        Args:
            embeddings: ``n_items x d`` floating (the model's output for the items).
            human_sim: ``n_items x n_items`` human similarities, symmetric on observed pairs.
            mask: ``n_items x n_items`` bool, symmetric, True where a pair is observed; the
                diagonal is ignored.

        Returns:
            0-d tensor in the dtype of ``embeddings``, differentiable in ``embeddings``.
        """
        model_sim, human, observed = self.prepare(embeddings, human_sim, mask)
        return self.compute_loss(model_sim, human, observed)

    def prepare(
        self, embeddings: Tensor, human_sim: Tensor, mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Validate and normalise the inputs of `forward`.

        Returns:
            ``(model_sim, human_sim, mask)``: ``n_items x n_items`` cosine similarities;
            the human matrix in their dtype and device; the mask on that device with the
            diagonal set False.
        """
        for name, value in (("embeddings", embeddings), ("human_sim", human_sim), ("mask", mask)):
            if not isinstance(value, Tensor):
                raise DataError(
                    f"'{name}' should be a torch.Tensor but got {type(value).__name__}; "
                    f"convert it with torch.as_tensor(...)."
                )
        device = embeddings.device
        human_sim = human_sim.to(device)
        mask = mask.to(device)
        n_items = check_embeddings(embeddings)
        check_square(human_sim, "human_sim", n_items)
        observed = check_mask(mask, n_items, "embeddings", self.min_pairs)
        check_observed(human_sim, "human_sim", observed)
        model_sim = cosine_similarity_matrix(embeddings)
        return model_sim, human_sim.to(model_sim.dtype), observed

    def compute_loss(self, model_sim: Tensor, human_sim: Tensor, mask: Tensor) -> Tensor:
        """The hook a loss implements.

        Args:
            model_sim: ``n_items x n_items`` cosine similarities (differentiable).
            human_sim: ``n_items x n_items``, same dtype and device.
            mask: ``n_items x n_items`` bool, symmetric, diagonal False.

        Returns:
            0-d tensor.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement compute_loss")
