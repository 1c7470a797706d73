"""Study 3, transfer variant: aligned on one dataset's pairs, tested on another's values.

Encoders aligned on sparse pair datasets (activity-pairs, sts-captions; `trained.transfer`)
are tested on value datasets without human similarity between their arms (dillion-morality,
mfv): for each training dataset (the cells' condition), the encoder before and after training
drive the agents on each test dataset and value. The alignment recorded is the encoder's
alignment on the held-out pairs of its training set (from the run's `summary.json`), with
`alignment_source` saying so.

Controls on the same bandits (`deepalign.studies.references`), as in the paired study:
with `trained.uniformity_control`, the kernel "uniformity-matched" (condition: the training
dataset, epoch: the final one) blends the before kernel with a constant to the after
kernel's mean off-diagonal similarity over the test dataset's items (`a` in
`alignment_source`); its alignment is "before"'s (a monotone transform of it). With
`trained.references`, the reference kernels "constant" and "identity" (condition
"reference", no encoder), alignment nan where the test dataset has no human similarity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from deepalign.agents import ValueBandit
from deepalign.agents.calibration import DEFAULT_CALIBRATION
from deepalign.studies.analysis import KERNEL_FREE_AGENTS
from deepalign.studies.config import StudyConfig, seed_list
from deepalign.studies.encoders import EncoderRun
from deepalign.studies.grid import Cell
from deepalign.studies.measure import ALIGNMENT_SPLITS, kernel_alignment
from deepalign.studies.references import (
    REFERENCE_CONDITION,
    REFERENCE_KERNELS,
    UNIFORMITY_KERNEL,
    reference_matrix,
    uniformity_matched,
    uniformity_weight,
)
from deepalign.studies.runner import KernelBatch
from deepalign.studies.sources import StudySources
from deepalign.studies.stages import stage_encoder

__all__ = ["TransferPlan"]


class TransferPlan:
    """Cells, bandits and kernels of study 3's transfer variant (`config.trained.transfer`)."""

    study = "transfer"

    def __init__(self, config: StudyConfig, sources: StudySources,
                 runs: Sequence[EncoderRun]) -> None:
        if config.trained is None or config.trained.transfer is None:
            raise ValueError("TransferPlan needs a config with 'trained.transfer'")
        self.section = config.trained.transfer
        self.agents = config.trained.agents
        self._references = config.trained.references
        self._uniformity = config.trained.uniformity_control
        self.sources = sources
        self.runs = {run.train_dataset: run for run in runs}
        self.seeds = seed_list(config.trained.seeds if config.trained.seeds is not None
                               else config.seeds)
        self._horizon = config.trained.horizon or config.horizon
        self.calibration = DEFAULT_CALIBRATION if config.calibration else None

    def values(self, dataset: str) -> tuple[str, ...]:
        """The value columns tested on `dataset` (default: its first one)."""
        if dataset in self.section.values:
            return self.section.values[dataset]
        return (self.sources.dataset(dataset).values.names[0],)

    def cells(self) -> list[Cell]:
        """Per training dataset, test dataset and value: before, after and the uniformity
        control; then the reference kernels per test dataset and value (kernel agents)."""
        agents = [agent for agent in self.agents if agent not in KERNEL_FREE_AGENTS]
        out: list[Cell] = []

        def add(condition: str, dataset: str, value: str, kernel: str, **fields: float) -> None:
            out.extend(Cell(self.study, condition, dataset, value, kernel, agent, seed,
                            **fields) for agent in agents for seed in self.seeds)

        for train_dataset, run in self.runs.items():
            kernels = [("before", 0.0), ("after", run.final_epoch)]
            if self._uniformity:
                kernels.append((UNIFORMITY_KERNEL, run.final_epoch))
            for dataset in self.section.test_datasets:
                for value in self.values(dataset):
                    for kernel, epoch in kernels:
                        add(train_dataset, dataset, value, kernel,
                            encoder_seed=float(run.seed), epoch=epoch)
        if self._references and self.runs:
            for dataset in self.section.test_datasets:
                for value in self.values(dataset):
                    for kernel in REFERENCE_KERNELS:
                        add(REFERENCE_CONDITION, dataset, value, kernel)
        return out

    def horizon(self, cell: Cell) -> int:
        return self._horizon

    def bandit(self, cell: Cell) -> ValueBandit:
        dataset = self.sources.dataset(cell.dataset)
        return self.sources.bandit((cell.dataset, "transfer"), dataset, cell.value)

    def kernels(self, cells: Sequence[Cell]) -> KernelBatch:
        first = cells[0]
        if first.kernel in REFERENCE_KERNELS:
            return self._reference(cells)
        run = self.runs[first.condition]
        source = f"{run.train_dataset} held-out pairs (trainer summary.json)"
        if first.kernel == UNIFORMITY_KERNEL:
            matrix, a = self.uniformity_control(run, first.dataset)
            source += f"; uniformity blend a={a:.6g} matched to 'after'"
        else:
            matrix = self._matrix(run, first.dataset, first.kernel)
        stage = "after" if first.kernel == "after" else "before"  # the control ranks as before
        alignment = {
            split: torch.full((len(cells),), run.summary_alignment(split, stage),
                              dtype=torch.float64)
            for split in ALIGNMENT_SPLITS
        }
        return KernelBatch(matrix, alignment, source)

    def uniformity_control(self, run: EncoderRun, dataset: str) -> tuple[Tensor, float]:
        """(matrix `n_items x n_items`, `a`) of the uniformity-matched control of `run`'s
        final encoder over the items of test dataset `dataset`."""
        def build() -> tuple[Tensor, float]:
            before = self._matrix(run, dataset, "before")
            a = uniformity_weight(self._matrix(run, dataset, "after"), before)
            return uniformity_matched(before, a), a

        return self.sources.cached(("transfer-uniformity", run.directory, dataset), build)

    def _matrix(self, run: EncoderRun, dataset: str, kernel: str) -> Tensor:
        def build() -> Tensor:
            texts = tuple(self.sources.dataset(dataset).items.texts)
            return self.sources.encoder_matrix(stage_encoder(run, kernel), texts)

        return self.sources.cached(("transfer-kernel", run.directory, kernel, dataset), build)

    def _reference(self, cells: Sequence[Cell]) -> KernelBatch:
        """A reference kernel over the test dataset's items; alignment measured against its
        human similarity where it has one, nan otherwise."""
        first = cells[0]
        dataset = self.sources.dataset(first.dataset)
        matrix = reference_matrix(first.kernel, len(dataset.items))
        similarity = dataset.similarity
        if similarity is None:
            measured = dict.fromkeys(ALIGNMENT_SPLITS, math.nan)
            source = f"none ({first.dataset} has no human similarity)"
        else:
            measured = kernel_alignment(matrix, similarity.matrix, similarity.mask,
                                        self.sources.heldout(dataset))
            source = f"{first.dataset} human similarity"
        return KernelBatch(matrix, {
            split: torch.full((len(cells),), measured[split], dtype=torch.float64)
            for split in ALIGNMENT_SPLITS
        }, source)
