"""What a training run reports beyond its own data: the preservation suite (bundled
similarity sets not trained on, before and after), new x new and cross gains, the
preservation pool term, several training sets at once, and the val_new monitor."""

import json
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from deepalign.alignment.preservation import preservation_suite
from deepalign.data import load_dataset
from deepalign.encoders import SentenceEncoder, export_info, load_encoder
from deepalign.train import main

REPO = Path(__file__).resolve().parents[2]
QUICK = ["--trainer.max_epochs", "4", "--data.max_items", "120",
         "--trainer.enable_progress_bar", "false", "--tensorboard.projector", "false",
         "--artifacts.projector", "false", "--tensorboard.figure_every_n_epochs", "0",
         "--model.measure_every_n_epochs", "2"]


def _summary(root: Path, dataset: str = "spa-verb", version: int = 0) -> tuple[dict, Path]:
    run_dir = root / dataset / f"version_{version}"
    return json.loads((run_dir / "summary.json").read_text()), run_dir


@pytest.fixture(scope="module")
def pooled_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    code = main([*QUICK, "--trainer.default_root_dir", str(root),
                 "--model.preservation_weight", "30", "--data.pool_size", "300",
                 "--model.learning_rate", "0.01"])
    assert code == 0
    return _summary(root)


def test_suite_is_the_bundled_sets_not_trained_on_and_never_a_training_set(pooled_run):
    summary, _ = pooled_run
    block = summary["preservation"]
    assert sorted(block["sets"]) == ["activity-pairs", "sts-captions"]
    assert "spa-verb" not in block["sets"] and block["excluded"]["spa-verb"] == "trained on"
    assert "spa-verb-act" not in block["sets"]  # same judgments as spa-verb
    for row in block["sets"].values():
        assert row["change"] == pytest.approx(row["spearman_after"] - row["spearman_before"])
    assert block["largest_drop"] == pytest.approx(
        max(-row["change"] for row in block["sets"].values()))
    assert block["pool"]["texts"] == 300 and block["pool"]["weight"] == 30.0


def test_suite_numbers_are_those_of_the_pretrained_and_the_exported_encoder(pooled_run):
    summary, run_dir = pooled_run
    suite = preservation_suite([load_dataset("spa-verb")])
    before = suite.measure(SentenceEncoder())
    after = suite.measure(load_encoder(run_dir / "encoder"))
    for name, row in summary["preservation"]["sets"].items():
        assert row["spearman_before"] == pytest.approx(before[name], abs=1e-6)
        assert row["spearman_after"] == pytest.approx(after[name], abs=1e-6)
    assert any(abs(after[n] - before[n]) > 1e-6 for n in before)  # training moved them


def test_generalization_block_is_the_heldout_and_cross_rows(pooled_run):
    summary, _ = pooled_run
    for key, split in (("new_x_new", "heldout"), ("cross", "cross")):
        row = summary["generalization"][key]
        assert row["spearman_before"] == summary[split]["spearman_before"]
        assert row["spearman_after"] == summary[split]["spearman_after"]
        assert row["gain"] == pytest.approx(row["spearman_after"] - row["spearman_before"])
    assert summary["val_new"]["spearman_before"] is not None


def test_curves_of_the_suite_val_new_and_the_pool_term(pooled_run):
    _, run_dir = pooled_run
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"loss/preserve", "val_new/spearman", "preserve/activity-pairs/spearman",
            "preserve/sts-captions/spearman"} <= tags
    steps = [e.step for e in events.Scalars("preserve/activity-pairs/spearman")]
    assert steps[0] == 0 and len(steps) >= 3  # pretrained at step 0, then every 2 epochs
    assert len(events.Scalars("val_new/spearman")) >= 5  # step 0 + every epoch


def test_pool_term_keeps_the_suite_closer_than_no_term(tmp_path, pooled_run):
    """Same recipe without the pool term: the suite moves further from the pretrained."""
    summary, _ = pooled_run
    assert main([*QUICK, "--trainer.default_root_dir", str(tmp_path),
                 "--model.learning_rate", "0.01", "--model.preservation_weight", "0",
                 "--data.pool_size", "300"]) == 0
    free, _ = _summary(tmp_path)
    assert free["preservation"]["pool"]["weight"] == 0.0
    moved = sum(abs(r["change"]) for r in free["preservation"]["sets"].values())
    kept = sum(abs(r["change"]) for r in summary["preservation"]["sets"].values())
    assert kept < 0.7 * moved


def test_multi_dataset_config_trains_on_both_and_records_it(tmp_path):
    config = REPO / "configs" / "train" / "multi.yaml"
    assert main(["--config", str(config), *QUICK, "--trainer.default_root_dir",
                 str(tmp_path)]) == 0
    summary, run_dir = _summary(tmp_path)
    trained = [r["dataset"] for r in summary["aligned_on"]]
    assert trained == ["spa-verb", "activity-pairs"]
    assert summary["aligned_on"][1]["weight"] == 0.5
    assert export_info(run_dir / "encoder")["aligned_on"] == summary["aligned_on"]
    # the second training set is measured, and is never in the suite
    assert summary["datasets"]["activity-pairs"]["fit"]["spearman_after"] is not None
    assert sorted(summary["preservation"]["sets"]) == ["sts-captions"]
    assert summary["preservation"]["excluded"]["activity-pairs"] == "trained on"


def test_val_new_monitor_selects_the_checkpoint(tmp_path):
    assert main([*QUICK, "--trainer.default_root_dir", str(tmp_path),
                 "--model.learning_rate", "0.01",
                 "--early_stopping.monitor", "val_new/spearman",
                 "--checkpoint.monitor", "val_new/spearman"]) == 0
    summary, run_dir = _summary(tmp_path)
    assert summary["monitor"] == "val_new/spearman"
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    by_epoch = [e.value for e in events.Scalars("val_new/spearman")][1:]  # after each epoch
    best = summary["best_epoch"]
    if best == 0:
        assert max(by_epoch) <= summary["val_new"]["spearman_before"]
    else:
        assert by_epoch[best - 1] == pytest.approx(max(by_epoch), abs=1e-6)
        assert summary["val_new"]["spearman_after"] == pytest.approx(max(by_epoch), abs=1e-5)
