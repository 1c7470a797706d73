"""Train the encoders a study needs with `deepalign.train`'s library function, once each.

`prepare_encoders` trains what the recipe needs: study 3's paired encoders into
`OUT/encoders/<dataset>/seed<k>/` (and its transfer encoders), and study 2's "aligned-<zoo>"
kernels into `OUT/encoders/models/<name>/`, each skipped when a finished run is already there
(a re-run does not retrain), or uses the run directories the recipe lists. Every run uses the
recipe's item split (`--data.split_seed`, `--data.heldout_fraction`), so its held-out items
are the bandit's held-out items.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from deepalign.data import dataset_label, is_user_dataset
from deepalign.errors import CheckpointError, ConfigError, DeepAlignError
from deepalign.studies.config import StudyConfig, seed_list
from deepalign.studies.encoders import EncoderRun, dose_checkpoints

__all__ = ["PreparedEncoders", "needs_encoders", "prepare_encoders", "train_encoder",
           "training_arguments"]


@dataclass(frozen=True)
class PreparedEncoders:
    """Encoder runs of study 3: `paired` (one per encoder seed) and `transfer` (one per
    transfer training set); of study 2: `models`, (zoo name, run) for every "aligned-<name>"
    kernel."""

    paired: tuple[EncoderRun, ...] = ()
    transfer: tuple[EncoderRun, ...] = ()
    models: tuple[tuple[str, EncoderRun], ...] = ()

    def model_run(self, name: str) -> EncoderRun:
        """The run of zoo encoder `name` aligned for study 2."""
        return dict(self.models)[name]


def train_encoder(
    train_dataset: str,
    seed: int,
    directory: Path,
    split_seed: int,
    heldout_fraction: float,
    extra_args: Sequence[str] = (),
    keep_checkpoints: bool = False,
    log: Callable[[str], None] = print,
) -> EncoderRun:
    """Train one encoder into `directory` and return the finished run.

    Calls `trainers.train_alignment` (the library function `python -m deepalign.train`
    wraps, so the recipe is the CLI's, `extra_args` in its syntax) in this process, with its
    output in `directory/train.log`; Lightning is imported only here. `keep_checkpoints`
    saves every epoch's checkpoint (the dose-response view; the best epoch is still chosen
    among all epochs).
    """
    directory.mkdir(parents=True, exist_ok=True)
    arguments = training_arguments(train_dataset, seed, directory, split_seed,
                                   heldout_fraction, keep_checkpoints) + list(extra_args)
    log(f"training encoder: python -m deepalign.train {' '.join(arguments)}")
    from trainers import train_alignment

    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output), \
            warnings.catch_warnings():
        # LightningCLI warns when given args while sys.argv holds this command's own
        warnings.filterwarnings("ignore", message=".*args parameter is intended.*")
        handler = logging.StreamHandler(output)  # Lightning's info lines go to train.log
        loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
        saved = [(lg.level, lg.propagate, list(lg.handlers)) for lg in loggers]
        for lg in loggers:
            lg.handlers, lg.propagate = [handler], False
        try:
            train_alignment(arguments)
            code = 0
        except DeepAlignError as error:
            print(f"error: {error}", file=output)
            code = 2
        except SystemExit as error:  # argument errors exit through argparse
            code = error.code if isinstance(error.code, int) else 2
        finally:
            for lg, (level, propagate, handlers) in zip(loggers, saved):
                lg.setLevel(level)
                lg.handlers, lg.propagate = handlers, propagate
    (directory / "train.log").write_text(output.getvalue(), encoding="utf-8")
    if code != 0:
        raise ConfigError(
            f"training the {train_dataset} encoder (seed {seed}) failed with exit code {code}; "
            f"see {directory / 'train.log'} (last lines: {output.getvalue()[-600:]!r}). "
            "Check 'train_args' in the recipe."
        )
    return EncoderRun.read(directory, train_dataset, seed)


def training_arguments(train_dataset: str, seed: int, directory: Path, split_seed: int,
                       heldout_fraction: float, keep_checkpoints: bool = False) -> list[str]:
    """Arguments of `trainers.train_alignment` (as `python -m deepalign.train` takes them)
    for one run."""
    arguments = [
        f"--seed_everything={seed}",
        f"--trainer.default_root_dir={directory}",
        "--trainer.enable_progress_bar=false",
        f"--data.dataset={train_dataset}",
        f"--data.split_seed={split_seed}",
        f"--data.heldout_fraction={heldout_fraction}",
        "--tensorboard.projector=false",
        "--artifacts.projector=false",
    ]
    if keep_checkpoints:
        arguments.append("--checkpoint.save_top_k=-1")
    return arguments


def _prune_checkpoints(run: EncoderRun, points: int) -> EncoderRun:
    """Delete the checkpoints of a run trained here that the study will not use (all but
    the dose points, the best and last.ckpt)."""
    keep = {path for _, path in dose_checkpoints(run, points)}
    for epoch, path in run.checkpoints:
        if path not in keep and epoch != run.final_epoch and path.name != "last.ckpt":
            path.unlink(missing_ok=True)
    return EncoderRun.read(run.directory, run.train_dataset, run.seed)


def _label(dataset: str) -> str:
    """The directory name of a training set's encoders: its label, plus a hash of the
    resolved path for a user file (two files with one stem, or two cards with one name,
    never share an encoder)."""
    label = dataset_label(dataset)
    if not is_user_dataset(dataset):
        return label
    digest = hashlib.sha256(str(Path(dataset).resolve()).encode()).hexdigest()[:8]
    return f"{label}-{digest}"


def _run(config: StudyConfig, out: Path, train_dataset: str, seed: int, cached: str | None,
         extra_args: Sequence[str], dose_points: int,
         log: Callable[[str], None], directory: Path | None = None) -> EncoderRun:
    if cached is not None:
        return EncoderRun.read(cached, train_dataset, seed)
    directory = directory or out / "encoders" / _label(train_dataset) / f"seed{seed}"
    try:
        run = EncoderRun.read(directory, train_dataset, seed)
        log(f"encoder {directory.relative_to(out)}: already trained, reusing {directory}")
        return run
    except CheckpointError:
        pass
    run = train_encoder(train_dataset, seed, directory, config.split_seed,
                        config.heldout_fraction, extra_args, dose_points > 0, log)
    return _prune_checkpoints(run, dose_points) if dose_points > 0 else run


def needs_encoders(config: StudyConfig) -> bool:
    """True when the recipe trains encoders: a 'trained' section or "aligned-<zoo>" kernels."""
    return config.trained is not None or bool(config.real and config.real.aligned_zoo())


def prepare_encoders(config: StudyConfig, out: Path,
                     log: Callable[[str], None] = print) -> PreparedEncoders:
    """Every encoder studies 2 and 3 need, trained once (see the module docstring)."""
    models: tuple[tuple[str, EncoderRun], ...] = ()
    if config.real is not None:
        r = config.real
        models = tuple(
            (name, _run(config, out, r.train_dataset, 0, r.aligned_runs.get(name),
                        [f"--model.encoder.init_args.backbone={name}", *r.train_args], 0, log,
                        out / "encoders" / "models" / name))
            for name in r.aligned_zoo()
        )
    section = config.trained
    if section is None:
        return PreparedEncoders(models=models)
    seeds = seed_list(section.encoder_seeds)
    cached: list[str | None] = list(section.runs) if section.runs else [None] * len(seeds)
    paired = tuple(
        _run(config, out, section.train_dataset, seed, run, section.train_args,
             section.dose_points if section.checkpoints else 0, log)
        for seed, run in zip(seeds, cached)
    )
    transfer: tuple[EncoderRun, ...] = ()
    if section.transfer is not None:
        x = section.transfer
        transfer = tuple(
            _run(config, out, name, seeds[0], x.runs.get(name), x.train_args, 0, log)
            for name in x.train_datasets
        )
    return PreparedEncoders(paired, transfer, models)
