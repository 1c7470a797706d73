"""Measured alignment of a kernel matrix, per item split, and kernel normalisation.

Every kernel a study hands the agents is first rescaled to a unit diagonal
(`unit_diagonal`: `K_ij / sqrt(K_ii K_jj)`, a correlation matrix, still PSD), so that all
kernels share the GP's prior variance (the outputscale) and differ only in which items they
call alike. Its alignment is then *measured* on that very matrix (`kernel_alignment`):
Spearman with the reference similarity over the reference's observed pairs, separately for
pairs among personalization items ("train"), among held-out items ("heldout"), between the
two ("cross") and over all observed pairs ("all").
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from deepalign.alignment import spearman_alignment
from deepalign.data import split_pair_masks
from deepalign.errors import DataError

__all__ = ["ALIGNMENT_SPLITS", "kernel_alignment", "unit_diagonal"]

ALIGNMENT_SPLITS = ("train", "heldout", "cross", "all")

_MIN_PAIRS = 3


def unit_diagonal(matrix: Tensor) -> Tensor:
    """`matrix` (`n_items x n_items` or `n_runs x n_items x n_items`, PSD) rescaled to a
    unit diagonal, float64. A zero diagonal entry raises `DataError` (an item with no
    variance cannot be rescaled)."""
    matrix = matrix.to(torch.float64)
    diagonal = matrix.diagonal(dim1=-2, dim2=-1)
    if bool((diagonal <= 0).any()):
        raise DataError(
            "a kernel matrix has a zero or negative diagonal entry, so it cannot be rescaled to "
            "a unit diagonal; repair it first (MatrixKernel clips eigenvalues and adds jitter)."
        )
    root = diagonal.sqrt()
    scaled = matrix / (root.unsqueeze(-1) * root.unsqueeze(-2))
    scaled = 0.5 * (scaled + scaled.transpose(-2, -1))
    scaled.diagonal(dim1=-2, dim2=-1).fill_(1.0)
    return scaled


def kernel_alignment(
    kernel: Tensor, reference: Tensor, mask: Tensor, heldout: Tensor
) -> dict[str, float]:
    """Spearman alignment of `kernel` with `reference` per split of the observed pairs.

    Args:
        kernel: `n_items x n_items` model similarity (the kernel matrix).
        reference: `n_items x n_items` reference (human) similarity.
        mask: bool `n_items x n_items`, True where the reference is observed.
        heldout: bool `n_items`, True for held-out items.

    Returns:
        {"train", "heldout", "cross", "all"} -> Spearman rho; nan where a split has fewer
        than 3 observed pairs or a side is constant.
    """
    off_diagonal = mask & ~torch.eye(mask.shape[0], dtype=torch.bool, device=mask.device)
    masks = dict(split_pair_masks(mask, heldout))
    masks["all"] = off_diagonal
    out = {}
    for split in ALIGNMENT_SPLITS:
        pairs = masks[split]
        if int(pairs.sum()) // 2 < _MIN_PAIRS:
            out[split] = math.nan
            continue
        out[split] = float(spearman_alignment(kernel, reference, pairs))
    return out
