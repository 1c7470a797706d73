"""`MatrixKernel`: a GP kernel from a precomputed ``n_arms x n_arms`` similarity matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from gpytorch.kernels import Kernel
from torch import Tensor

from deepalign.errors import ConfigError
from deepalign.kernels.index import forward_indices, gather_covariance
from deepalign.kernels.outputscale import (
    register_outputscale,
    scale_covariance,
    set_outputscale,
)
from deepalign.kernels.psd import PSDRepair, repair_psd, validate_mask, validate_square_matrix

if TYPE_CHECKING:
    from deepalign.data import SimilarityJudgments


class MatrixKernel(Kernel):
    """Covariance ``k(i, j) = outputscale * K_psd[i, j]`` over arms given as item indices.

    ``K`` is a precomputed similarity matrix (human judgments, a language model, a synthetic
    kernel). It is checked to be finite and symmetric, then:

    1. **Unobserved pairs are independent.** Where ``mask`` is False, ``K`` is set to 0
       (the diagonal is always kept). Zero covariance between two arms means the GP learns
       nothing about one from the other, so a block-wise matrix such as SpA-Verb (complete
       within each semantic class, nothing across classes) gives independent blocks.
       ``"jitter"`` keeps every one of these zeros; ``"clip"`` keeps them exactly between
       blocks that no chain of observed pairs connects, but may leave small values on
       unobserved pairs inside a connected set of blocks (SpA-Verb classes share a few
       verbs: after clipping, unobserved pairs of ``spa-verb-act`` have mean |k| 0.001,
       max 0.03, against a mean observed similarity of 0.43).
    2. **Made positive semi-definite** by `deepalign.kernels.psd.repair_psd` with method
       ``psd``: ``"clip"`` (default; negative eigenvalues set to 0, plus
       ``jitter * mean(|diag K|)`` on the diagonal), ``"jitter"`` (``(-lam_min + jitter) I``
       added to the diagonal only, so off-diagonal similarities are kept exactly) or
       ``"error"`` (raise `DataError` if indefinite). What changed is in `repair`
       (smallest eigenvalue before/after, Frobenius change) and a `PSDRepairWarning` is
       issued when the matrix changed. An already-PSD matrix is left as given.

    The only parameter `fit_gpytorch_mll` may fit is ``raw_outputscale`` (positive
    ``outputscale``, initial value `outputscale`), and only if `fit_outputscale`; the matrix
    itself is a buffer.

    Inputs are ``... x n x 1`` float tensors of item indices (see `deepalign.kernels.index`),
    so ``SingleTaskGP(train_X, train_Y, covar_module=MatrixKernel(K))``,
    `MaxPosteriorSampling` and `optimize_acqf_discrete` over ``arm_inputs(n_arms)`` work
    unchanged, with any batch shape and ``diag=True``.

    Args:
        K: ``n_arms x n_arms`` similarity matrix (tensor or array), symmetric and finite.
        mask: optional ``n_arms x n_arms`` bool, True where a pair was observed.
        psd: "clip" | "jitter" | "error".
        jitter: relative jitter (see above).
        outputscale: initial outputscale (> 0).
        fit_outputscale: let `fit_gpytorch_mll` fit the outputscale (requires_grad).
        symmetry_tolerance: largest accepted ``|K_ij - K_ji|`` relative to ``max(1, max|K|)``.
        batch_shape: batch shape of the outputscale (gpytorch convention).

    Attributes:
        covariance: ``n_arms x n_arms`` float64 buffer, the masked and repaired matrix.
        observed: ``n_arms x n_arms`` bool buffer, the mask used (all True without one).
        repair: `PSDRepair` report.
    """

    has_lengthscale = False

    def __init__(
        self,
        K: Tensor | Any,
        mask: Tensor | Any | None = None,
        psd: str = "clip",
        jitter: float = 1e-6,
        outputscale: float = 1.0,
        fit_outputscale: bool = True,
        symmetry_tolerance: float = 1e-8,
        batch_shape: torch.Size | None = None,
    ) -> None:
        super().__init__(batch_shape=torch.Size() if batch_shape is None else batch_shape)
        matrix = validate_square_matrix(K, "K", symmetry_tolerance)
        observed = validate_mask(mask, matrix.shape[0])
        masked = torch.where(observed, matrix, torch.zeros_like(matrix))
        repaired, report = repair_psd(masked, psd, jitter, argument="K")
        self.register_buffer("covariance", repaired)
        self.register_buffer("observed", observed)
        self.repair: PSDRepair = report
        register_outputscale(self, outputscale, fit_outputscale)

    @classmethod
    def from_similarity(cls, similarity: SimilarityJudgments, **options: Any) -> MatrixKernel:
        """Kernel from a `deepalign.data.SimilarityJudgments` (its ``matrix`` and ``mask``).

        ``options`` are the other constructor arguments (psd, jitter, outputscale, ...).
        """
        if not hasattr(similarity, "matrix") or not hasattr(similarity, "mask"):
            raise ConfigError(
                "'similarity' should be a SimilarityJudgments (with .matrix and .mask) but got "
                f"{type(similarity).__name__}; use load_dataset(name).similarity."
            )
        return cls(similarity.matrix, mask=similarity.mask, **options)

    @property
    def n_arms(self) -> int:
        """Number of arms (rows of the matrix)."""
        return self.covariance.shape[0]

    @property
    def outputscale(self) -> Tensor:
        """Positive outputscale, shape ``batch_shape``."""
        return self.raw_outputscale_constraint.transform(self.raw_outputscale)

    @outputscale.setter
    def outputscale(self, value: float | Tensor) -> None:
        set_outputscale(self, value)

    def full_matrix(self) -> Tensor:
        """Covariance of all arms, ``batch_shape x n_arms x n_arms`` (float64, detached)."""
        with torch.no_grad():
            scale = self.outputscale.detach().to(torch.float64)
            return self.covariance * scale.unsqueeze(-1).unsqueeze(-1)

    def matrix(self) -> Tensor:
        """Alias of `full_matrix`."""
        return self.full_matrix()

    def forward(
        self,
        x1: Tensor,
        x2: Tensor,
        diag: bool = False,
        last_dim_is_batch: bool = False,
        **params: Any,
    ) -> Tensor:
        """``x1``: ``... x n x 1``, ``x2``: ``... x m x 1`` item indices; returns
        ``... x n x m`` (or ``... x n`` when `diag`)."""
        first, second = forward_indices(x1, x2, self.n_arms, last_dim_is_batch)
        covariance = gather_covariance(self.covariance, first, second, diag).to(x1.dtype)
        return scale_covariance(self, covariance, diag, x1.dtype)
