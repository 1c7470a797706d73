"""Fixtures of the alignment tests: a seeded synthetic alignment problem and a one-thread
context (tiny problems gain nothing from threads, and the test machine is shared)."""

from collections.abc import Callable, Iterator
from typing import NamedTuple

import pytest
import torch
from torch import Tensor

from deepalign.alignment import cosine_similarity_matrix


class AlignmentProblem(NamedTuple):
    """``embeddings`` n_items x d (weakly aligned, float32), ``human_sim`` n_items x n_items
    (float64, in [0, 1]), ``mask`` (three complete blocks, diagonal True), ``latent``
    n_items x k (the factors that generate the human matrix: perfectly aligned)."""

    embeddings: Tensor
    human_sim: Tensor
    mask: Tensor
    latent: Tensor


def make_problem(
    n_items: int = 60,
    n_blocks: int = 3,
    k: int = 4,
    d: int = 32,
    signal: float = 0.25,
    seed: int = 0,
) -> AlignmentProblem:
    """Human similarity = (1 + cos(latent)) / 2; embeddings = weak linear image of the
    latent factors + isotropic noise, so a linear head can recover the alignment."""
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(n_items, k, generator=g, dtype=torch.float64)
    human = (1.0 + cosine_similarity_matrix(latent)) / 2.0
    mixing = torch.randn(k, d, generator=g, dtype=torch.float64)
    noise = torch.randn(n_items, d, generator=g, dtype=torch.float64)
    embeddings = (signal * latent @ mixing + noise).float()
    block = torch.arange(n_items) * n_blocks // n_items
    mask = block[:, None] == block[None, :]
    return AlignmentProblem(embeddings, human, mask, latent)


@pytest.fixture
def problem() -> AlignmentProblem:
    return make_problem()


@pytest.fixture
def problem_factory() -> Callable[..., AlignmentProblem]:
    return make_problem


@pytest.fixture
def one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
