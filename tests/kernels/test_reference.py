"""Reference kernels: all ones and the identity, exact through MatrixKernel, in the registry."""

import warnings

import pytest
import torch

from deepalign.agents.registry import KERNELS, build_kernel
from deepalign.data import Dataset, ItemSet
from deepalign.errors import ConfigError
from deepalign.kernels import (
    MatrixKernel,
    arm_inputs,
    constant_kernel,
    constant_matrix,
    identity_kernel,
    identity_matrix,
    kernel_spectrum,
)

DTYPE = torch.float64


@pytest.mark.parametrize("n", [1, 2, 50, 300])
def test_matrices_pass_the_psd_repair_unchanged(n):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a PSDRepairWarning would fail the test
        constant, identity = constant_kernel(n), identity_kernel(n)
    assert not constant.repair.changed and not identity.repair.changed
    assert torch.equal(constant.covariance, torch.ones(n, n, dtype=DTYPE))
    assert torch.equal(identity.covariance, torch.eye(n, dtype=DTYPE))
    assert torch.equal(constant_matrix(n), torch.ones(n, n, dtype=DTYPE))
    assert torch.equal(identity_matrix(n), torch.eye(n, dtype=DTYPE))


def test_kernels_over_item_indices_and_their_spectra():
    constant = constant_kernel(4, outputscale=2.5, fit_outputscale=False)
    x = arm_inputs(4)[[0, 3, 3]]
    assert isinstance(constant, MatrixKernel)
    assert torch.allclose(constant(x, x).to_dense(), torch.full((3, 3), 2.5, dtype=DTYPE))
    identity = identity_kernel(4, fit_outputscale=False)
    expected = torch.tensor([[1.0, 0, 0], [0, 1, 1], [0, 1, 1]], dtype=DTYPE)
    assert torch.equal(identity(x, x).to_dense(), expected)
    assert not constant.raw_outputscale.requires_grad
    assert identity_kernel(4).raw_outputscale.requires_grad  # MatrixKernel's default
    rank, share = kernel_spectrum(torch.stack([constant_matrix(4), identity_matrix(4)]))
    assert torch.allclose(rank, torch.tensor([1.0, 4.0], dtype=DTYPE))
    assert torch.allclose(share, torch.tensor([1.0, 0.25], dtype=DTYPE))


def test_registry_builds_them_over_the_dataset_items():
    items = ItemSet(ids=("a", "b", "c"), texts=("do a", "do b", "do c"))
    dataset = Dataset(name="toy", items=items)
    for name, matrix in (("constant", torch.ones(3, 3)), ("identity", torch.eye(3))):
        assert KERNELS[name].description
        kernel = build_kernel(name, dataset)
        assert torch.equal(kernel.full_matrix(), matrix.to(DTYPE))
        assert not kernel.raw_outputscale.requires_grad  # as the registry's other kernels


@pytest.mark.parametrize("n", [0, -1, 2.0, True, "3"])
def test_bad_n_items(n):
    with pytest.raises(ConfigError, match="'n_items' should be a positive int"):
        constant_matrix(n)
    with pytest.raises(ConfigError, match="'n_items'"):
        identity_kernel(n)
