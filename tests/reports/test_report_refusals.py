"""`deepalign.report` refuses a results table it cannot report on honestly (issue 16):
duplicated cell ids, non-finite metrics, unknown studies, no rows, a horizon below 1, a
synthetic kernel without alignment, an over-long cell, and output paths of the wrong kind;
exit 2, a message naming the file and rows, nothing written."""

import math

import pytest

from deepalign.report import main as report_main
from deepalign.studies import ResultsTable
from deepalign.studies.results import write_table


@pytest.fixture
def study_dir(tmp_path, table_factory, finished_rows):
    """A directory with a valid results.csv (every metric finite)."""
    rows = finished_rows(table_factory().rows)
    write_table(tmp_path / "results.csv", rows)
    return tmp_path


def _refused(directory, capsys, *parts):
    before = sorted(p.name for p in directory.iterdir())
    assert report_main([str(directory)]) == 2
    error = capsys.readouterr().err
    for part in parts:
        assert part in error, (part, error)
    assert "Traceback" not in error and "Fix:" in error
    assert sorted(p.name for p in directory.iterdir()) == before  # nothing written


def _rewrite(directory, change) -> None:
    from deepalign.studies.results import read_table

    rows = [dict(r) for r in read_table(directory / "results.csv").rows]
    write_table(directory / "results.csv", change(rows))


def test_the_valid_table_reports(study_dir, capsys):
    assert report_main([str(study_dir), "--quiet"]) == 0
    assert (study_dir / "report.md").is_file()


def test_duplicated_rows_are_refused(study_dir, capsys):
    _rewrite(study_dir, lambda rows: rows + rows[:10])
    n = 0
    with open(study_dir / "results.csv") as handle:
        n = sum(1 for _ in handle) - 1
    _refused(study_dir, capsys, "results.csv", f"lines {n - 8}, ", "cell ids already in the table")


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_non_finite_metric_is_refused(study_dir, capsys, value):
    def change(rows):
        rows[3]["bad_actions"] = value
        return rows
    _rewrite(study_dir, change)
    _refused(study_dir, capsys, "line 5", "metric bad_actions", "not a finite number")


def test_an_unknown_study_is_refused(study_dir, capsys):
    def change(rows):
        rows[0]["study"] = "synthetik"
        return rows
    _rewrite(study_dir, change)
    _refused(study_dir, capsys, "line 2", "'synthetik'", "not one of synthetic, real")


def test_a_header_only_table_is_refused(study_dir, capsys):
    _rewrite(study_dir, lambda rows: [])
    _refused(study_dir, capsys, "no runs")


def test_a_negative_horizon_is_refused(study_dir, capsys):
    def change(rows):
        rows[1]["horizon"] = -5
        return rows
    _rewrite(study_dir, change)
    _refused(study_dir, capsys, "line 3", "horizon -5 is below 1")


def test_a_synthetic_kernel_without_alignment_is_refused(study_dir, capsys):
    def change(rows):
        for row in rows:
            if row["study"] == "synthetic" and row["kernel"] == "synthetic":
                row["alignment_train"] = math.nan
        return rows
    _rewrite(study_dir, change)
    _refused(study_dir, capsys, "without a measured alignment")


def test_an_over_long_cell_is_refused(study_dir, capsys):
    path = study_dir / "results.csv"
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = '"' + "x" * 200_000 + '"' + lines[2][lines[2].index(","):]
    path.write_text("".join(lines))
    _refused(study_dir, capsys, "not a well-formed CSV row", "field larger than field limit")


def test_output_paths_of_the_wrong_kind(study_dir, capsys):
    (study_dir / "figures").write_text("not a directory")
    _refused(study_dir, capsys, "figures: is a file")
    (study_dir / "figures").unlink()
    (study_dir / "report.md").mkdir()
    _refused(study_dir, capsys, "report.md: is a directory")


def test_a_table_in_memory_is_not_checked(table_factory, tmp_path):
    # the library path (a table given directly) reports partial hand-made tables
    from deepalign.reports import build_report

    table = table_factory()
    assert isinstance(table, ResultsTable)
    assert build_report(tmp_path, table).markdown.is_file()


@pytest.mark.parametrize("metric, value, bound", [
    ("bad_actions", 999, "outside 0..{h}"), ("unique_actions", 0, "outside 1..{h}"),
    ("bad_in_top5", 6, "outside 0..5"), ("safe_general_score", 1.5, "outside 0..1")])
def test_a_metric_outside_what_the_horizon_allows_is_refused(study_dir, capsys, metric, value,
                                                              bound):
    from deepalign.studies.results import read_table

    horizon = int(read_table(study_dir / "results.csv").rows[2]["horizon"])

    def change(rows):
        rows[2][metric] = value
        return rows
    _rewrite(study_dir, change)
    _refused(study_dir, capsys, "line 4", f"metric {metric} is", bound.format(h=horizon))


def test_a_negative_seed_is_refused(study_dir, capsys):
    def change(rows):
        rows[0]["seed"] = -1
        return rows
    _rewrite(study_dir, change)
    _refused(study_dir, capsys, "line 2", "seed -1 is below 0")


@pytest.mark.parametrize("code", ["EROFS", "ENOSPC"])
def test_a_disk_that_refuses_the_report_is_named_before_any_figure(study_dir, capsys,
                                                                    monkeypatch, code):
    import errno
    from pathlib import Path

    real = Path.write_bytes

    def refuse(self, data):
        if self.name.startswith(".deepalign-report-probe"):
            raise OSError(getattr(errno, code), "refused", str(self))
        return real(self, data)
    monkeypatch.setattr(Path, "write_bytes", refuse)
    _refused(study_dir, capsys, f"{study_dir}: cannot write", "copy the study directory")


def test_a_disk_that_fills_while_writing_leaves_no_temporary_part(study_dir, capsys,
                                                                   monkeypatch):
    import errno

    from deepalign.reports import document

    def full(source, target):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))
    monkeypatch.setattr(document.os, "replace", full)
    assert report_main([str(study_dir), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "report.md: cannot write (No space left on device). Fix: free space" in error
    assert not [p for p in study_dir.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("column, value, part", [
    ("agent", "gp-thompson", "agent 'gp-thompson' is not one of gp-ts"),
    ("calibration", "maybe", "calibration 'maybe' is not 'on' or 'off'"),
    ("n_arms", 0, "n_arms 0 / n_heldout"),
    ("level", 1.5, "level 1.5 of a synthetic kernel is outside 0..1"),
    ("condition", "weird:x", "study 1 condition 'weird:x' is not ENVIRONMENT:ARMS"),
    ("kernel", "length", "kernel 'length' in study 1, whose kernels are synthetic"),
])
def test_values_no_study_writes_are_refused(study_dir, capsys, column, value, part):
    def change(rows):
        first = next(i for i, r in enumerate(rows)
                     if r["study"] == "synthetic" and r["kernel"] == "synthetic")
        rows[first][column] = value
        return rows
    _rewrite(study_dir, change)
    _refused(study_dir, capsys, part)
