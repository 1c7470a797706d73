"""Read a full similarity/distance matrix from ``.npy`` or a delimited text file."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepalign.data.csv_table import parse_float, read_csv_table
from deepalign.data.validation import data_error

__all__ = ["MatrixFile", "read_matrix_file"]


@dataclass(frozen=True)
class MatrixFile:
    """A matrix as read: float64 ``values`` (2-D), optional row/column labels, cell namer."""

    source: str
    values: np.ndarray
    labels: tuple[str, ...] | None
    locate_cell: Callable[[int, int], str]


def read_matrix_file(path: str | os.PathLike[str]) -> MatrixFile:
    """Read ``path``: ``.npy`` (a 2-D numeric array; no pickles) or CSV/TSV text.

    A text matrix is numeric rows, optionally with a header row of item ids (and then
    optionally a first column of ids under an empty or ``id`` corner cell, as
    ``pandas.DataFrame.to_csv`` writes). Every cell must be filled. ``labels`` are the header
    ids when present. Raises `DataError` naming the file and the cell.
    """
    source = os.fspath(path)
    if Path(source).suffix.lower() == ".npy":
        return _read_npy(source)
    return _read_text_matrix(source)


def _read_npy(source: str) -> MatrixFile:
    file = Path(source)
    if not file.is_file():
        raise data_error(source, "file", "an existing file", "nothing at this path",
                         f"check the path (relative paths start at {os.getcwd()})")
    try:
        array = np.load(file, allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError/... on bad files
        raise data_error(source, "file", "a .npy array saved with numpy.save",
                         f"an unreadable file ({type(exc).__name__})",
                         "save the matrix with numpy.save (no pickled objects)") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "iuf":
        kind = getattr(array, "dtype", type(array))
        raise data_error(source, "dtype", "a numeric (int or float) array", f"{kind}",
                         "save a float matrix")
    if array.ndim != 2:
        raise data_error(source, "shape", "a 2-D square matrix", f"shape {array.shape}",
                         "save an n_items x n_items matrix")

    def locate(i: int, j: int) -> str:
        return f"cell [{i}, {j}]"

    return MatrixFile(source, array.astype(np.float64), None, locate)


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_text_matrix(source: str) -> MatrixFile:
    delimiter = "\t" if Path(source).suffix.lower() in (".tsv", ".tab") else ","
    table = read_csv_table(source, delimiter=delimiter, header=False)
    rows, lines = list(table.rows), list(table.lines)
    labels: tuple[str, ...] | None = None
    label_column = False
    if not all(_is_number(cell) for cell in rows[0]):
        first = rows[0]
        label_column = first[0] in ("", "id")
        labels = first[1:] if label_column else first
        rows, lines = rows[1:], lines[1:]
        if not rows:
            raise data_error(source, "line 2", "numeric rows under the header", "none",
                             "write one row per item")
    offset = 1 if label_column else 0
    values = np.empty((len(rows), len(rows[0]) - offset), dtype=np.float64)
    row_labels = []
    for i, (row, line) in enumerate(zip(rows, lines)):
        if label_column:
            row_labels.append(row[0])
        for j, cell in enumerate(row[offset:]):
            values[i, j] = parse_float(cell, source, f"line {line}, field {j + offset + 1} "
                                       f"(cell [{i}, {j}])")
    if label_column and labels is not None and len(row_labels) == len(labels):
        for k, (row_id, column_id) in enumerate(zip(row_labels, labels)):
            if row_id != column_id:
                raise data_error(source, f"line {lines[k]}, field 1",
                                 f"the row id {column_id!r} (the header's order)",
                                 f"{row_id!r}", "list rows and columns in the same order")

    def locate(i: int, j: int) -> str:
        line = lines[i] if i < len(lines) else "?"
        return f"line {line}, field {j + offset + 1} (cell [{i}, {j}])"

    return MatrixFile(source, values, labels, locate)
