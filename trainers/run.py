"""`train_alignment`: the library function behind `python -m deepalign.train`.

It parses LightningCLI arguments (a list of ``--key=value`` strings, or a config dict of the
same shape as a run's ``config.yaml``), builds the model, data and trainer, trains, and
returns the finished run (`TrainingRun`: its summary and paths). `deepalign.train` wraps it
with printing and exit codes; studies call it directly (`deepalign.studies.encoders`).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from lightning.fabric.utilities.exceptions import MisconfigurationException  # noqa: E402
from lightning.pytorch import Trainer  # noqa: E402
from lightning.pytorch.callbacks import EarlyStopping  # noqa: E402
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402

from deepalign.data import dataset_label  # noqa: E402
from deepalign.errors import DISK_ERRNOS, ConfigError, DeepAlignError, disk_error  # noqa: E402
from deepalign.limits import check_threads  # noqa: E402
from trainers.callbacks import AlignmentTensorBoard  # noqa: E402
from trainers.checkpoints import (  # noqa: E402
    VerifiedCheckpoint,
    find_last_checkpoint,
    validate_checkpoint,
)
from trainers.datamodule import AlignmentDataModule  # noqa: E402
from trainers.export import MONITOR, RunArtifacts  # noqa: E402
from trainers.module import DEFAULT_ENCODER, DEFAULT_LOSS, AlignmentModule  # noqa: E402

__all__ = [
    "MONITOR", "TRAINER_DEFAULTS", "AlignmentCLI", "TrainingRun", "build_cli", "train_alignment",
]

PROG = "python -m deepalign.train"
DESCRIPTION = "Train an encoder toward human similarity judgments."

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


class AlignmentCLI(LightningCLI):
    """LightningCLI with the alignment callbacks as typed option groups, ``--ckpt_path``,
    ``data.split_seed`` defaulting to ``--seed_everything``, and a TensorBoard logger named
    after the dataset (``runs/<dataset>/version_N``)."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(AlignmentEarlyStopping, "early_stopping")
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
                name=dataset_label(self.config.get("data.dataset") or "alignment"),
                default_hp_metric=False,
            )
        return super().instantiate_trainer(**kwargs)


def build_cli(args: Sequence[str] | Mapping[str, Any] | None = None) -> AlignmentCLI:
    """Parse ``args`` (a list or a config dict; None = ``sys.argv[1:]``) and build model,
    data and trainer."""
    return AlignmentCLI(
        AlignmentModule,
        AlignmentDataModule,
        seed_everything_default=0,
        trainer_defaults=dict(TRAINER_DEFAULTS),
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        run=False,
        args=args,
        # no abbreviations: a mistyped prefix (--model.learning_rat) must fail, not match
        parser_kwargs={"prog": PROG, "allow_abbrev": False,
                       "description": DESCRIPTION,
                       # an error's usage line: the full one lists 1,300 lines of options
                       "usage": f"{PROG} [--config FILE] [OPTIONS]"},
    )



class AlignmentEarlyStopping(EarlyStopping):
    """Lightning's `EarlyStopping` with this recipe's defaults in its signature (monitor
    ``val/spearman``, mode max, patience 80, min_delta 1e-4), so ``--help`` shows them as
    defaults rather than marking the monitor required. Its checkpoint state keeps
    `EarlyStopping`'s key, so runs written before resume as they did."""

    def __init__(self, monitor: str = MONITOR, min_delta: float = 1e-4, patience: int = 80,
                 verbose: bool = False, mode: str = "max", strict: bool = True,
                 check_finite: bool = True, stopping_threshold: float | None = None,
                 divergence_threshold: float | None = None,
                 check_on_train_epoch_end: bool | None = None,
                 log_rank_zero_only: bool = False) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ConfigError(f"early_stopping.patience: expected an int >= 0 (checks "
                              f"without improvement before stopping), got {patience!r}. Fix: "
                              "e.g. 80.")
        super().__init__(monitor=monitor, min_delta=min_delta, patience=patience,
                         verbose=verbose, mode=mode, strict=strict, check_finite=check_finite,
                         stopping_threshold=stopping_threshold,
                         divergence_threshold=divergence_threshold,
                         check_on_train_epoch_end=check_on_train_epoch_end,
                         log_rank_zero_only=log_rank_zero_only)

    @property
    def state_key(self) -> str:
        return f"EarlyStopping{dict(monitor=self.monitor, mode=self.mode)!r}"


@dataclass(frozen=True)
class TrainingRun:
    """A finished training run: ``summary`` (`summary.json` as a dict; empty when no
    summary was written, e.g. export turned off on a non-zero DDP rank), ``paths`` (run
    directory, summary, encoder, checkpoints, config) and ``root`` (the trainer's
    ``default_root_dir``)."""

    summary: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    root: str = "runs"


def resolve_ckpt_path(cli: AlignmentCLI) -> str | None:
    """``--ckpt_path``, validated (`trainers.validate_checkpoint`); ``last`` = the newest
    ``ROOT/<dataset>/version_*/checkpoints/last.ckpt`` (none yet: train from scratch, so the
    same command both starts and resumes a run)."""
    ckpt_path = cli.config.get("ckpt_path")
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        root = cli.trainer.default_root_dir
        found = find_last_checkpoint(root, dataset_label(str(cli.config.get("data.dataset"))))
        if found is None:
            print(f"--ckpt_path last: no last.ckpt under "
                  f"{root}/{dataset_label(str(cli.config.get('data.dataset')))}"
                  "/version_*/checkpoints yet; training from scratch.", file=sys.stderr)
            return None
        ckpt_path = str(found)
        checkpoint = validate_checkpoint(ckpt_path, cli.model)
        reason = _finished(checkpoint, cli.trainer.max_epochs)
        run_dir = found.parent.parent
        if reason is not None and (run_dir / "summary.json").is_file():
            raise RunFinished(
                f"--ckpt_path last: {run_dir} is finished ({reason}); nothing to resume. Its "
                f"encoder is {run_dir / 'encoder'}. To train on, raise --trainer.max_epochs "
                "(or --early_stopping.patience) and pass its last.ckpt; to train anew, drop "
                "--ckpt_path.")
        return ckpt_path
    validate_checkpoint(ckpt_path, cli.model)
    return ckpt_path


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0] if lines else type(error).__name__).rstrip(".") + "."


#: where in Lightning an option is checked -> the option group that sets it
_LIGHTNING_GROUPS = (("callbacks/early_stopping", "early_stopping"),
                     ("callbacks/model_checkpoint", "checkpoint"),
                     ("pytorch/trainer", "trainer"), ("fabric/accelerators", "trainer"))


def _lightning_group(error: BaseException) -> str | None:
    """The option group ("trainer", "early_stopping", "checkpoint") whose Lightning class
    raised `error` while it was built, or None when Lightning did not raise it (an error
    raised in our own code, a bug, keeps its traceback)."""
    frames = []
    trace = error.__traceback__
    while trace is not None:
        frames.append(trace.tb_frame.f_code.co_filename.replace(os.sep, "/"))
        trace = trace.tb_next
    if not frames or "/lightning/" not in frames[-1]:
        return None
    for filename in reversed(frames):  # the innermost Lightning frame names the class
        if "/lightning/" not in filename:
            continue
        for part, group in _LIGHTNING_GROUPS:
            if part in filename:
                return group
    return None


def _deepalign_cause(error: BaseException) -> BaseException | None:
    """Our own error inside a jsonargparse wrapper ("Does not validate against any of the
    Union subtypes"): the class's ConfigError is its cause or context."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DeepAlignError):
            return current
        current = current.__cause__ or current.__context__
    text = str(error)
    if "Does not validate against any of the Union subtypes" in text:
        reasons = [line.strip()[2:] for line in text.splitlines()
                   if line.strip().startswith("- ") and "Expected a <class 'NoneType'>"
                   not in line]
        if reasons:
            return ConfigError(reasons[0])
    return None


def _check_config_files(argv: Sequence[str] | Mapping[str, Any]) -> list[str]:
    """Each `--config FILE` readable UTF-8 YAML with at least one key, before jsonargparse
    reads it (it gave a raw UnicodeDecodeError and "Unexpected config:"); the files."""
    if isinstance(argv, Mapping):
        return []
    items = list(argv)
    paths = [items[k + 1] for k, a in enumerate(items[:-1]) if a == "--config"]
    paths += [a.split("=", 1)[1] for a in items if a.startswith("--config=")]
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            continue  # jsonargparse names a missing file itself
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError(f"--config {path}: not UTF-8 text (byte {error.start}). Fix: save "
                              "the config as UTF-8.") from None
        if not text.strip() or all(not line.strip() or line.lstrip().startswith("#")
                                    for line in text.splitlines()):
            raise ConfigError(f"--config {path}: the file is empty (or only comments). Fix: "
                              "write at least one key (see configs/train/*.yaml), or drop "
                              "--config.")
    return [str(path) for path in paths]


#: Splits whose measures are logged at every validation (`AlignmentModule`).
_LOGGED_SPLITS = ("fit", "val", "val_new", "train", "heldout", "cross")


def _check_monitors(cli: AlignmentCLI) -> None:
    """early_stopping.monitor and checkpoint.monitor name a logged metric; Lightning found
    out only after the first epoch, with files already written."""
    from trainers.evaluation import MEASURES

    known = {f"{split}/{name}" for split in _LOGGED_SPLITS for name in MEASURES}
    known |= {"loss/total", "loss/alignment", "loss/preserve", "loss/val_alignment"}
    extras = tuple(f"{dataset_label(x.name)}/" for x in getattr(cli.datamodule, "datasets", []))
    for option, callback_type in (("early_stopping", EarlyStopping),
                                  ("checkpoint", VerifiedCheckpoint)):
        for callback in cli.trainer.callbacks:
            if not isinstance(callback, callback_type):
                continue
            monitor = getattr(callback, "monitor", None)
            if monitor is None or monitor in known or monitor.startswith(("preserve/", "value/",
                                                                           *extras)):
                continue
            raise ConfigError(
                f"{option}.monitor: {monitor!r} is not a metric this run logs. Fix: one of "
                f"val/spearman (the default), val_new/spearman, loss/val_alignment, or "
                f"SPLIT/MEASURE with SPLIT in {', '.join(_LOGGED_SPLITS)} and MEASURE in "
                f"{', '.join(MEASURES)}.")


class RunFinished(Exception):
    """`--ckpt_path last` found a run that already ended: nothing to do (exit 0)."""


def _finished(checkpoint: dict[str, Any], max_epochs: int | None) -> str | None:
    """Why the run that wrote `checkpoint` ended, or None when it can go on: early
    stopping fired, or its last epoch reached `max_epochs`."""
    for key, state in (checkpoint.get("callbacks") or {}).items():
        if str(key).startswith("EarlyStopping") and isinstance(state, dict) \
                and int(state.get("stopped_epoch") or 0) > 0:
            return (f"early stopping ended it at epoch {state['stopped_epoch']}, "
                    f"{state.get('patience')} checks without improvement")
    epoch = checkpoint.get("epoch")
    if max_epochs is not None and max_epochs > 0 and isinstance(epoch, int) \
            and epoch + 1 >= max_epochs:
        return f"it ran all {max_epochs} epochs of --trainer.max_epochs"
    return None


def train_alignment(args: Sequence[str] | Mapping[str, Any] | None = None) -> TrainingRun:
    """Train one encoder and return the finished run.

    Args:
        args: LightningCLI arguments, as ``python -m deepalign.train`` takes them (a list
            such as ``["--seed_everything=1", "--data.dataset=activity-pairs"]``), or a
            nested config dict (``{"seed_everything": 1, "data": {"dataset": ...}}``);
            None = ``sys.argv[1:]``.

    Raises:
        DeepAlignError: a configuration, data or checkpoint error (the message names the
            option and the fix).
        SystemExit: from argument parsing (``--help``, an unknown or malformed option), as
            argparse does.
    """
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*The number of training batches.*")
    warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")  # frozen backbone
    # DDP (configs/train/ddp.yaml): every rank logs the same full-batch values, no sync needed
    warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
    threads = torch.get_num_threads()
    argv = None if args is None else (dict(args) if isinstance(args, Mapping) else list(args))
    configs = _check_config_files(sys.argv[1:] if argv is None else argv)
    try:
        try:
            cli = build_cli(argv)
        except SystemExit as stop:  # jsonargparse printed usage and its error, naming no file
            if stop.code not in (0, None) and configs:
                print(f"error: in the options given, which include --config "
                      f"{', '.join(configs)}: the key named above may be in that file.",
                      file=sys.stderr)
            if stop.code not in (0, None):
                print(f"Fix: correct the option, key or file named above ({PROG} --help lists "
                      "the common options, --help-all every one with its type).",
                      file=sys.stderr)
            raise
        except MisconfigurationException as error:
            group = _lightning_group(error) or "trainer"
            raise ConfigError(f"--{group}: {_first_line(error)} Fix: correct that --{group}.* "
                              "option (see python -m deepalign.train --help-all).") from error
        except (ValueError, TypeError) as error:
            if "numpy accepts from 0 to" in str(error):  # Lightning's seed_everything
                raise ConfigError(f"seed_everything: expected an int in 0..{2**32 - 1}, got "
                                  f"{_first_line(error).split(' is not')[0]}. Fix: e.g. 0.") \
                    from None
            cause = _deepalign_cause(error)
            if cause is not None:
                raise ConfigError(str(cause)) from error
            group = _lightning_group(error)
            if group is None:
                raise
            # Lightning's own check of an option (e.g. an unknown accelerator name)
            raise ConfigError(f"--{group}: {_first_line(error)} Fix: correct that --{group}.* "
                              "option (see python -m deepalign.train --help-all).") from error
        _check_monitors(cli)
        root = Path(str(cli.trainer.default_root_dir))
        if root.exists() and not root.is_dir():
            raise ConfigError(f"trainer.default_root_dir: {root} is a file, not a directory. "
                              "Fix: pass a directory (e.g. runs).")
        if cli.config.get("torch_threads") is not None:
            torch.set_num_threads(check_threads(cli.config["torch_threads"], "torch_threads"))
        ckpt_path = resolve_ckpt_path(cli)
        # load, split and check the data now (setup runs once), before the trainer's logger
        # writes its first file: a refused dataset leaves no run directory behind
        cli.datamodule.setup("fit")
        try:
            cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path,
                            weights_only=True)
        except OSError as error:  # a read-only or full disk under the run directory
            if error.errno not in DISK_ERRNOS:
                raise
            raise disk_error(Path(error.filename or root), error,
                             elsewhere="pass another --trainer.default_root_dir",
                             resumes=False) from error
    finally:
        torch.set_num_threads(threads)
    artifacts = next((c for c in cli.trainer.callbacks if isinstance(c, RunArtifacts)), None)
    summary = dict(artifacts.summary) if artifacts is not None else {}
    paths = dict(artifacts.paths) if artifacts is not None else {}
    return TrainingRun(summary, paths, str(cli.trainer.default_root_dir))
