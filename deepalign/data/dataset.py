"""`Dataset`: an item set with its similarity judgments and/or value ratings."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from deepalign.data.items import ItemSet
from deepalign.data.similarity import SimilarityJudgments
from deepalign.data.validation import data_error, normalize_indices
from deepalign.data.values import ValueRatings

__all__ = ["Dataset"]

INFO_KEYS = ("description", "license", "citation", "notes")


@dataclass(frozen=True, eq=False)
class Dataset:
    """A named item set with optional human similarity judgments and value ratings.

    Args:
        name: the dataset's name (``"spa-verb"``, or the user's).
        items: the item set; ``similarity.items`` and ``values.items`` must equal it.
        similarity: judgments over the items, or None.
        values: ratings of the items, or None.
        info: ``description``, ``license``, ``citation`` (str) and ``notes`` (list of str:
            what the loader merged, dropped or inferred); sources may add keys.
    """

    name: str
    items: ItemSet
    similarity: SimilarityJudgments | None = None
    values: ValueRatings | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        source = f"Dataset {self.name!r}"
        for part in ("similarity", "values"):
            value = getattr(self, part)
            if value is not None and value.items != self.items:
                raise data_error(source, f"{part}.items", "the dataset's item set",
                                 "a different item set", f"build {part} over dataset.items")
        info = copy.deepcopy(dict(self.info))
        for key in INFO_KEYS:
            info.setdefault(key, [] if key == "notes" else "")
        info["notes"] = list(info["notes"])
        object.__setattr__(self, "info", info)

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, indices: Sequence[int]) -> Dataset:
        """The dataset restricted to the items at ``indices`` (ints or a bool mask n_items)."""
        positions = normalize_indices(indices, len(self.items))
        info = copy.deepcopy(self.info)
        info["notes"].append(f"subset of {len(positions)} of {len(self.items)} items")
        return Dataset(
            name=self.name,
            items=self.items.subset(positions),
            similarity=None if self.similarity is None else self.similarity.subset(positions),
            values=None if self.values is None else self.values.subset(positions),
            info=info,
        )
