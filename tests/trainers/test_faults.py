"""Faults in training: a SIGKILLed run resumes with ``--ckpt_path last``; bad checkpoints
(missing, truncated, random bytes, tampered, another architecture, not resumable, a pickle
holding code) exit 2 naming the file, and the malicious pickle is never executed."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from deepalign.train import main

REPO = Path(__file__).resolve().parents[2]
QUICK = ["--data.max_items", "60", "--trainer.enable_progress_bar", "false",
         "--tensorboard.projector", "false", "--artifacts.projector", "false",
         "--tensorboard.figure_every_n_epochs", "0", "--model.measure_every_n_epochs", "1000",
         "--early_stopping.patience", "100000",
         # the suite and a large pool cost seconds per process and are not what this tests
         "--data.preservation_sets=[]", "--data.pool_size", "100"]


class _Marker:
    """Unpickling this creates ``path``: the code a malicious checkpoint would run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("base")
    assert main([*QUICK, "--trainer.max_epochs", "1", "--trainer.default_root_dir",
                 str(root)]) == 0
    return root / "spa-verb" / "version_0" / "checkpoints" / "last.ckpt"


def test_killed_training_resumes_from_last_checkpoint(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "deepalign.train", *QUICK, "--trainer.default_root_dir",
               str(tmp_path), "--ckpt_path", "last"]
    process = subprocess.Popen([*command, "--trainer.max_epochs", "100000"], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    last = tmp_path / "spa-verb" / "version_0" / "checkpoints" / "last.ckpt"
    digest = last.with_name("last.ckpt.sha256")
    deadline = time.monotonic() + 120
    while not digest.is_file() and process.poll() is None:  # digest: last.ckpt complete
        assert time.monotonic() < deadline, "no last.ckpt after 120 s"
        time.sleep(0.2)
    time.sleep(1.0)  # let it train a few more epochs
    assert process.poll() is None, process.stderr.read()[-2000:]  # still training
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not (tmp_path / "spa-verb" / "version_0" / "summary.json").exists()
    saved_step = torch.load(last, weights_only=True)["global_step"]
    assert saved_step >= 1
    target = saved_step + 2
    # the same command (a finite epoch budget now): picks the newest last.ckpt
    completed = subprocess.run([*command, "--trainer.max_epochs", str(target)], cwd=REPO,
                               env=env, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-3000:]
    resumed = tmp_path / "spa-verb" / "version_1"
    summary = json.loads((resumed / "summary.json").read_text())
    assert summary["epochs_run"] == target
    assert Path(summary["paths"]["encoder"], "encoder.safetensors").is_file()
    assert torch.load(resumed / "checkpoints" / "last.ckpt",
                      weights_only=True)["global_step"] == target  # one step per epoch
    events = EventAccumulator(str(resumed), size_guidance={"scalars": 0})
    events.Reload()
    steps = sorted(event.step for event in events.Scalars("val/spearman"))
    assert steps == [saved_step + 1, saved_step + 2]  # continued, not restarted


def _bad_files(base: Path, tmp: Path) -> dict[str, Path]:
    raw = base.read_bytes()
    files: dict[str, Path] = {}
    files["truncated"] = tmp / "truncated.ckpt"
    files["truncated"].write_bytes(raw[: len(raw) // 3])
    files["random"] = tmp / "random.ckpt"
    files["random"].write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8,
                                              generator=torch.Generator().manual_seed(0))
                                .numpy().tobytes())
    tampered_dir = tmp / "tampered"
    tampered_dir.mkdir()
    files["tampered"] = tampered_dir / "last.ckpt"  # one flipped byte, digest beside it
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0xFF
    files["tampered"].write_bytes(bytes(flipped))
    files["tampered"].with_name("last.ckpt.sha256").write_bytes(
        base.with_name("last.ckpt.sha256").read_bytes())
    checkpoint = torch.load(base, weights_only=True)
    nan = {**checkpoint, "state_dict": {k: torch.full_like(v, float("nan"))
                                        if v.is_floating_point() else v
                                        for k, v in checkpoint["state_dict"].items()}}
    files["nan"] = tmp / "nan.ckpt"
    torch.save(nan, files["nan"])
    files["weights_only"] = tmp / "weights_only.ckpt"
    torch.save(checkpoint["state_dict"], files["weights_only"])
    files["not_a_dict"] = tmp / "list.ckpt"
    torch.save([1, 2, 3], files["not_a_dict"])
    files["pickle_code"] = tmp / "evil.ckpt"
    with open(files["pickle_code"], "wb") as stream:
        pickle.dump({"state_dict": _Marker(tmp / "PWNED")}, stream)
    files["torch_code"] = tmp / "evil_zip.ckpt"
    torch.save({**checkpoint, "epoch": _Marker(tmp / "PWNED")}, files["torch_code"])
    files["missing"] = tmp / "nowhere.ckpt"
    files["no_optimizer"] = tmp / "no_optimizer.ckpt"  # used to resume with a fresh AdamW
    torch.save({**checkpoint, "optimizer_states": []}, files["no_optimizer"])
    optimizer = checkpoint["optimizer_states"][0]
    wrong = {index: {name: (value if name == "step" else torch.zeros(3, 3))
                     for name, value in entry.items()}
             for index, entry in optimizer["state"].items()}
    files["optimizer_shapes"] = tmp / "optimizer_shapes.ckpt"
    torch.save({**checkpoint, "optimizer_states": [{**optimizer, "state": wrong}]},
               files["optimizer_shapes"])
    files["bad_loops"] = tmp / "bad_loops.ckpt"
    torch.save({**checkpoint, "loops": [1, 2]}, files["bad_loops"])
    return files


@pytest.mark.parametrize("kind", ["truncated", "random", "tampered", "nan", "weights_only",
                                  "not_a_dict", "pickle_code", "torch_code", "missing",
                                  "no_optimizer", "optimizer_shapes", "bad_loops"])
def test_bad_checkpoint_exits_2_naming_the_file(base_run, tmp_path, capsys, kind):
    path = _bad_files(base_run, tmp_path)[kind]
    root = tmp_path / "runs"
    code = main([*QUICK, "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(root),
                 "--ckpt_path", str(path)])
    assert code == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Fix:" in err
    assert not (tmp_path / "PWNED").exists()  # never executed
    assert not list(root.glob("**/summary.json"))  # no partial output


def test_checkpoint_of_another_architecture_exits_2(base_run, tmp_path, capsys):
    code = main([*QUICK, "--trainer.max_epochs", "2", "--trainer.default_root_dir",
                 str(tmp_path), "--model.encoder.init_args.head", "lowrank",
                 "--ckpt_path", str(base_run)])
    assert code == 2
    err = capsys.readouterr().err
    assert str(base_run) in err and "another architecture" in err and "--model" in err


def test_malicious_pickle_refused_by_the_cli_without_running_it(tmp_path):
    evil = tmp_path / "evil.ckpt"
    with open(evil, "wb") as stream:
        pickle.dump(_Marker(tmp_path / "PWNED"), stream)
    completed = subprocess.run(
        [sys.executable, "-m", "deepalign.train", "--data.max_items", "20",
         "--trainer.default_root_dir", str(tmp_path / "runs"), "--ckpt_path", str(evil)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert completed.returncode == 2
    assert str(evil) in completed.stderr and "never executed" in completed.stderr
    assert not (tmp_path / "PWNED").exists()
