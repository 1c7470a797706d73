"""Study 3's encoder runs: trained by deepalign.train, read back, paired with themselves."""

import warnings

import pytest
import torch

from deepalign.data import load_dataset, split_items
from deepalign.errors import CheckpointError, ConfigError
from deepalign.studies.encoder_training import train_encoder
from deepalign.studies.encoders import EncoderRun, dose_checkpoints, encoder_directory
from deepalign.studies.measure import kernel_alignment
from deepalign.studies.sources import StudySources


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp("train") / "seed1"
    finished = train_encoder(
        "spa-verb-act", 1, directory, split_seed=0, heldout_fraction=0.3,
        extra_args=['--data.dataset_options={"values": []}', "--trainer.max_epochs=3"],
        keep_checkpoints=True, log=lambda line: None,
    )
    torch.set_num_threads(threads)
    return finished


def _alignment(encoder, split):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dataset = load_dataset("spa-verb-act", values=())
    matrix = StudySources.encoder_matrix(encoder, tuple(dataset.items.texts))
    similarity = dataset.similarity
    heldout = split_items(dataset.items.ids, seed=0)
    return kernel_alignment(matrix, similarity.matrix, similarity.mask, heldout)[split]


def test_trainer_run_is_read_back(run):
    assert run.split_seed == 0 and run.heldout_fraction == 0.3
    assert run.final_epoch == run.summary["best_epoch"]
    assert [epoch for epoch, _ in run.checkpoints] == [1.0, 2.0, 3.0]
    assert (run.directory.parent.parent / "train.log").is_file()
    assert encoder_directory(run.directory.parent.parent) == run.encoder_dir
    again = EncoderRun.read(run.directory.parent.parent, "spa-verb-act", 1)
    assert again.encoder_dir == run.encoder_dir


def test_before_and_after_are_the_trainers_encoders(run):
    # "before" rebuilt from the export config is the encoder the trainer started from,
    # "after" is the exported best encoder: their held-out alignment is the trainer's.
    heldout = run.summary["heldout"]
    assert _alignment(run.untrained_encoder(), "heldout") == pytest.approx(
        heldout["spearman_before"], abs=2e-3)
    assert _alignment(run.trained_encoder(), "heldout") == pytest.approx(
        heldout["spearman_after"], abs=2e-3)


def test_checkpoint_encoder_of_the_best_epoch_equals_the_export(run):
    texts = ["kill someone", "help someone", "tickle someone"]
    best = run.checkpoint_encoder(run.final_epoch)
    with torch.no_grad():
        torch.testing.assert_close(best(texts), run.trained_encoder()(texts))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        run.checkpoint_encoder(99.0)


def test_missing_runs_and_failed_training_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="not a finished"):
        EncoderRun.read(tmp_path, "spa-verb", 0)
    with pytest.raises(ConfigError, match="no exported encoder"):
        encoder_directory(tmp_path)
    with pytest.raises(ConfigError, match="train.log"):
        train_encoder("spa-verb-act", 0, tmp_path / "bad", 0, 0.3,
                      extra_args=["--trainer.max_epochs=nope"], log=lambda line: None)


def test_dose_checkpoints_are_evenly_spaced(tmp_path):
    checkpoints = tuple((float(e), tmp_path / f"e{e}.ckpt") for e in range(1, 41))
    run = EncoderRun("spa-verb", 0, tmp_path, tmp_path, {"best_epoch": 40}, checkpoints)
    assert [e for e, _ in dose_checkpoints(run, 4)] == [9.0, 19.0, 29.0, 39.0]
    assert len(dose_checkpoints(run, 100)) == 39  # all but the final (exported) epoch
    assert dose_checkpoints(run, 0) == ()


def test_preservation_suite_is_read_from_the_trainers_summary(run):
    sets = run.summary["preservation"]["sets"]
    suite = run.preservation()
    assert suite and set(suite) == set(sets)
    for name, entry in sets.items():
        assert suite[name] == {"before": entry["spearman_before"],
                               "after": entry["spearman_after"],
                               "change": entry["change"], "pairs": entry["pairs"]}
    assert run.preservation_excluded() == run.summary["preservation"]["excluded"]
    gains = run.generalization()
    assert gains["new_x_new"]["gain"] == run.summary["generalization"]["new_x_new"]["gain"]
    assert gains["cross"]["after"] == run.summary["generalization"]["cross"]["spearman_after"]
