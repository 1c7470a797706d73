"""Build `SimilarityJudgments` from a complete square matrix, validating it in source units."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from deepalign.data.items import ItemSet
from deepalign.data.pairs import infer_similarity_scale
from deepalign.data.similarity import SimilarityJudgments, to_unit_similarity
from deepalign.data.validation import check_in_scale, data_error

__all__ = ["judgments_from_matrix"]


def judgments_from_matrix(
    items: ItemSet,
    raw: np.ndarray,
    *,
    kind: str,
    scale: tuple[float, float] | None,
    source: str,
    locate_cell: Callable[[int, int], str],
    items_source: str = "the items",
    symmetry_tolerance: float = 1e-6,
    ignore_diagonal: bool = False,
) -> tuple[SimilarityJudgments, list[str]]:
    """Judgments from a complete ``n_items x n_items`` matrix (row order = item order).

    Checks, in order: 2-D and square; as many rows as items; finite; non-negative (distance);
    on the declared scale; symmetric within ``symmetry_tolerance`` x (hi - lo); the diagonal
    is the row's maximum (similarity) or minimum (distance). Then averages the matrix with
    its transpose, normalises with `to_unit_similarity`, sets the diagonal to 1 and marks
    every pair observed. Returns the judgments and notes (e.g. an inferred scale).

    ``ignore_diagonal=True`` is for surveys that never asked about an item and itself: the
    diagonal is then not read at all (every item is most similar to itself by definition).
    """
    notes: list[str] = []
    if raw.ndim != 2 or raw.shape[0] != raw.shape[1]:
        raise data_error(source, "shape", "a square n_items x n_items matrix",
                         f"shape {raw.shape}", "save one row and one column per item")
    n = len(items)
    if raw.shape[0] != n:
        raise data_error(
            source, "shape", f"{n} x {n}, one row per item of {items_source}",
            f"{raw.shape[0]} x {raw.shape[1]}",
            "use the same items, in the same order, in both files",
        )

    def locate_flat(k: int) -> str:
        return locate_cell(k // n, k % n)

    if ignore_diagonal:
        raw = raw.copy()
        off_diagonal = raw[~np.eye(n, dtype=bool)]
        finite = off_diagonal[np.isfinite(off_diagonal)]
        fill = 0.0 if kind == "distance" else (
            scale[1] if scale is not None else (float(finite.max()) if finite.size else 1.0)
        )
        np.fill_diagonal(raw, fill)
        notes.append(f"{source}: diagonal ignored (ignore_diagonal=True)")

    bad = np.flatnonzero(~np.isfinite(raw))
    if bad.size:
        k = int(bad[0])
        raise data_error(source, locate_flat(k), f"a finite {kind}", f"{raw.flat[k]!r}",
                         "fill the cell; for incomplete judgments use a pairs CSV "
                         "(item_a,item_b,similarity)")
    if kind == "distance":
        bad = np.flatnonzero(raw < 0)
        if bad.size:
            k = int(bad[0])
            raise data_error(source, locate_flat(k), "a non-negative distance",
                             f"{raw.flat[k]:g}", "distances are >= 0; if higher means more "
                             "alike, use kind='similarity'")
    if scale is None:
        scale, note = infer_similarity_scale(raw, kind, source)
        notes.append(note)
    else:
        check_in_scale(raw, scale, source, locate_flat, kind)
    lo, hi = scale
    if not np.isfinite(hi - lo) and np.abs(raw).max() <= _LARGEST:
        raise data_error(source, "similarity_scale", "a scale whose range is a finite number",
                         f"({lo:g}, {hi:g})", "declare the scale the scores were given on "
                         "(e.g. 0..1 or 1..7)")
    if not np.isfinite(hi - lo) or np.abs(raw).max() > _LARGEST:
        k = int(np.argmax(np.abs(raw)))
        raise data_error(source, locate_flat(k), f"a {kind} within +-{_LARGEST:g}",
                         f"{raw.flat[k]:g}", "rescale the matrix (e.g. to 0..1); values this "
                         "large overflow when normalised")
    tolerance = symmetry_tolerance * (hi - lo)
    gap = np.abs(raw - raw.T)
    if gap.max() > tolerance:
        i, j = np.unravel_index(int(np.argmax(gap)), gap.shape)
        raise data_error(
            source, f"{locate_cell(int(i), int(j))} vs {locate_cell(int(j), int(i))}",
            f"a symmetric matrix (difference <= {tolerance:g})",
            f"{raw[i, j]:g} and {raw[j, i]:g}",
            "average the matrix with its transpose, or correct the cell",
        )
    if n > 1 and not ignore_diagonal:
        _check_diagonal(raw, kind, tolerance, source, locate_cell)
    off_diagonal = raw[~np.eye(n, dtype=bool)]
    if n >= 3 and np.all(off_diagonal == off_diagonal[0]):  # 2 items: one pair, always "constant"
        raise data_error(source, "every cell off the diagonal", "judgments that tell some "
                         "pairs apart", f"{off_diagonal[0]:g} everywhere (a constant matrix)",
                         "check that this is the similarity file; a constant matrix holds "
                         "no judgment to align to")
    unit = to_unit_similarity((raw + raw.T) / 2.0, kind, scale)
    matrix = torch.from_numpy(np.ascontiguousarray(unit)).to(torch.float64)
    matrix.fill_diagonal_(1.0)
    mask = torch.ones(n, n, dtype=torch.bool)
    return SimilarityJudgments(items=items, matrix=matrix, mask=mask, kind=kind, scale=scale), notes


#: The largest magnitude a similarity matrix may hold (normalising larger values overflows).
_LARGEST = 1e300


def _check_diagonal(
    raw: np.ndarray, kind: str, tolerance: float, source: str,
    locate_cell: Callable[[int, int], str],
) -> None:
    """Raise when an item is less similar to itself than to another item."""
    off = raw.copy()
    if kind == "similarity":
        np.fill_diagonal(off, -np.inf)
        other = off.argmax(axis=1)
        excess = off.max(axis=1) - np.diagonal(raw)
        expected = "a diagonal >= every other cell of its row (similarity)"
        fix = ("an item is most similar to itself: set the diagonal to the scale maximum, "
               "or pass ignore_diagonal=True if the survey never rated it")
    else:
        np.fill_diagonal(off, np.inf)
        other = off.argmin(axis=1)
        excess = np.diagonal(raw) - off.min(axis=1)
        expected = "a diagonal <= every other cell of its row (distance)"
        fix = "an item is at distance 0 from itself: set the diagonal to 0"
    i = int(np.argmax(excess))
    if excess[i] > tolerance:
        j = int(other[i])
        raise data_error(
            source, locate_cell(i, i), expected,
            f"{raw[i, i]:g} while {locate_cell(i, j)} holds {raw[i, j]:g}", fix,
        )
