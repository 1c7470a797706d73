"""cosine_similarity_matrix and observed_pairs: loop references, gradcheck, errors."""

import math

import pytest
import torch

from deepalign.alignment import cosine_similarity_matrix
from deepalign.alignment.similarity import observed_pairs
from deepalign.errors import DataError


def test_cosine_matches_a_python_loop():
    x = torch.randn(6, 4, dtype=torch.float64)
    got = cosine_similarity_matrix(x)
    rows = x.tolist()
    for i in range(6):
        for j in range(6):
            dot = sum(a * b for a, b in zip(rows[i], rows[j]))
            norm_i = math.sqrt(sum(a * a for a in rows[i]))
            norm_j = math.sqrt(sum(b * b for b in rows[j]))
            assert got[i, j].item() == pytest.approx(dot / (norm_i * norm_j), abs=1e-12)


def test_cosine_is_scale_invariant_per_row_and_keeps_dtype():
    x = torch.randn(5, 3)
    scaled = x * torch.tensor([[1.0], [2.0], [0.5], [10.0], [3.0]])
    assert torch.allclose(cosine_similarity_matrix(x), cosine_similarity_matrix(scaled), atol=1e-6)
    assert cosine_similarity_matrix(x).dtype == torch.float32
    assert torch.allclose(torch.diagonal(cosine_similarity_matrix(x)), torch.ones(5), atol=1e-6)


def test_cosine_zero_row_is_zero_not_nan():
    x = torch.randn(4, 3, dtype=torch.float64)
    x[2] = 0.0
    sim = cosine_similarity_matrix(x)
    assert torch.isfinite(sim).all()
    assert torch.equal(sim[2], torch.zeros(4, dtype=torch.float64))


def test_cosine_gradcheck():
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(cosine_similarity_matrix, (x,))


def test_cosine_batch_consistency():
    """A sub-matrix of the full result equals the result on the subset of rows."""
    x = torch.randn(9, 4, dtype=torch.float64)
    subset = torch.tensor([7, 1, 4])
    assert torch.allclose(
        cosine_similarity_matrix(x)[subset][:, subset], cosine_similarity_matrix(x[subset])
    )


@pytest.mark.parametrize("bad", [torch.randn(3), torch.ones(3, 2, dtype=torch.long)])
def test_cosine_rejects_non_matrices(bad):
    with pytest.raises(DataError, match="'embeddings'"):
        cosine_similarity_matrix(bad)


def test_observed_pairs_upper_triangle_without_diagonal():
    mask = torch.tensor(
        [[True, True, False], [True, True, True], [False, True, True]], dtype=torch.bool
    )
    rows, cols = observed_pairs(mask)
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 2]
