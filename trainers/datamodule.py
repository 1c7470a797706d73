"""`AlignmentDataModule`: bundled datasets, split by item into fit / val / held-out, with
the preservation suite and pool of the run.

Training batches are long tensors of fit-item indices of the primary dataset (the module
looks up texts, human similarities and pair masks in `alignment_data`; further training
sets, `extra_data`, join every step whole); validation is one batch of every item.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from lightning.pytorch import LightningDataModule
from torch import Tensor
from torch.utils.data import DataLoader

from deepalign.alignment.preservation import (
    PreservationSuite,
    preservation_pool,
    preservation_suite,
)
from deepalign.data import Dataset, is_user_dataset, list_datasets, open_dataset
from deepalign.errors import ConfigError
from trainers.splits import AlignmentData, build_alignment_data


@dataclass
class TrainingSet:
    """A further human similarity set trained on beside ``data.dataset``.

    Args:
        name: a bundled dataset with similarity judgments, or a dataset card (.yaml/.toml)
            naming your own files.
        weight: multiplier of its loss terms (the primary set has weight 1).
        options: keyword options of its loader (e.g. ``{"measure": "rel"}``).
    """

    name: str
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)


def _check_name(option: str, name: str) -> None:
    known = list_datasets()
    if not is_user_dataset(name) and name not in known:
        raise ConfigError(f"{option}: expected one of {', '.join(known)}, or your items CSV "
                          f"(.csv) or dataset card (.yaml/.toml), got {name!r}. Fix: pick a "
                          "name that `python -m deepalign.data list` shows, or give a path.")


class AlignmentDataModule(LightningDataModule):
    """Items and human similarity judgments, split for alignment training.

    Args:
        dataset: a bundled dataset with similarity judgments (`deepalign.data.list_datasets`),
            your items CSV (with ``similarity``) or a dataset card (.yaml/.toml,
            `deepalign.data.cards`); the run directory is named after the file's stem.
        similarity: with an items CSV, its similarity file (``.npy``/``.csv`` matrix or
            pairs CSV); a card names its own.
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
        datasets: further training sets (`TrainingSet`: name, weight, options), split with
            the same seeds and trained on every step beside ``dataset`` (the primary set:
            early stopping, figures, the run directory's name); None = ``dataset`` alone.
        preservation_sets: bundled similarity sets to check the encoder on before and after
            (`deepalign.alignment.preservation_suite`); every set trained on, or sharing its
            judgments or most of its texts with one, is left out; None = every bundled
            similarity set; ``[]`` = no suite.
        pool_datasets: bundled datasets whose texts form the unlabeled preservation pool
            (`deepalign.alignment.preservation_pool`: no training text, held-out items
            included, ever enters it); None = every bundled dataset.
        pool_size: most texts in the pool (0 = none; the term then has nothing to act on).
        pool_excludes_suite: keep the suite's texts out of the pool, so the suite checks texts
            no part of training touched.
    """

    def __init__(
        self,
        dataset: str = "spa-verb",
        dataset_options: dict[str, Any] | None = None,
        similarity: str | None = None,
        split_seed: int | None = None,
        heldout_fraction: float = 0.3,
        val_fraction: float = 0.2,
        max_items: int | None = None,
        batch_items: int | None = None,
        datasets: list[TrainingSet] | None = None,
        preservation_sets: list[str] | None = None,
        pool_datasets: list[str] | None = None,
        pool_size: int = 1000,
        pool_excludes_suite: bool = True,
    ) -> None:
        super().__init__()
        _check_name("data.dataset", dataset)
        for k, extra in enumerate(datasets or []):
            _check_name(f"data.datasets[{k}].name", extra.name)
            if not extra.weight > 0.0:
                raise ConfigError(f"data.datasets[{k}].weight: expected a number > 0, got "
                                  f"{extra.weight}. Fix: e.g. 0.5, or drop the set.")
        names = [dataset] + [extra.name for extra in datasets or []]
        if len(set(names)) != len(names):
            raise ConfigError(f"data.datasets: each set once, got {names}. Fix: drop the "
                              "repeated entry (data.dataset is trained on already).")
        if pool_size < 0:
            raise ConfigError(f"data.pool_size: expected an int >= 0, got {pool_size}. "
                              "Fix: e.g. 1000, or 0 for no pool.")
        if split_seed is not None and (isinstance(split_seed, bool) or not isinstance(
                split_seed, int) or not 0 <= split_seed < 2**32):
            raise ConfigError(f"data.split_seed: expected an int in 0..{2**32 - 1} or null (= "
                              f"seed_everything), got {split_seed!r}. Fix: e.g. 0.")
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
        self.similarity = similarity
        # your own files are read and checked now, before the trainer writes anything
        self._user_data: Dataset | None = (
            open_dataset(dataset, similarity, **self.dataset_options)
            if is_user_dataset(dataset) else None)
        if similarity is not None and self._user_data is None:
            raise ConfigError(f"data.similarity: only an items CSV takes a similarity file, "
                              f"got data.dataset {dataset!r} (bundled). Fix: drop "
                              "--data.similarity, or pass your items CSV as --data.dataset.")
        self.split_seed = 0 if split_seed is None else int(split_seed)
        self.heldout_fraction = float(heldout_fraction)
        self.val_fraction = float(val_fraction)
        self.max_items = max_items
        self.batch_items = batch_items
        self.datasets = [TrainingSet(x.name, float(x.weight), dict(x.options or {}))
                         for x in datasets or []]
        self.preservation_sets = None if preservation_sets is None else list(preservation_sets)
        self.pool_datasets = None if pool_datasets is None else list(pool_datasets)
        self.pool_size = int(pool_size)
        self.pool_excludes_suite = bool(pool_excludes_suite)
        self.alignment_data: AlignmentData | None = None
        self.extra_data: tuple[tuple[AlignmentData, float], ...] = ()
        self.suite = PreservationSuite()
        self.pool_texts: tuple[str, ...] = ()
        self.setup_seconds = 0.0

    def aligned_on(self) -> list[dict[str, Any]]:
        """The human data this run aligns to: one record per training set (name, loader
        options, weight, split seed and fractions, fit pairs), for summaries and exports."""
        sets = [(self.alignment_data, 1.0, self.dataset_options)] + [
            (data, weight, extra.options)
            for (data, weight), extra in zip(self.extra_data, self.datasets)
        ]
        return [
            {"dataset": data.dataset_name, "options": dict(options), "weight": weight,
             "split_seed": data.split_seed, "heldout_fraction": data.heldout_fraction,
             "val_fraction": data.val_fraction, "fit_pairs": data.n_pairs("fit")}
            for data, weight, options in sets if data is not None
        ]

    def setup(self, stage: str) -> None:
        """Load the dataset and split it (once)."""
        if self.alignment_data is not None:
            return
        started = time.perf_counter()
        loaded = [self._load(self.dataset, self.dataset_options, self.similarity,
                             self._user_data)]
        loaded += [self._load(extra.name, extra.options) for extra in self.datasets]
        built = [build_alignment_data(d, self.split_seed, self.heldout_fraction,
                                      self.val_fraction) for d in loaded]
        self.suite = preservation_suite(loaded, self.preservation_sets)
        exclude = self.suite.texts() if self.pool_excludes_suite else ()
        self.pool_texts = (preservation_pool(loaded, self.pool_size, self.pool_datasets, exclude)
                           if self.pool_size > 0 else ())
        self.extra_data = tuple((data, extra.weight)
                                for data, extra in zip(built[1:], self.datasets))
        self.alignment_data = built[0]
        self.setup_seconds = time.perf_counter() - started

    def _load(self, name: str, options: dict[str, Any], similarity: str | None = None,
              loaded: Dataset | None = None) -> Dataset:
        dataset = open_dataset(name, similarity, **options) if loaded is None else loaded
        if self.max_items is not None and self.max_items < len(dataset):
            dataset = dataset.subset(list(range(self.max_items)))
        return dataset

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
