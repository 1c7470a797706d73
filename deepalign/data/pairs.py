"""Build `SimilarityJudgments` from judged pairs, validating them in the source's own units."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from deepalign.data.items import ItemSet
from deepalign.data.similarity import SimilarityJudgments, to_unit_similarity
from deepalign.data.validation import check_finite, check_in_scale, data_error

__all__ = ["infer_similarity_scale", "judgments_from_pairs"]

# Two scores of one pair closer than this count as the same score (a harmless repeat).
DUPLICATE_TOLERANCE = 1e-9


def infer_similarity_scale(
    values: np.ndarray, kind: str, source: str
) -> tuple[tuple[float, float], str]:
    """The scale used when none was declared, and a note saying so.

    ``distance``: ``(0, max)``. ``similarity``: ``(0, 1)`` when every score lies in [0, 1],
    else ``(min, max)`` of the scores. Raises `DataError` when that range is empty.
    """
    lo = 0.0 if kind == "distance" else float(values.min())
    hi = float(values.max())
    if kind == "similarity" and lo >= 0.0 and hi <= 1.0:
        lo, hi = 0.0, 1.0
    if not hi > lo:
        raise data_error(
            source, "scores", "scores spanning a range", f"every score equal to {hi:g}",
            "declare the scale (similarity_scale=(lo, hi))",
        )
    return (lo, hi), f"{source}: {kind} scale not declared; used ({lo:g}, {hi:g})"


def judgments_from_pairs(
    items: ItemSet,
    first: np.ndarray,
    second: np.ndarray,
    scores: np.ndarray,
    *,
    kind: str,
    scale: tuple[float, float] | None,
    source: str,
    locate: Callable[[int], str],
    n_raters: np.ndarray | None = None,
    duplicates: str = "error",
    self_pairs: str = "error",
) -> tuple[SimilarityJudgments, list[str]]:
    """Judgments from ``n_pairs`` judged pairs; returns them and notes on what was merged.

    Args:
        items: the item set.
        first, second: int ``n_pairs``; positions of the two items of each pair.
        scores: float64 ``n_pairs``; the source score of each pair.
        kind: ``"similarity"`` or ``"distance"``.
        scale: ``(lo, hi)`` of the source, or None to infer it (see `infer_similarity_scale`).
        source: the file (or object) the pairs came from, for messages.
        locate: pair index -> its place in the source (e.g. ``"line 17"``).
        n_raters: optional float64 ``n_pairs`` (nan = unknown).
        duplicates: ``"error"``: a pair listed twice with different scores raises `DataError`
            (identical repeats are merged); ``"average"``: repeats are averaged and their rater
            counts summed.
        self_pairs: ``"error"`` or ``"drop"`` for a pair of an item with itself.
    """
    first = np.asarray(first, dtype=np.int64)
    second = np.asarray(second, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    n = len(items)
    notes: list[str] = []
    if scores.size == 0:
        raise data_error(source, "pairs", "at least one judged pair", "none",
                         "add pairs (item_a, item_b, score)")
    check_finite(scores, source, locate, "score", "replace the score or drop the pair")
    if n_raters is not None:
        n_raters = np.asarray(n_raters, dtype=np.float64)
        whole = np.isnan(n_raters) | (n_raters == np.round(n_raters))
        bad = np.flatnonzero(np.isinf(n_raters) | (n_raters < 1) | ~whole)
        if bad.size:
            k = int(bad[0])
            raise data_error(source, f"{locate(k)} (n_raters)", "a whole count >= 1: a "
                             "judged pair had at least one rater (empty = unknown)",
                             f"{n_raters[k]:g}", "correct the count, or drop a pair no one "
                             "judged")
    if kind == "distance":
        bad = np.flatnonzero(scores < 0)
        if bad.size:
            k = int(bad[0])
            raise data_error(source, locate(k), "a non-negative distance", f"{scores[k]:g}",
                             "distances are >= 0; if higher means more alike, use "
                             "kind='similarity'")
    if scale is None:
        scale, note = infer_similarity_scale(scores, kind, source)
        notes.append(note)
    else:
        check_in_scale(scores, scale, source, locate, kind)

    same = first == second
    if same.any():
        if self_pairs == "error":
            k = int(np.flatnonzero(same)[0])
            raise data_error(source, locate(k), "two different items",
                             f"item {items.ids[first[k]]!r} paired with itself",
                             "remove the line; an item's similarity to itself is implied")
        notes.append(f"{source}: dropped {int(same.sum())} pair(s) of an item with itself")
        keep = ~same
        first, second, scores = first[keep], second[keep], scores[keep]
        n_raters = None if n_raters is None else n_raters[keep]
        kept_rows = np.flatnonzero(keep)
    else:
        kept_rows = np.arange(scores.size)

    lo_idx, hi_idx = np.minimum(first, second), np.maximum(first, second)
    keys, group, counts = np.unique(lo_idx * n + hi_idx, return_inverse=True, return_counts=True)
    if (counts > 1).any():
        gmax = np.full(keys.size, -np.inf)
        gmin = np.full(keys.size, np.inf)
        np.maximum.at(gmax, group, scores)
        np.minimum.at(gmin, group, scores)
        conflict = np.flatnonzero(gmax - gmin > DUPLICATE_TOLERANCE)
        if duplicates == "error" and conflict.size:
            rows = np.flatnonzero(group == conflict[0])
            a, b = items.ids[lo_idx[rows[0]]], items.ids[hi_idx[rows[0]]]
            raise data_error(
                source, f"{locate(int(kept_rows[rows[1]]))} (pair {a!r}, {b!r})",
                f"one score per pair (first listed at {locate(int(kept_rows[rows[0]]))} with "
                f"{scores[rows[0]]:g})", f"{scores[rows[1]]:g}",
                "keep one line per pair, or average the repeated judgments yourself",
            )
        notes.append(
            f"{source}: {int((counts > 1).sum())} pair(s) listed more than once "
            f"({conflict.size} with different scores): scores averaged"
        )
    mean_scores = np.bincount(group, weights=scores) / counts
    unit = to_unit_similarity(mean_scores, kind, scale)
    rows_i, cols_j = keys // n, keys % n

    matrix = np.zeros((n, n), dtype=np.float64)
    mask = np.zeros((n, n), dtype=bool)
    matrix[rows_i, cols_j] = unit
    matrix[cols_j, rows_i] = unit
    mask[rows_i, cols_j] = True
    mask[cols_j, rows_i] = True
    np.fill_diagonal(matrix, 1.0)
    np.fill_diagonal(mask, True)

    raters = None
    if n_raters is not None:
        summed = np.bincount(group, weights=np.nan_to_num(n_raters, nan=0.0))
        unknown = np.bincount(group, weights=np.isnan(n_raters).astype(np.float64)) > 0
        summed[unknown] = np.nan
        raters_np = np.full((n, n), np.nan)
        raters_np[rows_i, cols_j] = summed
        raters_np[cols_j, rows_i] = summed
        raters = torch.from_numpy(raters_np)
    judgments = SimilarityJudgments(
        items=items, matrix=torch.from_numpy(matrix), mask=torch.from_numpy(mask), kind=kind,
        scale=scale, n_raters=raters,
    )
    return judgments, notes
