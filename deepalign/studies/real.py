"""Study 2: real human judgments, real kernels.

On a dataset with both human similarity and human values on the same items (`spa-verb-act`),
each kernel (human judgments, pretrained encoder, aligned encoder, random-init encoder,
lexical, length, and the reference kernels "constant" and "identity" of
`deepalign.studies.references`) is measured against the human similarity and drives the
agents on each value; the recipe's `kernels` list says which run. The paper's **length
control** repeats every kernel with the reward *and* the reference similarity taken from
action length (characters of the action text): reward = length, reference similarity
`1 - |L_i - L_j| / (max L - min L)` over the same observed pairs.
An effect of human alignment that also appears under the length reward is a generic
"aligned kernel helps" effect; one that does not is specific to human judgments.

A dataset without human similarity (e.g. `act-behaviors`, 853 arms) runs the encoder kernels
only; its alignment columns are nan (there is nothing to measure against), and its length
control measures against length similarity over all pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from deepalign.agents import ValueBandit
from deepalign.agents.calibration import DEFAULT_CALIBRATION
from deepalign.data import Dataset, ValueRatings
from deepalign.encoders import (
    LengthEncoder,
    LexicalEncoder,
    RandomInitEncoder,
    SentenceEncoder,
    load_encoder,
)
from deepalign.encoders.zoo import ZOO
from deepalign.errors import ConfigError
from deepalign.studies.analysis import KERNEL_FREE_AGENTS
from deepalign.studies.config import ALIGNED_PREFIX, StudyConfig, seed_list
from deepalign.studies.encoders import encoder_directory
from deepalign.studies.grid import Cell
from deepalign.studies.measure import ALIGNMENT_SPLITS, kernel_alignment
from deepalign.studies.references import REFERENCE_KERNELS, reference_matrix
from deepalign.studies.runner import KernelBatch
from deepalign.studies.sources import StudySources

__all__ = ["LENGTH_VALUE", "RealPlan", "length_dataset"]

LENGTH_VALUE = "length"


def length_dataset(dataset: Dataset) -> tuple[Dataset, Tensor]:
    """`dataset` with one value, "length" (characters of each action text), and the length
    reference similarity `1 - |L_i - L_j| / (max L - min L)` (`n_items x n_items`)."""
    lengths = LengthEncoder().lengths(dataset.items.texts).to(torch.float64)
    lo, hi = float(lengths.min()), float(lengths.max())
    if hi <= lo:
        raise ConfigError(
            f"dataset {dataset.name!r}: every action text has {int(lo)} characters, so the "
            "length control has nothing to learn; set 'real.length_control: false'."
        )
    ratings = ValueRatings(items=dataset.items, names=(LENGTH_VALUE,),
                           ratings=lengths.unsqueeze(1), scales=((lo, hi),))
    control = Dataset(name=dataset.name, items=dataset.items, similarity=dataset.similarity,
                      values=ratings, info={"notes": ["length control: reward = characters"]})
    reference = 1.0 - (lengths.unsqueeze(0) - lengths.unsqueeze(1)).abs() / (hi - lo)
    return control, reference


class RealPlan:
    """Cells, bandits and kernels of study 2 (`config.real`).

    Args:
        config: the recipe; sources: shared caches;
        aligned_encoder: the resolved directory of the "aligned" kernel's encoder (None when
            the recipe has no "aligned" kernel);
        models: {zoo name: exported encoder directory} of the "aligned-<name>" kernels.
    """

    study = "real"

    def __init__(self, config: StudyConfig, sources: StudySources,
                 aligned_encoder: Path | None = None,
                 models: dict[str, Path] | None = None) -> None:
        if config.real is None:
            raise ValueError("RealPlan needs a config with a 'real' section")
        self.section = config.real
        self.sources = sources
        self.aligned_encoder = aligned_encoder
        self.models = dict(models or {})
        self.seeds = seed_list(self.section.seeds if self.section.seeds is not None
                               else config.seeds)
        self._horizon = self.section.horizon or config.horizon
        self.calibration = DEFAULT_CALIBRATION if config.calibration else None
        self._encoders: dict[str, nn.Module] = {}

    def conditions(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(condition, values) pairs: human judgments on every value, then the control."""
        out = [("human", self.section.values)]
        if self.section.length_control:
            out.append(("length-control", (LENGTH_VALUE,)))
        return tuple(out)

    def cells(self) -> list[Cell]:
        s = self.section
        out = []
        for condition, values in self.conditions():
            for value in values:
                for kernel in s.kernels:
                    for agent in s.agents:
                        if agent not in KERNEL_FREE_AGENTS:
                            out += [Cell(self.study, condition, s.dataset, value, kernel, agent,
                                         seed) for seed in self.seeds]
                for agent in s.agents:
                    if agent in KERNEL_FREE_AGENTS:
                        out += [Cell(self.study, condition, s.dataset, value, "none", agent,
                                     seed) for seed in self.seeds]
        return out

    def horizon(self, cell: Cell) -> int:
        return self._horizon

    def _data(self, cell: Cell) -> tuple[Dataset, Tensor | None, Tensor | None, str]:
        """(dataset of the bandit, reference similarity, mask, reference name); reference and
        mask are None for a dataset without human similarity (condition "human")."""
        if cell.condition == "human":
            dataset = self.sources.dataset(cell.dataset, cell.value)
            similarity = dataset.similarity
            if similarity is None:
                return dataset, None, None, f"none ({cell.dataset} has no human similarity)"
            return dataset, similarity.matrix, similarity.mask, f"{cell.dataset} human similarity"
        base = self.sources.dataset(cell.dataset, self.section.values[0])
        control, reference = self.sources.cached(("length", cell.dataset),
                                                 lambda: length_dataset(base))
        if base.similarity is None:
            mask = torch.ones(len(base.items), len(base.items), dtype=torch.bool)
        else:
            mask = base.similarity.mask
        return control, reference, mask, f"{cell.dataset} action length"

    def bandit(self, cell: Cell) -> ValueBandit:
        dataset = self._data(cell)[0]
        return self.sources.bandit((cell.dataset, cell.condition), dataset, cell.value)

    def kernels(self, cells: Sequence[Cell]) -> KernelBatch:
        first = cells[0]
        dataset, reference, mask, source = self._data(first)
        if first.kernel == "none":
            nan = torch.full((len(cells),), math.nan, dtype=torch.float64)
            return KernelBatch(None, dict.fromkeys(ALIGNMENT_SPLITS, nan), source)
        key = ("real-kernel", first.condition, first.dataset, dataset.items.ids, first.kernel)

        def build() -> tuple[Tensor, dict[str, float]]:
            matrix = self._matrix(first.kernel, dataset)
            if reference is None:
                return matrix, dict.fromkeys(ALIGNMENT_SPLITS, math.nan)
            heldout = self.sources.heldout(dataset)
            return matrix, kernel_alignment(matrix, reference, mask, heldout)

        matrix, alignment = self.sources.cached(key, build)
        return KernelBatch(
            matrix,
            {s: torch.full((len(cells),), alignment[s], dtype=torch.float64)
             for s in ALIGNMENT_SPLITS},
            source,
        )

    def _matrix(self, kernel: str, dataset: Dataset) -> Tensor:
        texts = tuple(dataset.items.texts)
        if kernel == "human":
            return self.sources.judgment_matrix(dataset.similarity)
        if kernel in REFERENCE_KERNELS:  # every action alike / independent arms
            return reference_matrix(kernel, len(texts))
        if kernel == "lexical":
            return self.sources.encoder_matrix(LexicalEncoder().fit(texts), texts)
        if kernel == "length":
            # the angle saturates at the longest text, so lengths span 0..90 degrees
            longest = int(LengthEncoder().lengths(texts).max())
            return self.sources.encoder_matrix(LengthEncoder(max_length=max(1, longest)), texts)
        return self.sources.encoder_matrix(self._encoder(kernel), texts)

    def _encoder(self, kernel: str) -> nn.Module:
        if kernel not in self._encoders:
            if kernel == "pretrained":
                encoder: nn.Module = SentenceEncoder()
            elif kernel == "random-init":
                encoder = RandomInitEncoder(seed=0)
            elif kernel == "aligned":
                if self.aligned_encoder is None:
                    raise ConfigError("the 'aligned' kernel needs 'real.aligned_encoder'")
                encoder = load_encoder(encoder_directory(self.aligned_encoder))
            elif kernel in ZOO:
                encoder = SentenceEncoder(backbone=kernel)
            elif kernel.removeprefix(ALIGNED_PREFIX) in self.models:
                encoder = load_encoder(self.models[kernel.removeprefix(ALIGNED_PREFIX)])
            else:
                raise ConfigError(f"unknown kernel {kernel!r} in study 2")
            self._encoders[kernel] = encoder
        return self._encoders[kernel]
