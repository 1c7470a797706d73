"""Synthetic kernels of controlled alignment with a reference similarity matrix.

The paper's synthetic experiment asks how value learning changes as the kernel's alignment
with human similarity goes from 0 to 1. `synthetic_aligned_matrix` builds a PSD kernel whose
*measured* Spearman alignment with a reference (over the reference's observed pairs) is
within a tolerance of a target, changing nothing else that could matter to a learner:

1. Shuffled reference. ``S`` is the reference ``R`` with its observed off-diagonal values
   randomly permuted among the observed pairs (symmetrically; diagonal kept), drawn from
   `seed`: the same values, hence the same scale and distribution of similarities, on random
   pairs.
2. Mixture ``M(w) = w R + (1 - |w|) S`` for ``w`` in ``[-1, 1]``, 0 on unobserved pairs.
   Negative ``w`` is used only when the shuffle alone is already more aligned than the target
   (chance alignment, or the small bias the PSD repair of a shuffled matrix adds): a small
   anti-aligned share of ``R`` then cancels it, so target 0 is always reachable.
3. Kernel ``K(w)`` = ``M(w)`` made PSD exactly as `MatrixKernel` makes a human matrix PSD
   (`repair_psd` with ``psd``: "clip" by default), so ``K(1)`` *is* the covariance of
   ``MatrixKernel(R, mask=mask, psd=psd)``, and every ``K(w)`` has the same observed pairs,
   similarity values (before repair) and repair as the human kernel.
4. ``w`` is found by bisection on the measured alignment
   `deepalign.alignment.spearman_alignment` ``(K(w), R, mask)``, which goes from about -1 at
   ``w = -1`` through about 0 at ``w = 0`` to the alignment of the repaired reference at
   ``w = 1`` (exactly 1 for ``psd="jitter"``, which only shifts the diagonal; 0.99 for "clip"
   on the SpA-Verb sets).
   Eigenvalue clipping is continuous, so the measured alignment is continuous in ``w``. A
   target within `tolerance` of the repaired reference's own alignment returns that kernel
   (``w = 1``, the same for every seed). The alignment reported is the measured one, never
   the target.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from deepalign.errors import ConfigError, DataError
from deepalign.kernels.matrix import MatrixKernel
from deepalign.kernels.psd import repair_psd, validate_mask, validate_square_matrix

# Bisection steps on the mixing weight (the interval shrinks to 2^-40).
BISECTION_STEPS = 40


@dataclass(frozen=True)
class SyntheticMatrix:
    """A synthetic kernel matrix and its measured alignment.

    Attributes:
        matrix: ``n_items x n_items`` float64, symmetric positive semi-definite.
        measured_alignment: Spearman alignment of `matrix` with the reference over the mask.
        target: the alignment asked for.
        mixing_weight: ``w`` in ``[-1, 1]`` (weight of the reference; see the module
            docstring for negative values).
        seed: the seed of the shuffle.
    """

    matrix: Tensor
    measured_alignment: float
    target: float
    mixing_weight: float
    seed: int


def synthetic_aligned_matrix(
    reference: Tensor | object,
    target: float,
    seed: int = 0,
    mask: Tensor | object | None = None,
    psd: str = "clip",
    tolerance: float = 0.01,
    max_error: float = 0.05,
    jitter: float = 1e-6,
) -> SyntheticMatrix:
    """PSD matrix whose measured Spearman alignment with `reference` is near `target`.

    See the module docstring for the construction.

    Args:
        reference: ``n_items x n_items`` symmetric finite similarity matrix (e.g.
            ``load_dataset("spa-verb-act").similarity.matrix``).
        target: alignment asked for, in ``[0, 1]``.
        seed: seed of the shuffle (same seed, same matrix).
        mask: ``n_items x n_items`` bool, True where the reference is observed (None = all).
        psd: how each mixture is made PSD, as in `MatrixKernel`: "clip" or "jitter".
        tolerance: bisection stops once ``|measured - target| <= tolerance``.
        max_error: raise if the closest reachable alignment is further than this.
        jitter: relative jitter of the PSD repair (as in `MatrixKernel`).

    Returns:
        `SyntheticMatrix` (its ``matrix`` is ``n_items x n_items``).

    Raises:
        ConfigError: target outside [0, 1], bad option, or the target cannot be reached
            within `max_error` -- try another seed or ``psd="jitter"``.
        DataError: reference / mask malformed, fewer than 3 observed pairs, or a reference
            constant over the observed pairs.
    """
    _validate_options(target, seed, psd, tolerance, max_error)
    human = validate_square_matrix(reference, "reference")
    observed = validate_mask(mask, human.shape[0])
    pairs = observed & ~torch.eye(human.shape[0], dtype=torch.bool)
    n_pairs = int(pairs.sum()) // 2
    if n_pairs < 3:
        raise DataError(
            f"'mask' should mark at least 3 observed off-diagonal pairs but marks {n_pairs}; "
            "a rank correlation needs pairs to rank."
        )
    masked = torch.where(observed, human, torch.zeros_like(human))

    def kernel(mixture: Tensor) -> Tensor:
        return repair_psd(mixture, psd, jitter, argument="reference", warn=False)[0]

    def alignment(matrix: Tensor) -> float:
        return _measure(matrix, human, pairs)

    reference_kernel = kernel(masked)
    evaluated = {1.0: (reference_kernel, alignment(reference_kernel))}
    if abs(evaluated[1.0][1] - target) > tolerance:
        shuffled = _shuffled_reference(masked, pairs, seed)

        def mixed(weight: float) -> Tensor:
            return kernel(weight * masked + (1 - abs(weight)) * shuffled)

        random_kernel = mixed(0.0)
        evaluated[0.0] = (random_kernel, alignment(random_kernel))
        if evaluated[0.0][1] > target + tolerance:
            evaluated[-1.0] = (mixed(-1.0), alignment(mixed(-1.0)))
            _bisect(mixed, alignment, float(target), tolerance, evaluated, -1.0, 0.0)
        else:
            _bisect(mixed, alignment, float(target), tolerance, evaluated, 0.0, 1.0)
    weight, (matrix, measured) = min(evaluated.items(), key=lambda item: abs(item[1][1] - target))
    if abs(measured - target) > max_error:
        raise ConfigError(
            f"'target' {target} could not be reached: the closest measured alignment is "
            f"{measured:.4f} (seed {seed}, psd={psd!r}, {n_pairs} observed pairs); try another "
            "seed, psd='jitter' (keeps the reference's off-diagonal entries) or a reference "
            "with more observed pairs."
        )
    return SyntheticMatrix(matrix, measured, float(target), weight, seed)


def synthetic_aligned_kernel(
    reference: Tensor | object,
    target: float,
    seed: int = 0,
    mask: Tensor | object | None = None,
    psd: str = "clip",
    outputscale: float = 1.0,
    fit_outputscale: bool = True,
    tolerance: float = 0.01,
    max_error: float = 0.05,
) -> tuple[MatrixKernel, float]:
    """`MatrixKernel` on `synthetic_aligned_matrix` and its measured alignment.

    Args: as `synthetic_aligned_matrix`, plus the kernel's `outputscale` and
    `fit_outputscale`. The matrix is already PSD, so the kernel keeps it unchanged (its
    `repair` says so); the alignment is measured again on the kernel's own covariance.

    Returns:
        ``(kernel over n_items arms, measured Spearman alignment)``. The kernel also carries
        ``kernel.measured_alignment`` and ``kernel.synthetic`` (the `SyntheticMatrix`).
    """
    synthetic = synthetic_aligned_matrix(
        reference, target, seed, mask, psd=psd, tolerance=tolerance, max_error=max_error
    )
    kernel = MatrixKernel(
        synthetic.matrix, psd=psd, outputscale=outputscale, fit_outputscale=fit_outputscale
    )
    human = validate_square_matrix(reference, "reference")
    pairs = validate_mask(mask, human.shape[0]) & ~torch.eye(human.shape[0], dtype=torch.bool)
    measured = _measure(kernel.covariance, human, pairs)
    kernel.measured_alignment = measured
    kernel.synthetic = synthetic
    return kernel, measured


def _validate_options(
    target: float, seed: int, psd: str, tolerance: float, max_error: float
) -> None:
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0 <= target <= 1:
        raise ConfigError(
            f"'target' should be a Spearman alignment in [0, 1] but got {target!r}; pass e.g. 0.5."
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"'seed' should be an int >= 0 but got {seed!r}.")
    if psd not in ("clip", "jitter"):
        raise ConfigError(f"'psd' should be 'clip' or 'jitter' but got {psd!r}.")
    if not (isinstance(tolerance, (int, float)) and 0 < tolerance <= max_error):
        raise ConfigError(
            f"'tolerance' should be in (0, max_error={max_error}] but got {tolerance!r}."
        )


def _measure(matrix: Tensor, human: Tensor, pairs: Tensor) -> float:
    """Spearman alignment over the observed off-diagonal pairs."""
    from deepalign.alignment import spearman_alignment

    value = float(spearman_alignment(matrix, human, pairs))
    if math.isnan(value):
        raise DataError(
            "'reference' is constant over the observed pairs of 'mask', so no alignment with it "
            "can be measured; pass a reference whose observed similarities differ."
        )
    return value


def _shuffled_reference(masked: Tensor, pairs: Tensor, seed: int) -> Tensor:
    """``n x n``: the reference with its observed upper-triangle values permuted (mirrored
    below the diagonal; diagonal kept; unobserved pairs 0)."""
    rows, columns = torch.nonzero(pairs.triu(diagonal=1), as_tuple=True)
    values = masked[rows, columns]
    generator = torch.Generator().manual_seed(seed)
    permuted = values[torch.randperm(values.shape[0], generator=generator)]
    shuffled = torch.diag(masked.diagonal())
    shuffled[rows, columns] = permuted
    shuffled[columns, rows] = permuted
    return shuffled


def _bisect(
    mixed: Callable[[float], Tensor],
    alignment: Callable[[Tensor], float],
    target: float,
    tolerance: float,
    evaluated: dict[float, tuple[Tensor, float]],
    low: float,
    high: float,
) -> None:
    """Bisection on the mixing weight in ``[low, high]`` (both already in `evaluated`); adds
    every evaluated ``weight: (kernel, measured alignment)`` to `evaluated`."""
    if not evaluated[low][1] < target < evaluated[high][1]:
        return
    for _ in range(BISECTION_STEPS):
        if min(abs(value - target) for _, value in evaluated.values()) <= tolerance:
            return
        middle = (low + high) / 2
        matrix = mixed(middle)
        value = alignment(matrix)
        evaluated[middle] = (matrix, value)
        if value < target:
            low = middle
        else:
            high = middle
