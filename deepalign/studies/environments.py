"""Study 1's environments and arm sets: what the rewards are, and over which actions.

Two environments (`ENVIRONMENTS`, recipe key `synthetic.environment`):

* "ratings": the true value of an action is its mean human rating (the `ValueBandit` as
  built from the data). The reference kernel is human similarity, but it did not generate
  the rewards.
* "gp-sample": the paper's set-up, where the environment's own kernel IS the reference. For
  each run seed, the true values are one draw from a GP whose covariance is the reference
  kernel (`environment_kernel`: the human matrix made PSD and unit-diagonal, exactly the
  kernel a synthetic agent gets at alignment 1), standardised over the items and scaled to
  the value's real ratings: `value = mean + sd * (f - mean(f)) / sd(f)`, `f ~ N(0, K)`,
  with the mean and SD of the value's ratings over the arm set's items, so the scale and
  the bad-action threshold keep their meaning. The standardisation matters: the human
  kernel has a strong common factor (its top eigenvalue is 43 % of the trace on the block),
  and a raw draw would often shift every action above or below the threshold, leaving runs
  with no bad action to avoid. Values are not clipped to the scale (a clip would
  tie the best arms). The draw is seeded by (dataset, value, arm set, run seed), so every
  agent and alignment level meets the same environment at the same seed.

Two arm sets (`ARM_SETS`, recipe key `synthetic.arms`):

* "all": every item with the value (SpA-Verb-ACT: 175 items, 127 arms), whose human matrix
  is block-wise (no judgments across SpA-Verb classes).
* "block": the largest complete block of the human matrix (`complete_block`: every pair
  judged; on SpA-Verb-ACT one SpA-Verb class of 69 items, about 50 arms after the held-out
  split), the paper's size and a matrix with no missing pairs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from deepalign.errors import DataError
from deepalign.studies.config import SYNTHETIC_ARM_SETS as ARM_SETS
from deepalign.studies.config import SYNTHETIC_ENVIRONMENTS as ENVIRONMENTS
from deepalign.studies.grid import stable_seed
from deepalign.studies.measure import unit_diagonal

__all__ = [
    "ARM_SETS", "ENVIRONMENTS", "complete_block", "environment_kernel", "gp_sample_values",
]


def complete_block(mask: Tensor) -> Tensor:
    """LongTensor: the items (ascending) of the largest set in which every pair is observed.

    Greedy: for each item, its observed neighbours (itself included) are grown into a
    complete set in order of degree (highest first, then index); the largest set wins (the
    first on ties). On a matrix made of complete blocks (SpA-Verb's classes) each item's
    neighbourhood is its block, so the result is the largest block. Deterministic.

    Raises:
        DataError: `mask` not square bool, or no observed pair at all.
    """
    if mask.dim() != 2 or mask.shape[0] != mask.shape[1] or mask.dtype != torch.bool:
        raise DataError(f"'mask' should be a square bool matrix but got {tuple(mask.shape)} "
                        f"{mask.dtype}")
    n = mask.shape[0]
    linked = (mask & mask.T) | torch.eye(n, dtype=torch.bool)
    degree = linked.sum(dim=1)
    order = sorted(range(n), key=lambda i: (-int(degree[i]), i))
    best: list[int] = []
    for i in range(n):
        members, open_to = [i], linked[i].clone()  # open_to: linked to every member so far
        for j in order:
            if j != i and bool(open_to[j]):
                members.append(j)
                open_to &= linked[j]
        if len(members) > len(best):
            best = members
    if len(best) < 2:
        raise DataError("the similarity mask has no observed pair, so it has no complete block")
    return torch.tensor(sorted(best), dtype=torch.long)


def environment_kernel(matrix: Tensor, mask: Tensor | None) -> Tensor:
    """The gp-sample environment's covariance over the items: the reference (human) matrix
    made PSD as a synthetic kernel at alignment 1 is (`synthetic_aligned_matrix` with target
    1 returns the repaired reference itself), unit diagonal. float64 `n_items x n_items`."""
    from deepalign.kernels import synthetic_aligned_matrix

    return unit_diagonal(synthetic_aligned_matrix(matrix, 1.0, seed=0, mask=mask).matrix)


def gp_sample_values(kernel: Tensor, ratings: Tensor, seed: int, *key: object) -> Tensor:
    """One GP draw over the items, standardised and scaled to `ratings`:
    `mean(ratings) + sd(ratings) * (f - mean(f)) / sd(f)`, `f ~ N(0, kernel)`.

    Args:
        kernel: unit-diagonal PSD `n_items x n_items` (`environment_kernel`).
        ratings: float64 `n_items`, the value's real mean ratings (their mean and SD set
            the draw's scale).
        seed: the run seed; key: what else identifies the environment (dataset, value, arm
            set): the generator is seeded by `stable_seed("gp-sample", *key, seed)`.

    Returns:
        float64 `n_items`. The same arguments give the same values on every machine: a CPU
        float64 generator and a Cholesky factor (unique, unlike an eigenbasis's signs) of
        the kernel plus the smallest jitter from 1e-10 up that factorises.
    """
    kernel = kernel.to(torch.float64).cpu()
    kernel = (kernel + kernel.T) / 2
    eye = torch.eye(kernel.shape[0], dtype=torch.float64)
    for jitter in (1e-10, 1e-8, 1e-6, 1e-4):
        root, info = torch.linalg.cholesky_ex(kernel + jitter * eye)
        if int(info) == 0:
            break
    else:
        raise DataError("the environment kernel is not positive semi-definite (Cholesky failed "
                        "with jitter up to 1e-4); repair it with MatrixKernel first")
    generator = torch.Generator().manual_seed(stable_seed("gp-sample", *key, seed))
    z = torch.randn(kernel.shape[0], generator=generator, dtype=torch.float64)
    draw = root @ z
    draw = (draw - draw.mean()) / draw.std()
    ratings = ratings.to(torch.float64).cpu()
    return ratings.mean() + ratings.std() * draw
