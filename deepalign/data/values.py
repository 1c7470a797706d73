"""`ValueRatings`: how people rate each item on one or more value scales."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from deepalign.data.items import ItemSet
from deepalign.data.validation import check_scale, data_error, describe, normalize_indices
from deepalign.errors import ConfigError

__all__ = ["ValueRatings"]


@dataclass(frozen=True, eq=False)
class ValueRatings:
    """Value ratings of every item, on a declared scale per value.

    Args:
        items: the item set the rows refer to.
        names: one unique name per value (column), e.g. ``("act_evaluation",)``.
        ratings: float64 ``n_items x n_values``; never NaN; each column on its scale.
        scales: one ``(lo, hi)`` per value.
        thresholds: optional float64 ``n_values``; an action is *bad* for a value when its
            rating is below the threshold. Default: each scale's midpoint (ACT 0 on
            -4.3..4.3, Glasgow 5 on 1..9, the paper's 50 on 0..100).
        spread: optional float64 ``n_items x n_values``; rater spread (e.g. SD) per rating in
            the value's units; nan = unknown.

    Raises `DataError` for wrong shapes, NaN/inf, a rating off its scale, or a threshold off
    its scale.
    """

    items: ItemSet
    names: tuple[str, ...]
    ratings: Tensor
    scales: tuple[tuple[float, float], ...]
    thresholds: Tensor | None = None
    spread: Tensor | None = None

    def __post_init__(self) -> None:
        source = "ValueRatings"
        n = len(self.items)
        names = tuple(self.names)
        if not names or len(set(names)) != len(names) or not all(
            isinstance(name, str) and name for name in names
        ):
            raise data_error(source, "names", "one or more distinct non-empty names",
                             describe(names), "name every value column once")
        if len(tuple(self.scales)) != len(names):
            raise data_error(source, "scales", f"one (lo, hi) per value ({len(names)})",
                             f"{len(tuple(self.scales))}", "declare a scale for every value")
        scales = tuple(
            check_scale(scale, f"scales[{k}] ({name!r})")
            for k, (name, scale) in enumerate(zip(names, self.scales))
        )
        ratings = torch.as_tensor(self.ratings, dtype=torch.float64).clone()
        if ratings.shape != (n, len(names)):
            raise data_error(source, "ratings", f"n_items x n_values ({n} x {len(names)})",
                             f"shape {tuple(ratings.shape)}", "one row per item, one column "
                             "per value")
        for k, (name, (lo, hi)) in enumerate(zip(names, scales)):
            column = ratings[:, k]
            finite = torch.isfinite(column)
            if not bool(finite.all()):
                i = int((~finite).nonzero()[0])
                raise data_error(source, f"ratings[{i}, {k}] (item {self.items.ids[i]!r}, "
                                 f"value {name!r})", "a finite rating", f"{float(column[i])}",
                                 "drop items without a rating before building ValueRatings")
            off = (column < lo) | (column > hi)
            if bool(off.any()):
                i = int(off.nonzero()[0])
                raise data_error(source, f"ratings[{i}, {k}] (item {self.items.ids[i]!r}, "
                                 f"value {name!r})", f"a rating on [{lo:g}, {hi:g}]",
                                 f"{float(column[i]):g}", "correct the rating or the scale")
        if self.thresholds is None:
            thresholds = torch.tensor([(lo + hi) / 2 for lo, hi in scales], dtype=torch.float64)
        else:
            thresholds = torch.as_tensor(self.thresholds, dtype=torch.float64).clone().flatten()
        if thresholds.shape != (len(names),):
            raise data_error(source, "thresholds", f"one per value ({len(names)})",
                             f"shape {tuple(thresholds.shape)}", "pass one threshold per value")
        for k, (name, (lo, hi)) in enumerate(zip(names, scales)):
            if not lo <= float(thresholds[k]) <= hi:
                raise data_error(source, f"thresholds[{k}] ({name!r})",
                                 f"a threshold on [{lo:g}, {hi:g}]", f"{float(thresholds[k])}",
                                 "pick a threshold inside the scale")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "scales", scales)
        object.__setattr__(self, "ratings", ratings)
        object.__setattr__(self, "thresholds", thresholds)
        if self.spread is not None:
            spread = torch.as_tensor(self.spread, dtype=torch.float64).clone()
            if spread.shape != ratings.shape:
                raise data_error(source, "spread", f"shape {tuple(ratings.shape)}",
                                 f"shape {tuple(spread.shape)}", "one spread per rating")
            if bool((spread < 0).any()) or bool(torch.isinf(spread).any()):
                raise data_error(source, "spread", "non-negative finite values (nan = unknown)",
                                 "negative or infinite values", "correct the spreads")
            object.__setattr__(self, "spread", spread)

    @property
    def n_values(self) -> int:
        return len(self.names)

    def column(self, name: str) -> Tensor:
        """Ratings of value ``name``: float64 ``n_items`` (a copy)."""
        if name not in self.names:
            raise ConfigError(
                f"name: expected one of {list(self.names)}, got {describe(name)}. "
                "Fix: use a value name of this dataset."
            )
        return self.ratings[:, self.names.index(name)].clone()

    def subset(self, indices: Sequence[int]) -> ValueRatings:
        """The ratings of the items at ``indices`` (ints or a bool mask n_items)."""
        positions = torch.tensor(normalize_indices(indices, len(self.items)), dtype=torch.long)
        return ValueRatings(
            items=self.items.subset(positions),
            names=self.names,
            ratings=self.ratings[positions].clone(),
            scales=self.scales,
            thresholds=self.thresholds.clone(),
            spread=None if self.spread is None else self.spread[positions].clone(),
        )
