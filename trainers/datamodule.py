"""`AlignmentDataModule`: a bundled dataset, split by item into fit / val / held-out.

Training batches are long tensors of fit-item indices (the module looks up texts, human
similarities and pair masks in `alignment_data`); validation is one batch of every item.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader

from deepalign.data import list_datasets, load_dataset
from deepalign.errors import ConfigError
from trainers.splits import AlignmentData, build_alignment_data


class AlignmentDataModule(LightningDataModule):
    """Items and human similarity judgments of one dataset, split for alignment training.

    Args:
        dataset: a bundled dataset with similarity judgments (`deepalign.data.list_datasets`).
        dataset_options: keyword options of its loader (e.g. ``{"measure": "rel"}`` for
            ``activity-pairs``); None = the loader's defaults.
        split_seed: seed of the held-out item split (`deepalign.data.split_items`); None =
            the ``--seed_everything`` value under `python -m deepalign.train`, else 0.
        heldout_fraction: share of items held out (generalization items).
        val_fraction: share of the train items used for early stopping / checkpoint choice.
        max_items: keep only the first ``max_items`` items in dataset order (quick runs and
            tests); None = all.
        batch_items: fit items per optimisation step; None = all (full batch, one step per
            epoch).
    """

    def __init__(
        self,
        dataset: str = "spa-verb",
        dataset_options: dict[str, Any] | None = None,
        split_seed: int | None = None,
        heldout_fraction: float = 0.3,
        val_fraction: float = 0.2,
        max_items: int | None = None,
        batch_items: int | None = None,
    ) -> None:
        super().__init__()
        known = list_datasets()
        if dataset not in known:
            raise ConfigError(f"data.dataset: expected one of {', '.join(known)}, got "
                              f"{dataset!r}. Fix: pick a name that `python -m deepalign.data "
                              "list` shows.")
        if not 0.0 < heldout_fraction < 1.0:
            raise ConfigError(f"data.heldout_fraction: expected a number in (0, 1), got "
                              f"{heldout_fraction}. Fix: e.g. 0.3.")
        for name, value in (("max_items", max_items), ("batch_items", batch_items)):
            if value is not None and value < 2:
                raise ConfigError(f"data.{name}: expected an int >= 2 or null, got {value}. "
                                  "Fix: null uses all items.")
        self.save_hyperparameters(logger=False)
        self.dataset = dataset
        self.dataset_options = dict(dataset_options or {})
        self.split_seed = 0 if split_seed is None else int(split_seed)
        self.heldout_fraction = float(heldout_fraction)
        self.val_fraction = float(val_fraction)
        self.max_items = max_items
        self.batch_items = batch_items
        self.alignment_data: AlignmentData | None = None
        self.setup_seconds = 0.0

    def setup(self, stage: str) -> None:
        """Load the dataset and split it (once)."""
        if self.alignment_data is not None:
            return
        started = time.perf_counter()
        dataset = load_dataset(self.dataset, **self.dataset_options)
        if self.max_items is not None and self.max_items < len(dataset):
            dataset = dataset.subset(list(range(self.max_items)))
        self.alignment_data = build_alignment_data(
            dataset, self.split_seed, self.heldout_fraction, self.val_fraction
        )
        self.setup_seconds = time.perf_counter() - started

    def train_dataloader(self) -> DataLoader:
        fit = self._data().indices("fit")
        size = len(fit) if self.batch_items is None else min(self.batch_items, len(fit))
        return DataLoader(fit, batch_size=size, shuffle=self.batch_items is not None)

    def val_dataloader(self) -> DataLoader:
        everything: list[Tensor] = [torch.arange(self._data().n_items)]
        return DataLoader(everything, batch_size=None)

    def _data(self) -> AlignmentData:
        if self.alignment_data is None:
            self.setup("fit")
        if self.alignment_data is None:  # an internal call-order bug, not user input
            raise RuntimeError("AlignmentDataModule.setup() did not build alignment_data")
        return self.alignment_data
