"""Datasets, bandits and kernel matrices shared by the study plans, each built once.

`StudySources` loads a dataset once per (name, value) (SpA-Verb-ACT drops the items that lack
the requested value, so its item set depends on the value), splits its items with the shared
seeded split (`split_items`), builds one `ValueBandit` per (dataset, value), and turns
encoders and similarity judgments into unit-diagonal kernel matrices over all items
(`DeepKernel` with the cosine base, `MatrixKernel` for judgments; see `measure.unit_diagonal`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable
from typing import Any

import torch
from torch import Tensor, nn

from deepalign.agents import ValueBandit
from deepalign.data import Dataset, open_dataset, split_items
from deepalign.kernels import DeepKernel, MatrixKernel
from deepalign.studies.measure import unit_diagonal

__all__ = ["StudySources"]

#: Datasets whose loader takes a `values=(...)` option (items lacking a value are dropped).
_VALUE_OPTION = ("spa-verb-act",)


class StudySources:
    """Cached data, bandits and kernels of one study run.

    Args:
        split_seed: seed of the personalization / held-out item split.
        heldout_fraction: share of held-out items.
        noise: reward noise SD as a fraction of the value's scale range; None = the
            environment's default (raters' SD where known, else 10 % of the range).
    """

    def __init__(self, split_seed: int, heldout_fraction: float, noise: float | None) -> None:
        self.split_seed = split_seed
        self.heldout_fraction = heldout_fraction
        self.noise = noise
        self._cache: dict[Hashable, Any] = {}

    def cached(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """`build()` once per `key`."""
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    def dataset(self, name: str, value: str | None = None) -> Dataset:
        """Dataset `name` (with value `value` where the loader selects values)."""
        def build() -> Dataset:
            options = {"values": (value,)} if name in _VALUE_OPTION and value else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return open_dataset(name, **options)

        return self.cached(("dataset", name, value if name in _VALUE_OPTION else None), build)

    def heldout(self, dataset: Dataset) -> Tensor:
        """bool `n_items`: the shared split of `dataset`'s items (True = held out)."""
        return split_items(dataset.items.ids, seed=self.split_seed,
                           heldout_fraction=self.heldout_fraction)

    def bandit(self, key: Hashable, dataset: Dataset, value: str) -> ValueBandit:
        """The `ValueBandit` of `dataset` and `value` (cached under `key`)."""
        def build() -> ValueBandit:
            noise_sd = None
            if self.noise is not None:
                column = dataset.values.names.index(value) if value in dataset.values.names else 0
                lo, hi = dataset.values.scales[column]
                noise_sd = self.noise * (hi - lo)
            return ValueBandit(dataset, value, heldout=self.heldout(dataset), noise_sd=noise_sd)

        return self.cached(("bandit", key, value), build)

    @staticmethod
    def encoder_matrix(encoder: nn.Module, texts: tuple[str, ...]) -> Tensor:
        """Unit-diagonal cosine kernel of `encoder`'s embeddings of `texts`:
        `n_items x n_items` float64 (via `DeepKernel(encoder, texts, base="cosine")`, then
        `MatrixKernel`'s PSD repair: float32 round-off can leave eigenvalues just below 0)."""
        kernel = DeepKernel(encoder, list(texts), base="cosine", fit_outputscale=False)
        return StudySources.matrix_kernel(_dense(kernel, len(texts)))

    @staticmethod
    def judgment_matrix(similarity: Any) -> Tensor:
        """Unit-diagonal `MatrixKernel` covariance of similarity judgments (unobserved pairs
        0, made PSD by clipping eigenvalues): `n_items x n_items` float64."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            kernel = MatrixKernel.from_similarity(similarity, fit_outputscale=False)
        return unit_diagonal(kernel.covariance)

    @staticmethod
    def matrix_kernel(matrix: Tensor) -> Tensor:
        """A precomputed similarity (`n_items x n_items`) through `MatrixKernel` (PSD
        repair), unit-diagonal."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            kernel = MatrixKernel(matrix, fit_outputscale=False)
        return unit_diagonal(kernel.covariance)


def _dense(kernel: DeepKernel, n_items: int) -> Tensor:
    x = torch.arange(n_items, dtype=torch.float64).unsqueeze(-1)
    with torch.no_grad():
        return kernel(x, x).to_dense().to(torch.float64)
