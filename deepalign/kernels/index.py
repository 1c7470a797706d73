"""Arms as item indices: the input convention every deepalign kernel shares.

BoTorch passes inputs as float tensors ``... x n x d``. A deepalign kernel's arms are the
items of an item set, so ``d = 1`` and each entry is an item index ``0 .. n_arms - 1`` stored
as a float (e.g. ``train_X = arm_inputs(n_arms)[pulled]``). `arm_indices` turns such an
input into a ``LongTensor`` (checking it), and `gather_covariance` reads a covariance between
two index sets out of an ``n_arms x n_arms`` matrix, with any batch shape.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deepalign.errors import ConfigError, DataError

# An index input may differ from an integer by at most this much (float round-off).
INDEX_TOLERANCE = 1e-4


def arm_inputs(n_arms: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """All arms as a BoTorch input: ``n_arms x 1`` float tensor ``[[0], [1], ...]``.

    Use it as the candidate set of `MaxPosteriorSampling` or the ``choices`` of
    `optimize_acqf_discrete`, and index it for ``train_X``.
    """
    if not isinstance(n_arms, int) or isinstance(n_arms, bool) or n_arms < 1:
        raise ConfigError(f"'n_arms' should be a positive int but got {n_arms!r}.")
    return torch.arange(n_arms, dtype=dtype).unsqueeze(-1)


def arm_indices(x: Tensor, n_arms: int, argument: str = "x") -> Tensor:
    """Integer arm indices of a kernel input.

    Args:
        x: ``... x n x 1`` float (or integer) tensor of item indices in ``[0, n_arms)``.
        n_arms: number of arms the kernel covers.
        argument: the input's name, used in error messages.

    Returns:
        ``... x n`` LongTensor.

    Raises:
        DataError: last dimension is not 1, an entry is not an integer (within 1e-4) or is
            outside ``[0, n_arms)``.
    """
    if x.dim() < 2 or x.shape[-1] != 1:
        raise DataError(
            f"{argument!r} should be a '... x n x 1' tensor of arm indices but got shape "
            f"{tuple(x.shape)}; pass item indices as one column, e.g. arm_inputs(n_arms)[idx]."
        )
    values = x.detach()[..., 0]
    if values.is_floating_point():
        rounded = values.round()
        if values.numel() and not bool(((values - rounded).abs() <= INDEX_TOLERANCE).all()):
            worst = values[(values - rounded).abs() > INDEX_TOLERANCE].flatten()[0].item()
            raise DataError(
                f"{argument!r} should hold integer arm indices but has {worst!r}; the kernel "
                "reads inputs as item indices, so do not normalise or perturb them."
            )
        indices = rounded.long()
    else:
        indices = values.long()
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= n_arms):
        raise DataError(
            f"{argument!r} should hold arm indices in [0, {n_arms}) but has values in "
            f"[{int(indices.min())}, {int(indices.max())}]; the kernel covers {n_arms} arms."
        )
    return indices


def gather_covariance(matrix: Tensor, indices1: Tensor, indices2: Tensor, diag: bool) -> Tensor:
    """Covariance between two index sets read out of a full matrix.

    Args:
        matrix: ``n_arms x n_arms``.
        indices1: ``... x n`` LongTensor.
        indices2: ``... x m`` LongTensor (batch shapes broadcast with `indices1`'s).
        diag: return only ``matrix[indices1[i], indices2[i]]`` (needs ``n == m``).

    Returns:
        ``... x n x m``, or ``... x n`` when `diag`.
    """
    if diag:
        first, second = torch.broadcast_tensors(indices1, indices2)
        return matrix[first, second]
    return matrix[indices1.unsqueeze(-1), indices2.unsqueeze(-2)]


def refuse_last_dim_is_batch(last_dim_is_batch: bool) -> None:
    """Raises `ConfigError` for gpytorch's deprecated ``last_dim_is_batch=True``."""
    if last_dim_is_batch:
        raise ConfigError(
            "deepalign kernels take one index column, so last_dim_is_batch=True has no "
            "meaning; call them without it."
        )


def forward_indices(
    x1: Tensor, x2: Tensor, n_arms: int, last_dim_is_batch: bool
) -> tuple[Tensor, Tensor]:
    """The two index sets of a kernel ``forward(x1, x2)``, checked as `arm_indices` does.

    Raises `ConfigError` for ``last_dim_is_batch=True`` (see `refuse_last_dim_is_batch`).
    """
    refuse_last_dim_is_batch(last_dim_is_batch)
    return arm_indices(x1, n_arms, "x1"), arm_indices(x2, n_arms, "x2")
