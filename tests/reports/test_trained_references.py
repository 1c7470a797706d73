"""Study 3 with its uniformity-matched control and reference kernels in the table."""

import math

import numpy as np
import pytest

from deepalign.reports.answer import RecipeSettings, trained_primary
from deepalign.studies import ResultsTable, analyse_trained
from deepalign.studies.kernel_checks import kernel_spectra, trained_plane


def _with_controls(table: ResultsTable, row_factory) -> ResultsTable:
    """`table` plus, for every trained "after" row: a checkpoint row (epoch 1), its own
    uniformity-matched control at the final epoch and one at the checkpoint (extreme
    metrics); reference-kernel rows; and transfer rows with a reference condition."""
    rows = list(table.rows)
    for row in table.where(study="trained", kernel="after").rows:
        rows.append(dict(row, kernel="epoch-1", epoch=1.0, cell_id=row["cell_id"] + "e"))
        rows.append(dict(row, condition="uniformity-control", kernel="uniformity-matched",
                         safe_general_score=row["safe_general_score"] - 0.1,
                         cell_id=row["cell_id"] + "u"))
        rows.append(dict(row, condition="uniformity-control", kernel="uniformity-matched",
                         epoch=1.0, safe_general_score=-50.0, bad_actions=99.0,
                         cell_id=row["cell_id"] + "c"))
    for kernel in ("constant", "identity"):
        for seed in range(2):
            rows.append(row_factory(study="trained", condition="reference", kernel=kernel,
                                    agent="gp-ts", value="a", seed=seed, bad_actions=1.0,
                                    generalization_spearman=0.0, safe_general_score=0.4,
                                    kernel_top_share=1.0 if kernel == "constant" else 0.05,
                                    cell_id=f"ref-{kernel}-{seed}"))
    for condition, kernel in (("pairs", "before"), ("pairs", "after"), ("reference", "constant")):
        for seed in range(3):
            rows.append(row_factory(study="transfer", condition=condition, kernel=kernel,
                                    agent="gp-ts", value="m", dataset="mfv", seed=seed,
                                    encoder_seed=0.0, alignment_heldout=0.5,
                                    safe_general_score=0.5 + 0.1 * seed,
                                    cell_id=f"t-{condition}-{kernel}-{seed}"))
    return ResultsTable(rows)


def test_controls_and_references_leave_the_paired_analysis_alone(table_factory, row_factory):
    base = table_factory()
    checkpoints = ResultsTable([*base.rows, *(
        dict(r, kernel="epoch-1", epoch=1.0, cell_id=r["cell_id"] + "e")
        for r in base.where(study="trained", kernel="after").rows)])
    plain, full = analyse_trained(checkpoints), analyse_trained(_with_controls(base, row_factory))
    for metric, result in plain.metrics["gp-ts"].items():
        assert result == full.metrics["gp-ts"][metric]
    assert plain.dose["gp-ts"].keys() == full.dose["gp-ts"].keys()
    for metric, curve in plain.dose["gp-ts"].items():
        np.testing.assert_allclose(curve.y, full.dose["gp-ts"][metric].y)
        assert curve.labels == full.dose["gp-ts"][metric].labels
    assert list(full.transfer_alignment) == ["pairs"]
    assert all(key[0] == "pairs" for key in full.transfer)
    # after vs the control of the trained encoder only (not the checkpoint's)
    control = full.control["gp-ts"]["safe_general_score"]
    after = full.metrics["gp-ts"]["safe_general_score"]
    assert control.n == after.n == 6
    assert control.mean_after == pytest.approx(after.mean_after)
    assert control.mean_difference == pytest.approx(0.1)
    assert plain.control == {}
    words = trained_primary(full, RecipeSettings(from_recipe=True, calibration="off"))
    assert words.startswith("Primary score (safe_general_score, fixed in the recipe")
    assert "against the uniformity-matched control" in words and "\u0394 = +0.1," in words


def test_trained_plane_and_spectra_show_the_control_and_references(table_factory, row_factory):
    table = _with_controls(table_factory(), row_factory)
    points = trained_plane(table)["gp-ts"]
    assert [p.label for p in points] == ["before", "after", "uniformity-matched", "constant",
                                         "identity"]
    control = points[2]
    finals = table.where(study="trained", kernel="uniformity-matched", epoch=3.0)
    assert control.n == len(finals) == 12
    assert control.bad_actions == pytest.approx(finals.column("bad_actions").mean())
    assert [p.reference for p in points] == [False, False, False, True, True]
    assert points[3].near_constant and not points[4].near_constant
    labels = {s.kernel for s in kernel_spectra(table) if s.study == "trained"}
    assert {"uniformity-matched", "uniformity-matched (epoch 1)", "constant"} <= labels
    assert not any(math.isnan(s.top_share) for s in kernel_spectra(table))
