"""Study directories given to `python -m deepalign.report DIR`: the fixture study, then its
results.csv (or study.json, or an output path) damaged."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

from audit.harness import Case

NEEDS = ("study",)


def _copy(path: Path, fx: Path) -> None:
    shutil.copytree(fx / "study", path)


def _rows(path: Path) -> tuple[list[str], list[dict]]:
    with open(path / "results.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def _write_rows(path: Path, header: list[str], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (path / "results.csv").write_text(buffer.getvalue(), encoding="utf-8")


def _table(change):
    """The fixture study with `change(header, rows)` applied to its table (in place, or
    returning a new (header, rows))."""
    def write(path: Path, fx: Path) -> None:
        _copy(path, fx)
        header, rows = _rows(path)
        changed = change(header, rows)
        if changed is not None:
            header, rows = changed
        _write_rows(path, header, rows)
    return write


def _study(edit):
    def write(path: Path, fx: Path) -> None:
        _copy(path, fx)
        edit(path)
    return write


def _column(name, value, every=True):
    def change(header, rows):
        for row in rows if every else rows[:1]:
            row[name] = value(row) if callable(value) else value
    return change


def _synthetic(name, value):
    """`name` = `value` in the first study 1 row of a synthetic kernel."""
    def change(header, rows):
        row = next(r for r in rows if r["study"] == "synthetic" and r["kernel"] == "synthetic")
        row[name] = value
    return change


def _duplicate(count):
    def change(header, rows):
        rows.extend(dict(rows[k % len(rows)]) for k in range(count))
    return change


def _conflicting_duplicate(header, rows):
    twin = dict(rows[0])
    twin["mean_reward"] = str(float(twin["mean_reward"]) + 1.0)
    rows.append(twin)


def _drop_column(name):
    def change(header, rows):
        for row in rows:
            row.pop(name)
        return [h for h in header if h != name], rows
    return change


def _extra_column(header, rows):
    for row in rows:
        row["my_note"] = "x"
    return [*header, "my_note"], rows


def _no_rows(header, rows):
    return header, []


def _raw(data: bytes):
    def edit(path):
        (path / "results.csv").write_bytes(data)
    return edit


def _ragged(path):
    text = (path / "results.csv").read_text()
    lines = text.splitlines()
    lines[1] = lines[1].rsplit(",", 3)[0]
    (path / "results.csv").write_text("\n".join(lines) + "\n")


def _remove(name):
    def edit(path):
        target = path / name
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    return edit


def _replace_with_dir(name):
    def edit(path):
        target = path / name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        target.mkdir()
    return edit


def _replace_with_file(name):
    def edit(path):
        target = path / name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        target.write_text("not a directory\n")
    return edit


def _write(name, text):
    def edit(path):
        (path / name).write_text(text)
    return edit


def _nan_alignment(header, rows):
    for row in rows:
        for name in ("alignment_train", "alignment_heldout", "alignment_cross", "alignment_all"):
            row[name] = "nan"


def _reported(case_dir: Path, output: str) -> str | None:
    report = case_dir / "study" / "report.md"
    return None if report.is_file() and report.stat().st_size > 100 else "no report.md"


def _case(id, content, names=("results.csv",), expect="refuse", check=None, setup=None,
          note=""):
    files = {} if content is None else {"study": content}
    return Case(id, ("deepalign.report", "study", "--quiet"), files=files, names=names,
                expect=expect, check=check, setup=setup, note=note)


CASES = [
    _case("valid", _copy, expect="accept", check=_reported),
    _case("extra-column", _table(_extra_column), names=("results.csv", "my_note"),
          note="not a table the study wrote; the report says which column is unexpected"),
    _case("missing-dir", None, names=("study",)),
    _case("no-table", _study(_remove("results.csv"))),
    _case("table-empty-file", _study(_raw(b""))),
    _case("table-header-only", _table(_no_rows)),
    _case("table-random-bytes", _study(_raw(bytes(range(256)) * 4))),
    _case("table-not-utf-8", _study(_raw("cell_id,study\ncaf\xe9,real\n".encode("latin-1")))),
    _case("table-ragged-row", _study(_ragged)),
    _case("table-a-directory", _study(_replace_with_dir("results.csv"))),
    _case("duplicated-rows", _table(_duplicate(10)), names=("results.csv", "cell id")),
    _case("conflicting-duplicate", _table(_conflicting_duplicate),
          names=("results.csv", "cell id")),
    _case("alignment-all-nan", _table(_nan_alignment), names=("results.csv", "alignment")),
    _case("metric-all-inf", _table(_column("bad_actions", "inf")),
          names=("results.csv", "bad_actions")),
    _case("metric-one-nan", _table(_column("mean_reward", "nan", every=False)),
          names=("results.csv", "mean_reward")),
    _case("metric-all-empty", _table(_column("safe_general_score", "")),
          names=("results.csv", "safe_general_score")),
    _case("metric-word", _table(_column("mean_reward", "high", every=False)),
          names=("results.csv", "mean_reward")),
    _case("cell-200000-characters", _table(_column("kernel", "k" * 200_000, every=False)),
          names=("results.csv",)),
    _case("unknown-study", _table(_column("study", "studyX")), names=("results.csv", "studyX")),
    _case("negative-horizon", _table(_column("horizon", "-5")), names=("results.csv", "horizon")),
    _case("negative-seed", _table(_column("seed", "-1", every=False)),
          names=("results.csv", "seed")),
    _case("bad-actions-above-horizon", _table(_column("bad_actions", "999")),
          names=("results.csv", "bad_actions")),
    _case("unknown-agent", _table(_column("agent", "gp-thompson")),
          names=("results.csv", "gp-thompson")),
    _case("calibration-garbage", _table(_column("calibration", "maybe")),
          names=("results.csv", "calibration")),
    _case("no-arms", _table(_column("n_arms", "0")), names=("results.csv", "n_arms")),
    _case("level-above-one", _table(_synthetic("level", "1.5")), names=("results.csv", "level")),
    _case("unknown-variant", _table(_synthetic("condition", "weird:x")),
          names=("results.csv", "weird:x")),
    _case("real-kernel-in-study-1", _table(_synthetic("kernel", "length")),
          names=("results.csv", "length")),
    _case("missing-required-column", _table(_drop_column("agent")),
          names=("results.csv", "agent")),
    _case("figures-is-a-file", _study(_replace_with_file("figures")), names=("figures",)),
    _case("report-md-is-a-directory", _study(_replace_with_dir("report.md")),
          names=("report.md",)),
    _case("report-html-is-a-directory", _study(_replace_with_dir("report.html")),
          names=("report.html",)),
    _case("study-json-broken", _study(_write("study.json", "{not json")),
          names=("study.json",)),
    _case("study-json-a-list", _study(_write("study.json", "[1, 2]")), names=("study.json",)),
    _case("config-yaml-broken", _study(_write("config.yaml", "seeds: [1,\n")),
          expect="accept", check=_reported,
          note="config.yaml is the recipe's copy for people; the report reads study.json"),
    _case("not-a-study-dir", _study(lambda p: [shutil.rmtree(p), p.mkdir(),
                                               (p / "notes.txt").write_text("hi")]),
          names=("study",)),
]
