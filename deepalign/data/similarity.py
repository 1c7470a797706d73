"""`SimilarityJudgments`: human similarity judgments over an item set, as a matrix + mask."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from deepalign.data.items import ItemSet
from deepalign.data.validation import check_scale, data_error, normalize_indices
from deepalign.errors import ConfigError

__all__ = ["KINDS", "SimilarityJudgments", "to_unit_similarity"]

KINDS = ("similarity", "distance")


def to_unit_similarity(raw: np.ndarray, kind: str, scale: tuple[float, float]) -> np.ndarray:
    """Map source scores to [0, 1] similarities (1 = most similar).

    ``similarity``: ``(s - lo) / (hi - lo)``; ``distance``: ``(hi - d) / (hi - lo)``, which is
    ``1 - d / max_d`` for the scale ``(0, max_d)``. Works elementwise on any array shape;
    the result is clipped to [0, 1] against rounding.
    """
    lo, hi = scale
    unit = (raw - lo) / (hi - lo) if kind == "similarity" else (hi - raw) / (hi - lo)
    return np.clip(unit, 0.0, 1.0)


def _as_float_matrix(value: object, n: int, name: str) -> Tensor:
    tensor = torch.as_tensor(value, dtype=torch.float64).clone()
    if tensor.shape != (n, n):
        raise data_error(
            "SimilarityJudgments", name, f"an n_items x n_items matrix ({n} x {n})",
            f"shape {tuple(tensor.shape)}", "build the matrix over the dataset's items",
        )
    return tensor


@dataclass(frozen=True, eq=False)
class SimilarityJudgments:
    """Human similarity judgments, normalised to [0, 1] with the source scale kept.

    Args:
        items: the item set the rows and columns refer to.
        matrix: float64 ``n_items x n_items``; 1 = most similar, symmetric, diagonal 1, 0 where
            unobserved.
        mask: bool ``n_items x n_items``; True where a pair was judged; symmetric, diagonal True.
        kind: what the source gave, ``"similarity"`` or ``"distance"`` (declared, never guessed).
        scale: ``(lo, hi)`` of the source scores.
        n_raters: optional float64 ``n_items x n_items``; raters per pair (nan = unknown).
        spread: optional float64 ``n_items x n_items``; rater spread per pair in source units
            (nan = unknown).

    Raises `DataError` when any of these properties does not hold.
    """

    items: ItemSet
    matrix: Tensor
    mask: Tensor
    kind: str
    scale: tuple[float, float]
    n_raters: Tensor | None = None
    spread: Tensor | None = None

    def __post_init__(self) -> None:
        source = "SimilarityJudgments"
        if not isinstance(self.items, ItemSet):
            raise data_error(source, "items", "an ItemSet", type(self.items).__name__,
                             "wrap ids and texts in ItemSet")
        n = len(self.items)
        if self.kind not in KINDS:
            raise ConfigError(
                f"kind: expected 'similarity' or 'distance', got {self.kind!r}. Fix: declare "
                "what the source scores are (higher = more alike is 'similarity')."
            )
        object.__setattr__(self, "scale", check_scale(self.scale, "scale"))
        matrix = _as_float_matrix(self.matrix, n, "matrix")
        mask = torch.as_tensor(self.mask)
        if mask.dtype != torch.bool or mask.shape != (n, n):
            raise data_error(
                source, "mask", f"a bool {n} x {n} tensor",
                f"{mask.dtype} of shape {tuple(mask.shape)}", "pass a bool observed-pairs mask",
            )
        mask = mask.clone()
        # checks in numpy: single-threaded and fast for these sizes on a busy machine
        m, k = matrix.numpy(), mask.numpy()
        if not np.isfinite(m).all():
            raise data_error(source, "matrix", "finite values", "NaN or inf",
                             "put 0 in unobserved cells and mark them False in mask")
        if m.min() < 0 or m.max() > 1:
            raise data_error(source, "matrix", "values in [0, 1]",
                             f"[{float(m.min()):g}, {float(m.max()):g}]",
                             "normalise with to_unit_similarity")
        if not np.array_equal(k, k.T) or not np.array_equal(m, m.T):
            raise data_error(source, "matrix/mask", "symmetric matrices", "asymmetric ones",
                             "average the matrix with its transpose; make mask symmetric")
        if not k.diagonal().all() or not (m.diagonal() == 1).all():
            raise data_error(source, "diagonal", "mask True and matrix 1 on the diagonal",
                             "other values", "set the diagonal (each item is most similar "
                             "to itself)")
        if np.any(m[~k] != 0):
            raise data_error(source, "matrix", "0 where mask is False", "non-zero values",
                             "zero the unobserved cells")
        object.__setattr__(self, "matrix", matrix)
        object.__setattr__(self, "mask", mask)
        for name in ("n_raters", "spread"):
            value = getattr(self, name)
            if value is None:
                continue
            extra = _as_float_matrix(value, n, name)
            e = extra.numpy()
            if not np.array_equal(e, e.T, equal_nan=True):
                raise data_error(source, name, "a symmetric matrix", "an asymmetric one",
                                 "average it with its transpose")
            if np.any(e < 0) or np.any(np.isinf(e)):
                raise data_error(source, name, "non-negative finite values (nan = unknown)",
                                 "negative or infinite values", "correct the values")
            object.__setattr__(self, name, extra)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_pairs(self) -> int:
        """Observed off-diagonal pairs, each unordered pair counted once."""
        return int(np.triu(self.mask.numpy(), k=1).sum())

    def subset(self, indices: Sequence[int]) -> SimilarityJudgments:
        """The judgments among the items at ``indices`` (ints or a bool mask n_items)."""
        positions = torch.tensor(normalize_indices(indices, self.n_items), dtype=torch.long)

        def take(t: Tensor | None) -> Tensor | None:
            return None if t is None else t[positions][:, positions].clone()

        return SimilarityJudgments(
            items=self.items.subset(positions),
            matrix=take(self.matrix),
            mask=take(self.mask),
            kind=self.kind,
            scale=self.scale,
            n_raters=take(self.n_raters),
            spread=take(self.spread),
        )
