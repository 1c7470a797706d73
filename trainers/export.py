"""`RunArtifacts`: at the end of training, restore the best checkpoint, measure, export the
encoder, write ``summary.json`` and the final TensorBoard records.

The run directory (``trainer.log_dir``, e.g. ``runs/spa-verb/version_0``) then holds:

- ``config.yaml`` (the resolved configuration, written by the CLI),
- ``events.out.tfevents.*`` and the projector files (TensorBoard),
- ``checkpoints/best-*.ckpt`` (the best epoch by ``val/spearman``) and ``last.ckpt``
  (resume with ``--ckpt_path``),
- ``encoder/`` (`deepalign.encoders.export_encoder`: ``encoder.json`` +
  ``encoder.safetensors``; reload with `deepalign.encoders.load_encoder`),
- ``summary.json``: dataset, split sizes and seed, seconds, and for each split
  ``{measure}_before`` / ``{measure}_after`` (the pretrained and the best encoder), plus
  ``drift_after`` (RMS change of the similarities from the pretrained encoder's),
  ``generalization`` (the two numbers a reused kernel lives by: ``new_x_new``, pairs of two
  held-out items, and ``cross``, one held-out and one train item; before, after, gain),
  ``preservation`` (the suite: Spearman before / after / change on every bundled similarity
  set the run did not train on, the sets left out and why, the pool the preservation term
  used), ``aligned_on`` (every training set) and ``datasets`` (the before/after table of
  every further training set).

Every file is written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from deepalign.encoders import export_encoder
from deepalign.errors import CheckpointError, ConfigError
from trainers.callbacks import log_run_end
from trainers.module import AlignmentModule
from trainers.splits import SPLITS


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as JSON to ``path`` via a temporary file renamed into place (NaN
    becomes null)."""
    text = json.dumps(_finite(payload), indent=2, sort_keys=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def before_after(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """``{split: {"spearman_before": .., "spearman_after": .., ...}}`` for every split."""
    table: dict[str, dict[str, float]] = {}
    for split in SPLITS:
        row: dict[str, float] = {}
        for name in after.get(split, {}):
            row[f"{name}_before"] = before.get(split, {}).get(name, math.nan)
            row[f"{name}_after"] = after[split][name]
        table[split] = row
    return table


MONITOR = "val/spearman"


def initial_score(module: AlignmentModule, monitor: str) -> float:
    """The pretrained encoder's value of ``monitor`` (e.g. ``val_new/spearman``; NaN when
    it is not one of the logged measures)."""
    prefix, _, name = monitor.rpartition("/")
    return module.initial_logged().get(prefix, {}).get(name, math.nan)


def change_table(before: dict[str, float], after: dict[str, float]) -> dict[str, dict[str, float]]:
    """``{name: {"spearman_before", "spearman_after", "change"}}``."""
    return {name: {"spearman_before": before.get(name, math.nan), "spearman_after": value,
                   "change": value - before.get(name, math.nan)}
            for name, value in after.items()}


def restore_best(trainer: Trainer, module: AlignmentModule) -> tuple[str, int | None]:
    """Load the best weights into ``module``; (checkpoint path, epoch).

    Epoch 0, the pretrained encoder, is a candidate too: when no epoch beat its
    ``val/spearman`` the pretrained weights are restored and the result is ``("", 0)``.
    Without a checkpoint callback (or nothing saved) the current weights stay: ``("", None)``.
    """
    callback = trainer.checkpoint_callback
    path = getattr(callback, "best_model_path", "") if callback is not None else ""
    score = getattr(callback, "best_model_score", None) if callback is not None else None
    initial = initial_score(module, str(getattr(callback, "monitor", None) or MONITOR))
    if path and score is not None and module.initial_state and float(score) <= initial:
        module.load_state_dict(module.initial_state)
        return "", 0
    if not path:
        return "", None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(checkpoint["state_dict"])
    except (OSError, RuntimeError, KeyError, ValueError) as error:
        raise CheckpointError(
            f"best checkpoint {path!r}: could not be loaded ({error}). Fix: check the disk "
            "and rerun; the last checkpoint is beside it."
        ) from error
    epoch = checkpoint.get("epoch")
    return path, None if epoch is None else int(epoch) + 1


class RunArtifacts(Callback):
    """Restore the best weights, measure, export, summarise (see the module docstring).

    Args:
        export: write the encoder (``encoder_dirname`` in the run directory).
        encoder_dirname: folder of the exported encoder inside the run directory.
        summary_name: file name of the summary inside the run directory.
        figure_items: most held-out items drawn in the final figure.
        projector: add the trained embeddings to TensorBoard's projector.
    """

    def __init__(
        self,
        export: bool = True,
        encoder_dirname: str = "encoder",
        summary_name: str = "summary.json",
        figure_items: int = 300,
        projector: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("encoder_dirname", encoder_dirname), ("summary_name", summary_name)):
            if not value or Path(value).name != value:
                raise ConfigError(f"artifacts.{name}: expected a plain file name, got "
                                  f"{value!r}. Fix: e.g. 'encoder' / 'summary.json'.")
        self.export = export
        self.encoder_dirname = encoder_dirname
        self.summary_name = summary_name
        self.figure_items = figure_items
        self.projector = projector
        self.paths: dict[str, str] = {}
        self.summary: dict[str, Any] = {}
        self._started = time.perf_counter()

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self._started = time.perf_counter()

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not isinstance(pl_module, AlignmentModule) or pl_module.data is None:
            return
        best_path, best_epoch = restore_best(trainer, pl_module)
        after = pl_module.measure()
        # trainer.log_dir is a collective under DDP (a broadcast from rank 0): every rank asks
        run_dir = Path(trainer.log_dir or trainer.default_root_dir).absolute()
        if not trainer.is_global_zero:
            return
        datamodule = trainer.datamodule
        paths = {"run_dir": str(run_dir), "best_checkpoint": best_path}
        last = getattr(trainer.checkpoint_callback, "last_model_path", "")
        if last:
            paths["last_checkpoint"] = last
        if (run_dir / "config.yaml").exists():
            paths["config"] = str(run_dir / "config.yaml")
        if self.export:
            exported = export_encoder(pl_module.encoder, run_dir / self.encoder_dirname,
                                      training={"aligned_on": aligned_on(datamodule)})
            paths["encoder"] = str(exported)
        preservation_after = pl_module.measure_preservation()
        extra_after = pl_module.measure_extra()
        changes = change_table(pl_module.initial_preservation, preservation_after)
        hparams = self._hparams(pl_module, datamodule)
        log_run_end(trainer, pl_module, after, hparams, self.figure_items, self.projector)
        data = pl_module.data
        setup_seconds = float(getattr(datamodule, "setup_seconds", 0.0))
        summary: dict[str, Any] = {
            "dataset": data.dataset_name,
            "dataset_options": dict(getattr(datamodule, "dataset_options", {}) or {}),
            "split_seed": data.split_seed,
            "heldout_fraction": data.heldout_fraction,
            "val_fraction": data.val_fraction,
            "sizes": data.sizes(),
            "seconds": round(time.perf_counter() - self._started + setup_seconds, 2),
            "epochs_run": trainer.current_epoch,
            "best_epoch": best_epoch,
            "selected": "pretrained" if best_epoch == 0 else "best_checkpoint",
            "monitor": str(getattr(trainer.checkpoint_callback, "monitor", None) or MONITOR),
            "encoder": {"class": type(pl_module.encoder).__name__,
                        "config": _config(pl_module.encoder)},
            "loss": type(pl_module.loss).__name__,
            "hparams": _public(pl_module.hparams),
            "drift_after": pl_module.drift(),
            "paths": {**paths, "summary": str(run_dir / self.summary_name)},
            "aligned_on": aligned_on(datamodule),
            "generalization": {
                key: {"spearman_before": pl_module.initial_measures[split]["spearman"],
                      "spearman_after": after[split]["spearman"],
                      "gain": after[split]["spearman"]
                      - pl_module.initial_measures[split]["spearman"]}
                for key, split in (("new_x_new", "heldout"), ("cross", "cross"))
            },
            "preservation": {
                "sets": {s.name: {**changes[s.name], "pairs": s.n_pairs}
                         for s in pl_module.suite.sets},
                "largest_drop": max((-row["change"] for row in changes.values()),
                                    default=math.nan),
                "excluded": dict(pl_module.suite.excluded),
                "pool": {"texts": len(getattr(datamodule, "pool_texts", ()) or ()),
                         "weight": pl_module.preservation_weight,
                         "datasets": getattr(datamodule, "pool_datasets", None),
                         "excludes_suite": getattr(datamodule, "pool_excludes_suite", None)},
            },
            "datasets": {name: before_after(pl_module.initial_extra.get(name, {}), splits)
                         for name, splits in extra_after.items()},
            **before_after(pl_module.initial_measures, after),
        }
        write_json_atomic(run_dir / self.summary_name, summary)
        self.paths = summary["paths"]
        self.summary = summary

    @staticmethod
    def _hparams(module: AlignmentModule, datamodule: Any) -> dict[str, Any]:
        """Flat hyperparameters for TensorBoard's HParams view."""
        params: dict[str, Any] = {f"model/{k}": v for k, v in _public(module.hparams).items()}
        params["model/loss"] = type(module.loss).__name__
        params["model/encoder"] = type(module.encoder).__name__
        for key, value in _config(module.encoder).items():
            params[f"encoder/{key}"] = "None" if value is None else value
        for key, value in _public(getattr(datamodule, "hparams", {}) or {}).items():
            params[f"data/{key}"] = value if isinstance(value, int | float | str | bool) else str(
                value)
        if module.data is not None:
            params["data/split_seed"] = module.data.split_seed
        return params


def aligned_on(datamodule: Any) -> list[dict[str, Any]]:
    """The datamodule's training sets (`AlignmentDataModule.aligned_on`), or []."""
    records = getattr(datamodule, "aligned_on", None)
    return records() if callable(records) else []


def _public(hparams: Any) -> dict[str, Any]:
    """Hyperparameters without Lightning's private entries (``_instantiator``)."""
    return {key: value for key, value in dict(hparams).items() if not key.startswith("_")}


def _config(encoder: Any) -> dict[str, Any]:
    config = getattr(encoder, "config", None)
    return dict(config()) if callable(config) else {}
