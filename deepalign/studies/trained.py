"""Study 3: does alignment gained by training help? Paired trained vs untrained encoders.

Encoders are trained by `python -m deepalign.train` (personalization items only: the trainer
holds out the items of the shared seeded split) or taken from cached run directories
(`encoders.py`). For each encoder seed, the *same* encoder before training ("before":
rebuilt from the export's config, so the same head initialisation) and after training
("after": the export) drive the agents on the values of `trained.dataset`, on the same item
split as the trainer's (`summary.json`'s `split_seed`), so held-out items are items the
encoder never trained on. Intermediate checkpoints ("epoch-k") give the dose-response view.

Transfer (`TransferPlan`): encoders aligned on sparse pair datasets (activity-pairs,
sts-captions) are tested on value datasets without human similarity between their arms
(dillion-morality, mfv). The alignment recorded is the encoder's alignment on the held-out
pairs of its training set (from the run's `summary.json`), with `alignment_source` saying so.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from deepalign.agents import ValueBandit
from deepalign.studies.analysis import KERNEL_FREE_AGENTS
from deepalign.studies.config import StudyConfig, seed_list
from deepalign.studies.encoders import (
    EncoderRun,
    PreparedEncoders,
    dose_checkpoints,
    prepare_encoders,
)
from deepalign.studies.grid import Cell
from deepalign.studies.measure import ALIGNMENT_SPLITS, kernel_alignment
from deepalign.studies.runner import KernelBatch
from deepalign.studies.sources import StudySources

__all__ = ["PreparedEncoders", "TrainedPlan", "TransferPlan", "prepare_encoders"]


def _stages(run: EncoderRun, dose_points: int) -> list[tuple[str, float]]:
    """(kernel name, epoch) of the encoders of a run: before, dose checkpoints, after."""
    stages = [("before", 0.0)]
    stages += [(f"epoch-{epoch:g}", float(epoch)) for epoch, _ in
               dose_checkpoints(run, dose_points)]
    stages.append(("after", run.final_epoch))
    return stages


class TrainedPlan:
    """Cells, bandits and kernels of study 3's paired comparison (`config.trained`)."""

    study = "trained"

    def __init__(self, config: StudyConfig, runs: Sequence[EncoderRun]) -> None:
        if config.trained is None:
            raise ValueError("TrainedPlan needs a config with a 'trained' section")
        self.section = config.trained
        self.runs = {run.seed: run for run in runs}
        self.seeds = seed_list(self.section.seeds if self.section.seeds is not None
                               else config.seeds)
        self._horizon = self.section.horizon or config.horizon
        self._sources: dict[tuple[int, float], StudySources] = {}
        self.noise = config.noise

    def sources(self, run: EncoderRun) -> StudySources:
        """Data on the trainer's own split of the items (so held-out = never trained on)."""
        key = (run.split_seed, run.heldout_fraction)
        if key not in self._sources:
            self._sources[key] = StudySources(run.split_seed, run.heldout_fraction, self.noise)
        return self._sources[key]

    def cells(self) -> list[Cell]:
        s = self.section
        out = []
        for run in self.runs.values():
            stages = _stages(run, self.section.dose_points if self.section.checkpoints else 0)
            for value in s.values:
                for kernel, epoch in stages:
                    for agent in s.agents:
                        if agent in KERNEL_FREE_AGENTS:
                            continue
                        out += [Cell(self.study, "paired", s.dataset, value, kernel, agent, seed,
                                     encoder_seed=float(run.seed), epoch=epoch)
                                for seed in self.seeds]
        return out

    def horizon(self, cell: Cell) -> int:
        return self._horizon

    def bandit(self, cell: Cell) -> ValueBandit:
        run = self.runs[int(cell.encoder_seed)]
        sources = self.sources(run)
        dataset = sources.dataset(cell.dataset, cell.value)
        return sources.bandit((cell.dataset, "trained"), dataset, cell.value)

    def kernels(self, cells: Sequence[Cell]) -> KernelBatch:
        first = cells[0]
        run = self.runs[int(first.encoder_seed)]
        sources = self.sources(run)
        dataset = sources.dataset(first.dataset, first.value)
        key = ("trained-kernel", run.directory, first.kernel, dataset.items.ids)

        def build() -> tuple[Tensor, dict[str, float]]:
            texts = tuple(dataset.items.texts)
            matrix = sources.encoder_matrix(_stage_encoder(run, first.kernel), texts)
            similarity = dataset.similarity
            alignment = kernel_alignment(matrix, similarity.matrix, similarity.mask,
                                         sources.heldout(dataset))
            return matrix, alignment

        matrix, alignment = sources.cached(key, build)
        return KernelBatch(
            matrix,
            {s: torch.full((len(cells),), alignment[s], dtype=torch.float64)
             for s in ALIGNMENT_SPLITS},
            f"{first.dataset} human similarity",
        )


def _stage_encoder(run: EncoderRun, kernel: str) -> nn.Module:
    if kernel == "before":
        return run.untrained_encoder()
    if kernel == "after":
        return run.trained_encoder()
    epoch = float(kernel.removeprefix("epoch-"))
    return run.checkpoint_encoder(epoch)


class TransferPlan:
    """Cells, bandits and kernels of study 3's transfer variant (`config.trained.transfer`)."""

    study = "transfer"

    def __init__(self, config: StudyConfig, sources: StudySources,
                 runs: Sequence[EncoderRun]) -> None:
        if config.trained is None or config.trained.transfer is None:
            raise ValueError("TransferPlan needs a config with 'trained.transfer'")
        self.section = config.trained.transfer
        self.agents = config.trained.agents
        self.sources = sources
        self.runs = {run.train_dataset: run for run in runs}
        self.seeds = seed_list(config.trained.seeds if config.trained.seeds is not None
                               else config.seeds)
        self._horizon = config.trained.horizon or config.horizon

    def values(self, dataset: str) -> tuple[str, ...]:
        """The value columns tested on `dataset` (default: its first one)."""
        if dataset in self.section.values:
            return self.section.values[dataset]
        return (self.sources.dataset(dataset).values.names[0],)

    def cells(self) -> list[Cell]:
        out = []
        for train_dataset, run in self.runs.items():
            for dataset in self.section.test_datasets:
                for value in self.values(dataset):
                    for kernel, epoch in (("before", 0.0), ("after", run.final_epoch)):
                        for agent in self.agents:
                            if agent in KERNEL_FREE_AGENTS:
                                continue
                            out += [Cell(self.study, train_dataset, dataset, value, kernel, agent,
                                         seed, encoder_seed=float(run.seed), epoch=epoch)
                                    for seed in self.seeds]
        return out

    def horizon(self, cell: Cell) -> int:
        return self._horizon

    def bandit(self, cell: Cell) -> ValueBandit:
        dataset = self.sources.dataset(cell.dataset)
        return self.sources.bandit((cell.dataset, "transfer"), dataset, cell.value)

    def kernels(self, cells: Sequence[Cell]) -> KernelBatch:
        first = cells[0]
        run = self.runs[first.condition]
        dataset = self.sources.dataset(first.dataset)
        key = ("transfer-kernel", run.directory, first.kernel, first.dataset)

        def build() -> Tensor:
            encoder = _stage_encoder(run, first.kernel)
            return self.sources.encoder_matrix(encoder, tuple(dataset.items.texts))

        matrix = self.sources.cached(key, build)
        stage = "before" if first.kernel == "before" else "after"
        alignment = {
            split: torch.full((len(cells),), run.summary_alignment(split, stage),
                              dtype=torch.float64)
            for split in ALIGNMENT_SPLITS
        }
        return KernelBatch(matrix, alignment,
                           f"{run.train_dataset} held-out pairs (trainer summary.json)")
