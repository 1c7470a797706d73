"""Study 3's preservation suite: saved per encoder run, shown in the report as recorded."""

import json
import math

import numpy as np
import pytest

from deepalign.errors import DataError
from deepalign.reports import build_report
from deepalign.reports.preservation import NOT_RECORDED, preservation_table, preservation_text
from deepalign.studies.encoders import EncoderRun
from deepalign.studies.results import write_table
from deepalign.studies.trained_analysis import (
    ENCODER_RUNS,
    EncoderRecord,
    read_encoder_records,
    write_encoder_records,
)

#: (activity-pairs before, after), (sts-captions before, after), new x new gain, cross gain
_SEEDS = {
    0: ((0.742, 0.736), (0.907, 0.9066), 0.081, 0.052),
    1: ((0.740, 0.7311), (0.905, 0.9071), 0.064, 0.047),
    2: ((0.745, 0.7443), (0.909, 0.9012), 0.092, 0.031),
}


def trainer_summary(activity, sts, new_x_new, cross) -> dict:
    """The trainer's `summary.json` blocks of one run (numbers as the trainer writes them)."""
    sets = {name: {"spearman_before": b, "spearman_after": a, "change": a - b, "pairs": n}
            for name, (b, a), n in (("activity-pairs", activity, 996),
                                    ("sts-captions", sts, 1748))}
    return {
        "dataset": "spa-verb-act", "split_seed": 0, "best_epoch": 3,
        "heldout": {"spearman_before": 0.3, "spearman_after": 0.4},
        "preservation": {"sets": sets,
                         "largest_drop": max(-s["change"] for s in sets.values()),
                         "excluded": {"spa-verb": "trained on"},
                         "pool": {"texts": 1000, "weight": 3.0, "datasets": None,
                                  "excludes_suite": True}},
        "generalization": {key: {"spearman_before": 0.2, "spearman_after": 0.2 + gain,
                                 "gain": gain}
                           for key, gain in (("new_x_new", new_x_new), ("cross", cross))},
        "aligned_on": [{"dataset": "spa-verb-act", "options": {}, "weight": 1.0,
                        "split_seed": 0}],
    }


def _runs(tmp_path, summaries: dict[int, dict]) -> list[EncoderRun]:
    return [EncoderRun("spa-verb-act", seed, tmp_path / f"seed{seed}", tmp_path, summary)
            for seed, summary in summaries.items()]


def _table_rows(markdown: str) -> dict[str, list[str]]:
    """{first cell: cells} of the markdown table whose caption starts "Preservation suite"."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("*Preservation suite"))
    rows = {}
    for line in lines[start + 4:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def _parse(cell: str) -> tuple[float, float, float]:
    """'0.742 → 0.736 (-0.0060)' -> (0.742, 0.736, -0.006)."""
    before, rest = cell.split(" \u2192 ")
    after, change = rest.split(" (")
    return float(before), float(after), float(change.rstrip(")"))


@pytest.fixture
def study_dir(tmp_path, table_factory, finished_rows):
    """A study directory: the report tests' results table, encoder_runs.json from three
    paired runs (encoder seeds 0-2, as in the table) and one transfer run."""
    write_table(tmp_path / "results.csv", finished_rows(table_factory().rows))
    summaries = {seed: trainer_summary(*numbers) for seed, numbers in _SEEDS.items()}
    records = [EncoderRecord.from_run("trained", run) for run in _runs(tmp_path, summaries)]
    transfer = trainer_summary((0.70, 0.69), (0.90, 0.91), 0.05, 0.02)
    transfer["preservation"]["sets"].pop("activity-pairs")
    transfer["preservation"]["excluded"] = {"activity-pairs": "trained on"}
    transfer["preservation"]["sets"]["spa-verb"] = {
        "spearman_before": 0.5, "spearman_after": 0.45, "change": -0.05, "pairs": 300}
    records.append(EncoderRecord.from_run(
        "transfer", EncoderRun("activity-pairs", 0, tmp_path / "t", tmp_path, transfer)))
    write_encoder_records(tmp_path / ENCODER_RUNS, records)
    return tmp_path, summaries


def test_report_table_shows_the_summaries_numbers(study_dir):
    root, summaries = study_dir
    markdown = build_report(root).markdown.read_text()
    rows = _table_rows(markdown)
    assert list(rows) == ["seed 0", "seed 1", "seed 2", "mean (3 seeds)",
                          "aligned on activity-pairs (seed 0)"]
    for seed, summary in summaries.items():
        cells = rows[f"seed {seed}"]
        for i, name in enumerate(("activity-pairs", "sts-captions")):
            entry = summary["preservation"]["sets"][name]
            before, after, change = _parse(cells[i])
            assert before == pytest.approx(entry["spearman_before"], abs=5e-4)
            assert after == pytest.approx(entry["spearman_after"], abs=5e-4)
            assert change == pytest.approx(entry["change"], abs=5e-5)
        assert cells[2] == "trained on"  # spa-verb: left out of their suites, and why
        assert float(cells[3]) == pytest.approx(summary["generalization"]["new_x_new"]["gain"])
        assert float(cells[4]) == pytest.approx(summary["generalization"]["cross"]["gain"])
    mean = rows["mean (3 seeds)"]
    changes = [s["preservation"]["sets"]["sts-captions"]["change"] for s in summaries.values()]
    assert _parse(mean[1])[2] == pytest.approx(np.mean(changes), abs=5e-5)
    assert float(mean[3]) == pytest.approx(np.mean([v[2] for v in _SEEDS.values()]), abs=5e-4)
    transfer = rows["aligned on activity-pairs (seed 0)"]
    assert transfer[0] == "trained on"
    assert _parse(transfer[2]) == pytest.approx((0.5, 0.45, -0.05))
    assert mean[2] == "n/a"
    # the largest drop over seeds and sets: activity-pairs of seed 1 (0.0089) among the
    # paired runs, the transfer run's spa-verb (0.05) over all of them
    assert "largest drop on any bundled set not trained on: 0.0500 (spa-verb, encoder " \
           "aligned on activity-pairs (seed 0); over 4 encoder runs" in markdown
    paired = read_encoder_records(root / ENCODER_RUNS)[:3]
    assert ("largest drop on any bundled set not trained on: 0.0089 (activity-pairs, seed 1; "
            "over 3 encoder runs") in preservation_text(paired)
    assert NOT_RECORDED not in markdown
    assert "Preservation suite" in build_report(root).html.read_text()


def test_records_round_trip_with_nan_as_null(tmp_path):
    summary = trainer_summary((0.74, 0.73), (0.9, 0.91), 0.1, 0.05)
    for key in ("spearman_before", "change"):
        del summary["preservation"]["sets"]["activity-pairs"][key]
    record = EncoderRecord.from_run("trained", _runs(tmp_path, {4: summary})[0])
    assert math.isnan(record.preservation["activity-pairs"]["before"])
    assert math.isnan(record.preservation["activity-pairs"]["change"])
    assert record.preservation["sts-captions"] == pytest.approx(
        {"before": 0.9, "after": 0.91, "change": 0.01, "pairs": 1748})
    path = write_encoder_records(tmp_path / ENCODER_RUNS, [record])
    saved = json.loads(path.read_text())["runs"][0]  # strict JSON: no NaN in the file
    assert saved["preservation"]["activity-pairs"]["before"] is None
    (again,) = read_encoder_records(path)
    assert again.encoder_seed == 4 and again.excluded == {"spa-verb": "trained on"}
    assert math.isnan(again.preservation["activity-pairs"]["before"])
    assert again.preservation["sts-captions"] == record.preservation["sts-captions"]
    assert again.generalization == record.generalization == {
        "new_x_new": {"before": 0.2, "after": 0.2 + 0.1, "gain": 0.1},
        "cross": {"before": 0.2, "after": 0.2 + 0.05, "gain": 0.05}}
    assert "n/a \u2192 0.730 (n/a)" in preservation_table([again]).rows[0][1]


def test_old_summaries_without_the_block_say_not_recorded(tmp_path, table_factory, finished_rows):
    old = {seed: {"dataset": "spa-verb-act", "split_seed": 0, "epochs": 1,
                  "heldout": {"spearman_before": 0.3, "spearman_after": 0.4}}
           for seed in range(3)}
    runs = _runs(tmp_path, old)
    assert runs[0].preservation() == {} and runs[0].generalization() == {}
    assert runs[0].preservation_excluded() == {}
    broken = EncoderRun("x", 9, tmp_path, tmp_path, {"preservation": [1], "generalization": 3})
    assert broken.preservation() == {} and broken.generalization() == {}
    write_table(tmp_path / "results.csv", finished_rows(table_factory().rows))
    markdown = build_report(tmp_path).markdown.read_text()  # no encoder_runs.json at all
    assert NOT_RECORDED in markdown and "*Preservation suite" not in markdown
    write_encoder_records(tmp_path / ENCODER_RUNS,
                          [EncoderRecord.from_run("trained", run) for run in runs])
    markdown = build_report(tmp_path).markdown.read_text()
    assert NOT_RECORDED in markdown and "*Preservation suite" not in markdown
    assert preservation_text([]) == NOT_RECORDED


def test_damaged_record_names_the_file(tmp_path):
    path = tmp_path / ENCODER_RUNS
    path.write_text('{"runs": [{"study": "trained"}]}')
    with pytest.raises(DataError, match=ENCODER_RUNS):
        read_encoder_records(path)
    path.write_text("not json")
    with pytest.raises(DataError, match="delete it"):
        read_encoder_records(path)
    assert read_encoder_records(tmp_path / "absent.json") == ()
