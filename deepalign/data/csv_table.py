"""Strict reading of delimited text files (CSV/TSV) into a `CsvTable` that knows its lines.

Every problem becomes a `DataError` naming the file, the line (and column) and the fix:
a missing file, bytes that are not UTF-8, a malformed quote, a ragged row, an empty file,
a missing column, a cell that is not a (finite) number.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepalign.data.validation import data_error, describe

__all__ = ["CsvTable", "parse_float", "read_csv_table", "read_text"]


def read_text(path: str | os.PathLike[str]) -> str:
    """The file's text, decoded as UTF-8 (a leading BOM is dropped).

    Raises `DataError` for a missing/unreadable file or bytes that are not UTF-8 (naming the
    line and byte).
    """
    source = os.fspath(path)
    file = Path(source)
    if not file.is_file():
        what = "a directory" if file.is_dir() else "nothing at this path"
        raise data_error(source, "file", "an existing file", what,
                         f"check the path (relative paths start at {os.getcwd()})")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise data_error(source, "file", "a readable file", f"{type(exc).__name__}: {exc}",
                         "check the file's permissions") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise data_error(
            source, f"line {line}, byte {column}", "UTF-8 text",
            f"byte 0x{data[exc.start]:02x}, which is not UTF-8",
            "re-save the file as UTF-8 (in a spreadsheet: 'CSV UTF-8')",
        ) from None


_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NON_FINITE = ("nan", "inf", "infinity")


def parse_float(cell: str, source: str, where: str, what: str = "number") -> float:
    """``cell`` as a finite float; raises `DataError` naming ``source`` and ``where``.

    Only plain ASCII numbers count (``-1.5``, ``2e3``): Python's `float` also reads
    ``1_2`` as 12 and Arabic-Indic digits, which in a ratings file are typos or another
    locale's numbers, never what was meant."""
    if not _NUMBER.fullmatch(cell) and cell.strip().lower().lstrip("+-") not in _NON_FINITE:
        got = "an empty cell" if not cell else describe(cell)
        raise data_error(source, where, f"a {what} (ASCII digits, decimal point '.')", got,
                         "write a plain number such as 3.5 or -2e-1, or remove the row")
    try:
        value = float(cell)
    except ValueError:
        got = "an empty cell" if not cell else describe(cell)
        raise data_error(source, where, f"a {what}", got, "write a number (decimal point '.')"
                         " or remove the row") from None
    if not math.isfinite(value):
        raise data_error(source, where, f"a finite {what}", describe(cell),
                         "replace NaN/inf by a number or remove the row")
    return value


@dataclass(frozen=True)
class CsvTable:
    """A parsed table: ``header``, ``rows`` of stripped strings, and each row's file line."""

    source: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    lines: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.rows)

    def has(self, name: str) -> bool:
        return name in self.header

    def index(self, name: str, purpose: str = "", option: str = "") -> int:
        """Position of column ``name``; raises `DataError` (missing column) naming the header."""
        if name not in self.header:
            fix = f"add a column {name!r}"
            if option:
                flag = "--" + option.replace("_", "-")
                card = {"value_columns": "values"}.get(option, option)
                fix += (f", or name the column to use ({card}: in a dataset card, which "
                        f"every command takes; {option}= in Python; {flag} NAME in "
                        "python -m deepalign.data validate)")
            raise data_error(self.source, "header (line 1)",
                             f"a column {name!r}{' ' + purpose if purpose else ''}",
                             f"columns {list(self.header)}", fix)
        return self.header.index(name)

    def column(self, name: str, purpose: str = "", option: str = "") -> tuple[str, ...]:
        k = self.index(name, purpose, option)
        return tuple(row[k] for row in self.rows)

    def floats(self, name: str, allow_empty: bool = False, what: str = "number") -> np.ndarray:
        """Column ``name`` as float64 ``n_rows``; empty cells become nan if ``allow_empty``."""
        k = self.index(name)
        out = np.empty(len(self.rows), dtype=np.float64)
        for r, row in enumerate(self.rows):
            cell = row[k]
            if allow_empty and cell == "":
                out[r] = np.nan
            else:
                out[r] = parse_float(cell, self.source, self.where(r, name), what)
        return out

    def where(self, row: int, column: str | None = None) -> str:
        """``"line L, column 'c'"`` for data row ``row``."""
        place = f"line {self.lines[row]}"
        return place if column is None else f"{place}, column {column!r}"


def read_csv_table(
    path: str | os.PathLike[str],
    *,
    delimiter: str = ",",
    required: Sequence[str] = (),
    header: bool = True,
    allow_empty: bool = False,
    skip_initial_space: bool = False,
    ragged: bool = False,
) -> CsvTable:
    """Read a delimited UTF-8 file.

    Args:
        path: the file.
        delimiter: field separator (``","``; ``"\\t"`` for TSV).
        required: columns that must be present (checked against the header).
        header: the first non-blank row names the columns; with False the columns are named
            ``"0"``, ``"1"``, ... and every row is data.
        allow_empty: accept a file without data rows (else `DataError`: empty set).
        skip_initial_space: ignore spaces after a delimiter.
        ragged: accept rows of any length (only with ``header=False``).

    Blank lines are skipped; cells and column names are stripped of surrounding whitespace.
    Every row must have as many fields as the header.
    """
    source = os.fspath(path)
    text = read_text(path)
    raw_lines = text.splitlines()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter,
                        skipinitialspace=skip_initial_space, strict=True)
    rows: list[tuple[str, ...]] = []
    lines: list[int] = []
    names: tuple[str, ...] | None = None
    previous_end = 0
    try:
        for record in reader:
            start, previous_end = previous_end + 1, reader.line_num
            cells = tuple(cell.strip() for cell in record)
            if not any(cells):
                continue
            if header and names is None:
                names = _check_header(cells, source, start)
                _check_delimiter(names, delimiter, source, start)
                continue
            if names is None:
                names = tuple(str(k) for k in range(len(cells)))
            if start == reader.line_num:  # a one-line record: its raw text is at hand
                _check_stray_quotes(cells, raw_lines[start - 1], source, start, names)
            if len(cells) != len(names) and not ragged:
                raise data_error(
                    source, f"line {start}", f"{len(names)} fields like the header",
                    f"{len(cells)} fields", f"quote cells that contain {delimiter!r}, and give "
                    "every row one cell per column",
                )
            rows.append(cells)
            lines.append(start)
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise data_error(source, f"line {reader.line_num}", "cells of at most "
                             f"{csv.field_size_limit():,} characters", "a longer cell",
                             "shorten that cell (items are short texts), or check that "
                             "this is the items file") from None
        raise data_error(source, f"line {reader.line_num}", "well-formed CSV",
                         f"a parse error ({exc})", "close every quoted field and remove NUL "
                         "bytes") from None
    if names is None:
        raise data_error(source, "line 1", "a header row naming the columns" if header else
                         "at least one row", "an empty file", "write the header and one row "
                         "per item")
    if not rows and not allow_empty:
        raise data_error(source, "line 2", "at least one data row", "only the header",
                         "add one row per item (empty set)")
    table = CsvTable(source=source, header=names, rows=tuple(rows), lines=tuple(lines))
    for name in required:
        table.index(name)
    return table


def _check_stray_quotes(cells: tuple[str, ...], raw: str, source: str, line: int,
                        names: tuple[str, ...] | None) -> None:
    """A quote inside a cell that was not quoted as a whole (`hug "someone`) is a typo the
    csv module keeps as text; a quoted cell's inner quotes are doubled in the raw line, so a
    cell whose quote appears verbatim there was never quoted."""
    for k, cell in enumerate(cells):
        if '"' in cell and cell in raw and f'"{cell.replace(chr(34), chr(34) * 2)}"' not in raw:
            column = names[k] if names is not None and k < len(names) else str(k + 1)
            raise data_error(source, f"line {line}, column {column!r}",
                             "quotes only around a whole cell", describe(cell),
                             'quote the whole cell and double the quotes inside it '
                             '("say ""hi""") or remove the stray quote')


def _check_delimiter(names: tuple[str, ...], delimiter: str, source: str, line: int) -> None:
    """A one-column header holding another separator: the file uses that separator."""
    if len(names) != 1:
        return
    for other, word in ((";", "';'"), ("\t", "tabs"), ("|", "'|'")):
        if other != delimiter and other in names[0]:
            raise data_error(source, f"line {line}", f"columns separated by {delimiter!r}",
                             f"one column {describe(names[0])}, which holds {word}",
                             f"save the file with {delimiter!r} between cells (e.g. export "
                             "it as CSV, comma-separated)")


def _check_header(cells: tuple[str, ...], source: str, line: int) -> tuple[str, ...]:
    seen: set[str] = set()
    for k, name in enumerate(cells):
        if not name:
            raise data_error(source, f"line {line}, column {k + 1}", "a column name",
                             "an empty header cell", "name every column")
        if name in seen:
            raise data_error(source, f"line {line}, column {k + 1}", "distinct column names",
                             f"{name!r} twice", "rename one of the columns")
        seen.add(name)
    return cells
