"""The report is built from a results table alone, and its text follows the numbers."""

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

from deepalign.report import main as report_main
from deepalign.reports import build_report
from deepalign.reports.answer import headline
from deepalign.reports.text import synthetic_text, trained_text
from deepalign.studies import (
    ResultsTable,
    analyse_synthetic,
    analyse_trained,
    load_study_config,
    read_table,
    run_study,
)

_path = Path(__file__).resolve().parents[1] / "studies" / "tiny_study.py"
_spec = importlib.util.spec_from_file_location("tiny_study", _path)
tiny_study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_study)


@pytest.fixture(scope="module")
def table_path(tmp_path_factory):
    """results.csv of a tiny study actually run (all three studies)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("study")
    runs = [tiny_study.make_encoder_run(root / f"run{seed}", seed,
                                        extra_summary=_PRESERVATION[seed]) for seed in range(2)]
    recipe = tiny_study.write_recipe(root, runs)
    result = run_study(load_study_config(recipe), root / "out", progress=False)
    torch.set_num_threads(threads)
    return result.table


#: The trainer's preservation and generalization blocks of the tiny runs (encoder seeds 0, 1).
_PRESERVATION = {
    seed: {"preservation": {"sets": {"activity-pairs": {
               "spearman_before": 0.742, "spearman_after": after, "change": after - 0.742,
               "pairs": 996}}, "excluded": {"spa-verb": "trained on"}},
           "generalization": {"new_x_new": {"spearman_before": 0.3, "spearman_after": 0.4,
                                            "gain": gain},
                              "cross": {"spearman_before": 0.2, "spearman_after": 0.2,
                                        "gain": 0.0}}}
    for seed, after, gain in ((0, 0.7381, 0.1), (1, 0.7433, 0.07))
}


def test_report_from_the_table_alone(table_path, tmp_path):
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copyfile(table_path, alone / "results.csv")  # nothing else: no config, no encoders
    report = build_report(alone)
    markdown = report.markdown.read_text()
    html = report.html.read_text()
    for heading in ("Study 1", "Study 2", "Study 3"):
        assert heading in markdown and heading in html
    assert "Not in this results table" not in markdown
    assert len(report.figures) >= 4
    for figure in report.figures:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert figure.relative_to(alone).as_posix() in markdown
    for line in report.headline:
        assert line in markdown
    assert any(line.startswith("Study 3") for line in report.headline)

    # the numbers in the text are the table's: gp-ts, alignment vs mean reward (over the
    # runs with an alignment: the reference kernels have none)
    table = read_table(alone / "results.csv").where(study="synthetic", agent="gp-ts")
    measured = np.isfinite(table.column("alignment_train"))
    rho = scipy_stats.spearmanr(table.column("alignment_train")[measured],
                                table.column("mean_reward")[measured]).statistic
    assert f"\u03c1 = {rho:+.2f}" in markdown


def test_report_of_the_study_directory_shows_the_preservation_suite(table_path, tmp_path):
    # run_study saved what the encoder runs' summaries report beside the table; only the
    # table alone (no encoder_runs.json) has no preservation suite
    study = tmp_path / "study"
    study.mkdir()
    for name in ("results.csv", "study.json", "encoder_runs.json"):
        shutil.copyfile(table_path.parent / name, study / name)
    markdown = build_report(study).markdown.read_text()
    assert "| encoder | activity-pairs (996 pairs) | new\u00d7new held-out gain |" in markdown
    assert "| seed 0 | 0.742 \u2192 0.738 (-0.0039) | +0.100 | +0.000 |" in markdown
    assert "| seed 1 | 0.742 \u2192 0.743 (+0.0013) | +0.070 | +0.000 |" in markdown
    assert "| mean (2 seeds) | 0.742 \u2192 0.741 (-0.0013) | +0.085 | +0.000 |" in markdown
    assert "left out of the suite: spa-verb (trained on)*" in markdown
    assert ("largest drop on any bundled set not trained on: 0.0039 (activity-pairs, seed 0; "
            "over 2 encoder runs") in markdown
    shutil.copyfile(table_path, tmp_path / "results.csv")
    assert "not recorded by these encoder runs" in build_report(tmp_path).markdown.read_text()


def test_report_cli(table_path, tmp_path, capsys):
    shutil.copyfile(table_path, tmp_path / "results.csv")
    assert report_main([str(tmp_path)]) == 0
    assert "report.md" in capsys.readouterr().out
    (tmp_path / "results.csv").write_text("a,b\n1,2\n")
    assert report_main([str(tmp_path)]) == 2
    assert "not a deepalign results table" in capsys.readouterr().err
    assert report_main([str(tmp_path / "nowhere")]) == 2


def _with_column(table: ResultsTable, where: dict, column: str, values) -> ResultsTable:
    rows, k = [], 0
    for row in table.rows:
        row = dict(row)
        if all(row[key] == value for key, value in where.items()):
            row[column] = float(values(row))
            k += 1
        rows.append(row)
    assert k > 0
    return ResultsTable(rows)


def test_text_follows_the_sign_of_a_relation(table_path):
    table = read_table(table_path)
    where = {"study": "synthetic", "agent": "gp-ts"}
    up = _with_column(table, where, "mean_reward", lambda r: r["alignment_train"])
    down = _with_column(table, where, "mean_reward", lambda r: -r["alignment_train"])
    up_text = synthetic_text(analyse_synthetic(up))[0]
    down_text = synthetic_text(analyse_synthetic(down))[0]
    assert "higher mean reward (\u03c1 = +1.00" in up_text
    assert "lower mean reward (\u03c1 = -1.00" in down_text
    assert up_text != down_text
    count = [headline(analyse_synthetic(t), None, None)[0] for t in (up, down)]
    assert count[0] != count[1]


def test_study3_text_follows_the_paired_change(table_path):
    table = read_table(table_path)
    before = {(r["encoder_seed"], r["value"], r["seed"]): r["bad_actions"]
              for r in table.where(study="trained", kernel="before").rows}
    where = {"study": "trained", "kernel": "after"}
    fewer = _with_column(table, where, "bad_actions",
                         lambda r: before[(r["encoder_seed"], r["value"], r["seed"])] - 1)
    more = _with_column(table, where, "bad_actions",
                        lambda r: before[(r["encoder_seed"], r["value"], r["seed"])] + 1)
    fewer_text = " ".join(trained_text(analyse_trained(fewer)))
    more_text = " ".join(trained_text(analyse_trained(more)))
    # 4 paired units: too few for the Wilcoxon test to reach p < 0.05, so the numbers are
    # shown but no direction is claimed (direction with enough units: test_null_wording.py)
    for text, delta in ((fewer_text, "-1"), (more_text, "+1")):
        assert "no clear change in bad actions" in text and f"\u0394 = {delta}" in text
        assert "no Wilcoxon test (n = 4 paired units cannot reach p < 0.05" in text
        assert "fewer bad actions" not in text and "more bad actions" not in text
    gain = analyse_trained(table).alignment["heldout"]
    after = np.mean([r["alignment_heldout"] for r in table.where(
        study="trained", kernel="after").rows])
    assert gain.mean_after == pytest.approx(after)
    assert f"to {gain.mean_after:.3f}" in " ".join(trained_text(analyse_trained(table)))
