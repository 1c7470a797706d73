"""`check_results_file`: what `build_report` refuses in a results table read from disk;
`check_output_paths`: output paths taken by the wrong kind of file.

A table that `read_table` parses can still be unfit to report on: no runs, one cell twice
(its runs would count twice and move every correlation), a metric that is not a finite
number (a damaged or hand-edited file; every metric of a finished run is finite), a study
this version does not know, a horizon below 1. Each refusal is a `DataError` naming the
file, the rows (as file lines) and the fix.
"""

from __future__ import annotations

import math
from pathlib import Path

from deepalign.errors import DataError
from deepalign.studies.results import METRICS, ResultsTable

__all__ = ["KNOWN_STUDIES", "check_output_paths", "check_results_file"]

#: The studies a results table may hold.
KNOWN_STUDIES = ("synthetic", "real", "trained", "transfer")
_SHOWN = 5


def _lines(indices: list[int]) -> str:
    """File lines of row indices (row 0 is line 2), the first few."""
    shown = ", ".join(str(i + 2) for i in indices[:_SHOWN])
    more = f" and {len(indices) - _SHOWN} more" if len(indices) > _SHOWN else ""
    return f"line{'s' if len(indices) > 1 else ''} {shown}{more}"


def check_output_paths(root: Path) -> None:
    """Refuse before writing when an output path of the report is taken by the wrong kind
    of file (figures/ a file, report.md or report.html a directory)."""
    figures = root / "figures"
    if figures.exists() and not figures.is_dir():
        raise DataError(f"{figures}: is a file, but the report writes its figures into a "
                        "directory there. Fix: move or delete that file.")
    for name in ("report.md", "report.html"):
        if (root / name).is_dir():
            raise DataError(f"{root / name}: is a directory, but the report writes a file "
                            "there. Fix: move or delete that directory.")


def check_results_file(path: Path, table: ResultsTable) -> None:
    """Refuse a results table unfit to report on; see the module docstring."""
    fix_rerun = ("re-run `python -m deepalign.study` into a new --out (finished cells are "
                 "written exactly once), or restore the file")
    if not len(table):
        raise DataError(f"{path}: no runs (a header and no rows). Fix: run the study first, "
                        "or point the report at a directory whose results.csv has rows.")
    first: dict[str, int] = {}
    repeated: list[int] = []
    for i, row in enumerate(table.rows):
        cell = str(row["cell_id"])
        if cell in first:
            repeated.append(i)
        else:
            first[cell] = i
    if repeated:
        cell = str(table.rows[repeated[0]]["cell_id"])
        raise DataError(f"{path}: {_lines(repeated)}: cell ids already in the table (e.g. "
                        f"{cell!r} first at line {first[cell] + 2}); each run must appear once. "
                        f"Fix: drop the repeated rows, or {fix_rerun}.")
    unknown = [i for i, row in enumerate(table.rows) if row["study"] not in KNOWN_STUDIES]
    if unknown:
        raise DataError(f"{path}: {_lines(unknown)}: study {table.rows[unknown[0]]['study']!r} "
                        f"is not one of {', '.join(KNOWN_STUDIES)}. Fix: {fix_rerun}.")
    horizon = [i for i, row in enumerate(table.rows) if int(row["horizon"]) < 1]
    if horizon:
        raise DataError(f"{path}: {_lines(horizon)}: horizon {table.rows[horizon[0]]['horizon']} "
                        f"is below 1. Fix: {fix_rerun}.")
    levels = [i for i, row in enumerate(table.rows)
              if row["study"] == "synthetic" and row["kernel"] == "synthetic"
              and not math.isfinite(float(row["alignment_train"]))]  # type: ignore[arg-type]
    if levels:
        raise DataError(f"{path}: {_lines(levels)}: a synthetic kernel without a measured "
                        f"alignment (alignment_train {table.rows[levels[0]]['alignment_train']}); "
                        f"study 1 correlates every metric with it. Fix: {fix_rerun}.")
    for metric in METRICS:
        bad = [i for i, row in enumerate(table.rows)
               if not math.isfinite(float(row[metric]))]  # type: ignore[arg-type]
        if bad:
            value = table.rows[bad[0]][metric]
            raise DataError(f"{path}: {_lines(bad)}: metric {metric} is {value}, not a finite "
                            f"number (every finished run has finite metrics). Fix: {fix_rerun}.")
