"""The tidy results table: one CSV row per run, written atomically per batch, resumable.

Layout of a study directory:

```
DIR/parts/<hash>.csv   one file per finished batch of cells (written to a temporary file,
                       fsync'ed, then renamed: a crash leaves no half row)
DIR/results.csv        all parts merged in grid order (rewritten atomically at the end)
DIR/encoder_runs.json  what study 3's encoder runs reported beyond the table (their
                       preservation suite; `trained_analysis.write_encoder_records`)
```

Resume reads the cell ids in `DIR/parts` and skips them. A cell written twice (a retried
batch) is kept once: rows are deduplicated by `cell_id` on read. The schema is fixed
(`COLUMNS`); a table with other columns is refused with a `DataError`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from deepalign.errors import DataError, disk_error

__all__ = [
    "ALIGNMENT_COLUMNS",
    "COLUMNS",
    "GENERALIZATION_METRICS",
    "KERNEL_COLUMNS",
    "METRICS",
    "PRIMARY_METRICS",
    "PERSONALIZATION_METRICS",
    "ResultsStore",
    "ResultsTable",
    "read_header",
    "read_table",
    "write_table",
]

IDENTITY_COLUMNS = (
    "cell_id", "study", "condition", "dataset", "value", "kernel", "agent", "seed", "level",
    "encoder_seed", "epoch",
)
INFO_COLUMNS = ("horizon", "n_arms", "n_heldout", "backend", "calibration")
#: Measured alignment of the run's kernel (Spearman with the reference similarity over its
#: observed pairs): among personalization arms ("train"), among held-out items, between the
#: two ("cross") and over all pairs; `alignment_source` says against what it was measured.
ALIGNMENT_COLUMNS = (
    "alignment_train", "alignment_heldout", "alignment_cross", "alignment_all", "alignment_source",
)
#: The run's kernel as given (before calibration) over all its items: effective rank
#: (exp of the entropy of its normalised eigenvalues) and the share of its variance in the top
#: eigenvector (`deepalign.kernels.kernel_spectrum`; near-constant above 0.9); then the
#: calibration the run ended with (`deepalign.agents.calibration`: temperature and
#: outputscale multiples; NaN with calibration off or for agents that fit nothing).
KERNEL_COLUMNS = (
    "kernel_effective_rank", "kernel_top_share", "calibration_temperature",
    "calibration_outputscale",
)
PERSONALIZATION_METRICS = (
    "mean_reward", "cumulative_regret", "unique_actions", "non_optimal_actions",
    "bad_actions", "iterations_to_convergence", "greedy_convergence", "final_guess_value",
    "simple_regret",
)
GENERALIZATION_METRICS = (
    "generalization_spearman", "greedy_value", "greedy_is_bad", "bad_in_top5",
    "generalization_regret",
)
#: The primary safe-and-general score (`deepalign.agents.metrics.safe_general_score`).
PRIMARY_METRICS = ("safe_general_score",)
METRICS = PRIMARY_METRICS + PERSONALIZATION_METRICS + GENERALIZATION_METRICS
COLUMNS = IDENTITY_COLUMNS + INFO_COLUMNS + ALIGNMENT_COLUMNS + KERNEL_COLUMNS + METRICS

_STRING = {"cell_id", "study", "condition", "dataset", "value", "kernel", "agent", "backend",
           "calibration", "alignment_source"}
_INTEGER = {"seed", "horizon", "n_arms", "n_heldout"}


def _format(name: str, value: object) -> str:
    if name in _STRING:
        return str(value)
    if name in _INTEGER:
        return str(int(value))  # type: ignore[arg-type]
    number = float(value)  # type: ignore[arg-type]
    return "" if math.isnan(number) else repr(number)


def _parse(name: str, text: str, source: str, line: int) -> object:
    if name in _STRING:
        return text
    try:
        if name in _INTEGER:
            return int(text)
        return math.nan if text == "" else float(text)
    except ValueError as error:
        raise DataError(
            f"{source}, line {line}, column '{name}': expected a number but got {text!r}; "
            "the file is damaged: delete it (its cells are re-run) or restore it."
        ) from error


def _normalise(row: Mapping[str, object], where: str) -> dict[str, object]:
    missing = [c for c in COLUMNS if c not in row]
    extra = [c for c in row if c not in COLUMNS]
    if missing or extra:
        raise DataError(
            f"{where}: a results row must have exactly the columns of COLUMNS; missing "
            f"{missing}, unexpected {extra}."
        )
    return {c: _parse(c, _format(c, row[c]), where, 0) for c in COLUMNS}


def _csv_text(rows: Iterable[Mapping[str, object]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_format(c, row[c]) for c in COLUMNS])
    return buffer.getvalue()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)  # never a 0-byte temporary part left behind
        raise disk_error(path, error) from error
    try:
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class ResultsTable:
    """Rows of the results table (dicts keyed by `COLUMNS`), with small query helpers."""

    def __init__(self, rows: Sequence[Mapping[str, object]] = ()) -> None:
        self.rows: list[dict[str, object]] = [dict(r) for r in rows]

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> np.ndarray:
        """Column `name` as a float64 array (`n_rows`), or an object array for text columns."""
        if name not in COLUMNS:
            raise DataError(f"unknown results column {name!r}; expected one of {COLUMNS}.")
        if name in _STRING:
            return np.array([r[name] for r in self.rows], dtype=object)
        return np.array([r[name] for r in self.rows], dtype=np.float64)

    def where(self, **equals: object) -> ResultsTable:
        """Rows whose columns equal the given values (a tuple/list value means "one of")."""
        def keep(row: Mapping[str, object]) -> bool:
            for name, wanted in equals.items():
                if isinstance(wanted, tuple | list | set):
                    if row[name] not in wanted:
                        return False
                elif row[name] != wanted:
                    return False
            return True

        return ResultsTable([r for r in self.rows if keep(r)])

    def unique(self, name: str) -> list[object]:
        """Distinct values of column `name` in order of first appearance (nan left out)."""
        seen: list[object] = []
        for row in self.rows:
            value = row[name]
            if isinstance(value, float) and math.isnan(value):
                continue
            if value not in seen:
                seen.append(value)
        return seen

    def group_by(self, *names: str) -> dict[tuple, ResultsTable]:
        """Split by the values of `names`, in order of first appearance."""
        groups: dict[tuple, list[dict[str, object]]] = {}
        for row in self.rows:
            groups.setdefault(tuple(row[n] for n in names), []).append(row)
        return {key: ResultsTable(rows) for key, rows in groups.items()}


_DAMAGED = "the file is damaged: delete it (its cells are re-run) or restore it."


def _check_header(file: Path, header: list[str] | None) -> None:
    if header is None:
        raise DataError(f"{file}: empty, not a deepalign results table; {_DAMAGED}")
    if tuple(header) != COLUMNS:
        missing = [c for c in COLUMNS if c not in header]
        extra = [c for c in header if c not in COLUMNS]
        order = "" if missing or extra else " (same columns in another order)"
        raise DataError(
            f"{file}: not a deepalign results table (missing columns {missing}, unexpected "
            f"{extra}{order}); point at the results.csv written by `python -m deepalign.study`, "
            "or move this file out of the study directory."
        )


def _open_text(file: Path) -> str:
    if not file.is_file():
        raise DataError(f"{file}: no results table there; run `python -m deepalign.study` first.")
    try:
        return file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{file}: not UTF-8 text (byte {error.start}), so not a deepalign "
                        f"results table; {_DAMAGED}") from error


def read_header(path: str | Path) -> tuple[str, ...]:
    """The header of the results CSV at `path`; DataError when it is not `COLUMNS`."""
    file = Path(path)
    header = next(csv.reader(io.StringIO(_open_text(file))), None)
    _check_header(file, header)
    return tuple(header)


def read_table(path: str | Path) -> ResultsTable:
    """Read a results CSV written by `write_table` / `ResultsStore`; DataError on another
    schema, a truncated file or a damaged row, naming the file, line and column."""
    file = Path(path)
    text = _open_text(file)
    if text and not text.endswith("\n"):
        line = text.count("\n") + 1
        raise DataError(f"{file}, line {line}: truncated (the last row has no line end); "
                        f"{_DAMAGED}")
    with io.StringIO(text, newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, None)
            _check_header(file, header)
            rows = []
            for line, fields in enumerate(reader, start=2):
                if len(fields) != len(COLUMNS):
                    raise DataError(
                        f"{file}, line {line}: expected {len(COLUMNS)} fields but got "
                        f"{len(fields)}; {_DAMAGED}"
                    )
                rows.append({c: _parse(c, f, str(file), line) for c, f in zip(COLUMNS, fields)})
        except csv.Error as error:  # e.g. a cell over the csv module's field limit
            raise DataError(f"{file}, line {reader.line_num}: not a well-formed CSV row "
                            f"({error}): the file is damaged. Fix: delete it (its cells are "
                            "re-run) or restore it.") from error
    return ResultsTable(rows)


def write_table(path: str | Path, rows: Iterable[Mapping[str, object]]) -> Path:
    """Write `rows` to `path` as CSV, atomically (temporary file, fsync, rename)."""
    file = Path(path)
    normalised = [_normalise(r, str(file)) for r in rows]
    _atomic_write(file, _csv_text(normalised))
    return file


class ResultsStore:
    """The results of one study directory: per-batch part files, resume, merged table."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.parts_directory = self.directory / "parts"
        self.table_path = self.directory / "results.csv"

    def part_files(self) -> list[Path]:
        """Finished part files, sorted by name (temporary files are ignored)."""
        if not self.parts_directory.is_dir():
            return []
        return sorted(p for p in self.parts_directory.glob("*.csv") if not p.name.startswith("."))

    def read_parts(self) -> ResultsTable:
        """All rows in the part files, each cell once (first occurrence by file name)."""
        seen: set[str] = set()
        rows = []
        for part in self.part_files():
            for row in read_table(part).rows:
                if row["cell_id"] not in seen:
                    seen.add(str(row["cell_id"]))
                    rows.append(row)
        return ResultsTable(rows)

    def completed(self) -> set[str]:
        """Cell ids already written."""
        return {str(r["cell_id"]) for r in self.read_parts().rows}

    def write_batch(self, rows: Sequence[Mapping[str, object]]) -> Path:
        """Write one finished batch as a part file named by a hash of its cell ids."""
        if not rows:
            raise ValueError("write_batch needs at least one row")
        ids = sorted(str(r["cell_id"]) for r in rows)
        name = hashlib.sha1("\n".join(ids).encode("utf-8")).hexdigest()[:20]
        return write_table(self.parts_directory / f"{name}.csv", rows)

    def merge(self, order: Sequence[str] | None = None, keep_only: bool = False) -> Path:
        """Write `results.csv` from the parts; rows sorted by `order` (cell ids; others after,
        by id) so the merged table does not depend on the order batches finished in. With
        `keep_only`, rows whose cell id is not in `order` are left out (cells of an earlier
        grid that this one dropped)."""
        table = self.read_parts()
        position = {cell_id: i for i, cell_id in enumerate(order or ())}
        rows = table.rows
        if keep_only:
            rows = [r for r in rows if str(r["cell_id"]) in position]
        rows = sorted(
            rows,
            key=lambda r: (position.get(str(r["cell_id"]), len(position)), str(r["cell_id"])),
        )
        return write_table(self.table_path, rows)
