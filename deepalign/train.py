"""`python -m deepalign.train`: train an encoder toward human similarity judgments.

With no argument it trains the default recipe (``configs/train/default.yaml`` records it):
``spa-verb`` (825 verbs rendered by `deepalign.data.render_verb_action`), items split by
`deepalign.data.split_items` with ``split_seed`` = ``--seed_everything`` (0), a frozen
all-MiniLM-L6-v2 with cached embeddings and a linear head (starting as the identity),
input dropout 0.2, `SoftSpearmanLoss` on the fit pairs + `LocalSimilarityRegularizer`
(weight 3), early stopping on ``val/spearman`` (pairs of validation items carved from the
train items; held-out items are never used).

    python -m deepalign.train                                  # the default recipe
    python -m deepalign.train --config configs/train/activity_pairs.yaml
    python -m deepalign.train --seed_everything 1 --trainer.max_epochs 50
    python -m deepalign.train --ckpt_path RUN/checkpoints/last.ckpt   # resume
    python -m deepalign.train --ckpt_path last          # resume the newest run (or start one)
    python -m deepalign.train --config configs/train/ddp.yaml         # DDP, 2 CPU processes
    python -m deepalign.train --help                           # every option, typed

Options are LightningCLI's: ``--config FILE`` (YAML), ``--trainer.*``, ``--model.*``
(`trainers.AlignmentModule`), ``--data.*`` (`trainers.AlignmentDataModule`),
``--early_stopping.*``, ``--checkpoint.*``, ``--tensorboard.*``, ``--artifacts.*``. The
resolved configuration is saved as ``config.yaml`` in the run directory. This is the only
module of ``deepalign`` that imports Lightning.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from lightning.pytorch import Trainer  # noqa: E402
from lightning.pytorch.callbacks import EarlyStopping  # noqa: E402
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402

from deepalign.errors import ConfigError, DeepAlignError  # noqa: E402
from trainers import (  # noqa: E402
    AlignmentDataModule,
    AlignmentModule,
    AlignmentTensorBoard,
    RunArtifacts,
)
from trainers.checkpoints import (  # noqa: E402
    VerifiedCheckpoint,
    find_last_checkpoint,
    validate_checkpoint,
)
from trainers.module import DEFAULT_ENCODER, DEFAULT_LOSS  # noqa: E402

#: Trainer defaults of the default recipe (each can be overridden with --trainer.KEY).
TRAINER_DEFAULTS: dict[str, Any] = {
    "default_root_dir": "runs",
    "max_epochs": 500,
    "log_every_n_steps": 1,
    "num_sanity_val_steps": 0,
    "enable_progress_bar": True,
    "accelerator": "auto",
    "devices": 1,
}
MONITOR = "val/spearman"


class AlignmentCLI(LightningCLI):
    """LightningCLI with the alignment callbacks as typed option groups, ``--ckpt_path``,
    ``data.split_seed`` defaulting to ``--seed_everything``, and a TensorBoard logger named
    after the dataset (``runs/<dataset>/version_N``)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(EarlyStopping, "early_stopping")
        parser.set_defaults({"early_stopping.monitor": MONITOR, "early_stopping.mode": "max",
                             "early_stopping.patience": 80, "early_stopping.min_delta": 1e-4})
        parser.add_lightning_class_args(VerifiedCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.monitor": MONITOR, "checkpoint.mode": "max",
                             "checkpoint.save_last": True,
                             "checkpoint.filename": "best-{epoch:03d}"})
        parser.add_lightning_class_args(AlignmentTensorBoard, "tensorboard")
        parser.add_lightning_class_args(RunArtifacts, "artifacts")
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="Checkpoint to resume from (e.g. RUN/checkpoints/last.ckpt), "
                                 "or 'last': the newest last.ckpt of this dataset under "
                                 "--trainer.default_root_dir. Loaded weights-only, checked "
                                 "against the model first.")
        parser.add_argument("--torch_threads", type=int | None, default=1,
                            help="torch CPU threads while training (null = torch's default). "
                                 "Head training works on small matrices, where one thread is "
                                 "as fast as several and never fights other processes.")
        parser.set_defaults({
            "model.encoder": {"class_path": "deepalign.encoders.SentenceEncoder",
                              "init_args": dict(DEFAULT_ENCODER)},
            "model.loss": {"class_path": "deepalign.alignment.SoftSpearmanLoss",
                           "init_args": dict(DEFAULT_LOSS)},
        })

    def before_instantiate_classes(self) -> None:
        if self.config.get("data.split_seed") is None:
            self.config["data.split_seed"] = int(self.config.get("seed_everything") or 0)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer_config = self._get(self.config_init, "trainer", default={})
        if trainer_config.get("logger") in (None, True) and "logger" not in kwargs:
            kwargs["logger"] = TensorBoardLogger(
                save_dir=trainer_config.get("default_root_dir") or "runs",
                name=self.config.get("data.dataset", "alignment"),
                default_hp_metric=False,
            )
        return super().instantiate_trainer(**kwargs)


def build_cli(args: Sequence[str] | None = None) -> AlignmentCLI:
    """Parse ``args`` (None = ``sys.argv[1:]``) and build model, data and trainer."""
    return AlignmentCLI(
        AlignmentModule,
        AlignmentDataModule,
        seed_everything_default=0,
        trainer_defaults=dict(TRAINER_DEFAULTS),
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        run=False,
        args=None if args is None else list(args),
        # no abbreviations: a mistyped prefix (--model.learning_rat) must fail, not match
        parser_kwargs={"prog": "python -m deepalign.train", "allow_abbrev": False,
                       "description": __doc__.split("\n\n")[0]},
    )


def report(artifacts: RunArtifacts, root: str) -> str:
    """The lines printed at the end: where everything was written, the TensorBoard command."""
    summary, paths = artifacts.summary, artifacts.paths
    held = summary.get("heldout", {})
    lines = [
        "",
        f"alignment training on {summary.get('dataset')} "
        f"(split_seed {summary.get('split_seed')}) finished in {summary.get('seconds')} s; "
        f"best epoch {summary.get('best_epoch')} of {summary.get('epochs_run')}",
    ]
    if summary.get("best_epoch") == 0:
        lines.append("  no epoch beat the pretrained encoder on val/spearman: kept its weights")
    for split in ("train", "val", "heldout", "cross"):
        row = summary.get(split, {})
        lines.append(f"  {split:8s} Spearman {_fmt(row.get('spearman_before'))} -> "
                     f"{_fmt(row.get('spearman_after'))}")
    lines.append(f"  held-out gain: {_fmt(_gain(held))}")
    for key in ("run_dir", "summary", "encoder", "best_checkpoint", "last_checkpoint", "config"):
        if paths.get(key):
            lines.append(f"  {key + ':':17s}{paths[key]}")
    lines.append(f"view it with:  tensorboard --logdir {root}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _gain(row: dict[str, Any]) -> float | None:
    before, after = row.get("spearman_before"), row.get("spearman_after")
    if before is None or after is None:
        return None
    return after - before


def resolve_ckpt_path(cli: AlignmentCLI) -> str | None:
    """``--ckpt_path``, validated (`trainers.validate_checkpoint`); ``last`` = the newest
    ``ROOT/<dataset>/version_*/checkpoints/last.ckpt`` (none yet: train from scratch, so the
    same command both starts and resumes a run)."""
    ckpt_path = cli.config.get("ckpt_path")
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        root = cli.trainer.default_root_dir
        found = find_last_checkpoint(root, str(cli.config.get("data.dataset")))
        if found is None:
            print(f"--ckpt_path last: no last.ckpt under {root}/{cli.config.get('data.dataset')}"
                  "/version_*/checkpoints yet; training from scratch.", file=sys.stderr)
            return None
        ckpt_path = str(found)
    validate_checkpoint(ckpt_path, cli.model)
    return ckpt_path


def main(args: Sequence[str] | None = None) -> int:
    """Run the CLI; 0 on success, 2 on a configuration or data error (message on stderr)."""
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*The number of training batches.*")
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # frozen backbone
    # DDP (configs/train/ddp.yaml): every rank logs the same full-batch values, no sync needed
    warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
    threads = torch.get_num_threads()
    try:
        cli = build_cli(args)
        if cli.config.get("torch_threads") is not None:
            if cli.config["torch_threads"] < 1:
                raise ConfigError(f"torch_threads: expected an int >= 1 or null, got "
                                  f"{cli.config['torch_threads']}. Fix: e.g. 1.")
            torch.set_num_threads(cli.config["torch_threads"])
        ckpt_path = resolve_ckpt_path(cli)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path,
                        weights_only=True)
    except DeepAlignError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(threads)
    artifacts = next((c for c in cli.trainer.callbacks if isinstance(c, RunArtifacts)), None)
    if artifacts is not None and artifacts.summary:
        print(report(artifacts, str(cli.trainer.default_root_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
