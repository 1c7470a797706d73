"""Odd-one-out triplet loss (gLocal style, Muttenthaler et al. 2023), with triplets derived
from the human similarity matrix.

For items ``{i, j, k}`` whose three pairs are all observed, the human odd one out is the item
whose two similarities are lowest; equivalently the remaining pair ``(a, b)`` is the most
similar of the three. The model chooses a pair by a softmax over its three cosine
similarities divided by a temperature, and the loss is the cross-entropy of the human
choice:

    loss = mean over triplets of  -log softmax([s_ab, s_a,odd, s_b,odd] / temperature)[0].
"""

from __future__ import annotations

import torch
from torch import Tensor

from deepalign.alignment.base import AlignmentLoss
from deepalign.errors import ConfigError, DataError

# Candidate triples drawn per requested triplet before giving up on filling the batch.
_DRAWS_PER_TRIPLET = 4


class TripletOddOneOutLoss(AlignmentLoss):
    """Cross-entropy of the human odd-one-out choice under the model's softmax choice.

    Each call samples ``n_triplets`` observed triples (with replacement): a pair ``(i, j)``
    uniformly from the observed pairs, then ``k`` uniformly from ``i``'s observed partners,
    kept when ``(j, k)`` is observed too and the human matrix has a unique most similar pair
    (exact ties are skipped). Sampling uses the module's own generator, seeded by ``seed``
    (so a run is deterministic and consecutive calls see fresh triplets), or the
    ``generator`` passed to `forward`. The generator state is not saved in ``state_dict``.

    Args:
        n_triplets: triplets sampled per call.
        temperature: softmax temperature on cosine similarities (> 0).
        seed: seed of the module's generator.
    """

    min_pairs = 3

    def __init__(self, n_triplets: int = 4096, temperature: float = 0.1, seed: int = 0) -> None:
        super().__init__()
        if n_triplets < 1:
            raise ConfigError(f"'n_triplets' should be >= 1 but got {n_triplets}; try 4096.")
        if not temperature > 0.0:
            raise ConfigError(f"'temperature' should be > 0 but got {temperature}; try 0.1.")
        self.n_triplets = int(n_triplets)
        self.temperature = float(temperature)
        self.seed = int(seed)
        self.generator = torch.Generator().manual_seed(self.seed)

    def forward(
        self,
        embeddings: Tensor,
        human_sim: Tensor,
        mask: Tensor,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """As `AlignmentLoss.forward`; ``generator`` (CPU) overrides the module's own."""
        model_sim, human, observed = self.prepare(embeddings, human_sim, mask)
        triplets = self.sample_triplets(
            human, observed, generator if generator is not None else self.generator
        )
        return self.triplet_loss(model_sim, triplets)

    def compute_loss(self, model_sim: Tensor, human_sim: Tensor, mask: Tensor) -> Tensor:
        """See `AlignmentLoss.compute_loss`; samples with the module's generator."""
        triplets = self.sample_triplets(human_sim, mask, self.generator)
        return self.triplet_loss(model_sim, triplets)

    def sample_triplets(
        self, human_sim: Tensor, mask: Tensor, generator: torch.Generator
    ) -> Tensor:
        """Draw triplets with the human answer.

        Args:
            human_sim: ``n_items x n_items``.
            mask: ``n_items x n_items`` bool, symmetric, diagonal False.
            generator: CPU generator to draw with.

        Returns:
            ``n_triplets x 3`` long tensor ``(a, b, odd)`` on ``mask``'s device: ``(a, b)`` is
            the human's most similar pair. Fewer rows only if observed triples are rare.
        """
        observed = mask.cpu()
        human = human_sim.detach().cpu()
        rows, cols = torch.triu(observed, diagonal=1).nonzero(as_tuple=True)
        degree = observed.sum(dim=1)
        offsets = torch.cumsum(degree, 0) - degree
        partners = observed.nonzero(as_tuple=True)[1]  # row-major: partners of 0, then 1, ...
        n_draws = _DRAWS_PER_TRIPLET * self.n_triplets
        pick = torch.randint(rows.numel(), (n_draws,), generator=generator)
        i, j = rows[pick], cols[pick]
        step = torch.rand(n_draws, generator=generator, dtype=torch.float64) * degree[i]
        k = partners[offsets[i] + step.long().clamp_max(degree[i] - 1)]
        keep = observed[j, k]  # k != i (diagonal False); k == j fails since (j, j) is False
        i, j, k = i[keep], j[keep], k[keep]
        sims = torch.stack([human[i, j], human[i, k], human[j, k]], dim=1)
        top2 = sims.topk(2, dim=1).values
        unique = top2[:, 0] > top2[:, 1]
        i, j, k, best = i[unique], j[unique], k[unique], sims[unique].argmax(dim=1)
        if i.numel() == 0:
            raise DataError(
                "'mask' should contain triples of items whose three pairs are all observed "
                "(with a unique most similar pair) but none was found; the odd-one-out loss "
                "needs such triples: use PearsonLoss or SoftSpearmanLoss on sparse pair lists."
            )
        # best 0: (i, j) most similar, k odd; 1: (i, k), j odd; 2: (j, k), i odd.
        a = torch.where(best == 2, j, i)
        b = torch.where(best == 0, j, k)
        odd = torch.where(best == 0, k, torch.where(best == 1, j, i))
        triplets = torch.stack([a, b, odd], dim=1)[: self.n_triplets]
        return triplets.to(mask.device)

    def triplet_loss(self, model_sim: Tensor, triplets: Tensor) -> Tensor:
        """Mean cross-entropy of the human choice.

        Args:
            model_sim: ``n_items x n_items`` model similarities.
            triplets: ``n_triplets x 3`` long ``(a, b, odd)``.

        Returns:
            0-d tensor.
        """
        a, b, odd = triplets.unbind(dim=1)
        logits = torch.stack([model_sim[a, b], model_sim[a, odd], model_sim[b, odd]], dim=1)
        logits = logits / self.temperature
        return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()
