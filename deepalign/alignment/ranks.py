"""Exact ranking helpers on float64 numpy vectors (no gradients): average ranks with ties
as `scipy.stats.rankdata`, and the tie-aware pair counts behind Kendall's tau.

Dimension names: ``n_pairs`` values (one per observed pair).
"""

from __future__ import annotations

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ascending ranks 1..n_pairs, ties get the mean of the ranks they span.

    Args:
        values: ``n_pairs`` float array.

    Returns:
        ``n_pairs`` float64 ranks (equal to ``scipy.stats.rankdata(values)``).
    """
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    n = sorted_values.shape[0]
    # Start index of every run of equal values in sorted order.
    new_run = np.empty(n, dtype=bool)
    new_run[0] = True
    np.not_equal(sorted_values[1:], sorted_values[:-1], out=new_run[1:])
    starts = np.flatnonzero(new_run)
    ends = np.append(starts[1:], n)
    # 1-based ranks spanned by a run [start, end) average to (start + 1 + end) / 2.
    run_rank = (starts + 1 + ends) / 2.0
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(run_rank, ends - starts)
    return ranks


def _tied_pair_count(values: np.ndarray) -> int:
    """Number of unordered pairs with equal values."""
    _, counts = np.unique(values, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def _dense_codes(values: np.ndarray) -> np.ndarray:
    """Integer codes 0..k-1 preserving order (equal values share a code)."""
    _, codes = np.unique(values, return_inverse=True)
    return codes.astype(np.int64).reshape(-1)


def _strict_inversions(codes: np.ndarray) -> int:
    """Pairs ``i < j`` with ``codes[i] > codes[j]``, by a vectorised bottom-up merge sort.

    At each level adjacent sorted runs of length ``width`` are merged; for every element of
    a right run, the number of larger elements in its left partner run is found with one
    `searchsorted` over all runs at once (runs are made globally ordered by adding
    ``run_index * span`` to the codes). O(n log^2 n) work, all in numpy.
    """
    n = codes.shape[0]
    current = codes.copy()
    span = int(current.max()) + 1 if n else 1
    position = np.arange(n)
    total = 0
    width = 1
    while width < n:
        block = position // (2 * width)
        in_right = (position % (2 * width)) >= width
        keyed = current + block * span
        left_keys = keyed[~in_right]  # globally sorted: sorted runs, increasing offsets
        right_keys = keyed[in_right]
        right_block = block[in_right]
        not_greater = np.searchsorted(left_keys, right_keys, side="right")
        left_run_end = np.searchsorted(left_keys, (right_block + 1) * span, side="left")
        total += int((left_run_end - not_greater).sum())
        keyed.sort()
        current = keyed - block * span
        width *= 2
    return total


def concordance_difference(x: np.ndarray, y: np.ndarray) -> int:
    """Concordant minus discordant pairs of ``(x, y)``; pairs tied in x or y count as neither.

    Args:
        x, y: ``n_pairs`` float arrays.

    Returns:
        ``n_c - n_d`` over all ``n_pairs * (n_pairs - 1) / 2`` pairs of entries (exact int).
    """
    n = x.shape[0]
    order = np.lexsort((y, x))  # by x, then y: pairs tied in x are never inverted in y
    x_codes = _dense_codes(x)
    y_codes = _dense_codes(y)
    discordant = _strict_inversions(y_codes[order])
    x_ties = _tied_pair_count(x_codes)
    y_ties = _tied_pair_count(y_codes)
    xy_ties = _tied_pair_count(x_codes * (int(y_codes.max()) + 1) + y_codes)
    total = n * (n - 1) // 2
    untied = total - x_ties - y_ties + xy_ties  # = concordant + discordant
    return untied - 2 * discordant
