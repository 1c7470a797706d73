"""`check_results_file`: what `build_report` refuses in a results table read from disk;
`check_output_paths`: output paths taken by the wrong kind of file.

A table that `read_table` parses can still be unfit to report on: no runs, one cell twice
(its runs would count twice and move every correlation), a metric that is not a finite
number (a damaged or hand-edited file; every metric of a finished run is finite), a study
this version does not know, a horizon below 1, a negative seed, a count outside what the
run's horizon allows (e.g. more bad actions than pulls), an agent, a calibration, an arm
count, a synthetic level or a study 1 variant no study writes. Each refusal is a
`DataError` naming the file, the rows (as file lines) and the fix.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path

from deepalign.agents.registry import AGENTS
from deepalign.errors import DataError, disk_error
from deepalign.studies.config import SYNTHETIC_ARM_SETS, SYNTHETIC_ENVIRONMENTS
from deepalign.studies.results import METRICS, ResultsTable

__all__ = ["KNOWN_STUDIES", "check_output_paths", "check_results_file", "check_writable",
           "report_disk_error"]

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
    def refuse(bad: Callable[[dict], bool], what: Callable[[dict], str]) -> None:
        """Refuse the rows where `bad` holds; `what(first bad row)` says what is wrong."""
        rows = [i for i, row in enumerate(table.rows) if bad(row)]
        if rows:
            raise DataError(f"{path}: {_lines(rows)}: {what(table.rows[rows[0]])}. "
                            f"Fix: {fix_rerun}.")

    def synthetic_blend(row: dict) -> bool:
        return row["study"] == "synthetic" and row["kernel"] == "synthetic"

    refuse(lambda r: r["study"] not in KNOWN_STUDIES,
           lambda r: f"study {r['study']!r} is not one of {', '.join(KNOWN_STUDIES)}")
    refuse(lambda r: int(r["horizon"]) < 1, lambda r: f"horizon {r['horizon']} is below 1")
    refuse(lambda r: synthetic_blend(r) and not math.isfinite(float(r["alignment_train"])),
           lambda r: f"a synthetic kernel without a measured alignment (alignment_train "
                     f"{r['alignment_train']}); study 1 correlates every metric with it")
    refuse(lambda r: r["agent"] not in AGENTS,
           lambda r: f"agent {r['agent']!r} is not one of {', '.join(sorted(AGENTS))}")
    refuse(lambda r: r["calibration"] not in ("on", "off"),
           lambda r: f"calibration {r['calibration']!r} is not 'on' or 'off'")
    refuse(lambda r: int(r["n_arms"]) < 1 or int(r["n_heldout"]) < 0,
           lambda r: f"n_arms {r['n_arms']} / n_heldout {r['n_heldout']}: a run has at least "
                     "one arm and no negative count")
    refuse(lambda r: synthetic_blend(r) and not 0.0 <= float(r["level"]) <= 1.0,
           lambda r: f"level {r['level']} of a synthetic kernel is outside 0..1 (a blend "
                     "weight of the human kernel)")
    refuse(lambda r: r["study"] == "synthetic" and r["kernel"] not in SYNTHETIC_KERNELS,
           lambda r: f"kernel {r['kernel']!r} in study 1, whose kernels are "
                     f"{', '.join(SYNTHETIC_KERNELS)}")
    refuse(lambda r: r["study"] == "synthetic" and not _known_variant(str(r["condition"])),
           lambda r: f"study 1 condition {r['condition']!r} is not ENVIRONMENT:ARMS with "
                     f"ENVIRONMENT one of {', '.join(SYNTHETIC_ENVIRONMENTS)} and ARMS one of "
                     f"{', '.join(SYNTHETIC_ARM_SETS)}")
    refuse(lambda r: int(r["seed"]) < 0,
           lambda r: f"seed {r['seed']} is below 0 (a study's seeds are >= 0)")
    for metric in METRICS:
        bad = [i for i, row in enumerate(table.rows)
               if not math.isfinite(float(row[metric]))]  # type: ignore[arg-type]
        if bad:
            value = table.rows[bad[0]][metric]
            raise DataError(f"{path}: {_lines(bad)}: metric {metric} is {value}, not a finite "
                            f"number (every finished run has finite metrics). Fix: {fix_rerun}.")
    for metric, (lo, hi) in _RANGES.items():
        bad = [i for i, row in enumerate(table.rows)
               if not lo <= float(row[metric]) <= _bound(hi, row)]  # type: ignore[arg-type]
        if bad:
            row = table.rows[bad[0]]
            raise DataError(f"{path}: {_lines(bad)}: metric {metric} is {row[metric]}, outside "
                            f"{lo:g}..{_bound(hi, row):g} (the range a run of horizon "
                            f"{row['horizon']} can give). Fix: {fix_rerun}.")


#: metrics with a fixed range: (lowest, highest); "horizon" = the run's horizon
_RANGES: dict[str, tuple[float, float | str]] = {
    "bad_actions": (0, "horizon"), "non_optimal_actions": (0, "horizon"),
    "unique_actions": (1, "horizon"), "iterations_to_convergence": (0, "horizon"),
    "greedy_convergence": (0, "horizon"), "bad_in_top5": (0, 5),
    "safe_general_score": (0, 1), "greedy_is_bad": (0, 1),
}


#: the kernels of study 1's rows: the blends, the references, and "none" (independent TS)
SYNTHETIC_KERNELS = ("synthetic", "constant", "identity", "none")


def _known_variant(condition: str) -> bool:
    if condition == "synthetic":  # tables written before study 1 had variants
        return True
    environment, _, arms = condition.partition(":")
    return environment in SYNTHETIC_ENVIRONMENTS and arms in SYNTHETIC_ARM_SETS


def _bound(hi: float | str, row: dict) -> float:
    return float(row["horizon"]) if hi == "horizon" else float(hi)


def check_writable(root: Path) -> None:
    """Refuse before any figure is drawn when the report cannot write into `root` (a
    read-only directory or disk, no space): a probe file is created and removed."""
    probe = root / f".deepalign-report-probe.{os.getpid()}"
    try:
        probe.write_bytes(b"probe")
        probe.unlink()
    except OSError as error:
        probe.unlink(missing_ok=True)
        raise report_disk_error(root, error) from error


def report_disk_error(path: Path, error: OSError) -> DataError:
    """A write of the report that failed on the disk, naming the path and what to do."""
    return disk_error(path, error, elsewhere="copy the study directory to a writable disk "
                                             "and report there", resumes=False)
