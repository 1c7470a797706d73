"""Study 3: does alignment gained by training help? Paired trained vs untrained encoders.

Encoders are trained by `python -m deepalign.train` (personalization items only: the trainer
holds out the items of the shared seeded split) or taken from cached run directories
(`encoders.py`). For each encoder seed, the *same* encoder before training ("before":
rebuilt from the export's config, so the same head initialisation) and after training
("after": the export) drive the agents on the values of `trained.dataset`, on the same item
split as the trainer's (`summary.json`'s `split_seed`), so held-out items are items the
encoder never trained on. Intermediate checkpoints ("epoch-k") give the dose-response view
(`stages.py`).

Two controls run on the same bandits (`deepalign.studies.references`):

* with `uniformity_control`, for every final encoder (and, with `uniformity_checkpoints`,
  every dose checkpoint) the kernel "uniformity-matched" (condition "uniformity-control", the
  stage's encoder seed and epoch): the before kernel blended with a constant,
  `a + (1 - a) K_before`, to the trained kernel's mean off-diagonal similarity over the
  bandit's items. Its `a` is in the row's `alignment_source` ("...; uniformity blend
  a=0.123 matched to 'after'");
* with `references`, the reference kernels "constant" and "identity" (condition
  "reference", no encoder seed or epoch) on the encoders' item split (one set per distinct
  split among the runs; when the runs use several, each set carries the encoder seed of the
  first run on its split).

Transfer (`TransferPlan`, `transfer.py`): encoders aligned on sparse pair datasets
(activity-pairs, sts-captions) are tested on value datasets without human similarity between
their arms (dillion-morality, mfv), with the same two controls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from deepalign.agents import ValueBandit
from deepalign.agents.calibration import DEFAULT_CALIBRATION
from deepalign.data import Dataset
from deepalign.studies.analysis import KERNEL_FREE_AGENTS
from deepalign.studies.config import StudyConfig, seed_list
from deepalign.studies.encoder_training import PreparedEncoders, prepare_encoders
from deepalign.studies.encoders import EncoderRun
from deepalign.studies.grid import Cell
from deepalign.studies.measure import ALIGNMENT_SPLITS, kernel_alignment
from deepalign.studies.references import (
    REFERENCE_CONDITION,
    REFERENCE_KERNELS,
    UNIFORMITY_CONDITION,
    UNIFORMITY_KERNEL,
    reference_matrix,
    uniformity_matched,
    uniformity_weight,
)
from deepalign.studies.runner import KernelBatch
from deepalign.studies.sources import StudySources
from deepalign.studies.stages import stage_at, stage_encoder, stages
from deepalign.studies.transfer import TransferPlan

__all__ = ["PreparedEncoders", "TrainedPlan", "TransferPlan", "prepare_encoders"]

Measured = tuple[Tensor, dict[str, float]]


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
        self.calibration = DEFAULT_CALIBRATION if config.calibration else None
        self._sources: dict[tuple[int, float], StudySources] = {}
        self.noise = config.noise

    def sources(self, run: EncoderRun) -> StudySources:
        """Data on the trainer's own split of the items (so held-out = never trained on)."""
        key = (run.split_seed, run.heldout_fraction)
        if key not in self._sources:
            self._sources[key] = StudySources(run.split_seed, run.heldout_fraction, self.noise)
        return self._sources[key]

    def reference_seeds(self) -> tuple[float, ...]:
        """Encoder seeds of the reference kernels' cells: one per distinct item split among
        the runs, nan when they all share one (the usual case)."""
        first: dict[tuple[int, float], int] = {}
        for run in self.runs.values():
            first.setdefault((run.split_seed, run.heldout_fraction), run.seed)
        if len(first) <= 1:
            return (math.nan,) if first else ()
        return tuple(float(seed) for seed in first.values())

    def cells(self) -> list[Cell]:
        """Per run and value: the stages, then their uniformity controls; then the
        reference kernels (module docstring); kernel agents only."""
        s = self.section
        agents = [agent for agent in s.agents if agent not in KERNEL_FREE_AGENTS]
        out = []

        def add(condition: str, value: str, kernel: str, **fields: float) -> None:
            out.extend(Cell(self.study, condition, s.dataset, value, kernel, agent, seed,
                            **fields) for agent in agents for seed in self.seeds)

        for run in self.runs.values():
            run_stages = stages(run, s.dose_points if s.checkpoints else 0)
            for value in s.values:
                for kernel, epoch in run_stages:
                    add("paired", value, kernel, encoder_seed=float(run.seed), epoch=epoch)
                if s.uniformity_control:
                    for kernel, epoch in run_stages:
                        if kernel == "after" or (kernel != "before" and s.uniformity_checkpoints):
                            add(UNIFORMITY_CONDITION, value, UNIFORMITY_KERNEL,
                                encoder_seed=float(run.seed), epoch=epoch)
        for encoder_seed in self.reference_seeds() if s.references else ():
            for value in s.values:
                for kernel in REFERENCE_KERNELS:
                    add(REFERENCE_CONDITION, value, kernel, encoder_seed=encoder_seed)
        return out

    def horizon(self, cell: Cell) -> int:
        return self._horizon

    def _run(self, cell: Cell) -> EncoderRun:
        """The run whose item split `cell` plays on (the first run for a nan encoder seed)."""
        if math.isnan(cell.encoder_seed):
            return next(iter(self.runs.values()))
        return self.runs[int(cell.encoder_seed)]

    def bandit(self, cell: Cell) -> ValueBandit:
        sources = self.sources(self._run(cell))
        dataset = sources.dataset(cell.dataset, cell.value)
        return sources.bandit((cell.dataset, "trained"), dataset, cell.value)

    def kernels(self, cells: Sequence[Cell]) -> KernelBatch:
        first = cells[0]
        run = self._run(first)
        dataset = self.sources(run).dataset(first.dataset, first.value)
        source = f"{first.dataset} human similarity"
        if first.kernel in REFERENCE_KERNELS:
            matrix, alignment = self._measured(run, dataset, first.kernel)
        elif first.kernel == UNIFORMITY_KERNEL:
            stage = stage_at(run, first.epoch)
            matrix, alignment, a = self.uniformity_control(run, dataset, stage)
            source += f"; uniformity blend a={a:.6g} matched to {stage!r}"
        else:
            matrix, alignment = self._measured(run, dataset, first.kernel)
        return KernelBatch(
            matrix,
            {s: torch.full((len(cells),), alignment[s], dtype=torch.float64)
             for s in ALIGNMENT_SPLITS},
            source,
        )

    def uniformity_control(self, run: EncoderRun, dataset: Dataset,
                           stage: str) -> tuple[Tensor, dict[str, float], float]:
        """(matrix `n_items x n_items`, measured alignment, `a`) of the uniformity-matched
        control of `run`'s trained `stage` ("after" or "epoch-k") over `dataset`'s items."""
        sources = self.sources(run)

        def build() -> tuple[Tensor, dict[str, float], float]:
            before, _ = self._measured(run, dataset, "before")
            trained, _ = self._measured(run, dataset, stage)
            a = uniformity_weight(trained, before)
            matrix = uniformity_matched(before, a)
            return matrix, self._alignment(sources, dataset, matrix), a

        return sources.cached(("uniformity-control", run.directory, stage, dataset.items.ids),
                              build)

    def _measured(self, run: EncoderRun, dataset: Dataset, kernel: str) -> Measured:
        """(matrix, measured alignment) of a stage's encoder or a reference kernel."""
        sources = self.sources(run)
        reference = kernel in REFERENCE_KERNELS
        key = ("trained-kernel", None if reference else run.directory, kernel, dataset.items.ids)

        def build() -> Measured:
            if reference:
                matrix = reference_matrix(kernel, len(dataset.items))
            else:
                texts = tuple(dataset.items.texts)
                matrix = sources.encoder_matrix(stage_encoder(run, kernel), texts)
            return matrix, self._alignment(sources, dataset, matrix)

        return sources.cached(key, build)

    @staticmethod
    def _alignment(sources: StudySources, dataset: Dataset, matrix: Tensor) -> dict[str, float]:
        similarity = dataset.similarity
        return kernel_alignment(matrix, similarity.matrix, similarity.mask,
                                sources.heldout(dataset))
