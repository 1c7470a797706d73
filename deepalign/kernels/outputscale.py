"""The positive ``outputscale`` parameter every deepalign kernel carries (as ScaleKernel's)."""

from __future__ import annotations

import torch
from gpytorch.constraints import Positive
from gpytorch.kernels import Kernel
from torch import Tensor

from deepalign.errors import ConfigError


def register_outputscale(kernel: Kernel, outputscale: float, fit: bool) -> None:
    """Registers ``raw_outputscale`` (shape ``kernel.batch_shape``, Positive constraint) on
    `kernel` with initial value `outputscale`; frozen (requires_grad False) unless `fit`."""
    if isinstance(outputscale, bool) or not isinstance(outputscale, (int, float)):
        raise ConfigError(f"'outputscale' should be a float > 0 but got {outputscale!r}.")
    if not outputscale > 0 or outputscale == float("inf"):
        raise ConfigError(f"'outputscale' should be a finite float > 0 but got {outputscale!r}.")
    kernel.register_parameter(
        "raw_outputscale", torch.nn.Parameter(torch.zeros(kernel.batch_shape))
    )
    kernel.register_constraint("raw_outputscale", Positive())
    set_outputscale(kernel, float(outputscale))
    kernel.raw_outputscale.requires_grad_(bool(fit))


def set_outputscale(kernel: Kernel, value: float | Tensor) -> None:
    """Sets the positive outputscale of a kernel made by `register_outputscale`."""
    value = torch.as_tensor(value).to(kernel.raw_outputscale)
    raw = kernel.raw_outputscale_constraint.inverse_transform(value)
    with torch.no_grad():
        kernel.raw_outputscale.copy_(raw.expand_as(kernel.raw_outputscale))


def scale_covariance(kernel: Kernel, covariance: Tensor, diag: bool, dtype: torch.dtype) -> Tensor:
    """``covariance`` (``batch_shape x n x m``, or ``batch_shape x n`` when `diag`) times the
    outputscale of a kernel made by `register_outputscale`, cast to `dtype`."""
    scale = kernel.outputscale.to(dtype)
    return covariance * (scale.unsqueeze(-1) if diag else scale.unsqueeze(-1).unsqueeze(-1))
