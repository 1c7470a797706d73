"""Valid files the cases start from, built once per audit run into one directory.

- "encoder": `encoder/`, an exported low-rank MiniLM encoder (weights moved off their
  initial values), and `lexical/`, an exported fitted lexical encoder;
- "checkpoint": `train/`, a one-epoch `deepalign.train` run on 60 items (its
  `last.ckpt` is `Fixtures.CHECKPOINT` below the fixtures directory);
- "study": `study/`, a finished two-seed study (a real and a synthetic section) with its
  `results.csv` and `study.json`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

QUICK_TRAIN = ["--data.max_items", "60", "--trainer.enable_progress_bar", "false",
               "--tensorboard.projector", "false", "--artifacts.projector", "false",
               "--tensorboard.figure_every_n_epochs", "0", "--model.measure_every_n_epochs",
               "1000", "--data.preservation_sets=[]", "--data.pool_size", "100"]

TINY_STUDY = """\
name: tiny
seeds: 2
horizon: 5
real:
  values: [act_evaluation]
  kernels: [length, constant]
  agents: [gp-ts]
  length_control: false
synthetic:
  levels: [0.0, 1.0]
  agents: [gp-ts]
  references: false
"""


class Fixtures:
    CHECKPOINT = "train/spa-verb/version_0/checkpoints/last.ckpt"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._built: set[str] = set()

    def build(self, name: str) -> None:
        if name in self._built:
            return
        getattr(self, f"_{name}")()
        self._built.add(name)

    def _run(self, *args: str) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        done = subprocess.run([sys.executable, "-m", *args], cwd=self.root, env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"fixture {' '.join(args)} failed:\n{done.stdout[-3000:]}"
                               f"\n{done.stderr[-3000:]}")

    def _encoder(self) -> None:
        import torch

        from deepalign.encoders import LexicalEncoder, SentenceEncoder, export_encoder

        encoder = SentenceEncoder(head="lowrank", rank=8)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for parameter in encoder.parameters():
                if parameter.requires_grad:
                    parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))
        export_encoder(encoder.eval(), self.root / "encoder")
        lexical = LexicalEncoder().fit(["kill someone", "help someone", "eat an apple"])
        export_encoder(lexical, self.root / "lexical")

    def _checkpoint(self) -> None:
        self._run("deepalign.train", *QUICK_TRAIN, "--trainer.max_epochs", "1",
                  "--trainer.default_root_dir", "train")

    def _study(self) -> None:
        (self.root / "tiny.yaml").write_text(TINY_STUDY, encoding="utf-8")
        self._run("deepalign.study", "tiny.yaml", "--out", "study", "--no-progress")
