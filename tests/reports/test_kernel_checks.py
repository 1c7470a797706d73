"""The bad-actions x generalization plane, near-constant flags and reference kernels."""

import math

import numpy as np
import pytest

from deepalign.reports import build_report
from deepalign.reports.figures import plane_figure
from deepalign.reports.tables import NEAR_CONSTANT_NOTE, real_means_table
from deepalign.studies import ResultsTable, analyse_real, analyse_synthetic
from deepalign.studies.curves import centre_within
from deepalign.studies.kernel_checks import (
    kernel_spectra,
    real_plane,
    synthetic_plane,
    trained_plane,
)
from deepalign.studies.stats import spearman

_PNG = b"\x89PNG\r\n\x1a\n"


def _real(row_factory, kernel, agent, bad, generalization, **extra):
    return [row_factory(study="real", condition="human", kernel=kernel, agent=agent, value="a",
                        seed=i, bad_actions=b, generalization_spearman=g, **extra)
            for i, (b, g) in enumerate(zip(bad, generalization))]


def test_plane_points_are_means_and_standard_errors(row_factory):
    rows = (_real(row_factory, "human", "gp-ts", [2.0, 4.0, 6.0], [0.1, 0.2, 0.6],
                  alignment_train=0.9)
            + _real(row_factory, "constant", "gp-ts", [1.0, 1.0], [0.0, 0.0],
                    kernel_top_share=1.0)
            + _real(row_factory, "none", "independent-ts", [8.0, 10.0], [0.0, 0.0]))
    panels = real_plane(ResultsTable(rows))
    assert list(panels) == ["human, gp-ts"]
    human, constant, free = panels["human, gp-ts"]
    assert (human.label, human.n, human.reference) == ("human", 3, False)
    assert human.bad_actions == pytest.approx(4.0)
    assert human.bad_actions_sem == pytest.approx(2.0 / math.sqrt(3))
    assert human.generalization == pytest.approx(0.3)
    assert human.generalization_sem == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1) / math.sqrt(3))
    assert constant.reference and constant.near_constant and not human.near_constant
    assert (constant.bad_actions, constant.generalization, constant.bad_actions_sem) == (1, 0, 0)
    assert free.label == "independent-ts (no kernel)" and free.reference
    assert free.bad_actions == pytest.approx(9.0)


def test_synthetic_and_trained_planes(table_factory, row_factory):
    table = table_factory()
    (panel,) = synthetic_plane(table).values()
    levels = [p for p in panel if not p.reference]
    assert [p.n for p in levels] == [4, 4, 4]
    expected = np.mean([0.1 + 0.02 * s for s in range(4)])
    assert levels[0].label == f"{expected:.2f}"
    assert panel[-1].label == "independent-ts (no kernel)"
    checkpoint = row_factory(study="trained", kernel="epoch-1", agent="gp-ts", epoch=1.0)
    trained = trained_plane(ResultsTable([*table.rows, checkpoint]))
    assert [p.label for p in trained["gp-ts"]] == ["before", "after"]
    before = table.where(study="trained", kernel="before")
    assert trained["gp-ts"][0].bad_actions == pytest.approx(before.column("bad_actions").mean())


def test_plane_figures_are_in_the_report(table_factory, tmp_path):
    report = build_report(tmp_path, table_factory())
    names = {path.name for path in report.figures}
    assert {"plane_synthetic.png", "plane_real.png", "plane_trained.png"} <= names
    markdown = report.markdown.read_text()
    for name in ("plane_synthetic.png", "plane_real.png", "plane_trained.png"):
        assert (tmp_path / "figures" / name).read_bytes()[:8] == _PNG
        assert f"figures/{name}" in markdown
    alone = plane_figure(real_plane(table_factory()), tmp_path / "alone.png", "title")
    assert alone.read_bytes()[:8] == _PNG


def test_near_constant_kernels_are_flagged(row_factory, tmp_path):
    rows = (_real(row_factory, "flat", "gp-ts", [1.0, 2.0, 1.0], [0.0, 0.1, 0.0],
                  alignment_train=0.2, kernel_top_share=0.95, kernel_effective_rank=1.2)
            + _real(row_factory, "spread", "gp-ts", [3.0, 4.0, 5.0], [0.3, 0.4, 0.5],
                    alignment_train=0.8, kernel_top_share=0.5, kernel_effective_rank=3.0))
    for i, row in enumerate(rows):
        row["cell_id"] = f"c{i}"
    flat, spread = kernel_spectra(ResultsTable(rows))
    assert (flat.kernel, flat.near_constant) == ("flat", True)
    assert flat.top_share == pytest.approx(0.95)
    assert (spread.kernel, spread.effective_rank, spread.near_constant) == ("spread", 3.0, False)
    report = build_report(tmp_path, ResultsTable(rows))
    for text, cell in ((report.markdown.read_text(), "| real | {} | "),
                       (report.html.read_text(), "<td>real</td><td>{}</td>")):
        lines = text.replace("<tr>", "\n").splitlines()
        (flat_row,) = [line for line in lines if cell.format("flat") in line]
        (spread_row,) = [line for line in lines if cell.format("spread") in line]
        assert "0.95" in flat_row and "0.5" in spread_row
        assert NEAR_CONSTANT_NOTE in flat_row and NEAR_CONSTANT_NOTE not in spread_row
    assert "real flat (0.95)" in report.markdown.read_text()


def _same(a, b) -> bool:
    return a.n == b.n and (a.rho == pytest.approx(b.rho) or (math.isnan(a.rho)
                                                             and math.isnan(b.rho)))


def test_reference_kernels_do_not_change_alignment_correlations(table_factory, row_factory):
    bare, full = table_factory(with_references=False), table_factory(with_references=True)
    # extreme, value-dependent metrics for the references: centring them in would shift
    rows = []
    for row in full.rows:
        if row["kernel"] in ("constant", "identity"):
            row = dict(row, safe_general_score=100.0 if row["value"] == "a" else -100.0)
        rows.append(row)
    rows.append(row_factory(study="synthetic", condition="synthetic", kernel="constant",
                            agent="gp-ts", value="v",
                            cell_id="ref", safe_general_score=5.0, bad_actions=0.0))
    full = ResultsTable(rows)
    without, with_references = analyse_real(bare), analyse_real(full)
    for key, correlations in without.correlations.items():
        for metric, result in correlations.items():
            assert _same(result, with_references.correlations[key][metric]), metric
    assert with_references.correlations[("human", "gp-ts")]["safe_general_score"].n == 6
    synthetic_without, synthetic_with = analyse_synthetic(bare), analyse_synthetic(full)
    for metric, result in synthetic_without.correlations["gp-ts"].items():
        assert _same(result, synthetic_with.correlations["gp-ts"][metric]), metric
    assert synthetic_with.reference_kernels[("gp-ts", "constant")]["safe_general_score"] == (
        5.0, pytest.approx(math.nan, nan_ok=True))
    # the test can tell: centring the references in would have changed the correlation
    curve = with_references.points[("human", "gp-ts")]["safe_general_score"]
    values = [label.split("|")[1] for label in curve.labels]
    naive = spearman(curve.x, centre_within(curve.y, values))
    assert naive.rho != pytest.approx(
        with_references.correlations[("human", "gp-ts")]["safe_general_score"].rho)
    # ... and the references still show in the tables and the plane
    table = real_means_table(with_references, "human", "gp-ts", ["safe_general_score"])
    kernels = [row[0] for row in table.rows]
    assert any(k.startswith("constant (reference") for k in kernels)
    assert any(k.startswith("identity (reference") for k in kernels)
    plane = real_plane(full)["human, gp-ts"]
    assert {p.label for p in plane if p.reference} == {"constant", "identity"}
