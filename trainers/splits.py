"""`AlignmentData`: one dataset's items, human matrix and the item splits training uses.

Items are split twice, both times by `deepalign.data.split_items` (a hash of item id and
seed, so every dataset on the same ids agrees):

1. ``heldout`` (generalization) vs train (personalization) items, with ``split_seed``;
2. the train items again into ``fit`` items (the loss sees pairs among them only) and
   ``val`` items (early stopping and checkpoint selection), with the seed
   ``-(split_seed + 1)``, which never equals ``split_seed``.

Pair masks (bool ``n_items x n_items``, symmetric, diagonal False, observed pairs only):

- ``fit``: both items fit items (the only pairs any loss uses);
- ``val``: one item a val item, the other a train item (val-val and val-fit pairs): pairs
  with at least one item the loss never saw, several times more of them than val-val
  pairs alone, so the early-stopping signal is less noisy;
- ``val_new``: both items val items (new x new pairs of items the loss never saw, the
  validation image of the held-out pairs a reused kernel meets on new actions); monitor
  ``val_new/spearman`` to select for that;
- ``train``, ``heldout``, ``cross``: as `deepalign.data.split_pair_masks` (``train`` holds the
  fit and val pairs together).

Held-out items never enter training or model selection.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from deepalign.data import Dataset, split_items, split_pair_masks
from deepalign.errors import ConfigError

SPLITS = ("fit", "val", "val_new", "train", "heldout", "cross")


@dataclass(frozen=True, eq=False)
class AlignmentData:
    """Items, human similarities and splits of one training run.

    Args:
        dataset_name: name of the source dataset.
        ids: item ids, ``n_items``.
        texts: item texts (what the encoder reads), ``n_items``.
        human_sim: float32 ``n_items x n_items`` human similarities in [0, 1].
        masks: split name (see `SPLITS`) -> bool ``n_items x n_items`` pair mask.
        item_masks: ``"fit"``, ``"val"``, ``"train"``, ``"heldout"`` -> bool ``n_items``.
        split_seed: seed of the held-out split.
        heldout_fraction: share of items held out.
        val_fraction: share of train items used for validation.
    """

    dataset_name: str
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    human_sim: Tensor
    masks: dict[str, Tensor]
    item_masks: dict[str, Tensor]
    split_seed: int
    heldout_fraction: float
    val_fraction: float

    @property
    def n_items(self) -> int:
        return len(self.ids)

    def indices(self, split: str) -> Tensor:
        """Long tensor of the item indices of ``split`` (``fit``, ``val``, ``train``,
        ``heldout``), ascending."""
        return self.item_masks[split].nonzero().squeeze(1)

    def n_pairs(self, split: str) -> int:
        """Observed pairs (upper triangle) of pair split ``split``."""
        return int(torch.triu(self.masks[split], diagonal=1).sum())

    def sizes(self) -> dict[str, dict[str, int]]:
        """``{"items": {split: count}, "pairs": {split: count}}`` for summaries."""
        return {
            "items": {"all": self.n_items, **{k: int(v.sum()) for k, v in self.item_masks.items()}},
            "pairs": {k: self.n_pairs(k) for k in SPLITS},
        }


def build_alignment_data(
    dataset: Dataset,
    split_seed: int,
    heldout_fraction: float = 0.3,
    val_fraction: float = 0.2,
) -> AlignmentData:
    """Split ``dataset`` into fit / val / held-out items and their pair masks.

    Raises `ConfigError` when the dataset has no similarity judgments or a split leaves
    no fit or no validation pairs (the message names the option to change).
    """
    if dataset.similarity is None:
        raise ConfigError(
            f"data.dataset: expected a dataset with human similarity judgments, got "
            f"{dataset.name!r} (values only). Fix: give your items' similarity file "
            f"(--data.similarity FILE, or 'similarity:' in a dataset card), or pick a dataset "
            f"listed by `python -m deepalign.data list` with observed pairs, e.g. 'spa-verb'."
        )
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(
            f"data.val_fraction: expected a number in (0, 1), got {val_fraction}. "
            "Fix: e.g. 0.2 (a fifth of the train items validate)."
        )
    similarity = dataset.similarity
    ids = tuple(dataset.items.ids)
    heldout = split_items(ids, seed=split_seed, heldout_fraction=heldout_fraction)
    train = ~heldout
    train_positions = train.nonzero().squeeze(1)
    val_of_train = split_items(
        [ids[i] for i in train_positions.tolist()],
        seed=-(split_seed + 1),
        heldout_fraction=val_fraction,
    )
    val = torch.zeros_like(train)
    val[train_positions[val_of_train]] = True
    fit = train & ~val
    mask = similarity.mask.to(torch.bool)
    pair_masks = split_pair_masks(mask, heldout)
    off_diagonal = pair_masks["train"]
    masks = {
        "fit": off_diagonal & fit[:, None] & fit[None, :],
        "val": off_diagonal & (val[:, None] | val[None, :]),
        "val_new": off_diagonal & val[:, None] & val[None, :],
        **pair_masks,
    }
    data = AlignmentData(
        dataset_name=dataset.name,
        ids=ids,
        texts=tuple(dataset.items.texts),
        human_sim=similarity.matrix.to(torch.float32),
        masks=masks,
        item_masks={"fit": fit, "val": val, "train": train, "heldout": heldout},
        split_seed=split_seed,
        heldout_fraction=float(heldout_fraction),
        val_fraction=float(val_fraction),
    )
    for split, option in (("fit", "data.max_items or data.val_fraction"),
                          ("val", "data.val_fraction")):
        if data.n_pairs(split) < 3:
            raise ConfigError(
                f"{option}: the {split} split of {dataset.name!r} (split_seed={split_seed}) "
                f"has {data.n_pairs(split)} observed pairs, expected at least 3. Fix: use "
                "more items or change the fraction."
            )
    return data
