"""Alignment measures: how well a model similarity matrix agrees with the human one.

Every measure compares the two matrices on the observed pairs of the strict upper
triangle (``mask`` True, diagonal never used), in float64, and returns a Python float.
Inputs may be torch tensors or numpy arrays, float32 or float64.

- ``spearman_alignment``: Spearman's rho (the paper's measure), ties get average ranks;
  equals ``scipy.stats.spearmanr``.
- ``kendall_tau_a``: Kendall's tau-a = (concordant - discordant) / (n_pairs (n_pairs - 1) / 2);
  pairs tied in either matrix count as neither (so ties pull tau-a toward 0, unlike scipy's
  tau-b). Exact, O(n_pairs log^2 n_pairs).
- ``pearson_alignment``: Pearson's r; equals ``scipy.stats.pearsonr``.
- ``linear_cka``: linear centred kernel alignment with masked centring (see
  `deepalign.alignment.centering`): additive item effects are removed by least squares over
  the observed pairs (the masked form of double centring ``HKH``), then CKA is the cosine of
  the two residuals over those pairs. Time and memory: one ``n_items x n_items`` Cholesky.

A measure that is undefined (constant similarities; for CKA, similarities fully explained by
per-item effects) is NaN, as in scipy.

Dimension names: ``n_items`` items, ``n_pairs`` observed off-diagonal pairs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from deepalign.alignment.centering import ItemEffectCentering, cka_from_entries
from deepalign.alignment.ranks import average_ranks, concordance_difference
from deepalign.alignment.similarity import observed_pairs
from deepalign.alignment.validation import (
    as_tensor,
    check_mask,
    check_observed,
    check_square,
)

ArrayLike = Tensor | np.ndarray


def _pairs(
    model_sim: ArrayLike, human_sim: ArrayLike, mask: ArrayLike
) -> tuple[np.ndarray, np.ndarray, Tensor, Tensor, int]:
    """Validate; return the observed upper-triangle entries (float64) and their positions."""
    model = as_tensor(model_sim, "model_sim").detach()
    human = as_tensor(human_sim, "human_sim").detach().to(model.device)
    observed = as_tensor(mask, "mask").to(model.device)
    n_items = check_square(model, "model_sim")
    check_square(human, "human_sim", n_items)
    off_diagonal = check_mask(observed, n_items, "model_sim")
    check_observed(human, "human_sim", off_diagonal)
    check_observed(model, "model_sim", off_diagonal)
    rows, cols = observed_pairs(off_diagonal)
    x = model[rows, cols].double().cpu().numpy()
    y = human[rows, cols].double().cpu().numpy()
    return x, y, rows.cpu(), cols.cpu(), n_items


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    xc = x - x.mean()
    yc = y - y.mean()
    # Elementwise sums, not BLAS dot products: no BLAS threads on a shared machine.
    denominator = math.sqrt(float((xc * xc).sum()) * float((yc * yc).sum()))
    if denominator == 0.0:
        return math.nan
    return float(np.clip(float((xc * yc).sum()) / denominator, -1.0, 1.0))


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    return _pearson(average_ranks(x), average_ranks(y))


def _kendall_tau_a(x: np.ndarray, y: np.ndarray) -> float:
    n = x.shape[0]
    return concordance_difference(x, y) / (n * (n - 1) / 2)


def _cka(x: np.ndarray, y: np.ndarray, rows: Tensor, cols: Tensor, n_items: int) -> float:
    centering = ItemEffectCentering(rows, cols, n_items)
    cka, defined = cka_from_entries(torch.from_numpy(x), torch.from_numpy(y), centering)
    return float(cka) if defined else math.nan


def spearman_alignment(model_sim: ArrayLike, human_sim: ArrayLike, mask: ArrayLike) -> float:
    """Spearman's rho between model and human similarities over observed pairs.

    Args:
        model_sim: ``n_items x n_items`` model similarities (e.g. `cosine_similarity_matrix`).
        human_sim: ``n_items x n_items`` human similarities.
        mask: ``n_items x n_items`` bool, symmetric, True where the pair is observed.

    Returns:
        rho in [-1, 1] over the ``n_pairs`` observed upper-triangle pairs (NaN if constant).
    """
    x, y, _, _, _ = _pairs(model_sim, human_sim, mask)
    return _spearman(x, y)


def kendall_tau_a(model_sim: ArrayLike, human_sim: ArrayLike, mask: ArrayLike) -> float:
    """Kendall's tau-a between model and human similarities over observed pairs.

    Args and shapes as in `spearman_alignment`. Returns tau-a in [-1, 1].
    """
    x, y, _, _, _ = _pairs(model_sim, human_sim, mask)
    return _kendall_tau_a(x, y)


def pearson_alignment(model_sim: ArrayLike, human_sim: ArrayLike, mask: ArrayLike) -> float:
    """Pearson's r between model and human similarities over observed pairs.

    Args and shapes as in `spearman_alignment`. Returns r in [-1, 1] (NaN if constant).
    """
    x, y, _, _, _ = _pairs(model_sim, human_sim, mask)
    return _pearson(x, y)


def linear_cka(model_sim: ArrayLike, human_sim: ArrayLike, mask: ArrayLike) -> float:
    """Linear CKA of model and human similarity matrices with masked centring.

    Args and shapes as in `spearman_alignment`. Returns CKA in [-1, 1] (NaN if undefined);
    see `deepalign.alignment.centering` for the definition under a mask.
    """
    x, y, rows, cols, n_items = _pairs(model_sim, human_sim, mask)
    return _cka(x, y, rows, cols, n_items)


def alignment_measures(
    model_sim: ArrayLike, human_sim: ArrayLike, mask: ArrayLike
) -> dict[str, float]:
    """All four measures from one validation pass.

    Args and shapes as in `spearman_alignment`.

    Returns:
        ``{"spearman", "kendall_tau_a", "pearson", "cka"}`` -> float.
    """
    x, y, rows, cols, n_items = _pairs(model_sim, human_sim, mask)
    return {
        "spearman": _spearman(x, y),
        "kendall_tau_a": _kendall_tau_a(x, y),
        "pearson": _pearson(x, y),
        "cka": _cka(x, y, rows, cols, n_items),
    }
