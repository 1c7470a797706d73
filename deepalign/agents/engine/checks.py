"""Argument checks of the batched GP bandit engine (`GPBanditEngine`).

Shapes: `n_runs` runs, `n_arms` arms. Each check raises `ConfigError` (or `DataError` for
non-finite environment values) naming the argument, what was expected and what came.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deepalign.agents.engine.exact import SYMMETRY_TOL
from deepalign.errors import ConfigError, DataError

__all__ = ["availability", "check_kernel", "environment", "per_run"]


def check_kernel(kernel: Tensor) -> Tensor:
    """The kernel, validated (finite, symmetric to SYMMETRY_TOL) and exactly symmetrised."""
    if not bool(torch.isfinite(kernel).all()):
        raise ConfigError("'kernel' has non-finite entries; give a finite kernel matrix")
    scale = kernel.abs().amax().clamp_min(torch.finfo(kernel.dtype).tiny)
    asymmetry = float((kernel - kernel.transpose(-2, -1)).abs().amax() / scale)
    if asymmetry > SYMMETRY_TOL:
        raise ConfigError(
            f"'kernel' should be symmetric but max |K - K^T| / max |K| = {asymmetry:.3g}; "
            "symmetrise it, (K + K^T) / 2"
        )
    return 0.5 * (kernel + kernel.transpose(-2, -1))


def per_run(
    value: float | Tensor,
    name: str,
    positive: bool,
    n_runs: int | None,
    device: torch.device,
    dtype: torch.dtype,
) -> Tensor:
    """A per-run setting as a tensor `1` or `n_runs` (`n_runs` None: any length)."""
    if isinstance(value, Tensor):
        tensor = value.reshape(1) if value.dim() == 0 else value
        if tensor.dim() != 1:
            raise ConfigError(
                f"'{name}' should be a float or a tensor n_runs but got {tuple(value.shape)}"
            )
        if n_runs is not None and tensor.numel() not in (1, n_runs):
            raise ConfigError(
                f"'{name}' has {tensor.numel()} entries but the kernel has n_runs="
                f"{n_runs}; give a float or one entry per run"
            )
        tensor = tensor.to(device, dtype)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"'{name}' should be a float or a tensor n_runs but got {value!r}")
    else:
        tensor = torch.tensor([float(value)], device=device, dtype=dtype)
    if not bool(torch.isfinite(tensor).all()) or (positive and not bool((tensor > 0).all())):
        raise ConfigError(
            f"'{name}' should be finite{' and > 0' if positive else ''} but got "
            f"{tensor.tolist()[:5]}"
        )
    return tensor


def environment(
    value, name: str, n_runs: int, n_arms: int, nonnegative: bool, device, dtype
) -> Tensor:
    """`value` broadcast to a contiguous `n_runs x n_arms` tensor, validated."""
    tensor = torch.as_tensor(value, dtype=dtype, device=device)
    try:
        tensor = torch.broadcast_to(tensor, (n_runs, n_arms))
    except RuntimeError:
        raise ConfigError(
            f"'{name}' should broadcast to n_runs x n_arms = ({n_runs}, {n_arms}) "
            f"(a float, n_arms, n_runs x 1 or n_runs x n_arms) but got {tuple(tensor.shape)}"
        ) from None
    if not bool(torch.isfinite(tensor).all()):
        raise DataError(f"'{name}' has non-finite entries; give finite values for every arm")
    if nonnegative and bool((tensor < 0).any()):
        raise ConfigError(f"'{name}' should be >= 0 but has negative entries")
    return tensor.contiguous()


def availability(
    available: Tensor | None, n_runs: int, n_arms: int, device: torch.device
) -> Tensor | None:
    """The `available` mask broadcast to a contiguous bool `n_runs x n_arms`, or None."""
    if available is None:
        return None
    if (
        not isinstance(available, Tensor)
        or available.dtype != torch.bool
        or available.shape not in ((n_arms,), (n_runs, n_arms))
    ):
        raise ConfigError(
            f"'available' should be a bool tensor ({n_arms},) or ({n_runs}, "
            f"{n_arms}) but got {getattr(available, 'dtype', type(available).__name__)} "
            f"{tuple(getattr(available, 'shape', ()))}"
        )
    available = torch.broadcast_to(available.to(device), (n_runs, n_arms))
    if not bool(available.any(dim=-1).all()):
        raise ConfigError("'available' leaves a run with no arm to pull; allow at least one")
    return available.contiguous()
