"""`DeepKernel`: a GP kernel on the embeddings a (frozen) text encoder gives the items."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from gpytorch.kernels import Kernel, MaternKernel, RBFKernel
from torch import Tensor, nn

from deepalign.errors import ConfigError
from deepalign.kernels.index import forward_indices
from deepalign.kernels.outputscale import (
    register_outputscale,
    scale_covariance,
    set_outputscale,
)

if TYPE_CHECKING:
    from deepalign.data import ItemSet

BASES: tuple[str, ...] = ("cosine", "rbf", "matern")
MATERN_NUS: tuple[float, ...] = (0.5, 1.5, 2.5)


class DeepKernel(Kernel):
    """Covariance ``k(i, j) = outputscale * base(e_i, e_j)`` over arms given as item indices,
    where ``e_i = encoder([text_i])`` is the encoder's embedding of item ``i``.

    Base kernels (``base``):

    - ``"cosine"``: ``<e_i, e_j> / (|e_i| |e_j|) + cosine_shift``, the cosine similarity the
      alignment measures use (`deepalign.alignment.cosine_similarity_matrix`). It is the Gram
      matrix of the normalised embeddings, so PSD; ``cosine_shift >= 0`` adds a constant
      (also PSD), e.g. 1 to make every covariance non-negative. No lengthscale.
    - ``"rbf"``: ``exp(-|e_i - e_j|^2 / (2 l^2))`` (gpytorch `RBFKernel`).
    - ``"matern"``: Matérn with smoothness ``nu`` in {0.5, 1.5, 2.5} (gpytorch `MaternKernel`).

    For rbf / matern the lengthscale ``l`` starts at `lengthscale`, or when None at the median
    heuristic: the median Euclidean distance between the embeddings of two distinct items
    (1.0 if that is 0).

    **What `fit_gpytorch_mll` may fit.** ``raw_outputscale`` (if `fit_outputscale`) and, for
    rbf / matern, ``base_kernel.raw_lengthscale`` (if `fit_lengthscale`). The encoder is never
    fitted by default: its embeddings are computed once at construction (eval mode,
    ``torch.no_grad``) and kept as the ``embeddings`` buffer, and the encoder is not
    registered as a submodule, so none of its parameters are the kernel's (nor kept alive by
    it). Only with ``trainable_encoder=True`` is the encoder registered as ``encoder`` and run
    in every `forward` with gradients, so its trainable parameters are fitted too (the
    deep-kernel-learning setting; prone to overfitting a handful of bandit rewards).

    Inputs are ``... x n x 1`` float tensors of item indices (see `deepalign.kernels.index`),
    so ``SingleTaskGP(train_X, train_Y, covar_module=DeepKernel(encoder, items))``,
    `MaxPosteriorSampling` and `optimize_acqf_discrete` over ``arm_inputs(n_arms)`` work
    unchanged, with any batch shape and ``diag=True``.

    Args:
        encoder: ``nn.Module`` with ``forward(texts: Sequence[str]) -> n_items x d``.
        items: an `ItemSet` (its ``texts`` are embedded) or a sequence of texts; item ``i`` is
            arm ``i``.
        base: "cosine" | "rbf" | "matern".
        lengthscale: initial lengthscale for rbf / matern (None = median heuristic).
        nu: Matérn smoothness.
        cosine_shift: constant added to the cosine kernel (>= 0).
        outputscale: initial outputscale (> 0).
        fit_outputscale: let `fit_gpytorch_mll` fit the outputscale.
        fit_lengthscale: let `fit_gpytorch_mll` fit the lengthscale (rbf / matern).
        trainable_encoder: register the encoder and recompute embeddings with gradients.
        batch_shape: batch shape of outputscale / lengthscale (gpytorch convention).

    Attributes:
        texts: the item texts, one per arm.
        embeddings: ``n_arms x d`` buffer of frozen embeddings (absent when trainable).
        encoder_config: ``encoder.config()`` when the encoder has one, else None.
        checkpoint: the export directory (only on kernels made by `from_checkpoint`).
    """

    has_lengthscale = False

    def __init__(
        self,
        encoder: nn.Module,
        items: ItemSet | Sequence[str],
        base: str = "cosine",
        lengthscale: float | None = None,
        nu: float = 2.5,
        cosine_shift: float = 0.0,
        outputscale: float = 1.0,
        fit_outputscale: bool = True,
        fit_lengthscale: bool = True,
        trainable_encoder: bool = False,
        batch_shape: torch.Size | None = None,
    ) -> None:
        super().__init__(batch_shape=torch.Size() if batch_shape is None else batch_shape)
        _validate_options(encoder, base, lengthscale, nu, cosine_shift)
        self.texts: tuple[str, ...] = _item_texts(items)
        self.base = base
        self.cosine_shift = float(cosine_shift)
        self.trainable_encoder = bool(trainable_encoder)
        config = getattr(encoder, "config", None)
        self.encoder_config: dict | None = config() if callable(config) else None
        embeddings = _frozen_embeddings(encoder, self.texts)
        if self.trainable_encoder:
            self.encoder = encoder
        else:
            self.register_buffer("embeddings", embeddings)
        self.base_kernel = _base_kernel(base, nu, self.batch_shape)
        if self.base_kernel is not None:
            initial = _median_distance(embeddings) if lengthscale is None else lengthscale
            self.base_kernel.lengthscale = float(initial)
            self.base_kernel.raw_lengthscale.requires_grad_(bool(fit_lengthscale))
        register_outputscale(self, outputscale, fit_outputscale)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, items: ItemSet | Sequence[str], base: str = "cosine", **options: Any
    ) -> DeepKernel:
        """Kernel on an encoder exported by `deepalign.encoders.export_encoder` (or
        ``python -m deepalign.train``), loaded with `deepalign.encoders.load_encoder`.

        ``options`` are the other constructor arguments. Raises `CheckpointError` (from
        `load_encoder`) for a missing, truncated or tampered export.
        """
        from deepalign.encoders import load_encoder

        kernel = cls(load_encoder(path), items, base=base, **options)
        kernel.checkpoint = str(path)
        return kernel

    @property
    def n_arms(self) -> int:
        """Number of arms (items)."""
        return len(self.texts)

    @property
    def outputscale(self) -> Tensor:
        """Positive outputscale, shape ``batch_shape``."""
        return self.raw_outputscale_constraint.transform(self.raw_outputscale)

    @outputscale.setter
    def outputscale(self, value: float | Tensor) -> None:
        set_outputscale(self, value)

    def item_embeddings(self) -> Tensor:
        """``n_arms x d`` embeddings: the frozen buffer, or the encoder's output (with grad)
        when `trainable_encoder`."""
        if self.trainable_encoder:
            return self.encoder(list(self.texts))
        return self.embeddings

    def full_matrix(self) -> Tensor:
        """Covariance of all arms, ``batch_shape x n_arms x n_arms`` (float64, detached)."""
        everything = torch.arange(self.n_arms, dtype=torch.float64).unsqueeze(-1)
        with torch.no_grad():
            return self.forward(everything, everything).detach()

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
        embeddings = self.item_embeddings().to(x1.dtype)
        covariance = self._base_covariance(embeddings[first], embeddings[second], diag)
        return scale_covariance(self, covariance, diag, x1.dtype)

    def _base_covariance(self, first: Tensor, second: Tensor, diag: bool) -> Tensor:
        """Base kernel between ``... x n x d`` and ``... x m x d`` embeddings."""
        batch = torch.broadcast_shapes(first.shape[:-2], second.shape[:-2])
        first = first.expand(*batch, *first.shape[-2:])
        second = second.expand(*batch, *second.shape[-2:])
        if self.base_kernel is not None:
            return self.base_kernel.forward(first, second, diag=diag)
        first = nn.functional.normalize(first, dim=-1)
        second = nn.functional.normalize(second, dim=-1)
        if diag:
            return (first * second).sum(-1) + self.cosine_shift
        return first @ second.transpose(-1, -2) + self.cosine_shift


def _validate_options(
    encoder: Any, base: str, lengthscale: float | None, nu: float, cosine_shift: float
) -> None:
    if not isinstance(encoder, nn.Module):
        raise ConfigError(
            f"'encoder' should be an nn.Module with forward(texts) -> n_items x d but got "
            f"{type(encoder).__name__}; load one with deepalign.encoders.load_encoder(path)."
        )
    if base not in BASES:
        raise ConfigError(f"'base' should be one of {BASES} but got {base!r}.")
    if base == "cosine" and lengthscale is not None:
        raise ConfigError(
            f"'lengthscale' has no meaning for base='cosine' but got {lengthscale!r}; "
            "drop it or use base='rbf' / 'matern'."
        )
    if lengthscale is not None and not (isinstance(lengthscale, (int, float)) and lengthscale > 0):
        raise ConfigError(f"'lengthscale' should be a float > 0 or None but got {lengthscale!r}.")
    if base == "matern" and nu not in MATERN_NUS:
        raise ConfigError(f"'nu' should be one of {MATERN_NUS} but got {nu!r}.")
    if not (isinstance(cosine_shift, (int, float)) and cosine_shift >= 0):
        raise ConfigError(
            f"'cosine_shift' should be a float >= 0 (a negative constant is not PSD) but got "
            f"{cosine_shift!r}."
        )


def _item_texts(items: Any) -> tuple[str, ...]:
    """Texts of an ItemSet (``.texts``) or of a sequence of strings."""
    texts = getattr(items, "texts", items)
    if isinstance(texts, str) or not isinstance(texts, Sequence) or len(texts) == 0:
        raise ConfigError(
            "'items' should be an ItemSet or a non-empty sequence of texts but got "
            f"{type(items).__name__}; pass dataset.items or a list of strings."
        )
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        raise ConfigError(
            f"'items' should hold strings but item {bad[0]} is "
            f"{type(texts[bad[0]]).__name__}: {texts[bad[0]]!r}."
        )
    return tuple(texts)


def _frozen_embeddings(encoder: nn.Module, texts: tuple[str, ...]) -> Tensor:
    """``n_items x d`` embeddings computed in eval mode without gradients (the encoder's
    train/eval mode is restored afterwards)."""
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            embeddings = encoder(list(texts))
    finally:
        encoder.train(was_training)
    if not isinstance(embeddings, Tensor) or embeddings.dim() != 2:
        raise ConfigError(
            "'encoder' should return an n_items x d tensor but returned "
            f"{getattr(embeddings, 'shape', type(embeddings).__name__)}."
        )
    if embeddings.shape[0] != len(texts) or not bool(torch.isfinite(embeddings).all()):
        raise ConfigError(
            f"'encoder' should return {len(texts)} finite embeddings (one per item) but "
            f"returned shape {tuple(embeddings.shape)} with "
            f"{int((~torch.isfinite(embeddings)).sum())} non-finite entries."
        )
    return embeddings.detach().clone()


def _base_kernel(base: str, nu: float, batch_shape: torch.Size) -> Kernel | None:
    if base == "rbf":
        return RBFKernel(batch_shape=batch_shape)
    if base == "matern":
        return MaternKernel(nu=nu, batch_shape=batch_shape)
    return None


def _median_distance(embeddings: Tensor) -> float:
    """Median Euclidean distance between distinct items (1.0 when it is 0 or undefined)."""
    n_items = embeddings.shape[0]
    if n_items < 2:
        return 1.0
    distances = torch.cdist(embeddings.double(), embeddings.double())
    upper = torch.triu_indices(n_items, n_items, offset=1)
    median = float(distances[upper[0], upper[1]].median())
    return median if median > 0 else 1.0
