"""`python -m deepalign.train` refuses bad configurations with a clean error and writes
nothing (issue 16): Lightning's own misconfigurations, seeds numpy cannot take, our classes'
errors wrapped by jsonargparse, unknown monitors, a root directory that is a file, and
config files that are not UTF-8 or empty."""

import pytest

from deepalign.train import main

CASES = {
    "negative max_epochs": (["--trainer.max_epochs", "-3"], "`max_epochs` must be a non-negative"),
    "gpu without a gpu": (["--trainer.accelerator", "gpu"], "No supported gpu backend found"),
    "devices 0": (["--trainer.devices", "0"], "`Trainer(devices='0')` value is not a valid"),
    "negative seed": (["--seed_everything", "-1"], "seed_everything: expected an int in 0.."),
    "huge seed": (["--seed_everything", str(10**20)], "seed_everything: expected an int in 0.."),
    "bogus head": (["--model.encoder.init_args.head", "bogus"], "'head' should be one of"),
    "bogus backbone": (["--model.encoder.init_args.backbone", "/nonexistent/dir"],
                       "'backbone' directory '/nonexistent/dir' does not exist"),
    "bogus early stopping monitor": (["--early_stopping.monitor", "bogus/x"],
                                     "early_stopping.monitor: 'bogus/x' is not a metric"),
    "bogus checkpoint monitor": (["--checkpoint.monitor", "bogus/x"],
                                 "checkpoint.monitor: 'bogus/x' is not a metric"),
    # Lightning's own ValueError / TypeError / MisconfigurationException, named by group
    "bogus accelerator": (["--trainer.accelerator", "bogus"],
                          "--trainer: You selected an invalid accelerator name"),
    "devices a word": (["--trainer.devices", "many"], "--trainer: `devices` selected with"),
    "early stopping mode": (["--early_stopping.mode", "up"],
                            "--early_stopping: `mode` can be min, max, got up. Fix: correct "
                            "that --early_stopping.* option"),
    "negative patience": (["--early_stopping.patience", "-1"],
                          "early_stopping.patience: expected an int >= 0"),
    "huge hidden_dim": (["--model.encoder.init_args.head", "mlp",
                         "--model.encoder.init_args.hidden_dim", str(10**11)],
                        "'hidden_dim' of the head should be an int in 1..65536"),
    "huge output_dim": (["--model.encoder.init_args.output_dim", str(10**10)],
                        "'output_dim' of the head should be an int in 1..65536"),
    "threads past any machine": (["--torch_threads", "100000"],  # segfaulted inside torch
                                 "torch_threads: expected an int in 1..1024"),
    "negative split seed": (["--data.split_seed", "-1"], "data.split_seed: expected an int in"),
    # checked when the data are set up, which now happens before the logger writes
    "val_fraction 1": (["--data.val_fraction", "1.0"], "data.val_fraction: expected a number"),
    "unknown preservation set": (["--data.preservation_sets=[nope]"],
                                 "data.preservation_sets: unknown dataset(s) ['nope']"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_configuration_exits_2_and_writes_nothing(tmp_path, capsys, case):
    import torch

    if case == "gpu without a gpu" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    argv, part = CASES[case]
    root = tmp_path / "runs"
    assert main(["--trainer.default_root_dir", str(root), "--data.max_items", "60", *argv]) == 2
    error = capsys.readouterr().err
    assert part in error and "Traceback" not in error
    assert not root.exists()


def test_root_directory_that_is_a_file(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["--trainer.default_root_dir", str(afile), "--data.max_items", "60"]) == 2
    error = capsys.readouterr().err
    assert f"trainer.default_root_dir: {afile} is a file, not a directory" in error
    assert afile.read_text() == "x"


@pytest.mark.parametrize("content, part", [(b"trainer:\n  max_epochs: 1\n# \xff\n", "not UTF-8"),
                                           (b"", "the file is empty"),
                                           (b"# only a comment\n", "the file is empty")])
def test_bad_config_files_name_the_file(tmp_path, capsys, content, part):
    config = tmp_path / "mine.yaml"
    config.write_bytes(content)
    root = tmp_path / "runs"
    assert main(["--config", str(config), "--trainer.default_root_dir", str(root)]) == 2
    error = capsys.readouterr().err
    assert f"--config {config}: {part}" in error
    assert not root.exists()


def test_an_unknown_key_in_a_config_file_names_the_file(tmp_path, capsys):
    config = tmp_path / "mine.yaml"
    config.write_text("trainer:\n  max_epochz: 1\n")
    with pytest.raises(SystemExit) as stop:
        main(["--config", str(config), "--trainer.default_root_dir", str(tmp_path / "runs")])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "max_epochz" in error and f"--config {config}" in error
    assert not (tmp_path / "runs").exists()


def test_help_is_short_and_help_all_is_everything(capsys):
    assert main(["--help"]) == 0
    short = capsys.readouterr().out
    assert len(short.splitlines()) < 40
    for option in ("--data.dataset", "--data.similarity", "--trainer.max_epochs", "--ckpt_path",
                   "--help-all"):
        assert option in short
    with pytest.raises(SystemExit) as stop:
        main(["--help-all"])
    assert stop.value.code == 0
    everything = capsys.readouterr().out
    assert len(everything.splitlines()) > 500 and "--trainer.accumulate_grad_batches" in everything
    assert "required" not in everything  # no defaulted option is marked required


def test_a_root_directory_no_one_may_write(tmp_path, capsys):
    import os
    import stat
    from pathlib import Path

    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(stat.S_IRUSR | stat.S_IXUSR)
    # root writes into read-only directories; /sys refuses even root (EPERM)
    root = Path("/sys/deepalign_runs") if os.geteuid() == 0 else parent / "runs"
    if os.geteuid() == 0 and not Path("/sys").is_dir():
        pytest.skip("no read-only place for root on this machine")
    try:
        assert main(["--trainer.default_root_dir", str(root), "--data.max_items", "60"]) == 2
    finally:
        parent.chmod(stat.S_IRWXU)
    error = capsys.readouterr().err
    assert f"{root}: cannot write" in error and "--trainer.default_root_dir" in error
    assert "Traceback" not in error
