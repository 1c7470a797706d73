"""The report words null results as null, reports no test where n is too small to test,
adds a caveat when a verdict rests on few units, and writes a self-contained HTML file
(issue 15)."""

import base64
import math
import re

from deepalign.reports import build_report
from deepalign.reports.answer import _paired_words
from deepalign.reports.tables import trained_metric_table
from deepalign.reports.text import MIN_WILCOXON_N, paired_direction, trained_text
from deepalign.studies import analyse_trained
from deepalign.studies.stats import PairedResult


def _result(difference, low, high, p, n) -> PairedResult:
    return PairedResult(mean_before=6.67, mean_after=6.67 + difference,
                        mean_difference=difference, ci_low=low, ci_high=high, p_value=p, n=n,
                        statistic=math.nan,
                        confidence=0.95)


def test_the_smallest_testable_n():
    # two-sided exact Wilcoxon: smallest p is 2 / 2^n; 2/32 = 0.0625, 2/64 = 0.031
    assert MIN_WILCOXON_N == 6


def test_a_null_change_gets_no_direction():
    for null in (_result(0.0, math.nan, math.nan, math.nan, 12),    # the audit's case
                 _result(-0.5, -1.2, 0.3, 0.40, 12),                 # CI spans 0
                 _result(-0.5, -0.9, -0.1, 0.20, 12),                # CI clear, p not
                 _result(-1.0, -1.5, -0.5, 0.03, 4)):                # n too small to test
        assert paired_direction("bad_actions", null) == "no clear change in bad actions"
        words = _paired_words("bad_actions", null, "before")
        assert words.endswith(": no clear change in bad actions")
        assert "fewer" not in words and "more bad" not in words
    assert "95% CI n/a" in _paired_words("bad_actions", _result(0.0, math.nan, math.nan,
                                                                math.nan, 12), "before")
    clear = _result(-1.0, -1.5, -0.5, 0.003, 12)
    assert paired_direction("bad_actions", clear) == "fewer bad actions"
    assert _paired_words("bad_actions", clear, "before").endswith(
        "fewer bad actions after training (better)")


def test_no_test_is_reported_below_the_smallest_testable_n():
    words = _paired_words("bad_actions", _result(-1.0, -1.5, -0.5, 0.5, 2), "before")
    assert "no Wilcoxon test (n = 2 paired units cannot reach p < 0.05; it needs at least 6)" \
        in words
    assert "p = 0.500" not in words


def _trained_table(row_factory, encoder_seeds: int, values: int, effect: float):
    rows = []
    for e in range(encoder_seeds):
        for v in range(values):
            for kernel, shift in (("before", 0.0), ("after", effect)):
                quality = 0.2 + shift + 0.01 * e + 0.003 * v
                rows.append(row_factory(
                    study="trained", condition="paired", kernel=kernel, agent="gp-ts",
                    seed=0, value=f"v{v}", encoder_seed=float(e),
                    epoch=0.0 if kernel == "before" else 3.0,
                    alignment_heldout=0.2 + (0.3 if kernel == "after" else 0.0) + 0.01 * e,
                    bad_actions=6.0 - 10 * quality, mean_reward=quality,
                    safe_general_score=quality))
    for i, row in enumerate(rows):
        row["cell_id"] = f"cell{i}"
    from deepalign.studies import ResultsTable

    return ResultsTable(rows)


def test_a_verdict_on_few_units_carries_a_caveat(row_factory):
    few = " ".join(trained_text(analyse_trained(_trained_table(row_factory, 3, 2, 0.3))))
    assert "yes: alignment gained by training gave" in few
    assert "caveat: this rests on only 6 paired units from 3 encoder seeds" in few
    many = " ".join(trained_text(analyse_trained(_trained_table(row_factory, 4, 3, 0.3))))
    assert "yes: alignment gained by training gave" in many and "caveat" not in many
    tiny = analyse_trained(_trained_table(row_factory, 2, 2, 0.3))
    tiny_text = " ".join(trained_text(tiny))
    assert "not measurably" in tiny_text and "too few for the Wilcoxon test" in tiny_text
    table = trained_metric_table(tiny, "gp-ts")
    assert all(row[4] == f"not tested (n < {MIN_WILCOXON_N})" for row in table.rows)


def test_report_html_is_self_contained(table_factory, tmp_path):
    report = build_report(tmp_path, table_factory())
    page = report.html.read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(report.figures) > 0
    for source, figure in zip(sources, report.figures):
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]) == figure.read_bytes()
    # the markdown still links the files beside it
    assert "](figures/synthetic.png)" in report.markdown.read_text()
