"""The report's answer leads with the recipe's primary score, read from study.json."""

import json

import numpy as np
import pytest

from deepalign.errors import DataError
from deepalign.reports import build_report
from deepalign.reports.answer import RecipeSettings, headline, recipe_settings
from deepalign.studies import ResultsTable, analyse_real, analyse_synthetic, analyse_trained

_LEADS = ("Study 1 (synthetic kernels): ", "Study 2 (real judgments): ",
          "Study 3 (trained encoders): ")


def _write_record(directory, **settings) -> None:
    (directory / "study.json").write_text(json.dumps({"settings": settings}))


def _sections(markdown: str) -> dict[str, list[str]]:
    """Paragraphs of each '## ' section of a report."""
    out: dict[str, list[str]] = {}
    for block in markdown.split("\n\n"):
        if block.startswith("## "):
            current = out.setdefault(block[3:], [])
        elif out:
            current.append(block)
    return out


def test_each_study_leads_with_the_recipes_primary_score(table_factory, tmp_path):
    table = table_factory()
    _write_record(tmp_path, primary_metric="safe_general_score", calibration=False)
    report = build_report(tmp_path, table)
    lead = ("Primary score (safe_general_score, fixed in the recipe before the run; "
            "calibration on)")  # the table's own calibration column wins over the record
    assert len(report.headline) == 3
    for line, study in zip(report.headline, _LEADS):
        assert line.startswith(study + lead)
        assert line.index("Primary score") < line.index("Secondary")
    sections = _sections(report.markdown.read_text())
    for name in ("Study 1", "Study 2", "Study 3"):
        (paragraphs,) = [p for heading, p in sections.items() if heading.startswith(name)]
        assert paragraphs[0].startswith("Setup (from the table)")
        if name == "Study 1":  # leads with the paper's table (issue 14), then the primary
            assert paragraphs[1].startswith("In variant ratings:all")
            assert paragraphs[2].startswith("*The paper's table")
            paragraphs = [p for p in paragraphs if p.startswith(lead)]
            assert paragraphs, "study 1 states its primary score"
            continue
        assert paragraphs[1].startswith(lead)
    assert sections["Answer"][0] == report.headline[0]
    assert lead in report.html.read_text()


def test_another_primary_metric_and_calibration_off(table_factory, tmp_path):
    table = ResultsTable([dict(r, calibration="off") for r in table_factory().rows])
    _write_record(tmp_path, primary_metric="mean_reward", calibration=False)
    lines = build_report(tmp_path, table).headline
    for line, study in zip(lines, _LEADS):
        assert line.startswith(study + "Primary score (mean_reward, fixed in the recipe before "
                               "the run; calibration off)")


def test_an_old_record_falls_back_to_the_default(table_factory, tmp_path):
    table = table_factory()
    _write_record(tmp_path, horizon=10)  # written before primary_metric existed
    settings = recipe_settings(tmp_path, table)
    assert settings == RecipeSettings("safe_general_score", False, "on")
    assert "safe_general_score, the default" in build_report(tmp_path, table).headline[0]
    no_record = recipe_settings(tmp_path / "nowhere", ResultsTable(
        [dict(r, calibration="") for r in table.rows]))
    assert no_record.calibration == "not recorded"
    _write_record(tmp_path, primary_metric="happiness")
    with pytest.raises(DataError, match="happiness"):
        recipe_settings(tmp_path, table)
    (tmp_path / "study.json").write_text("{not json")
    with pytest.raises(DataError, match="study.json"):
        recipe_settings(tmp_path, table)


def test_primary_numbers_are_the_tables(table_factory):
    table = table_factory()
    settings = RecipeSettings("safe_general_score", True, "on")
    lines = headline(analyse_synthetic(table), analyse_real(table), analyse_trained(table),
                     settings, frozenset({"constant"}))
    # study 2: mean per kernel over values (mean of the value means), references marked
    real = table.where(study="real", condition="human", agent="gp-ts")
    for kernel in ("human", "constant"):
        means = [np.mean(real.where(kernel=kernel, value=v).column("safe_general_score"))
                 for v in ("a", "b")]
        assert f"{kernel} {np.mean(means):.3g}" in lines[1]
    assert "constant" in lines[1] and "(reference, near-constant)" in lines[1]
    assert "identity" in lines[1] and "n = 6:" in lines[1]  # 3 kernels x 2 values
    # study 3: the paired after-minus-before change over (encoder seed, value) units
    trained = table.where(study="trained")
    unit = {}
    for kernel in ("before", "after"):
        unit[kernel] = [np.mean(trained.where(kernel=kernel, encoder_seed=float(e), value=v)
                                .column("safe_general_score"))
                        for e in range(3) for v in ("a", "b")]
    difference = float(np.mean(np.subtract(unit["after"], unit["before"])))
    assert f"\u0394 = {difference:+.3g}" in lines[2] and "n = 6 paired units" in lines[2]
    assert "95% CI [" in lines[2] and "Wilcoxon p" in lines[2]
    assert "higher safe-and-general score after training (better)" in lines[2]
    # study 1: the Spearman of measured alignment with the score
    assert "n = 12:" in lines[0]
