"""Reference kernels that could fake an effect of alignment: constant and independent arms.

* `constant_kernel`: ``K = ones(n, n)``, every action alike. A GP with it learns a single
  number for all arms (every arm's posterior mean is the same), so it cannot tell a good
  action from a bad one.
* `identity_kernel`: ``K = I``, independent arms. A GP with it learns nothing about one arm
  from another, so it generalises to no held-out action.

Both are `MatrixKernel`s over ``n_items`` item indices. Their matrices are already PSD (the
all-ones matrix has eigenvalues ``n`` and 0; `MatrixKernel`'s repair leaves it unchanged,
`PSDRepair.changed` False), so the covariance is exactly ``ones`` / ``eye``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deepalign.errors import ConfigError
from deepalign.kernels.matrix import MatrixKernel

__all__ = ["constant_kernel", "constant_matrix", "identity_kernel", "identity_matrix"]


def _check_n_items(n_items: int) -> int:
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 1:
        raise ConfigError(
            f"'n_items' should be a positive int (the number of items) but got {n_items!r}; "
            "pass len(dataset.items)"
        )
    return n_items


def constant_matrix(n_items: int) -> Tensor:
    """``n_items x n_items`` float64 all ones: every action alike."""
    return torch.ones(_check_n_items(n_items), n_items, dtype=torch.float64)


def identity_matrix(n_items: int) -> Tensor:
    """``n_items x n_items`` float64 identity: independent arms."""
    return torch.eye(_check_n_items(n_items), dtype=torch.float64)


def constant_kernel(
    n_items: int, outputscale: float = 1.0, fit_outputscale: bool = True
) -> MatrixKernel:
    """`MatrixKernel` of `constant_matrix(n_items)` (other arguments as `MatrixKernel`)."""
    return MatrixKernel(
        constant_matrix(n_items), outputscale=outputscale, fit_outputscale=fit_outputscale
    )


def identity_kernel(
    n_items: int, outputscale: float = 1.0, fit_outputscale: bool = True
) -> MatrixKernel:
    """`MatrixKernel` of `identity_matrix(n_items)` (other arguments as `MatrixKernel`)."""
    return MatrixKernel(
        identity_matrix(n_items), outputscale=outputscale, fit_outputscale=fit_outputscale
    )
