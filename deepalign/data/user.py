"""`load_user_dataset`: your own items, value ratings and similarity judgments from files.

Files:

- items CSV (UTF-8, header row): an id column (default ``id``; without one the text is the
  id), a text column (default ``text``, else the one of ``action``, ``description``, ``item``,
  ``sentence``, ``scenario``, ``behavior``, ``behaviour``, ``phrase`` present), and numeric
  value columns (default: every other column).
- similarity, optional: a square matrix, ``.npy`` or CSV (row/column order = the items CSV's
  row order; a CSV may carry a header row of ids), or a pairs CSV with columns
  ``item_a,item_b,similarity`` (or ``distance`` with ``kind="distance"``) and optionally
  ``n_raters``. Pairs not listed are unobserved.

The paper's release (``justice_50_actions_with_values.csv`` + a 50 x 50
``survey_similarity.npy``) loads as ``load_user_dataset(csv, npy)``: its text column is
``action`` and its ratings lie in 0-100, so every value gets the paper's scale 0-100 and
threshold 50 (noted in the dataset's notes).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from deepalign.data.csv_table import CsvTable, read_csv_table
from deepalign.data.dataset import Dataset
from deepalign.data.items import ItemSet
from deepalign.data.matrices import judgments_from_matrix
from deepalign.data.matrix_file import read_matrix_file
from deepalign.data.pairs import judgments_from_pairs
from deepalign.data.similarity import KINDS, SimilarityJudgments
from deepalign.data.validation import check_in_scale, check_scale, data_error, describe
from deepalign.data.values import ValueRatings
from deepalign.errors import ConfigError

__all__ = ["PAPER_SCALE", "TEXT_COLUMNS", "load_user_dataset"]

TEXT_COLUMNS = ("text", "action", "description", "item", "sentence", "scenario", "behavior",
                "behaviour", "phrase")
Scale = tuple[float, float]


def load_user_dataset(
    items_csv: str | os.PathLike[str],
    similarity: str | os.PathLike[str] | None = None,
    id_column: str | None = None,
    text_column: str | None = None,
    value_columns: Sequence[str] | None = None,
    scales: Scale | Mapping[str, Scale] | None = None,
    kind: str = "similarity",
    *,
    similarity_scale: Scale | None = None,
    thresholds: float | Mapping[str, float] | None = None,
    spread_columns: Mapping[str, str] | None = None,
    similarity_format: str = "auto",
    ignore_diagonal: bool = False,
    symmetry_tolerance: float = 1e-6,
    name: str | None = None,
) -> Dataset:
    """Load and validate user files into a `Dataset`; nothing half-built is ever returned.

    Args:
        items_csv: the items CSV.
        similarity: a matrix (``.npy``/``.csv``) or pairs CSV, or None.
        id_column, text_column: column names (defaults: see the module docstring).
        value_columns: value columns to read; None = every column except id, text and spread
            columns; ``()`` = none.
        scales: the declared ``(lo, hi)`` of every value, or a mapping value -> scale. A value
            without a declared scale gets 0-100 when the file has the paper's layout (text
            column ``action``, every rating within 0-100, some above 10; a note and a warning
            say so), else its observed (min, max), with a warning.
        kind: ``"similarity"`` (higher = more alike) or ``"distance"``; declared, never guessed.
        similarity_scale: ``(lo, hi)`` of the similarity scores; None = ``(0, 1)`` for
            similarities inside [0, 1], else their (min, max); ``(0, max)`` for distances.
        thresholds: bad-action threshold per value (one number or a mapping); default the
            scale's midpoint.
        spread_columns: value -> column holding the raters' spread (SD); empty cell = unknown.
        similarity_format: ``"auto"`` (``.npy`` or a CSV with ``item_a``/``item_b`` columns is
            recognised), ``"matrix"`` or ``"pairs"``.
        ignore_diagonal: for a matrix whose diagonal was never rated.
        symmetry_tolerance: allowed ``|M - M.T|`` as a fraction of the scale's range.
        name: the dataset's name (default: the items file's stem).

    Raises:
        DataError: a file is missing or malformed (message names file, line/cell and fix).
        ConfigError: an option is invalid.
    """
    if kind not in KINDS:
        raise ConfigError(f"kind: expected 'similarity' or 'distance', got {describe(kind)}. "
                          "Fix: declare what the scores are (higher = more alike: 'similarity').")
    if similarity_format not in ("auto", "matrix", "pairs"):
        raise ConfigError(f"similarity_format: expected 'auto', 'matrix' or 'pairs', got "
                          f"{describe(similarity_format)}. Fix: pass one of those.")
    if not float(symmetry_tolerance) >= 0:
        raise ConfigError(f"symmetry_tolerance: expected a number >= 0, got "
                          f"{describe(symmetry_tolerance)}. Fix: pass e.g. 1e-6.")
    if similarity_scale is not None:
        similarity_scale = check_scale(similarity_scale, "similarity_scale")
    table = read_csv_table(items_csv)
    items, used, notes = _items(table, id_column, text_column)
    values = _values(table, items, used, value_columns, scales, thresholds, spread_columns,
                     notes)
    judgments = None
    if similarity is not None:
        judgments, more = _similarity(items, table.source, similarity, kind, similarity_scale,
                                      similarity_format, ignore_diagonal,
                                      float(symmetry_tolerance))
        notes += more
    files = [table.source] + ([os.fspath(similarity)] if similarity is not None else [])
    return Dataset(
        name=name or Path(table.source).stem, items=items, similarity=judgments, values=values,
        info={"description": f"user data from {', '.join(files)}", "license": "user-supplied",
              "citation": "", "notes": notes, "files": files},
    )


def _items(
    table: CsvTable, id_column: str | None, text_column: str | None
) -> tuple[ItemSet, set[str], list[str]]:
    notes: list[str] = []
    if text_column is None:
        found = [c for c in TEXT_COLUMNS if table.has(c)]
        if not found:
            raise data_error(
                table.source, "header (line 1)",
                "a column holding each item's text, named one of "
                + ", ".join(repr(c) for c in TEXT_COLUMNS),
                f"columns {list(table.header)}",
                "rename that column, or name it in a dataset card (text_column: NAME; every "
                "command takes a card), with text_column= in Python, or with --text-column "
                "NAME in python -m deepalign.data validate")
        text_column = found[0]
    texts = table.column(text_column, "holding each item's text", option="text_column")
    if id_column is None and table.has("id"):
        id_column = "id"
    if id_column is None:
        ids, id_name = texts, text_column
        notes.append(f"no id column: the {text_column!r} text is each item's id")
    else:
        ids, id_name = table.column(id_column, "holding item ids", option="id_column"), id_column
    first_line: dict[str, int] = {}
    text_line: dict[str, int] = {}
    for r, (item_id, text) in enumerate(zip(ids, texts)):
        if not item_id:
            raise data_error(table.source, table.where(r, id_name), "an item id",
                             "an empty cell", "give every item an id")
        if not text:
            raise data_error(table.source, table.where(r, text_column), "the item's text",
                             "an empty cell", "describe every item")
        control = next((c for c in text if ord(c) < 32 or ord(c) == 127), None)
        if control is not None:
            raise data_error(table.source, table.where(r, text_column),
                             "a text without control characters",
                             f"{describe(text)}, holding {control!r}",
                             "remove NUL bytes and other control characters (an encoder "
                             "would embed them as text)")
        if item_id in first_line:
            raise data_error(table.source, table.where(r, id_name), "a unique item id",
                             f"{item_id!r}, already at line {first_line[item_id]}",
                             "remove the duplicate row or give it another id")
        if text in text_line:
            raise data_error(table.source, table.where(r, text_column), "a text no other item "
                             "has", f"{describe(text)}, already at line {text_line[text]}",
                             "merge the two rows or tell the items apart in their texts (an "
                             "encoder gives equal texts equal embeddings, so no kernel could "
                             "learn that they differ)")
        first_line[item_id] = table.lines[r]
        text_line[text] = table.lines[r]
    return ItemSet(ids=ids, texts=texts), {id_name, text_column}, notes


def _values(
    table: CsvTable,
    items: ItemSet,
    used: set[str],
    value_columns: Sequence[str] | None,
    scales: Scale | Mapping[str, Scale] | None,
    thresholds: float | Mapping[str, float] | None,
    spread_columns: Mapping[str, str] | None,
    notes: list[str],
) -> ValueRatings | None:
    spread_columns = dict(spread_columns or {})
    if value_columns is None:
        value_columns = [c for c in table.header
                         if c not in used and c not in spread_columns.values()]
    elif isinstance(value_columns, str):
        raise ConfigError(f"value_columns: expected a sequence of column names, got "
                          f"{value_columns!r}. Fix: pass [{value_columns!r}].")
    names = tuple(value_columns)
    for key in spread_columns:
        if key not in names:
            raise ConfigError(f"spread_columns: expected keys among the value columns "
                              f"{list(names)}, got {key!r}. Fix: map a value column to its "
                              "spread column.")
    if not names:
        return None
    for column in names:
        table.index(column, "of value ratings", option="value_columns")
    ratings = np.stack([table.floats(c, what="rating") for c in names], axis=1)
    declared = _per_value(scales, names, "scales")
    paper = _paper_layout(used, ratings)
    value_scales = []
    for k, column in enumerate(names):
        if declared.get(column) is None and paper:
            value_scales.append(PAPER_SCALE)
        elif declared.get(column) is None:
            lo, hi = float(ratings[:, k].min()), float(ratings[:, k].max())
            if not hi > lo:
                raise data_error(table.source, f"column {column!r}", "ratings spanning a "
                                 "range", f"every rating equal to {hi:g}",
                                 f"declare the scale: scales={{{column!r}: (lo, hi)}}")
            message = (f"{table.source}: scale of value {column!r} not declared; using the "
                       f"observed range ({lo:g}, {hi:g}), so the bad-action threshold is its "
                       f"midpoint {(lo + hi) / 2:g}. {_DECLARE}")
            warnings.warn(message, UserWarning, stacklevel=3)
            notes.append(message)
            value_scales.append((lo, hi))
        else:
            scale = check_scale(declared[column], f"scales[{column!r}]")
            check_in_scale(ratings[:, k], scale, table.source,
                           lambda r, c=column: table.where(r, c), "rating")
            value_scales.append(scale)
    papered = [c for c in names if declared.get(c) is None] if paper else []
    if papered:
        lo, hi = PAPER_SCALE
        message = (f"{table.source}: scale of {_listed(papered)} not declared; the file has "
                   f"the paper's layout (text column 'action', ratings within {lo:g}-{hi:g}), "
                   f"so the scale is {lo:g}-{hi:g} and the bad-action threshold its midpoint, "
                   f"as in Wynn et al. (2024). {_DECLARE}")
        warnings.warn(message, UserWarning, stacklevel=3)
        notes.append(message)
    threshold_map = _per_value(thresholds, names, "thresholds")
    value_thresholds = np.array([
        (lo + hi) / 2 if threshold_map.get(c) is None else float(threshold_map[c])
        for c, (lo, hi) in zip(names, value_scales)
    ])
    for c, (lo, hi), threshold in zip(names, value_scales, value_thresholds):
        if not lo <= threshold <= hi:  # NaN fails too
            raise ConfigError(
                f"thresholds[{c!r}] (a card's 'threshold' key, or thresholds= in Python): "
                f"expected a bad-action threshold within the scale [{lo:g}, {hi:g}] of value "
                f"{c!r}, got {threshold:g}. Fix: pick a threshold inside the scale, or leave it "
                "out for the scale's midpoint.")
    spread = None
    if spread_columns:
        spread = np.full(ratings.shape, np.nan)
        for k, column in enumerate(names):
            if column in spread_columns:
                spread[:, k] = table.floats(spread_columns[column], allow_empty=True,
                                            what="spread")
                bad = np.flatnonzero(spread[:, k] < 0)
                if bad.size:
                    raise data_error(table.source, table.where(int(bad[0]),
                                     spread_columns[column]), "a spread >= 0",
                                     f"{spread[bad[0], k]:g}", "correct the spread")
    return ValueRatings(items=items, names=names, ratings=ratings, scales=tuple(value_scales),
                        thresholds=value_thresholds, spread=spread)


#: The value scale of the paper's release (Wynn et al. 2024): 0-100, threshold 50.
PAPER_SCALE = (0.0, 100.0)
_DECLARE = ("Declare the scale in a dataset card (values: {NAME: {scale: [LO, HI]}}; every "
            "command takes a card), with scales= in Python, or with --scale LO,HI in "
            "python -m deepalign.data validate")


def _listed(columns: list[str]) -> str:
    return (f"value {columns[0]!r}" if len(columns) == 1
            else "values " + ", ".join(repr(c) for c in columns))


def _paper_layout(used: set[str], ratings: np.ndarray) -> bool:
    """The paper's release layout: the items' text in a column 'action' and every rating
    within `PAPER_SCALE`, some above 10."""
    lo, hi = PAPER_SCALE
    # the ratings must use the 0-100 range (some above 10), so a 1-7 or 0-10 Likert file
    # with an 'action' column keeps its observed range and a warning instead
    return ("action" in used and bool(np.all((ratings >= lo) & (ratings <= hi)))
            and float(ratings.max()) > 10.0)


def _per_value(option: object, names: tuple[str, ...], label: str) -> dict:
    """A declared option as value -> setting (one setting for all, or a mapping)."""
    if option is None:
        return {}
    if isinstance(option, Mapping):
        unknown = [key for key in option if key not in names]
        if unknown:
            raise ConfigError(f"{label}: expected keys among the value columns {list(names)}, "
                              f"got {unknown}. Fix: use value column names.")
        return dict(option)
    return {name: option for name in names}


def _similarity(
    items: ItemSet, items_source: str, path: str | os.PathLike[str], kind: str,
    scale: Scale | None, file_format: str, ignore_diagonal: bool, tolerance: float,
) -> tuple[SimilarityJudgments, list[str]]:
    source = os.fspath(path)
    is_npy = Path(source).suffix.lower() == ".npy"
    if file_format == "pairs" or (file_format == "auto" and not is_npy and _looks_like_pairs(
            source)):
        return _pairs(items, source, kind, scale)
    matrix = read_matrix_file(source)
    if matrix.labels is not None and len(matrix.labels) == len(items) and tuple(
        matrix.labels
    ) != items.ids:
        k = next(k for k, (a, b) in enumerate(zip(matrix.labels, items.ids)) if a != b)
        raise data_error(source, f"header, column {k + 1}",
                         f"item id {items.ids[k]!r} (row {k + 1} of {items_source})",
                         f"{matrix.labels[k]!r}",
                         "order the matrix's rows and columns like the items CSV's rows")
    return judgments_from_matrix(
        items, matrix.values, kind=kind, scale=scale, source=source,
        locate_cell=matrix.locate_cell, items_source=items_source,
        symmetry_tolerance=tolerance, ignore_diagonal=ignore_diagonal,
    )


def _looks_like_pairs(source: str) -> bool:
    table = read_csv_table(source, header=False, ragged=True, allow_empty=True)
    # one of the two names is enough: a header such as item_a,item_x,similarity is a pairs
    # file with a misnamed column, and the pairs reader says which
    return bool(table.rows) and bool({"item_a", "item_b"} & set(table.rows[0]))


def _pairs(
    items: ItemSet, source: str, kind: str, scale: Scale | None
) -> tuple[SimilarityJudgments, list[str]]:
    table = read_csv_table(source, required=("item_a", "item_b"))
    other = "distance" if kind == "similarity" else "similarity"
    if table.has(kind) and table.has(other):
        raise data_error(source, "header (line 1)", f"one score column (kind={kind!r})",
                         f"both a {kind!r} and a {other!r} column",
                         "keep the column that holds the judgments and remove the other")
    if table.has(kind):
        column = kind
    elif table.has(other):
        raise data_error(source, "header (line 1)", f"a {kind!r} column (kind={kind!r})",
                         f"a {other!r} column", f"pass kind={other!r} if the scores are "
                         f"{other}s")
    else:
        column = "score" if table.has("score") else kind
    scores = table.floats(column, what=kind)
    positions = []
    for field in ("item_a", "item_b"):
        found = []
        for r, item_id in enumerate(table.column(field)):
            try:
                found.append(items.index_of(item_id))
            except ConfigError:
                raise data_error(source, table.where(r, field), "an id from the items CSV",
                                 f"{item_id!r}, which is not an item",
                                 "add the item to the items CSV or fix the id") from None
        positions.append(np.array(found, dtype=np.int64))
    n_raters = table.floats("n_raters", allow_empty=True, what="rater count") if table.has(
        "n_raters") else None
    return judgments_from_pairs(
        items, positions[0], positions[1], scores, kind=kind, scale=scale, source=source,
        locate=lambda r: table.where(r, column), n_raters=n_raters, duplicates="error",
    )
