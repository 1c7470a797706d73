"""Synthetic kernels of controlled alignment: measured alignment hits the target, PSD."""

import numpy as np
import pytest
import torch

from deepalign.alignment import spearman_alignment
from deepalign.data import load_dataset
from deepalign.errors import ConfigError, DataError
from deepalign.kernels import MatrixKernel, synthetic_aligned_kernel, synthetic_aligned_matrix

TARGETS = [round(0.1 * step, 1) for step in range(11)]


@pytest.fixture(autouse=True)
def _one_thread():
    """Many small eigendecompositions: one thread is faster and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def human():
    similarity = load_dataset("spa-verb-act").similarity
    return similarity.matrix, similarity.mask


def _pairs(mask: torch.Tensor) -> torch.Tensor:
    return mask & ~torch.eye(mask.shape[0], dtype=torch.bool)


def test_sweep_on_human_matrix_hits_every_target(human):
    matrix, mask = human
    measured = []
    for target in TARGETS:
        kernel, alignment = synthetic_aligned_kernel(matrix, target, seed=0, mask=mask)
        measured.append(alignment)
        covariance = kernel.covariance
        # reported = measured again from scratch on the kernel's own matrix
        assert alignment == pytest.approx(spearman_alignment(covariance, matrix, _pairs(mask)))
        assert abs(alignment - target) <= 0.05, (target, alignment)
        assert not kernel.repair.changed  # PSD by construction: the kernel kept it as given
        assert float(torch.linalg.eigvalsh(covariance)[0]) > 0
        assert torch.equal(covariance, covariance.T)
    print("targets ", TARGETS)
    print("measured", [round(value, 4) for value in measured])
    assert np.all(np.diff(measured) > 0)  # the sweep is ordered, as its targets are


def test_target_one_is_the_human_kernel(human):
    matrix, mask = human
    synthetic = synthetic_aligned_matrix(matrix, 1.0, mask=mask)
    assert synthetic.mixing_weight == 1.0
    with pytest.warns(UserWarning, match="made PSD"):
        human_kernel = MatrixKernel(matrix, mask=mask)
    torch.testing.assert_close(synthetic.matrix, human_kernel.covariance, atol=1e-12, rtol=0)
    assert synthetic.measured_alignment > 0.95
    exact = synthetic_aligned_matrix(matrix, 1.0, mask=mask, psd="jitter")
    assert exact.measured_alignment == pytest.approx(1.0)  # diagonal shift keeps every pair


def test_target_zero_is_a_random_kernel(human):
    matrix, mask = human
    results = [synthetic_aligned_matrix(matrix, 0.0, seed=seed, mask=mask) for seed in (0, 1)]
    for result in results:
        assert abs(result.mixing_weight) < 0.1 and abs(result.measured_alignment) <= 0.02
    assert not torch.allclose(results[0].matrix, results[1].matrix)


def _structured_reference(n_items: int = 30) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    features = torch.randn(n_items, 4, generator=generator, dtype=torch.float64)
    noise = 0.3 * torch.randn(n_items, n_items, generator=generator, dtype=torch.float64)
    return torch.tanh(features @ features.T / 4 + noise + noise.T)  # structured, indefinite


def test_chance_alignment_of_the_shuffle_is_cancelled():
    reference = _structured_reference()
    results = [
        synthetic_aligned_matrix(reference, 0.0, seed=seed, tolerance=0.004) for seed in range(6)
    ]
    for result in results:
        assert abs(result.measured_alignment) <= 0.01, result
    assert any(result.mixing_weight < 0 for result in results)  # the anti-aligned branch ran
    assert any(result.mixing_weight > 0 for result in results)


def test_same_seed_same_matrix_and_reported_value_is_measured():
    reference = _structured_reference()
    first = synthetic_aligned_matrix(reference, 0.55, seed=3)
    second = synthetic_aligned_matrix(reference, 0.55, seed=3)
    assert torch.equal(first.matrix, second.matrix)
    assert first.measured_alignment == spearman_alignment(
        first.matrix, reference, ~torch.eye(30, dtype=torch.bool)
    )
    assert first.measured_alignment != first.target and first.target == 0.55
    for target in TARGETS:
        result = synthetic_aligned_matrix(reference, target, seed=1)
        assert abs(result.measured_alignment - target) <= 0.05, (target, result)
        assert float(torch.linalg.eigvalsh(result.matrix)[0]) > 0


def test_errors_name_the_argument():
    reference = torch.eye(5, dtype=torch.float64) + 0.1
    with pytest.raises(ConfigError, match=r"'target' should be a Spearman alignment in \[0, 1\]"):
        synthetic_aligned_matrix(reference, 1.5)
    with pytest.raises(ConfigError, match=r"'psd' should be 'clip' or 'jitter'"):
        synthetic_aligned_matrix(reference, 0.5, psd="none")
    bad = reference.clone()
    bad[0, 1] = 3.0
    with pytest.raises(DataError, match=r"'reference' should be symmetric"):
        synthetic_aligned_matrix(bad, 0.5)
    with pytest.raises(DataError, match=r"'mask' should mark at least 3 observed"):
        synthetic_aligned_matrix(reference, 0.5, mask=torch.eye(5, dtype=torch.bool))
    with pytest.raises(DataError, match=r"'reference' is constant over the observed pairs"):
        synthetic_aligned_matrix(reference, 0.5)
