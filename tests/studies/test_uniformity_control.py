"""The uniformity-matched control of study 3 on a real (tiny) trained encoder.

Under calibration the control calibrates to exactly the before kernel, so its runs equal
"before"'s; with calibration off its mean off-diagonal similarity equals the trained kernel's.
The encoder run is the cached tiny one of `tiny_study.py` (no Lightning, a few Adam steps).
"""

import dataclasses
import importlib.util
import math
from pathlib import Path

import pytest
import torch

from deepalign.agents.calibration import median_heuristic_kernel
from deepalign.studies.config import StudyConfig, TrainedStudyConfig, TransferConfig
from deepalign.studies.encoders import EncoderRun
from deepalign.studies.references import mean_off_diagonal, uniformity_weight
from deepalign.studies.results import METRICS
from deepalign.studies.runner import simulate_batch
from deepalign.studies.sources import StudySources
from deepalign.studies.trained import TrainedPlan, TransferPlan

_spec = importlib.util.spec_from_file_location("tiny_study", Path(__file__).with_name(
    "tiny_study.py"))
tiny_study = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_study)

AGENTS = ("gp-ts", "greedy", "kernel-regression")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    directory = tiny_study.make_encoder_run(tmp_path_factory.mktemp("run") / "run0", seed=0)
    yield EncoderRun.read(directory, "spa-verb", 0)
    torch.set_num_threads(threads)


def _config(calibration: bool) -> StudyConfig:
    section = TrainedStudyConfig(values=("act_evaluation",), agents=AGENTS, encoder_seeds=1,
                                 checkpoints=False, references=False)
    return StudyConfig(seeds=3, horizon=12, calibration=calibration, trained=section)


def _rows(plan: TrainedPlan, kernel: str, agent: str):
    cells = [c for c in plan.cells() if c.kernel == kernel and c.agent == agent]
    assert len(cells) == 3
    return simulate_batch(plan, cells)


@pytest.mark.parametrize("agent", ["gp-ts", "greedy"])
def test_calibrated_control_equals_before(run, agent):
    plan = TrainedPlan(_config(calibration=True), [run])
    before, control = _rows(plan, "before", agent), _rows(plan, "uniformity-matched", agent)
    for b, c in zip(before, control):
        assert c["condition"] == "uniformity-control" and c["seed"] == b["seed"]
        assert c["encoder_seed"] == b["encoder_seed"] == 0.0
        for metric in METRICS:
            assert c[metric] == pytest.approx(b[metric], abs=1e-9, nan_ok=True), metric
        for split in ("train", "heldout", "all"):  # a monotone transform: same Spearman
            assert c[f"alignment_{split}"] == pytest.approx(b[f"alignment_{split}"], abs=1e-9)
    assert "uniformity blend a=" in control[0]["alignment_source"]


def test_kernel_agents_see_the_same_calibrated_kernel(run):
    # Kernel regression / SVR get the kernel on its median distance scale: the same matrix
    # for the control as for before, up to rounding. (Their metrics are not compared: after
    # one observation every arm's prediction is mathematically equal, and which arms tie
    # *exactly* in `argmax_random_tie` depends on the last bit of the kernel entries.)
    plan = TrainedPlan(_config(calibration=True), [run])
    cells = plan.cells()
    before = next(c for c in cells if c.kernel == "before")
    control = next(c for c in cells if c.kernel == "uniformity-matched")
    arms = plan.bandit(before).arm_items
    k_before, k_control = (median_heuristic_kernel(plan.kernels([c]).matrix, arms)
                           for c in (before, control))
    torch.testing.assert_close(k_control, k_before, atol=1e-12, rtol=0)


def test_uncalibrated_control_matches_the_trained_uniformity(run):
    plan = TrainedPlan(_config(calibration=False), [run])
    cells = plan.cells()
    after = next(c for c in cells if c.kernel == "after")
    control = next(c for c in cells if c.kernel == "uniformity-matched")
    assert control.epoch == after.epoch and control.encoder_seed == after.encoder_seed
    before = next(c for c in cells if c.kernel == "before")
    k_before, k_after = (plan.kernels([c]).matrix for c in (before, after))
    batch = plan.kernels([control])
    assert mean_off_diagonal(batch.matrix) == pytest.approx(mean_off_diagonal(k_after),
                                                            abs=1e-12)
    a = uniformity_weight(k_after, k_before)
    assert 0.0 < a < 1.0  # training made this encoder's kernel more uniform
    assert f"a={a:.6g}" in batch.source
    torch.testing.assert_close(batch.matrix, a + (1 - a) * k_before, atol=1e-12, rtol=0)
    assert torch.linalg.eigvalsh(batch.matrix).min() > -1e-9
    rows = simulate_batch(plan, [c for c in cells if c.kernel == "uniformity-matched"
                                 and c.agent == "gp-ts"])
    assert all(row["calibration"] == "off" for row in rows)
    assert all(math.isfinite(row["safe_general_score"]) for row in rows)


def test_uniformity_control_false_drops_the_control(run):
    config = _config(calibration=True)
    off = dataclasses.replace(config, trained=dataclasses.replace(
        config.trained, uniformity_control=False))
    assert not any(c.kernel == "uniformity-matched" for c in TrainedPlan(off, [run]).cells())


def test_transfer_control(run):
    """The transfer variant's control: the before kernel over the test dataset's items at the
    after kernel's uniformity; calibrated, its runs equal before's."""
    transfer_run = dataclasses.replace(run, train_dataset="activity-pairs")
    transfer = TransferConfig(train_datasets=("activity-pairs",), test_datasets=("mfv",),
                              values={"mfv": ("acceptability",)})
    section = TrainedStudyConfig(agents=("gp-ts",), encoder_seeds=1, transfer=transfer)
    config = StudyConfig(seeds=2, horizon=8, trained=section)
    plan = TransferPlan(config, StudySources(0, 0.3, None), [transfer_run])
    cells = plan.cells()
    by_kernel = {k: [c for c in cells if c.kernel == k] for k in ("before", "after",
                                                                  "uniformity-matched")}
    k_before, k_after, k_control = (plan.kernels(by_kernel[k]).matrix for k in by_kernel)
    assert mean_off_diagonal(k_control) == pytest.approx(mean_off_diagonal(k_after), abs=1e-12)
    before, control = (simulate_batch(plan, by_kernel[k]) for k in ("before",
                                                                   "uniformity-matched"))
    for b, c in zip(before, control):
        assert c["condition"] == "activity-pairs" and "uniformity blend a=" in c[
            "alignment_source"]
        assert c["alignment_heldout"] == b["alignment_heldout"]  # before's summary alignment
        for metric in METRICS:
            assert c[metric] == pytest.approx(b[metric], abs=1e-9, nan_ok=True), metric
    reference = simulate_batch(plan, [c for c in cells if c.kernel == "constant"])
    assert all(math.isnan(row["alignment_heldout"]) for row in reference)
