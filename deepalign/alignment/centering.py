"""Centered kernel alignment (CKA) of two similarity matrices seen through a mask.

Linear CKA of two full ``n_items x n_items`` kernel matrices K and L is
``<HKH, HLH>_F / (||HKH||_F ||HLH||_F)`` with ``H = I - 11^T / n_items``. Double centring
``K -> HKH`` is the least-squares removal of additive item effects: ``HKH = K - (a 1^T + 1 a^T)``
with ``a`` minimising ``sum_ij (K_ij - a_i - a_j)^2``. That form needs no complete matrix, so
with a mask we centre the same way over the observed entries only:

    a = argmin sum_{(i, j) observed} (K_ij - a_i - a_j)^2,   R_ij = K_ij - a_i - a_j,
    CKA = sum R^K R^L / sqrt(sum (R^K)^2 sum (R^L)^2)      (sums over observed entries).

What this gives (each case is a test):

- every entry observed, diagonal included: exactly the textbook linear CKA;
- complete blocks (diagonal included) that share no item: every block is double-centred on
  its own and the blocks are pooled in one alignment, each weighted by its centred energy,
  i.e. CKA of the blocks stacked as one data set;
- a complete rectangle (train x held-out items): row-and-column centring of the rectangle.

`linear_cka` and `CKALoss` pass the observed pairs of the strict upper triangle (the
diagonal is never used, as in the other measures: self-similarity is 1 by construction and
would only add a shared constant). On a full mask that is linear CKA with the diagonal
treated as unobserved. SpA-Verb's classes overlap (825 verbs, 943 class memberships), so its
mask is one connected, incomplete component: neither per-block CKA nor ``HKH`` applies there,
this definition does. Rejected: filling unobserved entries with 0 before centring (the fake
zeros move every item mean), and averaging per-block CKAs (needs disjoint complete blocks,
and weights small noisy blocks like large ones).

The item effects solve ``A a = b`` with ``A = sum_p (e_i + e_j)(e_i + e_j)^T`` and
``b = sum_p K_p (e_i + e_j)``. ``A`` depends on the mask only and splits by connected
component of the observed-pair graph; see `ItemEffectCentering` for the rank-deficient cases
(bipartite components, items without pairs), where the residual ``R`` is unique all the same.
The residual has ``n_pairs - rank(A)`` degrees of freedom (``rank(A)`` = items with a pair
minus bipartite components). On a sparse pair list most components are trees, which item
effects fit exactly, so CKA rests on the few pairs that close cycles and is noisy (0.16 for
two unrelated random matrices on 1,000 random pairs over 1,420 items); prefer Spearman
there. When item effects explain a matrix exactly its residual is 0 and CKA is NaN.

Dimension names: ``n_items`` items, ``n_pairs`` observed entries (here: any list of
(row, col) entries, diagonal allowed).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.sparse import coo_array
from scipy.sparse.csgraph import breadth_first_order, connected_components
from torch import Tensor


def _null_vector(
    members: np.ndarray, rows: np.ndarray, cols: np.ndarray, in_component: np.ndarray, graph
) -> np.ndarray | None:
    """The null vector of one component's normal matrix, or None when it has full rank.

    ``A_c v = 0`` iff ``v_i + v_j = 0`` for every observed entry (i, j): possible only when the
    component is bipartite (no odd cycle, no diagonal entry), with ``v = +1`` on one side and
    ``-1`` on the other; a lone item without entries has ``v = 1``.
    """
    if members.size == 1:
        return None if np.any(rows == members[0]) else np.ones(1)
    order, predecessors = breadth_first_order(graph, members[0], directed=False)
    side = np.zeros(graph.shape[0], dtype=np.int8)
    for node in order[1:]:  # BFS order: a node's predecessor is coloured before it
        side[node] = 1 - side[predecessors[node]]
    inside = in_component[rows]
    if np.any(side[rows[inside]] == side[cols[inside]]):  # odd cycle or diagonal entry
        return None
    return np.where(side[members] == 0, 1.0, -1.0)


class ItemEffectCentering:
    """Removes least-squares item effects from the observed entries of any matrix.

    Built once per set of observed entries (the mask); calling it is differentiable and costs
    two triangular solves with an ``n_items x n_items`` block-diagonal Cholesky factor.

    The normal matrix ``A`` splits by connected component of the observed-entry graph. A
    component's block is singular only when the component is bipartite or is a lone item
    without entries; we factor ``A_c + v v^T / |v|^2`` for its null vector ``v`` instead. The
    normal equations are consistent and ``b`` is orthogonal to ``v`` exactly (``v_i + v_j = 0``
    on every entry), so the solve returns the minimum-norm item effects.

    Args:
        rows, cols: ``n_pairs`` long tensors, the observed entries (each listed once;
            ``rows == cols`` allowed).
        n_items: number of items.
        dtype: floating dtype of the matrices to centre.
    """

    def __init__(
        self, rows: Tensor, cols: Tensor, n_items: int, dtype: torch.dtype = torch.float64
    ) -> None:
        self.rows = rows
        self.cols = cols
        self.n_items = n_items
        r = rows.detach().cpu().numpy().astype(np.int64)
        c = cols.detach().cpu().numpy().astype(np.int64)
        one = np.ones(r.shape[0], dtype=np.float64)
        # (e_i + e_j)(e_i + e_j)^T adds 1 at (i,i), (j,j), (i,j), (j,i); a diagonal entry: 4.
        normal = coo_array(
            (
                np.concatenate([one, one, one, one]),
                (np.concatenate([r, c, r, c]), np.concatenate([r, c, c, r])),
            ),
            shape=(n_items, n_items),
        ).tocsr()
        n_components, labels = connected_components(normal, directed=False)
        order = np.argsort(labels, kind="stable")  # components become contiguous
        bounds = np.searchsorted(labels[order], np.arange(n_components + 1))
        factor = np.zeros((n_items, n_items), dtype=np.float64)
        in_component = np.zeros(n_items, dtype=bool)
        degree = np.diff(normal.indptr)
        for k in range(n_components):
            lo, hi = bounds[k], bounds[k + 1]
            members = order[lo:hi]
            if hi - lo == 1 and degree[members[0]] == 0:  # item without entries: A_c = 0
                factor[lo, lo] = 1.0
                continue
            block = normal[members][:, members].toarray()
            in_component[members] = True
            null = _null_vector(members, r, c, in_component, normal)
            in_component[members] = False
            if null is not None:
                block += np.outer(null, null) / (null @ null)
            # torch, not numpy: torch honours set_num_threads; numpy's BLAS threads do not.
            factor[lo:hi, lo:hi] = torch.linalg.cholesky(torch.from_numpy(block)).numpy()
        self.order = torch.from_numpy(order).to(rows.device)
        self.factor = torch.from_numpy(factor).to(device=rows.device, dtype=dtype)

    def item_effects(self, values: Tensor) -> Tensor:
        """Least-squares ``a`` (``n_items``) with ``values_p ~ a[rows_p] + a[cols_p]``."""
        rhs = values.new_zeros(self.n_items)
        rhs = rhs.index_add(0, self.rows, values).index_add(0, self.cols, values)
        solved = torch.cholesky_solve(rhs[self.order].unsqueeze(1), self.factor).squeeze(1)
        return torch.empty_like(solved).index_copy(0, self.order, solved)

    def __call__(self, values: Tensor) -> Tensor:
        """Residuals after removing item effects.

        Args:
            values: ``n_pairs`` entries ``K[rows, cols]`` of one matrix (differentiable).

        Returns:
            ``n_pairs`` residuals ``K_p - a[rows_p] - a[cols_p]``.
        """
        effects = self.item_effects(values)
        return values - effects[self.rows] - effects[self.cols]


def cka_from_entries(
    model_values: Tensor, human_values: Tensor, centering: ItemEffectCentering
) -> tuple[Tensor, bool]:
    """Masked linear CKA of two matrices given by their observed entries (differentiable).

    Args:
        model_values, human_values: ``n_pairs`` entries of the two matrices (same dtype).
        centering: `ItemEffectCentering` built for the entries' positions.

    Returns:
        ``(cka, defined)``: a 0-d tensor, and False when a residual is 0 up to rounding
        (item effects explain that matrix exactly, so CKA is undefined; ``cka`` is then
        meaningless but finite).
    """
    model_residual = centering(model_values)
    human_residual = centering(human_values)
    model_energy = (model_residual**2).sum()
    human_energy = (human_residual**2).sum()
    # A residual below ~100 ulp of the entries is rounding noise, not structure.
    floor = (100.0 * torch.finfo(model_values.dtype).eps) ** 2
    defined = bool(model_energy > floor * (model_values**2).sum()) and bool(
        human_energy > floor * (human_values**2).sum()
    )
    denominator = torch.sqrt(
        (model_energy * human_energy).clamp_min(torch.finfo(model_values.dtype).tiny)
    )
    return (model_residual * human_residual).sum() / denominator, defined
