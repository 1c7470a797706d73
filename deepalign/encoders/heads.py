"""Trainable heads applied to backbone embeddings (`n_items x d_in -> n_items x d`).

Every square head (output width = input width) starts as the identity, so an untrained
`SentenceEncoder` reproduces the pretrained embeddings and training starts from them:

- `IdentityHead`: `x` (no parameters).
- `LinearHead`: `x W^T + b`; square: `W = I`, `b = 0`; otherwise `W` has orthonormal rows
  drawn from the seed (a random projection that keeps angles approximately).
- `MLPHead`: `W2 gelu(W1 x + b1) + b2`, plus `x` when square (residual) with `W2 = 0`.
- `LowRankResidualHead`: `x + U V^T x` with `U: d x r` zero and `V: d x r` random.

Initial values come from a `torch.Generator` the caller seeds; the global RNG is untouched.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from deepalign.errors import ConfigError
from deepalign.limits import env_limit

HEAD_KINDS = ("identity", "linear", "mlp", "lowrank")


class IdentityHead(nn.Module):
    """Returns its input: `n_items x d_in -> n_items x d_in`."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class LinearHead(nn.Module):
    """Affine map `x W^T + b`: `n_items x d_in -> n_items x d_out`."""

    def __init__(self, input_dim: int, output_dim: int, generator: torch.Generator) -> None:
        super().__init__()
        if input_dim == output_dim:
            weight = torch.eye(output_dim)
        else:
            weight = _orthonormal_rows(output_dim, input_dim, generator)
        self.weight = nn.Parameter(weight)
        self.bias = nn.Parameter(torch.zeros(output_dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)


class MLPHead(nn.Module):
    """One hidden GELU layer; residual (`x + ...`, zero last layer) when square.

    `n_items x d_in -> n_items x d_out`.
    """

    def __init__(
        self, input_dim: int, hidden_dim: int, output_dim: int, generator: torch.Generator
    ) -> None:
        super().__init__()
        self.residual = input_dim == output_dim
        self.weight_in = nn.Parameter(_uniform((hidden_dim, input_dim), input_dim, generator))
        self.bias_in = nn.Parameter(torch.zeros(hidden_dim))
        if self.residual:
            weight_out = torch.zeros(output_dim, hidden_dim)
        else:
            weight_out = _uniform((output_dim, hidden_dim), hidden_dim, generator)
        self.weight_out = nn.Parameter(weight_out)
        self.bias_out = nn.Parameter(torch.zeros(output_dim))

    def forward(self, x: Tensor) -> Tensor:
        hidden = F.gelu(F.linear(x, self.weight_in, self.bias_in))
        out = F.linear(hidden, self.weight_out, self.bias_out)
        return x + out if self.residual else out


class LowRankResidualHead(nn.Module):
    """`x + U V^T x` (rows: `x + (x V) U^T`): `n_items x d -> n_items x d`.

    `U` (`d x rank`) starts at zero, so the head starts as the identity; `V` (`d x rank`)
    starts Gaussian with standard deviation `1 / sqrt(d)`.
    """

    def __init__(self, dim: int, rank: int, generator: torch.Generator) -> None:
        super().__init__()
        self.U = nn.Parameter(torch.zeros(dim, rank))
        self.V = nn.Parameter(torch.randn(dim, rank, generator=generator) / math.sqrt(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x + (x @ self.V) @ self.U.T


#: The widest layer a head may have before anything is allocated (a 1e10-wide head would
#: try to allocate terabytes); the environment variable `DEEPALIGN_MAX_DIM` raises it.
MAX_DIM = 65_536


def max_dim() -> int:
    """`MAX_DIM`, or the positive int in `DEEPALIGN_MAX_DIM`."""
    return env_limit("DEEPALIGN_MAX_DIM", MAX_DIM)


def build_head(
    kind: str,
    input_dim: int,
    output_dim: int | None,
    rank: int,
    hidden_dim: int,
    seed: int,
) -> nn.Module:
    """The head named `kind`, initialised from `seed` (a local generator).

    Raises `ConfigError` for an unknown kind or sizes the kind cannot take.
    """
    if kind not in HEAD_KINDS:
        raise ConfigError(
            f"'head' should be one of {HEAD_KINDS} but got {kind!r}; pick one of those."
        )
    limit = max_dim()
    for name, value in (("output_dim", output_dim), ("hidden_dim", hidden_dim)):
        if value is None and name == "output_dim":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
            raise ConfigError(
                f"'{name}' of the head should be an int in 1..{limit} but got {value!r} (a "
                "layer that wide would not fit in memory); a few hundred is typical. Raise "
                "the limit with the environment variable DEEPALIGN_MAX_DIM.")
    width = input_dim if output_dim is None else output_dim
    if kind in ("identity", "lowrank") and width != input_dim:
        raise ConfigError(
            f"head={kind!r} keeps the backbone width {input_dim}, but output_dim={output_dim}; "
            "use output_dim=None, or head='linear' / 'mlp' to change the width."
        )
    generator = torch.Generator().manual_seed(seed)
    if kind == "identity":
        return IdentityHead()
    if kind == "linear":
        return LinearHead(input_dim, width, generator)
    if kind == "mlp":
        return MLPHead(input_dim, hidden_dim, width, generator)
    if not 1 <= rank <= input_dim:
        raise ConfigError(
            f"'rank' of the lowrank head should be in [1, {input_dim}] but got {rank}; "
            "a small rank such as 8-64 is typical."
        )
    return LowRankResidualHead(input_dim, rank, generator)


def _uniform(shape: tuple[int, int], fan_in: int, generator: torch.Generator) -> Tensor:
    bound = 1.0 / math.sqrt(fan_in)
    return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound


def _orthonormal_rows(rows: int, cols: int, generator: torch.Generator) -> Tensor:
    """A `rows x cols` matrix with orthonormal rows (or columns when rows > cols)."""
    gaussian = torch.randn(max(rows, cols), min(rows, cols), generator=generator)
    q, r = torch.linalg.qr(gaussian)
    q = q * torch.sign(torch.diagonal(r)).where(torch.diagonal(r) != 0, torch.ones(()))
    return q.T.contiguous() if rows < cols else q.contiguous()
