"""Study 1 (the paper's first experiment): kernels of controlled alignment with people.

For each value, alignment level and run seed, a synthetic kernel over the dataset's items is
built by `deepalign.kernels.synthetic_aligned_matrix` with the human similarity matrix as
reference (seeded by the dataset, level and run seed, so every agent and value meets the
same kernels), rescaled to a unit diagonal, and its alignment *measured* (`kernel_alignment`);
the table records the measured alignment, never the target. Agents that use no kernel
(independent Thompson sampling, random) run once per value and seed, as reference lines.
With `references` (the default) every kernel agent also runs the reference kernels
"constant" and "identity" (`deepalign.studies.references`; the variant's condition, level nan)
on the same bandits; their alignment is measured like any kernel's and is nan (no rank order).

Every variant (`SyntheticStudyConfig.variants()`: environment x arm set, e.g.
"gp-sample:block"; `deepalign.studies.environments`) is the cells' condition and runs the
whole grid above on its own items and rewards. In a "gp-sample" variant each run seed has
its own environment, shared by every agent, level and kernel at that seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from deepalign.agents import ValueBandit
from deepalign.agents.calibration import DEFAULT_CALIBRATION
from deepalign.data import Dataset
from deepalign.kernels import synthetic_aligned_matrix
from deepalign.studies.analysis import KERNEL_FREE_AGENTS
from deepalign.studies.config import StudyConfig, level_list, seed_list, split_variant
from deepalign.studies.environments import complete_block, environment_kernel, gp_sample_values
from deepalign.studies.grid import Cell
from deepalign.studies.measure import ALIGNMENT_SPLITS, kernel_alignment, unit_diagonal
from deepalign.studies.references import REFERENCE_KERNELS, reference_matrix
from deepalign.studies.runner import KernelBatch
from deepalign.studies.sources import StudySources

__all__ = ["SyntheticPlan"]


class SyntheticPlan:
    """Cells, bandits and kernels of study 1 (`config.synthetic`)."""

    study = "synthetic"

    def __init__(self, config: StudyConfig, sources: StudySources) -> None:
        if config.synthetic is None:
            raise ValueError("SyntheticPlan needs a config with a 'synthetic' section")
        self.section = config.synthetic
        self.sources = sources
        self.seeds = seed_list(self.section.seeds if self.section.seeds is not None
                               else config.seeds)
        self._horizon = self.section.horizon or config.horizon
        self.calibration = DEFAULT_CALIBRATION if config.calibration else None
        self._recent: dict[tuple, dict[int, tuple[torch.Tensor, dict[str, float]]]] = {}

    def cells(self) -> list[Cell]:
        """Per variant and value: levels x kernel agents x seeds, the kernel-free agents x
        seeds, then (with `references`) the reference kernels x kernel agents x seeds."""
        s = self.section
        kernel_agents = [agent for agent in s.agents if agent not in KERNEL_FREE_AGENTS]
        out = []
        for variant in s.variants():
            for value in s.values:
                for level in level_list(s.levels):
                    for agent in kernel_agents:
                        out += [Cell(self.study, variant, s.dataset, value, "synthetic", agent,
                                     seed, level=level) for seed in self.seeds]
                for agent in s.agents:
                    if agent in KERNEL_FREE_AGENTS:
                        out += [Cell(self.study, variant, s.dataset, value, "none", agent, seed)
                                for seed in self.seeds]
                for kernel in REFERENCE_KERNELS if s.references else ():
                    for agent in kernel_agents:
                        out += [Cell(self.study, variant, s.dataset, value, kernel, agent, seed)
                                for seed in self.seeds]
        return out

    def horizon(self, cell: Cell) -> int:
        return self._horizon

    def dataset(self, cell: Cell) -> Dataset:
        """The items of `cell`'s arm set: the dataset, or its largest complete block."""
        dataset = self.sources.dataset(cell.dataset, cell.value)
        if _arm_set(cell) == "all":
            return dataset

        def build() -> Dataset:
            return dataset.subset(complete_block(dataset.similarity.mask).tolist())

        return self.sources.cached(("complete-block", cell.dataset, cell.value), build)

    def bandit(self, cell: Cell) -> ValueBandit:
        """The bandit of `cell`: the dataset's ratings, or (gp-sample) the run seed's draw."""
        dataset = self.dataset(cell)
        arm_set = _arm_set(cell)
        bandit = self.sources.bandit((cell.dataset, "human", arm_set), dataset, cell.value)
        if _environment(cell) == "ratings":
            return bandit

        def build() -> ValueBandit:
            kernel = self.sources.cached(
                ("environment-kernel", cell.dataset, cell.value, arm_set),
                lambda: environment_kernel(dataset.similarity.matrix, dataset.similarity.mask),
            )
            values = gp_sample_values(kernel, bandit.true_values, cell.seed, cell.dataset,
                                      cell.value, arm_set)
            return bandit.with_true_values(values)

        key = ("gp-sample-bandit", cell.dataset, cell.value, arm_set, cell.seed)
        return self.sources.cached(key, build)

    def kernels(self, cells: Sequence[Cell]) -> KernelBatch:
        first = cells[0]
        source = f"{first.dataset} human similarity"
        if first.kernel == "none":
            nan = torch.full((len(cells),), math.nan, dtype=torch.float64)
            return KernelBatch(None, dict.fromkeys(ALIGNMENT_SPLITS, nan), source)
        if first.kernel in REFERENCE_KERNELS:
            matrix, measured = self._reference(first)
            return KernelBatch(matrix, {
                split: torch.full((len(cells),), measured[split], dtype=torch.float64)
                for split in ALIGNMENT_SPLITS
            }, source)
        built = [self._kernel(cell) for cell in cells]
        matrix = torch.stack([b[0] for b in built])
        alignment = {
            split: torch.tensor([b[1][split] for b in built], dtype=torch.float64)
            for split in ALIGNMENT_SPLITS
        }
        return KernelBatch(matrix, alignment, source)

    def _kernel(self, cell: Cell) -> tuple[torch.Tensor, dict[str, float]]:
        """The run's kernel (unit diagonal) and its measured alignment. Kernels of the two
        most recent (value, level) pairs are kept: agents at one level share them."""
        level_key = (cell.dataset, cell.value, _arm_set(cell), f"{cell.level:.9g}")
        if level_key not in self._recent:
            self._recent[level_key] = {}
            while len(self._recent) > 2:
                self._recent.pop(next(iter(self._recent)))
        kernels = self._recent[level_key]
        if cell.seed not in kernels:
            dataset = self.dataset(cell)
            similarity = dataset.similarity
            synthetic = synthetic_aligned_matrix(
                similarity.matrix, cell.level, seed=cell.kernel_seed(), mask=similarity.mask
            )
            matrix = unit_diagonal(synthetic.matrix)
            alignment = kernel_alignment(matrix, similarity.matrix, similarity.mask,
                                         self.sources.heldout(dataset))
            kernels[cell.seed] = (matrix, alignment)
        return kernels[cell.seed]

    def _reference(self, cell: Cell) -> tuple[torch.Tensor, dict[str, float]]:
        """The reference kernel of `cell` over the dataset's items and its measured
        alignment (nan: a constant matrix, or constant off-diagonal pairs, has no order)."""
        dataset = self.dataset(cell)

        def build() -> tuple[torch.Tensor, dict[str, float]]:
            similarity = dataset.similarity
            matrix = reference_matrix(cell.kernel, len(dataset.items))
            return matrix, kernel_alignment(matrix, similarity.matrix, similarity.mask,
                                            self.sources.heldout(dataset))

        return self.sources.cached(("reference-kernel", cell.dataset, dataset.items.ids,
                                    cell.kernel), build)


def _environment(cell: Cell) -> str:
    """"ratings" or "gp-sample"."""
    return split_variant(cell.condition)[0]


def _arm_set(cell: Cell) -> str:
    return split_variant(cell.condition)[1]
