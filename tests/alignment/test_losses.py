"""Every alignment loss: a brute-force reference on a tiny case, a float64 gradcheck, and
invariance to the order of the items."""

import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from deepalign.alignment import (
    AlignmentLoss,
    CKALoss,
    LocalSimilarityRegularizer,
    PearsonLoss,
    SimilarityMSELoss,
    SoftSpearmanLoss,
    TripletOddOneOutLoss,
)
from deepalign.errors import ConfigError, DataError

N_ITEMS = 8


def _tiny(seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(N_ITEMS, 3, generator=g, dtype=dtype)
    human = torch.rand(N_ITEMS, N_ITEMS, generator=g, dtype=torch.float64)
    human = (human + human.T) / 2
    human.fill_diagonal_(1.0)
    upper = torch.triu(torch.rand(N_ITEMS, N_ITEMS, generator=g) < 0.8, diagonal=1)
    mask = upper | upper.T | torch.eye(N_ITEMS, dtype=torch.bool)
    return embeddings, human, mask


def _pairs(mask):
    return [(i, j) for i in range(N_ITEMS) for j in range(i + 1, N_ITEMS) if mask[i, j]]


def _cos(e, i, j):
    a, b = e[i].tolist(), e[j].tolist()
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _pearson_loop(x, y):
    mx, my = sum(x) / len(x), sum(y) / len(y)
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy)


# ---------------------------------------------------------------- reference values


def test_mse_matches_loop():
    e, h, m = _tiny()
    pairs = _pairs(m)
    for scale, offset in ((1.0, 0.0), (2.0, -1.0)):
        expected = sum(
            (_cos(e, i, j) - (scale * h[i, j].item() + offset)) ** 2 for i, j in pairs
        ) / len(pairs)
        got = SimilarityMSELoss(scale, offset)(e, h, m)
        assert got.item() == pytest.approx(expected, abs=1e-12)


def test_mse_is_zero_when_cosines_equal_human_similarity():
    e, _, m = _tiny()
    unit = e / e.norm(dim=1, keepdim=True)
    assert SimilarityMSELoss()(e, unit @ unit.T, m).item() == pytest.approx(0.0, abs=1e-12)


def test_pearson_matches_loop_and_scipy():
    e, h, m = _tiny()
    pairs = _pairs(m)
    x = [_cos(e, i, j) for i, j in pairs]
    y = [h[i, j].item() for i, j in pairs]
    got = PearsonLoss()(e, h, m).item()
    assert got == pytest.approx(1.0 - _pearson_loop(x, y), abs=1e-12)
    assert got == pytest.approx(1.0 - stats.pearsonr(x, y).statistic, abs=1e-12)


def _soft_rank_reference(values, eps):
    """Blondel et al.: s = sort(values / eps) decreasing; soft ranks = s - antitonic(s - w)."""
    z = np.asarray(values) / eps
    order = np.argsort(-z, kind="stable")
    s = z[order]
    w = np.arange(len(z), 0, -1, dtype=np.float64)
    primal = s - optimize.isotonic_regression(s - w, increasing=False).x
    out = np.empty_like(primal)
    out[order] = primal
    return out


@pytest.mark.parametrize("strength", [0.3, 3.0, 30.0])
def test_soft_spearman_matches_independent_soft_rank(strength):
    e, h, m = _tiny()
    pairs = _pairs(m)
    x = np.array([_cos(e, i, j) for i, j in pairs])
    y = np.array([h[i, j].item() for i, j in pairs])
    scaled = (x - x.mean()) / x.std(ddof=1) * len(x)
    ranks = _soft_rank_reference(scaled, strength)
    expected = 1.0 - _pearson_loop(list(ranks), list(stats.rankdata(y)))
    got = SoftSpearmanLoss(strength)(e, h, m).item()
    assert got == pytest.approx(expected, abs=1e-10)


def test_soft_spearman_limits_are_spearman_and_pearson():
    e, h, m = _tiny()
    h = torch.round(h * 4) / 4  # human ties: ranks must average like scipy
    pairs = _pairs(m)
    x = [_cos(e, i, j) for i, j in pairs]
    y = [h[i, j].item() for i, j in pairs]
    hard = SoftSpearmanLoss(1e-6)(e, h, m).item()
    assert hard == pytest.approx(1.0 - stats.spearmanr(x, y).statistic, abs=1e-10)
    smooth = SoftSpearmanLoss(1e6)(e, h, m).item()
    assert smooth == pytest.approx(1.0 - stats.pearsonr(x, stats.rankdata(y)).statistic, abs=1e-6)


def test_triplet_sampling_follows_the_human_odd_one_out():
    e, h, m = _tiny()
    loss = TripletOddOneOutLoss(n_triplets=300, temperature=0.5, seed=3)
    observed = m & ~torch.eye(N_ITEMS, dtype=torch.bool)
    triplets = loss.sample_triplets(h, observed, torch.Generator().manual_seed(3))
    assert triplets.shape == (300, 3)
    for a, b, odd in triplets.tolist():
        assert len({a, b, odd}) == 3
        assert observed[a, b] and observed[a, odd] and observed[b, odd]
        # the odd one out is the item whose two similarities are lowest
        totals = {a: h[a, b] + h[a, odd], b: h[a, b] + h[b, odd], odd: h[a, odd] + h[b, odd]}
        assert min(totals, key=totals.get) == odd
    again = loss.sample_triplets(h, observed, torch.Generator().manual_seed(3))
    assert torch.equal(triplets, again)  # deterministic given the generator
    other = loss.sample_triplets(h, observed, torch.Generator().manual_seed(4))
    assert not torch.equal(triplets, other)


def test_triplet_loss_matches_loop_over_its_triplets():
    e, h, m = _tiny()
    loss = TripletOddOneOutLoss(n_triplets=50, temperature=0.3)
    observed = m & ~torch.eye(N_ITEMS, dtype=torch.bool)
    triplets = loss.sample_triplets(h, observed, torch.Generator().manual_seed(0))
    expected = 0.0
    for a, b, odd in triplets.tolist():
        logits = [_cos(e, a, b) / 0.3, _cos(e, a, odd) / 0.3, _cos(e, b, odd) / 0.3]
        expected -= math.log(math.exp(logits[0]) / sum(math.exp(v) for v in logits))
    expected /= len(triplets)
    got = loss(e, h, m, generator=torch.Generator().manual_seed(0))
    assert got.item() == pytest.approx(expected, abs=1e-12)


def test_triplet_loss_is_log3_when_the_model_cannot_choose():
    _, h, m = _tiny()
    same = torch.ones(N_ITEMS, 4, dtype=torch.float64)  # every cosine is 1
    got = TripletOddOneOutLoss(n_triplets=64)(same, h, m)
    assert got.item() == pytest.approx(math.log(3.0), abs=1e-12)


def test_triplet_module_generator_gives_fresh_but_reproducible_batches():
    e, h, m = _tiny()
    first, second = TripletOddOneOutLoss(32, seed=7), TripletOddOneOutLoss(32, seed=7)
    a1, a2 = first(e, h, m), first(e, h, m)
    b1, b2 = second(e, h, m), second(e, h, m)
    assert a1.item() == b1.item() and a2.item() == b2.item()
    assert a1.item() != a2.item()


def test_triplet_needs_observed_triangles():
    e, h, _ = _tiny()
    path = torch.eye(N_ITEMS, dtype=torch.bool)
    idx = torch.arange(N_ITEMS - 1)
    path[idx, idx + 1] = path[idx + 1, idx] = True
    with pytest.raises(DataError, match="triples"):
        TripletOddOneOutLoss()(e, h, path)


def _cka_brute_force(e, h, m):
    pairs = _pairs(m)
    design = np.zeros((len(pairs), N_ITEMS))
    for p, (i, j) in enumerate(pairs):
        design[p, i] += 1.0
        design[p, j] += 1.0
    residuals = []
    for values in ([_cos(e, i, j) for i, j in pairs], [h[i, j].item() for i, j in pairs]):
        values = np.array(values)
        residuals.append(values - design @ np.linalg.lstsq(design, values, rcond=None)[0])
    r1, r2 = residuals
    return float(r1 @ r2 / math.sqrt((r1 @ r1) * (r2 @ r2)))


def test_cka_loss_matches_brute_force_and_caches_per_mask():
    e, h, m = _tiny()
    loss = CKALoss()
    assert loss(e, h, m).item() == pytest.approx(1.0 - _cka_brute_force(e, h, m), abs=1e-10)
    first = loss._centering
    loss(e * 2.0, h, m)
    assert loss._centering is first  # same mask: factor reused
    e2, h2, m2 = _tiny(seed=1)
    assert loss(e2, h2, m2).item() == pytest.approx(1.0 - _cka_brute_force(e2, h2, m2), abs=1e-10)
    assert loss._centering is not first


def test_cka_loss_refuses_a_mask_where_cka_is_undefined():
    e, h, _ = _tiny()
    path = torch.eye(N_ITEMS, dtype=torch.bool)
    idx = torch.arange(N_ITEMS - 1)
    path[idx, idx + 1] = path[idx + 1, idx] = True
    with pytest.raises(DataError, match="CKA is undefined"):
        CKALoss()(e, h, path)


@pytest.mark.parametrize("restrict", [False, True])
def test_regularizer_matches_loop(restrict):
    e, h, m = _tiny()
    reference = torch.randn(N_ITEMS, 5, dtype=torch.float64)
    pairs = (
        _pairs(m) if restrict else [(i, j) for i in range(N_ITEMS) for j in range(i + 1, N_ITEMS)]
    )
    expected = (
        0.7 * sum((_cos(e, i, j) - _cos(reference, i, j)) ** 2 for i, j in pairs) / len(pairs)
    )
    loss = LocalSimilarityRegularizer(reference, weight=0.7, restrict_to_mask=restrict)
    assert loss(e, h, m).item() == pytest.approx(expected, abs=1e-12)
    assert loss(reference, h, m).item() == pytest.approx(0.0, abs=1e-12)
    assert LocalSimilarityRegularizer(reference, 0.0)(e, h, m).item() == 0.0


# ---------------------------------------------------------------- gradients, invariance

ALL_LOSSES = [
    pytest.param(lambda: SimilarityMSELoss(), id="mse"),
    pytest.param(lambda: PearsonLoss(), id="pearson"),
    pytest.param(lambda: SoftSpearmanLoss(3.0), id="soft_spearman"),
    pytest.param(lambda: TripletOddOneOutLoss(64, 0.5), id="triplet"),
    pytest.param(lambda: CKALoss(), id="cka"),
    pytest.param(
        lambda: LocalSimilarityRegularizer(torch.randn(N_ITEMS, 4, dtype=torch.float64), 2.0),
        id="regularizer",
    ),
]


@pytest.mark.parametrize("make_loss", ALL_LOSSES)
def test_gradcheck(make_loss):
    _, h, m = _tiny()
    e = torch.randn(N_ITEMS, 3, dtype=torch.float64, requires_grad=True)
    loss = make_loss()
    if isinstance(loss, TripletOddOneOutLoss):  # same triplets at every evaluation

        def fn(x):
            return loss(x, h, m, generator=torch.Generator().manual_seed(0))
    else:

        def fn(x):
            return loss(x, h, m)

    assert torch.autograd.gradcheck(fn, (e,))


@pytest.mark.parametrize("make_loss", ALL_LOSSES)
def test_permuting_items_changes_nothing(make_loss):
    e, h, m = _tiny()
    perm = torch.randperm(N_ITEMS)
    loss = make_loss()
    if isinstance(loss, TripletOddOneOutLoss):  # sampling is by index: compare fixed triplets
        observed = m & ~torch.eye(N_ITEMS, dtype=torch.bool)
        triplets = loss.sample_triplets(h, observed, torch.Generator().manual_seed(0))
        inverse = torch.argsort(perm)
        sim = e @ e.T / (e.norm(dim=1)[:, None] * e.norm(dim=1)[None, :])
        before = loss.triplet_loss(sim, triplets)
        after = loss.triplet_loss(sim[perm][:, perm], inverse[triplets])
        assert after.item() == pytest.approx(before.item(), abs=1e-12)
        return
    before = loss(e, h, m)
    if isinstance(loss, LocalSimilarityRegularizer):
        reference = loss.reference_similarity
        loss.reference_similarity = reference[perm][:, perm]
    after = loss(e[perm], h[perm][:, perm], m[perm][:, perm])
    assert after.item() == pytest.approx(before.item(), abs=1e-10)


@pytest.mark.parametrize("make_loss", ALL_LOSSES)
def test_float32_embeddings_with_float64_human_give_float32_loss(make_loss):
    e, h, m = _tiny()
    loss = make_loss()
    if isinstance(loss, TripletOddOneOutLoss):

        def fn(x):
            return loss(x, h, m, generator=torch.Generator().manual_seed(0))
    else:

        def fn(x):
            return loss(x, h, m)

    value = fn(e.float())
    assert value.dtype == torch.float32 and value.dim() == 0
    assert value.item() == pytest.approx(fn(e).item(), abs=1e-4)


# ---------------------------------------------------------------- validation


def _bad_forward_inputs():
    e, h, m = _tiny()
    nan_e = e.clone()
    nan_e[0, 0] = float("nan")
    return [
        ((e[0], h, m), DataError, "'embeddings'"),
        ((nan_e, h, m), DataError, "'embeddings' should be finite"),
        ((e, h[:5, :5], m), DataError, "'human_sim'"),
        ((e, h, m.float()), DataError, "'mask' should be a bool"),
        ((e, h, m[:, :5]), DataError, "'mask'"),
        ((e, h.numpy(), m), DataError, "'human_sim' should be a torch.Tensor"),
        ((e, h, torch.eye(N_ITEMS, dtype=torch.bool)), DataError, "at least"),
    ]


@pytest.mark.parametrize("make_loss", ALL_LOSSES)
def test_bad_inputs_raise_data_error(make_loss):
    loss = make_loss()
    for args, error, message in _bad_forward_inputs():
        with pytest.raises(error, match=message):
            loss(*args)


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: SimilarityMSELoss(scale=0.0), "'scale'"),
        (lambda: SoftSpearmanLoss(0.0), "'regularization_strength'"),
        (lambda: TripletOddOneOutLoss(n_triplets=0), "'n_triplets'"),
        (lambda: TripletOddOneOutLoss(temperature=-1.0), "'temperature'"),
        (lambda: LocalSimilarityRegularizer(torch.randn(4, 2), weight=-1.0), "'weight'"),
    ],
)
def test_bad_constructor_arguments_raise_config_error(make, message):
    with pytest.raises(ConfigError, match=message):
        make()


def test_regularizer_needs_matching_items():
    e, h, m = _tiny()
    with pytest.raises(DataError, match="one row per reference item"):
        LocalSimilarityRegularizer(torch.randn(N_ITEMS + 1, 3))(e, h, m)


def test_a_new_loss_needs_one_method():
    class MeanCosine(AlignmentLoss):
        def compute_loss(self, model_sim, human_sim, mask):
            return model_sim[mask].mean()

    e, h, m = _tiny()
    observed = m & ~torch.eye(N_ITEMS, dtype=torch.bool)
    sim = e @ e.T / (e.norm(dim=1)[:, None] * e.norm(dim=1)[None, :])
    assert MeanCosine()(e, h, m).item() == pytest.approx(sim[observed].mean().item())
