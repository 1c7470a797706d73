"""MatrixKernel: validation, PSD repair, independent blocks, index inputs, BoTorch use."""

import warnings

import gpytorch
import numpy as np
import pytest
import torch
from botorch.acquisition import UpperConfidenceBound
from botorch.fit import fit_gpytorch_mll
from botorch.generation import MaxPosteriorSampling
from botorch.models import SingleTaskGP
from botorch.optim import optimize_acqf_discrete
from gpytorch.mlls import ExactMarginalLogLikelihood

from deepalign.errors import ConfigError, DataError
from deepalign.kernels import (
    MatrixKernel,
    PSDRepairWarning,
    arm_indices,
    arm_inputs,
    repair_psd,
)


def _indefinite(n_items: int = 8, seed: int = 0) -> torch.Tensor:
    """Symmetric similarity-like matrix in [0, 1] with diagonal 1, indefinite."""
    generator = torch.Generator().manual_seed(seed)
    upper = torch.rand(n_items, n_items, generator=generator, dtype=torch.float64).triu(1)
    matrix = upper + upper.T + torch.eye(n_items, dtype=torch.float64)
    assert torch.linalg.eigvalsh(matrix)[0] < -0.1  # the fixture really is indefinite
    return matrix


def _psd(n_items: int = 6, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n_items, 3, generator=generator, dtype=torch.float64)
    return features @ features.T + 0.1 * torch.eye(n_items, dtype=torch.float64)


# ---------------------------------------------------------------- validation


def test_rejects_non_symmetric_naming_argument():
    matrix = _psd()
    matrix[0, 3] += 0.5
    with pytest.raises(DataError, match=r"'K' should be symmetric.*K\[\d, \d\]"):
        MatrixKernel(matrix)


def test_rejects_nan_and_inf_naming_argument():
    for bad in (float("nan"), float("inf")):
        matrix = _psd()
        matrix[1, 2] = matrix[2, 1] = bad
        with pytest.raises(DataError, match=r"'K' should be finite.*row 1, column 2"):
            MatrixKernel(matrix)


def test_rejects_non_square_and_bad_options():
    with pytest.raises(DataError, match=r"'K' should be a non-empty square.*\(3, 4\)"):
        MatrixKernel(torch.zeros(3, 4))
    with pytest.raises(ConfigError, match=r"'psd' should be one of"):
        MatrixKernel(_psd(), psd="nearest")
    with pytest.raises(ConfigError, match=r"'outputscale' should be"):
        MatrixKernel(_psd(), outputscale=-1.0)
    with pytest.raises(DataError, match=r"'mask' should have the shape of 'K'"):
        MatrixKernel(_psd(), mask=torch.ones(2, 2, dtype=torch.bool))
    asymmetric = torch.ones(6, 6, dtype=torch.bool)
    asymmetric[0, 1] = False
    with pytest.raises(DataError, match=r"'mask' should be symmetric"):
        MatrixKernel(_psd(), mask=asymmetric)


def test_psd_error_mode_refuses_indefinite():
    with pytest.raises(DataError, match=r"'K' should be positive semi-definite.*psd='clip'"):
        MatrixKernel(_indefinite(), psd="error")


# ---------------------------------------------------------------- PSD repair


def test_clip_repair_is_nearest_psd_plus_jitter_and_reported():
    matrix = _indefinite()
    with pytest.warns(PSDRepairWarning, match=r"'K' made PSD by 'clip'"):
        kernel = MatrixKernel(matrix, psd="clip", jitter=1e-6)
    # brute-force reference: numpy eigendecomposition, clip at 0, add jitter * mean diagonal.
    values, vectors = np.linalg.eigh(matrix.numpy())
    expected = (vectors * (np.clip(values, 0, None) + 1e-6)) @ vectors.T
    np.testing.assert_allclose(kernel.covariance.numpy(), expected, atol=1e-12)
    report = kernel.repair
    assert report.changed and report.method == "clip"
    assert report.min_eigenvalue_before == pytest.approx(values[0], abs=1e-12)
    assert report.min_eigenvalue_after == pytest.approx(1e-6, rel=1e-3)
    assert report.n_clipped == int((values < 0).sum())
    change = np.linalg.norm(expected - matrix.numpy())
    assert report.frobenius_change == pytest.approx(change, rel=1e-9)
    assert report.relative_frobenius_change == pytest.approx(
        change / np.linalg.norm(matrix.numpy()), rel=1e-9
    )
    assert torch.linalg.eigvalsh(kernel.covariance)[0] > 0


def test_jitter_repair_changes_only_the_diagonal():
    matrix = _indefinite()
    with pytest.warns(PSDRepairWarning, match="'jitter'"):
        kernel = MatrixKernel(matrix, psd="jitter")
    off_diagonal = ~torch.eye(8, dtype=torch.bool)
    assert torch.equal(kernel.covariance[off_diagonal], matrix[off_diagonal])
    added = kernel.covariance.diagonal() - matrix.diagonal()
    torch.testing.assert_close(added, torch.full((8,), kernel.repair.jitter, dtype=torch.float64))
    assert kernel.repair.jitter > -kernel.repair.min_eigenvalue_before
    assert int(torch.linalg.cholesky_ex(kernel.covariance).info) == 0
    assert kernel.repair.min_eigenvalue_after > 0


def test_psd_input_is_unchanged_without_warning():
    matrix = _psd()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernel = MatrixKernel(matrix)
    assert not kernel.repair.changed and kernel.repair.frobenius_change == 0.0
    assert torch.equal(kernel.covariance, matrix)


def test_repair_psd_function_validates():
    with pytest.raises(ConfigError, match="'jitter' should be"):
        repair_psd(_psd(), "clip", jitter=-1.0)


# ---------------------------------------------------------------- mask and blocks


def test_unobserved_pairs_are_independent_blocks():
    blocks = torch.tensor([0, 0, 0, 1, 1, 2])
    mask = blocks.unsqueeze(0) == blocks.unsqueeze(1)
    matrix = torch.full((6, 6), 0.5, dtype=torch.float64) + 0.5 * torch.eye(6, dtype=torch.float64)
    kernel = MatrixKernel(matrix, mask=mask)
    full = kernel.full_matrix()
    assert torch.equal(full[~mask], torch.zeros(int((~mask).sum()), dtype=torch.float64))
    torch.testing.assert_close(full[mask], matrix[mask])  # already PSD: kept
    # A GP on it learns nothing about blocks 1, 2 from block 0: the posterior there is the
    # prior (mean 0, variance K_ii), whatever block 0's rewards were.
    train_x = arm_inputs(6)[:3]
    train_y = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    gp = SingleTaskGP(train_x, train_y, covar_module=kernel, outcome_transform=None)
    gp.eval()
    posterior = gp.posterior(arm_inputs(6))
    torch.testing.assert_close(posterior.mean[3:, 0], torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(posterior.variance[3:, 0], full.diagonal()[3:])
    assert (posterior.mean[:3, 0].abs() > 0.1).all()


def test_clip_keeps_disconnected_blocks_independent():
    blocks = torch.arange(16) // 8  # two blocks of 8, each indefinite
    mask = blocks.unsqueeze(0) == blocks.unsqueeze(1)
    matrix = torch.rand(16, 16, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    matrix = matrix + matrix.T
    with pytest.warns(PSDRepairWarning):
        clipped = MatrixKernel(matrix, mask=mask, psd="clip")
    with pytest.warns(PSDRepairWarning):
        jittered = MatrixKernel(matrix, mask=mask, psd="jitter")
    assert float(clipped.covariance[~mask].abs().max()) < 1e-12
    assert bool((jittered.covariance[~mask] == 0).all())
    assert torch.linalg.eigvalsh(clipped.covariance)[0] > 0


# ---------------------------------------------------------------- index inputs and batches


def test_forward_reads_matrix_at_indices_with_outputscale():
    kernel = MatrixKernel(_psd(), outputscale=2.5)
    x1 = torch.tensor([[4.0], [0.0], [2.0]])
    x2 = torch.tensor([[1.0], [5.0]])
    expected = 2.5 * _psd()[[4, 0, 2]][:, [1, 5]]
    torch.testing.assert_close(kernel(x1, x2).to_dense(), expected.float())
    torch.testing.assert_close(kernel(x1, diag=True), 2.5 * _psd().diagonal()[[4, 0, 2]].float())
    torch.testing.assert_close(kernel.full_matrix(), 2.5 * _psd())
    assert kernel.full_matrix().dtype == torch.float64


def test_batch_equals_stacked_unbatched():
    kernel = MatrixKernel(_psd())
    generator = torch.Generator().manual_seed(3)
    x1 = torch.randint(0, 6, (2, 3, 4, 1), generator=generator).double()
    x2 = torch.randint(0, 6, (2, 3, 5, 1), generator=generator).double()
    batched = kernel(x1, x2).to_dense()
    assert batched.shape == (2, 3, 4, 5)
    for i in range(2):
        for j in range(3):
            torch.testing.assert_close(batched[i, j], kernel(x1[i, j], x2[i, j]).to_dense())
    diagonal = kernel(x1, diag=True)
    torch.testing.assert_close(diagonal, kernel(x1).to_dense().diagonal(dim1=-2, dim2=-1))
    # broadcasting an unbatched x2 against a batched x1
    torch.testing.assert_close(
        kernel(x1, x2[0, 0]).to_dense()[1, 2], kernel(x1[1, 2], x2[0, 0]).to_dense()
    )


def test_batched_outputscale():
    kernel = MatrixKernel(_psd(), batch_shape=torch.Size([3]))
    kernel.outputscale = torch.tensor([1.0, 2.0, 3.0])
    x = arm_inputs(6)
    out = kernel(x).to_dense()
    assert out.shape == (3, 6, 6)
    for b, scale in enumerate((1.0, 2.0, 3.0)):
        torch.testing.assert_close(out[b], scale * _psd())
    assert kernel.full_matrix().shape == (3, 6, 6)


def test_index_inputs_are_checked():
    kernel = MatrixKernel(_psd())
    with pytest.raises(DataError, match=r"'x1' should hold arm indices in \[0, 6\)"):
        kernel(torch.tensor([[6.0]]), torch.tensor([[0.0]])).to_dense()
    with pytest.raises(DataError, match=r"'x1' should hold integer arm indices but has 0.5"):
        kernel(torch.tensor([[0.5]]), torch.tensor([[0.0]])).to_dense()
    with pytest.raises(DataError, match=r"'x' should be a '... x n x 1' tensor"):
        arm_indices(torch.zeros(3, 2), 6)
    assert arm_indices(torch.tensor([[2.0000001], [3.0]]), 6).tolist() == [2, 3]
    with pytest.raises(ConfigError, match="'n_arms' should be a positive int"):
        arm_inputs(0)


def test_outputscale_gradcheck_float64():
    kernel = MatrixKernel(_psd()).double()
    x = arm_inputs(6)[:4]

    def covariance(raw):
        with gpytorch.settings.lazily_evaluate_kernels(False):
            out = torch.func.functional_call(kernel, {"raw_outputscale": raw}, (x, x))
        return out.to_dense()

    raw = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(covariance, (raw,))
    # closed form: K = softplus(raw) * K_psd
    torch.testing.assert_close(covariance(raw), torch.nn.functional.softplus(raw) * _psd()[:4, :4])


# ---------------------------------------------------------------- BoTorch


def _gp(kernel, n_arms):
    arms = arm_inputs(n_arms)
    pulled = torch.tensor([0, 2, 5, 9, 11])
    values = torch.sin(pulled.double()).unsqueeze(-1)
    return SingleTaskGP(arms[pulled], values, covar_module=kernel), arms


def test_botorch_thompson_and_ucb_return_valid_arms():
    with pytest.warns(PSDRepairWarning):
        kernel = MatrixKernel(_indefinite(12, seed=4))
    gp, arms = _gp(kernel, 12)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
    picks = MaxPosteriorSampling(gp, replacement=False)(arms, num_samples=4)
    assert picks.shape == (4, 1)
    indices = arm_indices(picks, 12)
    assert ((indices >= 0) & (indices < 12)).all()
    assert torch.equal(picks, indices.double().unsqueeze(-1))
    batched = MaxPosteriorSampling(gp)(arms.expand(3, -1, -1), num_samples=2)
    assert batched.shape == (3, 2, 1) and bool((arm_indices(batched, 12) < 12).all())
    candidate, value = optimize_acqf_discrete(UpperConfidenceBound(gp, beta=2.0), q=1, choices=arms)
    # brute force: UCB at every arm, the argmax is the pick
    gp.eval()
    posterior = gp.posterior(arms)
    ucb = posterior.mean.squeeze(-1) + (2.0 * posterior.variance.squeeze(-1)).sqrt()
    assert int(candidate.item()) == int(ucb.argmax())
    torch.testing.assert_close(value, ucb.max())


def test_frozen_outputscale_is_not_fitted():
    kernel = MatrixKernel(_psd(12, seed=2), outputscale=0.7, fit_outputscale=False)
    gp, _ = _gp(kernel, 12)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
    assert float(kernel.outputscale.detach()) == pytest.approx(0.7, abs=1e-6)
    fitted = MatrixKernel(_psd(12, seed=2), outputscale=0.7)
    gp, _ = _gp(fitted, 12)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
    assert abs(float(fitted.outputscale.detach()) - 0.7) > 1e-3
