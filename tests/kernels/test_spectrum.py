"""kernel_spectrum: closed forms (identity, all ones, blends), clipping, gradient, batching."""

import math

import pytest
import torch

from deepalign.errors import ConfigError
from deepalign.kernels import NEAR_CONSTANT_TOP_SHARE, kernel_spectrum

DTYPE = torch.float64


def blend(a: float, n: int) -> torch.Tensor:
    """`a * ones + (1 - a) * I`: eigenvalues `a n + 1 - a` (once) and `1 - a` (n - 1 times)."""
    return a * torch.ones(n, n, dtype=DTYPE) + (1 - a) * torch.eye(n, dtype=DTYPE)


@pytest.mark.parametrize("n", [1, 2, 7, 50])
def test_identity_has_rank_n_and_share_one_over_n(n):
    rank, share = kernel_spectrum(torch.eye(n, dtype=DTYPE))
    assert rank.shape == share.shape == ()
    assert rank.dtype == share.dtype == DTYPE
    assert math.isclose(float(rank), n, rel_tol=1e-12)
    assert math.isclose(float(share), 1 / n, rel_tol=1e-12)


@pytest.mark.parametrize("n", [1, 3, 50, 300])
def test_all_ones_has_rank_one_and_share_one(n):
    # eigenvalues n and 0 (round-off may make the zeros slightly negative: clipped)
    rank, share = kernel_spectrum(torch.ones(n, n, dtype=DTYPE))
    assert math.isclose(float(rank), 1.0, abs_tol=1e-9)
    assert math.isclose(float(share), 1.0, abs_tol=1e-12)


@pytest.mark.parametrize(("a", "n"), [(0.0, 4), (0.3, 5), (0.5, 10), (0.95, 20), (1.0, 6)])
def test_blend_of_ones_and_identity(a, n):
    rank, share = kernel_spectrum(blend(a, n))
    assert math.isclose(float(share), (a * n + 1 - a) / n, rel_tol=1e-10, abs_tol=1e-12)
    top, rest = (a * n + 1 - a) / n, (1 - a) / n
    entropy = -top * math.log(top) - ((n - 1) * rest * math.log(rest) if rest > 0 else 0.0)
    assert math.isclose(float(rank), math.exp(entropy), rel_tol=1e-9)


def test_blend_numbers_and_the_near_constant_flag():
    # a = 0.5, n = 10: share 5.5 / 10 = 0.55, rank exp(-(0.55 ln 0.55 + 9 * 0.05 ln 0.05))
    rank, share = kernel_spectrum(blend(0.5, 10))
    assert float(share) == pytest.approx(0.55, abs=1e-12)
    assert float(rank) == pytest.approx(5.348894, abs=1e-6)
    assert NEAR_CONSTANT_TOP_SHARE == 0.9
    assert float(kernel_spectrum(blend(0.95, 20))[1]) == pytest.approx(0.9525)  # flagged
    assert float(kernel_spectrum(blend(0.95, 20))[1]) > NEAR_CONSTANT_TOP_SHARE
    assert float(kernel_spectrum(blend(0.85, 20))[1]) < NEAR_CONSTANT_TOP_SHARE  # 0.8575


def test_negative_eigenvalues_are_clipped_and_scale_does_not_matter():
    # eigenvalues 3 and -1 -> 3 and 0: rank 1, share 1
    indefinite = torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=DTYPE)
    rank, share = kernel_spectrum(indefinite)
    assert float(rank) == pytest.approx(1.0) and float(share) == pytest.approx(1.0)
    matrix = blend(0.3, 6)
    for scaled in (7.5 * matrix, matrix.float()):
        assert torch.allclose(torch.stack(kernel_spectrum(scaled)),
                              torch.stack(kernel_spectrum(matrix)), atol=1e-6)


def test_batched_equals_stacked():
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(5, 8, 3, generator=generator, dtype=DTYPE)
    matrices = torch.cat([features @ features.mT, blend(0.4, 8).unsqueeze(0),
                          torch.eye(8, dtype=DTYPE).unsqueeze(0)])
    rank, share = kernel_spectrum(matrices)
    assert rank.shape == share.shape == (7,)
    singles = [kernel_spectrum(m) for m in matrices]
    assert torch.allclose(rank, torch.stack([r for r, _ in singles]), atol=1e-12)
    assert torch.allclose(share, torch.stack([s for _, s in singles]), atol=1e-12)
    assert float(rank[-1]) == pytest.approx(8.0)  # the identity in the batch
    assert bool((rank <= 3 + 1e-9)[:5].all())  # rank-3 Gram matrices: at most 3


def test_gradient_check_float64():
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(4, 4, generator=generator, dtype=DTYPE)
    base = features @ features.T + 0.5 * torch.eye(4, dtype=DTYPE)  # distinct eigenvalues > 0

    def spectrum(matrix):
        return kernel_spectrum((matrix + matrix.T) / 2)

    assert torch.autograd.gradcheck(spectrum, (base.clone().requires_grad_(True),))


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        (torch.ones(3, 4), "n x n"),
        (torch.ones(2, 2, 2, 2), "n x n"),
        (torch.ones(0, 0), "n x n"),
        ([[1.0]], "n x n"),
        (torch.ones(3, 3, dtype=torch.long), "floating"),
        (torch.full((2, 2), math.nan), "finite"),
        (torch.zeros(3, 3), "positive eigenvalue"),
    ],
)
def test_bad_input_names_the_argument(matrix, match):
    with pytest.raises(ConfigError, match=match) as error:
        kernel_spectrum(matrix)
    assert "'matrix'" in str(error.value)
