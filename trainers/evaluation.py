"""Alignment of a model similarity matrix with the human one, per split.

Each split is measured on the sub-matrix of the items its pairs touch (``heldout``: the
held-out items only; ``val``/``train``: the train items; ``fit``: the fit items; ``cross``:
all items), which gives the same numbers as the full matrix with the split's mask and
keeps the per-epoch cost small.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

from deepalign.alignment import alignment_measures, spearman_alignment
from trainers.splits import SPLITS, AlignmentData

MEASURES = ("spearman", "kendall_tau_a", "pearson", "cka")


def _restrict(data: AlignmentData, split: str, model_sim: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Model sub-matrix, human sub-matrix and mask of the items ``split``'s pairs touch."""
    mask = data.masks[split]
    items = mask.any(dim=0).nonzero().squeeze(1)
    sub_mask = mask[items][:, items]
    return model_sim[items][:, items], data.human_sim[items][:, items], sub_mask


def measure_splits(
    model_sim: Tensor,
    data: AlignmentData,
    splits: Iterable[str] = SPLITS,
    spearman_only: bool = False,
) -> dict[str, dict[str, float]]:
    """Alignment measures of ``model_sim`` on each split.

    Args:
        model_sim: ``n_items x n_items`` model similarities (cosine of the embeddings).
        data: the run's items, human matrix and split masks.
        splits: which pair splits to measure (see `trainers.splits.SPLITS`).
        spearman_only: measure Spearman's rho only (the cheap per-epoch monitor).

    Returns:
        split -> measure name (`MEASURES`, or just ``"spearman"``) -> float (NaN where
        undefined).
    """
    model_sim = model_sim.detach().to("cpu", torch.float64)
    results: dict[str, dict[str, float]] = {}
    for split in splits:
        model, human, mask = _restrict(data, split, model_sim)
        if int(torch.triu(mask, diagonal=1).sum()) < 2:
            names = ("spearman",) if spearman_only else MEASURES
            results[split] = {name: math.nan for name in names}
        elif spearman_only:
            results[split] = {"spearman": spearman_alignment(model, human, mask)}
        else:
            results[split] = alignment_measures(model, human, mask)
    return results


def similarity_drift(model_sim: Tensor, reference_sim: Tensor, mask: Tensor) -> dict[str, float]:
    """Root-mean-square change of the similarities from a reference (the pretrained encoder).

    Args:
        model_sim: ``n_items x n_items`` model similarities now.
        reference_sim: ``n_items x n_items`` similarities of the reference encoder.
        mask: bool ``n_items x n_items``, human-observed pairs.

    Returns:
        ``{"all": rms over every pair, "unobserved": rms over pairs without a human judgment}``
        (the second is what only `LocalSimilarityRegularizer` constrains; NaN if none).
    """
    n_items = model_sim.shape[0]
    upper = torch.triu(torch.ones(n_items, n_items, dtype=torch.bool), diagonal=1)
    change = (model_sim.detach().double().cpu() - reference_sim.detach().double().cpu()) ** 2
    unobserved = upper & ~mask.cpu()
    return {
        "all": float(change[upper].mean().sqrt()) if upper.any() else math.nan,
        "unobserved": float(change[unobserved].mean().sqrt()) if unobserved.any() else math.nan,
    }
