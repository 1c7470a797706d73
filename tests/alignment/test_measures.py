"""Alignment measures against scipy, brute force and direct numpy formulas."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from deepalign.alignment import (
    alignment_measures,
    kendall_tau_a,
    linear_cka,
    pearson_alignment,
    spearman_alignment,
)
from deepalign.alignment.centering import ItemEffectCentering, cka_from_entries
from deepalign.errors import DataError


def _symmetric(rng, n, decimals=None):
    a = rng.random((n, n))
    a = (a + a.T) / 2
    if decimals is not None:  # rounding creates many ties
        a = np.round(a, decimals)
    np.fill_diagonal(a, 1.0)
    return a


def _random_mask(rng, n, p):
    upper = np.triu(rng.random((n, n)) < p, 1)
    return upper | upper.T | np.eye(n, dtype=bool)


def _upper(matrix, mask):
    rows, cols = np.nonzero(np.triu(mask, 1))
    return matrix[rows, cols]


def _tau_a_brute_force(x, y):
    total = 0.0
    for i, j in itertools.combinations(range(len(x)), 2):
        total += np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])
    return total / (len(x) * (len(x) - 1) / 2)


CASES = [  # (seed, n_items, model decimals, human decimals, mask density)
    (0, 30, None, None, 0.6),
    (1, 30, 1, 1, 0.5),  # heavy ties in both
    (2, 40, None, 2, 1.0),  # ties in human only, full mask
    (3, 25, 1, None, 0.3),
]


@pytest.mark.parametrize("seed,n,model_dec,human_dec,density", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_rank_and_linear_measures_match_scipy(seed, n, model_dec, human_dec, density, dtype):
    rng = np.random.default_rng(seed)
    model = _symmetric(rng, n, model_dec).astype(dtype)
    human = _symmetric(rng, n, human_dec).astype(dtype)
    mask = _random_mask(rng, n, density)
    x = _upper(model, mask).astype(np.float64)
    y = _upper(human, mask).astype(np.float64)
    assert spearman_alignment(model, human, mask) == pytest.approx(
        stats.spearmanr(x, y).statistic, abs=1e-6
    )
    assert pearson_alignment(
        torch.from_numpy(model), torch.from_numpy(human), torch.from_numpy(mask)
    ) == pytest.approx(stats.pearsonr(x, y).statistic, abs=1e-6)
    tau_a = kendall_tau_a(model, human, mask)
    assert tau_a == pytest.approx(_tau_a_brute_force(x, y), abs=1e-12)
    # scipy gives tau-b = (n_c - n_d) / sqrt((n0 - n_x)(n0 - n_y)); undo its tie correction.
    n0 = len(x) * (len(x) - 1) / 2
    n_x = sum(c * (c - 1) / 2 for c in np.unique(x, return_counts=True)[1])
    n_y = sum(c * (c - 1) / 2 for c in np.unique(y, return_counts=True)[1])
    tau_b = stats.kendalltau(x, y).statistic
    assert tau_a == pytest.approx(tau_b * math.sqrt((n0 - n_x) * (n0 - n_y)) / n0, abs=1e-6)
    for value in (tau_a, spearman_alignment(model, human, mask)):
        assert type(value) is float


def test_kendall_tau_a_large_matches_scipy_derived_value():
    """30,000 pairs (SpA-Verb size) with ties: exact count, fast."""
    rng = np.random.default_rng(5)
    x = np.round(rng.random(30_000), 3)
    y = np.round(x + rng.random(30_000), 2)
    n = 245  # 245 * 244 / 2 = 29,890 pairs
    rows, cols = np.triu_indices(n, 1)
    model = np.zeros((n, n))
    human = np.zeros((n, n))
    model[rows, cols] = model[cols, rows] = x[: rows.size]
    human[rows, cols] = human[cols, rows] = y[: rows.size]
    xs, ys = x[: rows.size], y[: rows.size]
    n0 = xs.size * (xs.size - 1) / 2
    n_x = sum(c * (c - 1) / 2 for c in np.unique(xs, return_counts=True)[1])
    n_y = sum(c * (c - 1) / 2 for c in np.unique(ys, return_counts=True)[1])
    expected = stats.kendalltau(xs, ys).statistic * math.sqrt((n0 - n_x) * (n0 - n_y)) / n0
    mask = np.ones((n, n), dtype=bool)
    assert kendall_tau_a(model, human, mask) == pytest.approx(expected, abs=1e-9)


def _cka_brute_force(model, human, mask):
    """Masked CKA from its definition: least squares over an explicit design matrix."""
    rows, cols = np.nonzero(np.triu(mask, 1))
    design = np.zeros((rows.size, model.shape[0]))
    design[np.arange(rows.size), rows] += 1.0
    design[np.arange(rows.size), cols] += 1.0
    residuals = []
    for matrix in (model, human):
        values = matrix[rows, cols]
        effects = np.linalg.lstsq(design, values, rcond=None)[0]
        residuals.append(values - design @ effects)
    r_model, r_human = residuals
    return float(r_model @ r_human / np.sqrt((r_model @ r_model) * (r_human @ r_human)))


def _mask_kinds(rng, n):
    block = np.arange(n) * 3 // n
    left = np.arange(n) < n // 2
    return {
        "random": _random_mask(rng, n, 0.4),
        "blocks": block[:, None] == block[None, :],
        "bipartite": (left[:, None] != left[None, :]) | np.eye(n, dtype=bool),
        "full": np.ones((n, n), dtype=bool),
    }


@pytest.mark.parametrize("kind", ["random", "blocks", "bipartite", "full"])
def test_cka_matches_brute_force_least_squares(kind):
    rng = np.random.default_rng(11)
    n = 18
    mask = _mask_kinds(rng, n)[kind]
    model = _symmetric(rng, n)
    human = 0.5 * model + _symmetric(rng, n)
    assert linear_cka(model, human, mask) == pytest.approx(
        _cka_brute_force(model, human, mask), abs=1e-9
    )


def test_cka_full_mask_matches_direct_off_diagonal_formula():
    """Complete graph without the diagonal: a_k = (r_k - R / (2m - 2)) / (m - 2)."""
    rng = np.random.default_rng(3)
    m = 25
    features = rng.standard_normal((m, 5))
    model = features @ features.T
    human = model + 3.0 * _symmetric(rng, m)
    residuals = []
    for matrix in (model, human):
        off = matrix - np.diag(np.diag(matrix))
        row_sums = off.sum(axis=1)
        effects = (row_sums - row_sums.sum() / (2 * m - 2)) / (m - 2)
        residual = off - effects[:, None] - effects[None, :]
        np.fill_diagonal(residual, 0.0)
        residuals.append(residual)
    expected = (residuals[0] * residuals[1]).sum() / (
        np.linalg.norm(residuals[0]) * np.linalg.norm(residuals[1])
    )
    assert linear_cka(model, human, np.ones((m, m), dtype=bool)) == pytest.approx(
        expected, abs=1e-10
    )


def _textbook_cka(k, l):
    n = k.shape[0]
    h = np.eye(n) - 1.0 / n
    kc, lc = h @ k @ h, h @ l @ h
    return (kc * lc).sum() / (np.linalg.norm(kc) * np.linalg.norm(lc))


def test_masked_centering_with_every_entry_is_textbook_linear_cka():
    rng = np.random.default_rng(4)
    n = 20
    x, y = rng.standard_normal((n, 6)), rng.standard_normal((n, 3))
    k, l = x @ x.T, y @ y.T + 0.5 * x @ x.T
    rows, cols = (
        t.reshape(-1) for t in torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    )
    centering = ItemEffectCentering(rows, cols, n)
    cka, defined = cka_from_entries(
        torch.from_numpy(k)[rows, cols], torch.from_numpy(l)[rows, cols], centering
    )
    assert defined
    assert cka.item() == pytest.approx(_textbook_cka(k, l), abs=1e-10)


def test_masked_centering_of_complete_blocks_pools_per_block_double_centring():
    rng = np.random.default_rng(6)
    sizes = [7, 12, 5]
    n = sum(sizes)
    x = rng.standard_normal((n, 4))
    k = x @ x.T
    l = k + rng.standard_normal((n, n))
    l = (l + l.T) / 2
    block = np.repeat(np.arange(3), sizes)
    rows, cols = np.nonzero(block[:, None] == block[None, :])  # diagonal included
    centering = ItemEffectCentering(torch.from_numpy(rows), torch.from_numpy(cols), n)
    cka, _ = cka_from_entries(
        torch.from_numpy(k[rows, cols]), torch.from_numpy(l[rows, cols]), centering
    )
    inner = norm_k = norm_l = 0.0
    for b in range(3):
        idx = np.flatnonzero(block == b)
        h = np.eye(idx.size) - 1.0 / idx.size
        kc, lc = h @ k[np.ix_(idx, idx)] @ h, h @ l[np.ix_(idx, idx)] @ h
        inner += (kc * lc).sum()
        norm_k += (kc**2).sum()
        norm_l += (lc**2).sum()
    assert cka.item() == pytest.approx(inner / math.sqrt(norm_k * norm_l), abs=1e-10)


def test_cka_invariances_and_undefined_case():
    rng = np.random.default_rng(8)
    n = 16
    mask = _random_mask(rng, n, 0.5)
    model, human = _symmetric(rng, n), _symmetric(rng, n)
    assert linear_cka(human, human, mask) == pytest.approx(1.0, abs=1e-12)
    effects = rng.standard_normal(n)
    shifted = 3.0 * model + effects[:, None] + effects[None, :]
    assert linear_cka(shifted, human, mask) == pytest.approx(
        linear_cka(model, human, mask), abs=1e-10
    )
    path = np.eye(n, dtype=bool)  # a path graph: item effects fit every pair exactly
    path[np.arange(n - 1), np.arange(1, n)] = path[np.arange(1, n), np.arange(n - 1)] = True
    assert math.isnan(linear_cka(model, human, path))


def test_all_measures_invariant_to_item_permutation_and_ignore_the_diagonal():
    rng = np.random.default_rng(9)
    n = 22
    model, human = _symmetric(rng, n, 2), _symmetric(rng, n, 1)
    mask = _random_mask(rng, n, 0.5)
    before = alignment_measures(model, human, mask)
    perm = rng.permutation(n)
    after = alignment_measures(
        model[np.ix_(perm, perm)], human[np.ix_(perm, perm)], mask[np.ix_(perm, perm)]
    )
    model2, mask2 = model.copy(), mask.copy()
    np.fill_diagonal(model2, -5.0)
    np.fill_diagonal(mask2, False)
    no_diagonal = alignment_measures(model2, human, mask2)
    for key in ("spearman", "kendall_tau_a", "pearson", "cka"):
        assert after[key] == pytest.approx(before[key], abs=1e-12)
        assert no_diagonal[key] == pytest.approx(before[key], abs=1e-12)


def test_alignment_measures_returns_the_four_floats():
    rng = np.random.default_rng(10)
    n = 15
    model, human, mask = _symmetric(rng, n), _symmetric(rng, n), _random_mask(rng, n, 0.6)
    got = alignment_measures(
        torch.from_numpy(model).float(), torch.from_numpy(human), torch.from_numpy(mask)
    )
    assert set(got) == {"spearman", "kendall_tau_a", "pearson", "cka"}
    assert all(type(v) is float for v in got.values())
    model32 = model.astype(np.float32)
    assert got["spearman"] == spearman_alignment(model32, human, mask)
    assert got["kendall_tau_a"] == kendall_tau_a(model32, human, mask)
    assert got["pearson"] == pearson_alignment(model32, human, mask)
    assert got["cka"] == linear_cka(model32, human, mask)


def test_perfect_and_constant_similarities():
    rng = np.random.default_rng(12)
    n = 10
    human, mask = _symmetric(rng, n), _random_mask(rng, n, 0.7)
    monotone = np.exp(3.0 * human)  # strictly increasing map: rank measures are exactly 1
    assert spearman_alignment(monotone, human, mask) == pytest.approx(1.0, abs=1e-12)
    assert kendall_tau_a(monotone, human, mask) == pytest.approx(1.0, abs=1e-12)
    assert spearman_alignment(-human, human, mask) == pytest.approx(-1.0, abs=1e-12)
    constant = np.ones((n, n))
    assert math.isnan(spearman_alignment(constant, human, mask))
    assert math.isnan(pearson_alignment(constant, human, mask))


def _bad_inputs():
    n = 5
    good = np.eye(n) * 0.5 + 0.25
    mask = np.ones((n, n), dtype=bool)
    asym_mask = mask.copy()
    asym_mask[0, 1] = False
    nan_human = good.copy()
    nan_human[1, 2] = nan_human[2, 1] = np.nan
    asym_human = good.copy()
    asym_human[0, 3] = 0.9
    return [
        ((good, good[:4, :4], mask), "'human_sim'"),
        ((good[:, :3], good, mask), "'model_sim'"),
        ((good, good, mask.astype(np.int64)), "'mask'"),
        ((good, good, asym_mask), "symmetric"),
        ((good, good, np.eye(n, dtype=bool)), "at least 2"),
        ((good, nan_human, mask), "finite"),
        ((good, asym_human, mask), "'human_sim' should be symmetric"),
        ((good.tolist(), good, mask), "'model_sim'"),
    ]


@pytest.mark.parametrize("args,message", _bad_inputs())
def test_bad_inputs_raise_data_error_naming_the_argument(args, message):
    for measure in (spearman_alignment, alignment_measures):
        with pytest.raises(DataError, match=message):
            measure(*args)
