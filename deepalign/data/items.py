"""`ItemSet`: the items (actions) a dataset is about, with stable string ids and texts."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from deepalign.data.validation import data_error, describe, normalize_indices
from deepalign.errors import ConfigError

__all__ = ["ItemSet", "text_id"]


def text_id(text: str) -> str:
    """A stable id for an item known only by its text: the first 16 hex digits of the MD5 of
    its UTF-8 bytes (the scheme of the Moral Foundations Vignettes' own ids)."""
    return hashlib.md5(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class ItemSet:
    """An ordered, immutable set of items.

    Args:
        ids: one stable, unique, non-empty string id per item (e.g. the verb lemma ``"kill"``).
        texts: the text of each item as an action description (e.g. ``"kill someone"``).

    Positions in ``ids`` index every ``n_items``-sized tensor of the dataset.
    Raises `DataError` for an empty set, non-string or empty ids/texts, unequal lengths or a
    duplicate id.
    """

    ids: tuple[str, ...]
    texts: tuple[str, ...]
    _positions: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        source = "ItemSet"
        ids, texts = tuple(self.ids), tuple(self.texts)
        if not ids:
            raise data_error(source, "ids", "at least one item", "an empty set", "add items")
        if len(ids) != len(texts):
            raise data_error(
                source, "texts", f"one text per id ({len(ids)})", f"{len(texts)} texts",
                "pass as many texts as ids",
            )
        positions: dict[str, int] = {}
        for i, (item_id, text) in enumerate(zip(ids, texts)):
            if not isinstance(item_id, str) or not item_id:
                raise data_error(
                    source, f"ids[{i}]", "a non-empty string", describe(item_id), "give every "
                    "item a non-empty string id",
                )
            if not isinstance(text, str) or not text.strip():
                raise data_error(
                    source, f"texts[{i}] (id {item_id!r})", "a non-empty string",
                    describe(text), "give every item a text",
                )
            if item_id in positions:
                raise data_error(
                    source, f"ids[{i}]", "unique ids",
                    f"{item_id!r} again (first at position {positions[item_id]})",
                    "remove or rename the duplicate item",
                )
            positions[item_id] = i
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "texts", texts)
        object.__setattr__(self, "_positions", positions)

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, item_id: str) -> int:
        """Position of ``item_id``; raises `ConfigError` when the id is not in the set."""
        try:
            return self._positions[item_id]
        except (KeyError, TypeError):
            raise ConfigError(
                f"item_id: expected one of the {len(self)} ids of this item set, got "
                f"{describe(item_id)}. Fix: check the id (ids are case-sensitive)."
            ) from None

    def subset(self, indices: Sequence[int]) -> ItemSet:
        """The items at ``indices`` (ints, a LongTensor, or a bool mask of length n_items), in
        that order."""
        positions = normalize_indices(indices, len(self))
        return ItemSet(
            ids=tuple(self.ids[i] for i in positions),
            texts=tuple(self.texts[i] for i in positions),
        )
