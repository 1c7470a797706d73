"""Reference kernels and the uniformity-matched control, shared by the study plans.

Two things could fake an effect of alignment, and every study carries a check on each:

* **Reference kernels** (`REFERENCE_KERNELS`): "constant" (`ones`, every action alike: a GP
  that commits to the first good arm) and "identity" (`eye`, independent arms: nothing
  generalises). They run on the same bandits as the study's own kernels, in condition
  `REFERENCE_CONDITION`, so the report shows where "commit early" lands next to them. Their
  Spearman alignment is nan (a constant matrix, or constant off-diagonal pairs, has no rank
  order).
* **The uniformity-matched control** (`UNIFORMITY_KERNEL`, study 3): training can make a
  kernel more alike overall as well as better ordered. The control is the untrained
  ("before") kernel blended with a constant, `a + (1 - a) K_before` (`uniformity_matched`),
  with `a` chosen (`uniformity_weight`) so that its mean off-diagonal similarity over the
  bandit's items equals the trained kernel's. It is a monotone transform of `K_before`, so
  its Spearman alignment equals "before"'s; it is still unit-diagonal and PSD. Under kernel
  calibration (`deepalign.agents.calibration`) it calibrates to exactly the before kernel,
  so its runs equal "before"'s up to rounding; with calibration off it isolates what
  uniformity alone does under the paper's fixed prior.

Shapes: `n_items x n_items` kernels (unit diagonal), as in `deepalign.studies.measure`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deepalign.errors import ConfigError
from deepalign.kernels import constant_matrix, identity_matrix

__all__ = [
    "REFERENCE_CONDITION",
    "REFERENCE_KERNELS",
    "UNIFORMITY_CONDITION",
    "UNIFORMITY_KERNEL",
    "mean_off_diagonal",
    "reference_matrix",
    "uniformity_matched",
    "uniformity_weight",
]

#: The reference kernels every study runs beside its own.
REFERENCE_KERNELS = ("constant", "identity")
#: The condition of the reference kernels' cells (synthetic, trained and transfer studies).
REFERENCE_CONDITION = "reference"
#: The kernel label of the uniformity-matched control (study 3 and its transfer variant).
UNIFORMITY_KERNEL = "uniformity-matched"
#: The condition of the control's cells in study 3's paired comparison (the transfer variant
#: keeps its training dataset as the condition, as its before / after cells do).
UNIFORMITY_CONDITION = "uniformity-control"


def reference_matrix(kernel: str, n_items: int) -> Tensor:
    """The reference kernel `kernel` ("constant" or "identity") over `n_items` items:
    `n_items x n_items` float64, already unit-diagonal and PSD."""
    if kernel == "constant":
        return constant_matrix(n_items)
    if kernel == "identity":
        return identity_matrix(n_items)
    raise ConfigError(f"'kernel' should be one of {REFERENCE_KERNELS} but got {kernel!r}")


def mean_off_diagonal(matrix: Tensor) -> float:
    """Mean of the off-diagonal entries of `matrix` (`n_items x n_items`, `n_items >= 2`)."""
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 2:
        raise ConfigError(
            f"'matrix' should be square n_items x n_items with n_items >= 2 but got shape "
            f"{tuple(matrix.shape)}"
        )
    matrix = matrix.to(torch.float64)
    n = matrix.shape[0]
    return float((matrix.sum() - matrix.diagonal().sum()) / (n * (n - 1)))


def uniformity_weight(trained: Tensor, before: Tensor) -> float:
    """`a` in [0, 1] with `mean_off_diagonal(a + (1 - a) before) = mean_off_diagonal(trained)`.

    `a = (m_trained - m_before) / (1 - m_before)`, clipped at 0 when training made the kernel
    *less* uniform (the control is then the before kernel itself), 0 when `before` is already
    constant (`m_before = 1`), and below 1 unless `trained` is constant.

    Args:
        trained: `n_items x n_items`, the trained kernel (unit diagonal).
        before: `n_items x n_items`, the untrained kernel (unit diagonal), same items.
    """
    if trained.shape != before.shape:
        raise ConfigError(
            f"'trained' and 'before' should be kernels over the same items but got shapes "
            f"{tuple(trained.shape)} and {tuple(before.shape)}"
        )
    m_trained, m_before = mean_off_diagonal(trained), mean_off_diagonal(before)
    if m_before >= 1.0:
        return 0.0
    return min(1.0, max(0.0, (m_trained - m_before) / (1.0 - m_before)))


def uniformity_matched(before: Tensor, a: float) -> Tensor:
    """`a + (1 - a) before` (`n_items x n_items` float64): unit-diagonal and PSD when `before`
    is, the same rank order of pairs for `a < 1`."""
    if not 0.0 <= a <= 1.0:
        raise ConfigError(f"'a' should be in [0, 1] but got {a}; use uniformity_weight")
    return a + (1.0 - a) * before.to(torch.float64)
