"""Study 1's paper table per variant (issue 14): which cells reproduce the paper, the
convergence measure per agent, and one table and figure set per variant, never pooled."""

import numpy as np

from deepalign.reports import build_report
from deepalign.reports.tables import paper_table
from deepalign.reports.text import paper_text
from deepalign.studies import ResultsTable, analyse_synthetic
from deepalign.studies.analysis import PAPER_COLUMNS, convergence_metric, paper_cells

_AGENTS = ("gp-ts", "gp-ucb")


def _variant_rows(make_row, condition: str, sign: float, rng) -> list[dict]:
    """11 levels x 10 seeds for each agent. Every paper metric follows alignment in the
    paper's direction times `sign` (0: pure noise); a sampling agent's pulled-arm
    convergence goes the wrong way, so a table that used it for gp-ts would show a miss."""
    rows = []
    for agent in _AGENTS:
        for level in np.linspace(0, 1, 11):
            for seed in range(10):
                a = float(level + 0.01 * seed)
                noise = rng.normal(scale=0.01 if sign else 1.0)
                effect = sign * a + noise
                rows.append(make_row(
                    study="synthetic", condition=condition, kernel="synthetic", agent=agent,
                    seed=seed, level=float(level), value="v", alignment_train=a,
                    mean_reward=effect, unique_actions=-effect, non_optimal_actions=-effect,
                    bad_actions=-effect, greedy_convergence=-effect,
                    iterations_to_convergence=-effect if agent == "gp-ucb" else a,
                    safe_general_score=effect))
    return rows


def _table(make_row) -> ResultsTable:
    rng = np.random.default_rng(0)
    rows = (_variant_rows(make_row, "gp-sample:block", 1.0, rng)
            + _variant_rows(make_row, "ratings:block", 0.0, rng))
    for i, row in enumerate(rows):
        row["cell_id"] = f"cell{i}"
    return ResultsTable(rows)


def test_convergence_is_measured_as_fits_the_agent():
    assert convergence_metric("gp-ucb") == "iterations_to_convergence"
    assert convergence_metric("greedy") == "iterations_to_convergence"
    assert convergence_metric("gp-ts") == "greedy_convergence"
    assert convergence_metric("svr-decay") == "greedy_convergence"


def test_cells_reproduce_only_in_the_papers_direction(row_factory):
    table = _table(row_factory)
    aligned = analyse_synthetic(table, condition="gp-sample:block")
    cells = paper_cells(aligned)
    assert len(cells) == len(_AGENTS) * len(PAPER_COLUMNS)
    assert all(c.reproduces for c in cells)
    assert all(c.result.n == 110 for c in cells)  # one variant's runs, not both
    words = paper_text(aligned)
    assert words.startswith("In variant gp-sample:block (rewards: drawn per run from a GP")
    assert "10 of 10 cells" in words and "misses" not in words
    table_text = paper_table(aligned).markdown()
    assert sum(c.endswith("\u2713") for row in paper_table(aligned).rows for c in row) == 10
    assert "| GP-UCB | pulled arm |" in table_text
    assert "| GP Thompson sampling | best guess |" in table_text

    null = analyse_synthetic(table, condition="ratings:block")
    assert not any(c.reproduces for c in paper_cells(null))
    words = paper_text(null)
    assert "0 of 10 cells" in words and "misses: mean reward" in words
    assert not any("\u2713" in c for row in paper_table(null).rows for c in row)


def test_a_significant_effect_the_other_way_is_named(row_factory):
    rows = []
    for row in _table(row_factory).where(condition="gp-sample:block").rows:
        row = dict(row)
        if row["agent"] == "gp-ts":
            row["mean_reward"] = -row["mean_reward"]
        rows.append(row)
    words = paper_text(analyse_synthetic(ResultsTable(rows)))
    assert "9 of 10 cells" in words
    assert "Significantly the other way (p < 0.001): GP Thompson sampling, mean reward." in words


def test_the_report_shows_every_variant(row_factory, tmp_path):
    report = build_report(tmp_path, _table(row_factory))
    markdown = report.markdown.read_text()
    assert markdown.count("*The paper's table, variant") == 2
    assert markdown.index("*The paper's table, variant gp-sample:block") < markdown.index(
        "### Variant gp-sample:block")  # the paper tables lead the section
    names = {p.name for p in report.figures}
    for variant in ("gp-sample_block", "ratings_block"):
        assert {f"synthetic_{variant}.png", f"plane_synthetic_{variant}.png"} <= names
    study1 = [line for line in report.headline if line.startswith("Study 1")]
    assert [line.split(")")[0] for line in study1] == [
        "Study 1 (synthetic kernels, gp-sample:block", "Study 1 (synthetic kernels, ratings:block"]
