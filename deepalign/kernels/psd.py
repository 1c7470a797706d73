"""Validation of precomputed covariance matrices and their repair to positive semi-definite.

A human (or language-model) similarity matrix is symmetric but rarely positive semi-definite
(PSD): judgments are not inner products. A Gaussian process needs a PSD covariance, so
`repair_psd` changes the matrix by one of two documented methods and reports how much:

- ``"clip"``: eigendecomposition ``K = V diag(lam) V^T``; negative eigenvalues are set to 0
  and ``jitter * mean(|diag K|)`` is added to every eigenvalue (i.e. to the diagonal), so the
  result is positive definite. This is the nearest PSD matrix in Frobenius norm (plus the
  jitter).
- ``"jitter"``: ``c * I`` is added with ``c = -lam_min + jitter * mean(|diag K|)`` (the
  smallest shift that makes the matrix positive definite, plus jitter), the jitter part
  growing tenfold until a Cholesky factorisation succeeds. Only the diagonal changes, so every
  off-diagonal similarity (and hence any rank-based alignment measured on the upper triangle)
  is kept exactly.

A matrix whose smallest eigenvalue is already above ``-1e-10 * max|lam|`` is left unchanged
by both methods (`PSDRepair.changed` is False). ``"error"`` raises `DataError` instead of
repairing.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from deepalign.errors import ConfigError, DataError

PSDMethod = Literal["clip", "jitter", "error"]
PSD_METHODS: tuple[str, ...] = ("clip", "jitter", "error")

# An eigenvalue above -EIGEN_TOLERANCE * max|eigenvalue| counts as non-negative (round-off).
EIGEN_TOLERANCE = 1e-10
# Largest number of tenfold jitter increases tried by the "jitter" method.
MAX_JITTER_TRIES = 25


class PSDRepairWarning(UserWarning):
    """Warned when a matrix given as a covariance was changed to make it PSD."""


@dataclass(frozen=True)
class PSDRepair:
    """What `repair_psd` did to a matrix.

    Attributes:
        method: "clip", "jitter" or "error" (the method asked for).
        changed: whether the matrix was changed at all.
        min_eigenvalue_before: smallest eigenvalue of the symmetric input.
        min_eigenvalue_after: smallest eigenvalue of the returned matrix (from the
            repaired spectrum: ``jitter`` for "clip", ``min_eigenvalue_before + jitter`` for
            "jitter").
        frobenius_change: ``||K_after - K_before||_F``.
        relative_frobenius_change: ``frobenius_change / ||K_before||_F`` (0 for a zero matrix).
        n_clipped: eigenvalues below the tolerance that "clip" set to 0 (0 for "jitter").
        jitter: the value added to the diagonal (0 when unchanged).
    """

    method: str
    changed: bool
    min_eigenvalue_before: float
    min_eigenvalue_after: float
    frobenius_change: float
    relative_frobenius_change: float
    n_clipped: int
    jitter: float

    def summary(self) -> str:
        """One line for logs and warnings."""
        if not self.changed:
            return f"already PSD (min eigenvalue {self.min_eigenvalue_before:.3g}); unchanged"
        return (
            f"made PSD by {self.method!r}: min eigenvalue {self.min_eigenvalue_before:.3g} -> "
            f"{self.min_eigenvalue_after:.3g}, {self.n_clipped} eigenvalues clipped, "
            f"jitter {self.jitter:.3g}, Frobenius change {self.frobenius_change:.3g} "
            f"({100 * self.relative_frobenius_change:.2f}% of the matrix)"
        )


def validate_square_matrix(
    matrix: Tensor | object, argument: str, symmetry_tolerance: float = 1e-8
) -> Tensor:
    """Checks a matrix is square, finite and symmetric; returns it symmetrised in float64.

    Args:
        matrix: ``n x n`` tensor or array-like.
        argument: the argument's name, used in error messages.
        symmetry_tolerance: largest ``|K_ij - K_ji|`` accepted, relative to ``max(1, max|K|)``.

    Returns:
        ``n x n`` float64 tensor ``(K + K^T) / 2``.

    Raises:
        DataError: not a square 2-d matrix, an entry is NaN or infinite, or not symmetric.
    """
    try:
        tensor = torch.as_tensor(matrix).detach()
    except (TypeError, ValueError, RuntimeError) as error:
        raise DataError(
            f"{argument!r} should be an n x n numeric matrix but could not be read as a "
            f"tensor ({error}); pass a torch.Tensor or numpy array."
        ) from error
    if tensor.dim() != 2 or tensor.shape[0] != tensor.shape[1] or tensor.shape[0] == 0:
        raise DataError(
            f"{argument!r} should be a non-empty square n x n matrix but got shape "
            f"{tuple(tensor.shape)}; pass one row and one column per arm."
        )
    if tensor.dtype == torch.bool or tensor.is_complex():
        raise DataError(f"{argument!r} should be a real-valued matrix but got {tensor.dtype}.")
    tensor = tensor.to(torch.float64)
    finite = torch.isfinite(tensor)
    if not bool(finite.all()):
        bad = torch.nonzero(~finite)[0].tolist()
        raise DataError(
            f"{argument!r} should be finite but has {int((~finite).sum())} NaN/inf entries "
            f"(first at row {bad[0]}, column {bad[1]}: {tensor[bad[0], bad[1]].item()}); "
            "fill unobserved pairs with 0 and pass a mask that marks them unobserved."
        )
    scale = max(1.0, float(tensor.abs().max()))
    asymmetry = (tensor - tensor.T).abs()
    worst = float(asymmetry.max())
    if worst > symmetry_tolerance * scale:
        row, col = divmod(int(asymmetry.argmax()), tensor.shape[0])
        raise DataError(
            f"{argument!r} should be symmetric (|K_ij - K_ji| <= {symmetry_tolerance:g} x "
            f"{scale:.3g}) but {argument}[{row}, {col}] = {tensor[row, col].item():.6g} and "
            f"{argument}[{col}, {row}] = {tensor[col, row].item():.6g}; symmetrise it first, "
            "e.g. (K + K.T) / 2."
        )
    return (tensor + tensor.T) / 2


def validate_mask(mask: Tensor | object | None, n_arms: int) -> Tensor:
    """Checks an observed-pairs mask; returns it as ``n_arms x n_arms`` bool with a True
    diagonal (all True when `mask` is None).

    Raises:
        DataError: wrong shape, values other than 0/1, or not symmetric.
    """
    if mask is None:
        return torch.ones(n_arms, n_arms, dtype=torch.bool)
    observed = torch.as_tensor(mask).detach()
    if observed.shape != (n_arms, n_arms):
        raise DataError(
            f"'mask' should have the shape of 'K', ({n_arms}, {n_arms}), but got "
            f"{tuple(observed.shape)}; pass the SimilarityJudgments.mask of the same items."
        )
    if observed.dtype != torch.bool:
        if not bool(((observed == 0) | (observed == 1)).all()):
            raise DataError(
                f"'mask' should be boolean (True = observed pair) but got dtype {observed.dtype} "
                "with values other than 0 and 1."
            )
        observed = observed.to(torch.bool)
    if not bool((observed == observed.T).all()):
        raise DataError(
            "'mask' should be symmetric (a pair is observed in both orders) but it is not; "
            "use mask | mask.T."
        )
    return observed | torch.eye(n_arms, dtype=torch.bool)


def repair_psd(
    matrix: Tensor,
    method: str = "clip",
    jitter: float = 1e-6,
    argument: str = "K",
    warn: bool = True,
) -> tuple[Tensor, PSDRepair]:
    """Makes a symmetric matrix positive semi-definite by `method` (see the module docstring).

    Args:
        matrix: ``n x n`` symmetric float64 tensor (see `validate_square_matrix`).
        method: "clip", "jitter" or "error".
        jitter: relative jitter; the absolute one is ``jitter * mean(|diag K|)`` (or
            ``jitter`` when the diagonal is 0).
        argument: the argument's name, used in error messages.
        warn: issue a `PSDRepairWarning` when the matrix changed.

    Returns:
        ``(repaired n x n float64, PSDRepair report)``.

    Raises:
        ConfigError: unknown method or negative jitter.
        DataError: method "error" and the matrix is indefinite.
    """
    if method not in PSD_METHODS:
        raise ConfigError(
            f"'psd' should be one of {PSD_METHODS} but got {method!r}; use 'clip' (nearest PSD "
            "matrix) or 'jitter' (add to the diagonal until Cholesky succeeds)."
        )
    if not jitter >= 0 or jitter != jitter:
        raise ConfigError(f"'jitter' should be a float >= 0 but got {jitter!r}; use e.g. 1e-6.")
    matrix = matrix.to(torch.float64)
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    min_before = float(eigenvalues[0])
    tolerance = EIGEN_TOLERANCE * max(float(eigenvalues.abs().max()), 1e-300)
    if min_before >= -tolerance:
        report = PSDRepair(method, False, min_before, min_before, 0.0, 0.0, 0, 0.0)
        return matrix, report
    if method == "error":
        raise DataError(
            f"{argument!r} should be positive semi-definite but its smallest eigenvalue is "
            f"{min_before:.6g}; pass psd='clip' or psd='jitter' to repair it."
        )
    diagonal_scale = float(matrix.diagonal().abs().mean())
    absolute_jitter = jitter * diagonal_scale if diagonal_scale > 0 else jitter
    if method == "clip":
        repaired, added, n_clipped = _clip(eigenvalues, eigenvectors, absolute_jitter, tolerance)
    else:
        repaired, added = _jitter_until_cholesky(matrix, absolute_jitter, min_before)
        n_clipped = 0
    change = float(torch.linalg.matrix_norm(repaired - matrix))
    norm = float(torch.linalg.matrix_norm(matrix))
    report = PSDRepair(
        method=method,
        changed=True,
        min_eigenvalue_before=min_before,
        min_eigenvalue_after=added if method == "clip" else min_before + added,
        frobenius_change=change,
        relative_frobenius_change=change / norm if norm > 0 else 0.0,
        n_clipped=n_clipped,
        jitter=added,
    )
    if warn:
        warnings.warn(f"{argument!r} {report.summary()}.", PSDRepairWarning, stacklevel=3)
    return repaired, report


def _clip(
    eigenvalues: Tensor, eigenvectors: Tensor, absolute_jitter: float, tolerance: float
) -> tuple[Tensor, float, int]:
    """Eigenvalues below 0 -> 0, then + jitter; returns (matrix, jitter, number clipped)."""
    n_clipped = int((eigenvalues < -tolerance).sum())
    clipped = eigenvalues.clamp(min=0.0) + absolute_jitter
    repaired = (eigenvectors * clipped) @ eigenvectors.T
    return (repaired + repaired.T) / 2, absolute_jitter, n_clipped


def _jitter_until_cholesky(
    matrix: Tensor, absolute_jitter: float, min_eigenvalue: float
) -> tuple[Tensor, float]:
    """Adds (-min_eigenvalue + j) I, j growing tenfold from `absolute_jitter` until Cholesky
    succeeds; returns (matrix, value added)."""
    identity = torch.eye(matrix.shape[0], dtype=matrix.dtype)
    extra = max(absolute_jitter, 1e-12)
    for _ in range(MAX_JITTER_TRIES):
        value = -min_eigenvalue + extra
        candidate = matrix + value * identity
        if int(torch.linalg.cholesky_ex(candidate).info) == 0:
            return candidate, value
        extra *= 10.0
    raise DataError(  # pragma: no cover - unreachable for finite matrices
        f"could not make the matrix PSD with jitter up to {value:.3g}; use psd='clip'."
    )
