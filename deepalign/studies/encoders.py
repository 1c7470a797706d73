"""Trained encoder runs as the studies read them (training them: `encoder_training`).

A trainer run directory (`ROOT/<dataset>/version_N`) holds `encoder/` (the exported
encoder), `summary.json` (dataset, split seed, alignment before/after per split) and
Lightning checkpoints. `EncoderRun` reads one; `encoder_directory` finds the exported encoder
of a path; `dose_checkpoints` picks the checkpoints of a dose-response.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from deepalign.encoders import (
    LengthEncoder,
    LexicalEncoder,
    RandomInitEncoder,
    SentenceEncoder,
    load_encoder,
)
from deepalign.errors import CheckpointError, ConfigError

__all__ = ["EncoderRun", "dose_checkpoints", "encoder_directory"]

_CLASSES: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (SentenceEncoder, RandomInitEncoder, LexicalEncoder, LengthEncoder)
}


def _run_directory(root: Path) -> Path | None:
    """The directory of the newest `summary.json` under `root` (the trainer writes it into
    its log directory, e.g. `root/<name>/version_0`, last of all its files)."""
    if (root / "summary.json").is_file():
        return root
    found = sorted(root.rglob("summary.json"), key=lambda p: p.stat().st_mtime)
    return found[-1].parent if found else None


def encoder_directory(path: str | Path) -> Path:
    """The exported encoder at `path`: `path` itself, `path/encoder`, or the encoder of the
    newest finished trainer run under `path` (e.g. `runs/spa-verb`); ConfigError otherwise."""
    root = Path(path)
    for candidate in (root, root / "encoder"):
        if (candidate / "encoder.json").is_file():
            return candidate
    run = _run_directory(root) if root.is_dir() else None
    if run is not None and (run / "encoder" / "encoder.json").is_file():
        return run / "encoder"
    raise ConfigError(
        f"{root}: no exported encoder there (expected {root}/encoder.json, "
        f"{root}/encoder/encoder.json or a finished `python -m deepalign.train` run below it); "
        "train one (make train) or give an export_encoder directory."
    )


@dataclass(frozen=True)
class EncoderRun:
    """One trained encoder: where it is and what its trainer reported.

    Attributes:
        train_dataset: what it was aligned on; seed: its training seed; directory: the run
        directory; encoder_dir: the exported encoder; summary: `summary.json` as a dict;
        checkpoints: (epoch, checkpoint file) along training, epoch order.
    """

    train_dataset: str
    seed: int
    directory: Path
    encoder_dir: Path
    summary: dict
    checkpoints: tuple[tuple[float, Path], ...] = field(default=())

    @classmethod
    def read(cls, directory: str | Path, train_dataset: str, seed: int) -> EncoderRun:
        """Read the run in `directory`; CheckpointError naming what is missing."""
        root = Path(directory)
        run = _run_directory(root) if root.is_dir() else None
        if run is None or not (run / "encoder" / "encoder.json").is_file():
            raise CheckpointError(
                f"{root}: not a finished `deepalign.train` run (no summary.json with an "
                "encoder/encoder.json beside it); train it again or point 'trained.runs' at "
                "a finished run directory."
            )
        summary = run / "summary.json"
        try:
            data = json.loads(summary.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{summary}: not valid JSON ({error}); re-run training.") \
                from error
        return cls(train_dataset, seed, run, run / "encoder", data, _checkpoints(run))

    @property
    def split_seed(self) -> int:
        """The item split seed the trainer used."""
        return int(self.summary.get("split_seed", 0))

    @property
    def heldout_fraction(self) -> float:
        return float(self.summary.get("heldout_fraction", 0.3))

    @property
    def final_epoch(self) -> float:
        """Epoch of the exported encoder (nan when the summary does not say)."""
        for key in ("best_epoch", "epochs_run", "epochs"):
            value = self.summary.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        return math.nan

    def summary_alignment(self, split: str, stage: str) -> float:
        """Spearman `stage` ("before" / "after") on `split` from the summary (nan if absent)."""
        entry = self.summary.get(split, {})
        if not isinstance(entry, dict):
            return math.nan
        value = entry.get(f"spearman_{stage}")
        return float(value) if isinstance(value, int | float) else math.nan

    def preservation(self) -> dict[str, dict[str, float]]:
        """The preservation suite of the summary: {set: {"before", "after", "change",
        "pairs"}} (Spearman on each bundled similarity set not trained on; nan where a number
        is missing); {} for a summary without one (runs older than the suite)."""
        block = self.summary.get("preservation")
        sets = block.get("sets") if isinstance(block, dict) else None
        if not isinstance(sets, dict):
            return {}
        out = {}
        for name, entry in sets.items():
            row = _numbers(entry, before="spearman_before", after="spearman_after",
                           change="change", pairs="pairs")
            if math.isnan(row["change"]):
                row["change"] = row["after"] - row["before"]
            out[str(name)] = row
        return out

    def preservation_excluded(self) -> dict[str, str]:
        """{set: why it is not in the preservation suite} from the summary ({} if absent)."""
        block = self.summary.get("preservation")
        excluded = block.get("excluded") if isinstance(block, dict) else None
        return ({str(k): str(v) for k, v in excluded.items()} if isinstance(excluded, dict)
                else {})

    def generalization(self) -> dict[str, dict[str, float]]:
        """{"new_x_new", "cross"}: {"before", "after", "gain"} (Spearman on pairs of two
        held-out items / one held-out and one train item) from the summary's
        `generalization` block; {} without one."""
        block = self.summary.get("generalization")
        if not isinstance(block, dict):
            return {}
        return {str(key): _numbers(entry, before="spearman_before", after="spearman_after",
                                   gain="gain")
                for key, entry in block.items() if isinstance(entry, dict)}

    def export_config(self) -> dict:
        return json.loads((self.encoder_dir / "encoder.json").read_text(encoding="utf-8"))

    def untrained_encoder(self) -> nn.Module:
        """The same encoder before training: rebuilt from the export's class and constructor
        arguments (its seed gives the same head initialisation), no trained weights."""
        exported = self.export_config()
        cls = _CLASSES.get(exported.get("class_name", ""))
        if cls is None:
            raise CheckpointError(
                f"{self.encoder_dir}/encoder.json: unknown class_name "
                f"{exported.get('class_name')!r}; expected one of {sorted(_CLASSES)}."
            )
        return cls(**exported["config"])

    def trained_encoder(self) -> nn.Module:
        return load_encoder(self.encoder_dir)

    def checkpoint_encoder(self, epoch: float) -> nn.Module:
        """The encoder at checkpoint `epoch` (weights from the Lightning checkpoint)."""
        from deepalign.studies.checkpoints import encoder_from_checkpoint

        for checkpoint_epoch, path in self.checkpoints:
            if checkpoint_epoch == epoch:
                return encoder_from_checkpoint(path, self.untrained_encoder())
        raise CheckpointError(f"{self.directory}: no checkpoint of epoch {epoch:g}.")


def _numbers(entry: object, **keys: str) -> dict[str, float]:
    """{name: float(entry[key])} for `keys` (name=key), nan where missing or not a number."""
    entry = entry if isinstance(entry, dict) else {}
    return {name: float(entry[key]) if isinstance(entry.get(key), int | float)
            and not isinstance(entry.get(key), bool) else math.nan for name, key in keys.items()}


def _checkpoints(root: Path) -> tuple[tuple[float, Path], ...]:
    from deepalign.studies.checkpoints import list_checkpoints

    return list_checkpoints(root)


def dose_checkpoints(run: EncoderRun, points: int) -> tuple[tuple[float, Path], ...]:
    """At most `points` checkpoints of `run` evenly spaced over its saved epochs, leaving out
    the final (exported) epoch; epoch order."""
    candidates = [(e, p) for e, p in run.checkpoints if e > 0 and e != run.final_epoch]
    if points <= 0 or not candidates:
        return ()
    if len(candidates) <= points:
        return tuple(candidates)
    step = len(candidates) / points
    chosen = sorted({min(len(candidates) - 1, int((i + 1) * step) - 1) for i in range(points)})
    return tuple(candidates[i] for i in chosen)
