"""`python -m deepalign.train`: a 2-epoch smoke run on a small slice of spa-verb writes the
event files, summary and a loadable encoder; resume works; bad configurations exit 2."""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from deepalign.alignment import cosine_similarity_matrix
from deepalign.encoders import SentenceEncoder, load_encoder
from deepalign.errors import CheckpointError
from deepalign.train import build_cli, main
from trainers import MEASURES, AlignmentDataModule, measure_splits

REPO = Path(__file__).resolve().parents[2]
# learning rate 1e-2: two epochs at the default 1e-3 leave validation flat on 100 items, so
# whether epoch 1 or 2 beats epoch 0 came down to float noise in the cached embeddings
SMOKE = ["--trainer.max_epochs", "2", "--data.max_items", "100", "--model.learning_rate", "1e-2",
         "--trainer.enable_progress_bar", "false", "--tensorboard.figure_every_n_epochs", "1",
         "--model.measure_every_n_epochs", "1"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    assert main([*SMOKE, "--trainer.default_root_dir", str(root)]) == 0
    run_dir = root / "spa-verb" / "version_0"
    return root, run_dir


def _scalars(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_smoke_run_writes_summary_config_and_checkpoints(smoke_run):
    _, run_dir = smoke_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["dataset"] == "spa-verb"
    assert summary["split_seed"] == 0  # = --seed_everything default
    items = summary["sizes"]["items"]
    assert items["all"] == 100
    assert items["fit"] + items["val"] + items["heldout"] == 100
    assert summary["sizes"]["pairs"]["fit"] > 0 and summary["sizes"]["pairs"]["heldout"] > 0
    assert summary["epochs_run"] == 2 and summary["best_epoch"] in (1, 2)
    assert summary["seconds"] > 0
    for split in ("train", "val", "heldout", "cross", "fit"):
        for name in MEASURES:
            for when in ("before", "after"):
                value = summary[split][f"{name}_{when}"]
                assert value is not None and -1.0 <= value <= 1.0
    # pretrained alignment of spa-verb verbs is weak but positive
    assert 0.0 < summary["heldout"]["spearman_before"] < 0.6
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["data"]["max_items"] == 100 and config["data"]["split_seed"] == 0
    assert config["trainer"]["max_epochs"] == 2
    assert Path(summary["paths"]["best_checkpoint"]).is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert not list(run_dir.glob(".summary.json*"))  # no temporary left behind


def test_smoke_run_event_files_hold_alignment_tags_and_step0(smoke_run):
    _, run_dir = smoke_run
    summary = json.loads((run_dir / "summary.json").read_text())
    events = _scalars(run_dir)
    tags = set(events.Tags()["scalars"])
    for split in ("fit", "val", "train", "heldout", "cross"):
        for name in MEASURES:
            assert f"{split}/{name}" in tags
    assert {"loss/total", "loss/alignment", "loss/preserve", "loss/val_alignment"} <= tags
    assert "loss/local" not in tags  # off by default
    # the HPARAMS tab's session lives in the sub-run hparams/ and uses the curves' own tags:
    # no one-point hparams/* charts on the scalars page
    assert not [tag for tag in tags if tag.startswith("hparams")]
    session = _scalars(run_dir / "hparams")
    assert "_hparams_/session_start_info" in session.PluginTagToContent("hparams")
    assert set(session.Tags()["scalars"]) <= tags
    for split in ("train", "val", "heldout", "cross"):
        (point,) = session.Scalars(f"{split}/spearman")
        assert math.isclose(point.value, summary[split]["spearman_after"], abs_tol=1e-6)
    for split in ("train", "val", "heldout", "cross"):
        points = {event.step: event.value for event in events.Scalars(f"{split}/spearman")}
        # step 0 = the pretrained encoder, equal to the summary's "before"
        assert math.isclose(points[0], summary[split]["spearman_before"], abs_tol=1e-6)
        assert max(points) == 2  # two full-batch steps later
    assert "similarity/heldout" in events.Tags()["images"]
    assert len(events.Images("similarity/heldout")) >= 3  # pretrained, epochs, trained
    projector = (run_dir / "projector_config.pbtxt").read_text()
    assert projector.count("embeddings {") == 2  # pretrained + trained
    metadata = next(run_dir.glob("00000/*/metadata.tsv")).read_text().splitlines()
    assert metadata[0] == "text\tsplit" and len(metadata) == 101
    assert metadata[1].endswith(("\tfit", "\tval", "\theldout"))


def test_exported_encoder_reproduces_trained_module(smoke_run):
    _, run_dir = smoke_run
    summary = json.loads((run_dir / "summary.json").read_text())
    encoder = load_encoder(run_dir / "encoder")
    assert isinstance(encoder, SentenceEncoder) and encoder.head_kind == "linear"
    data_module = AlignmentDataModule(max_items=100, split_seed=0)
    data_module.setup("fit")
    data = data_module.alignment_data
    with torch.no_grad():
        exported = encoder(list(data.texts))
    # the best checkpoint's weights in a fresh encoder give the same embeddings
    checkpoint = torch.load(summary["paths"]["best_checkpoint"], weights_only=True)
    state = {k.removeprefix("encoder."): v for k, v in checkpoint["state_dict"].items()
             if k.startswith("encoder.")}
    fresh = SentenceEncoder(head="linear").eval()
    fresh.load_state_dict(state)
    with torch.no_grad():
        from_checkpoint = fresh(list(data.texts))
    torch.testing.assert_close(exported, from_checkpoint, rtol=0, atol=1e-6)
    # and the summary's "after" numbers
    measured = measure_splits(cosine_similarity_matrix(exported), data)
    for split in ("train", "val", "heldout", "cross"):
        assert math.isclose(measured[split]["spearman"], summary[split]["spearman_after"],
                            abs_tol=1e-6)
    assert not torch.allclose(state["head.weight"], torch.eye(384))  # it did train


def test_tampered_or_truncated_encoder_raises_checkpoint_error(smoke_run, tmp_path):
    _, run_dir = smoke_run
    tampered = tmp_path / "tampered"
    shutil.copytree(run_dir / "encoder", tampered)
    weights = tampered / "encoder.safetensors"
    payload = bytearray(weights.read_bytes())
    payload[-5] ^= 0xFF
    weights.write_bytes(bytes(payload))
    with pytest.raises(CheckpointError, match="encoder.safetensors"):
        load_encoder(tampered)
    truncated = tmp_path / "truncated"
    shutil.copytree(run_dir / "encoder", truncated)
    weights = truncated / "encoder.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        load_encoder(truncated)


def test_ckpt_path_last_on_a_finished_run_says_so(smoke_run, tmp_path, capsys):
    _, run_dir = smoke_run
    root = tmp_path / "runs"
    shutil.copytree(run_dir, root / "spa-verb" / "version_0")
    capsys.readouterr()
    assert main([*SMOKE, "--trainer.default_root_dir", str(root), "--ckpt_path", "last"]) == 0
    out = capsys.readouterr().out
    assert "is finished (it ran all 2 epochs of --trainer.max_epochs); nothing to resume" in out
    assert sorted(p.name for p in (root / "spa-verb").iterdir()) == ["version_0"]  # no new run


def test_resume_from_last_checkpoint_continues_the_run(smoke_run):
    root, run_dir = smoke_run
    last = run_dir / "checkpoints" / "last.ckpt"
    args = [*SMOKE, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "3",
            "--ckpt_path", str(last)]
    assert main(args) == 0
    resumed = root / "spa-verb" / "version_1"
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["epochs_run"] == 3
    events = _scalars(resumed)
    steps = [event.step for event in events.Scalars("val/spearman")]
    assert steps == [3]  # one more epoch; step 0 is not logged again on resume
    first = json.loads((run_dir / "summary.json").read_text())
    # "before" still means the pretrained encoder, not the checkpoint
    assert math.isclose(summary["heldout"]["spearman_before"],
                        first["heldout"]["spearman_before"], abs_tol=1e-9)


def test_default_yaml_records_the_default_recipe(tmp_path):
    base = ["--trainer.default_root_dir", str(tmp_path)]
    plain = build_cli(base).config
    recorded = build_cli(["--config", str(REPO / "configs" / "train" / "default.yaml"), *base])
    for section in ("model", "data", "early_stopping", "checkpoint", "seed_everything",
                    "torch_threads"):
        assert recorded.config[section] == plain[section], section
    for key in ("max_epochs", "log_every_n_steps", "num_sanity_val_steps"):
        assert recorded.config["trainer"][key] == plain["trainer"][key], key


def test_unknown_key_exits_2_naming_it():
    completed = subprocess.run(
        [sys.executable, "-m", "deepalign.train", "--model.learning_rat", "0.1"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert completed.returncode == 2
    assert "learning_rat" in completed.stderr


def test_wrong_type_exits_2_naming_the_key(capsys):
    with pytest.raises(SystemExit) as raised:
        build_cli(["--trainer.max_epochs", "many"])
    assert raised.value.code == 2
    assert "trainer.max_epochs" in capsys.readouterr().err


def test_unknown_key_in_config_file_exits_2(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("model:\n  learning_rate: 0.01\n  head_size: 3\n")
    with pytest.raises(SystemExit) as raised:
        build_cli(["--config", str(config)])
    assert raised.value.code == 2
    assert "head_size" in capsys.readouterr().err


def test_unknown_dataset_returns_2_with_clear_message(tmp_path, capsys):
    code = main(["--data.dataset", "spa-verbs", "--trainer.default_root_dir", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err
    assert "data.dataset" in err and "spa-verbs" in err and "spa-verb" in err
    assert not (tmp_path / "spa-verbs").exists()
