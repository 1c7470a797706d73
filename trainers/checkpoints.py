"""Resume checkpoints safely: find ``--ckpt_path last``, and refuse a bad file before
Lightning touches it.

`validate_checkpoint` loads the file with ``torch.load(weights_only=True)`` (only tensors and
plain containers are unpickled: a pickle that would run code is refused, never executed),
then checks it is a Lightning training checkpoint whose ``state_dict`` matches the model
(same keys and shapes, finite values). Every failure is a `CheckpointError` naming the file,
what was wrong and the fix. `python -m deepalign.train` also passes ``weights_only=True`` to
``Trainer.fit``, so Lightning's own load is restricted the same way.

`VerifiedCheckpoint` (the CLI's ``--checkpoint.*`` callback) writes ``FILE.ckpt.sha256``
beside every checkpoint; when that digest is present the file must match it, which catches
tampering or bit rot inside tensor data (torch's zip reader does not check it). A checkpoint
without a digest (killed between the two writes, or from elsewhere) is checked structurally
only.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from deepalign.errors import CheckpointError

DIGEST_SUFFIX = ".sha256"


def file_digest(path: str | Path) -> str:
    """SHA-256 hex digest of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class VerifiedCheckpoint(ModelCheckpoint):
    """`ModelCheckpoint` that also writes a SHA-256 digest beside each checkpoint (rank 0):
    the old digest is removed first and the new one renamed into place after the save, so a
    digest never describes another file's bytes.

    With ``save_last`` it writes ``last.ckpt`` after *every* epoch. Lightning's own callback
    writes it only in steps that saved a top-k checkpoint, so its ``last.ckpt`` is the last
    epoch that improved the monitor, and a resume from it would lose the epochs after."""

    def on_train_epoch_end(self, trainer: Trainer, pl_module: Any) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_always(trainer)

    def on_validation_end(self, trainer: Trainer, pl_module: Any) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_always(trainer)

    def _save_last_always(self, trainer: Trainer) -> None:
        """last.ckpt for this step when the parent did not write it (nothing is saved twice:
        `_should_skip_saving_checkpoint` is true once this step has a checkpoint)."""
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: Trainer, filepath: str) -> None:
        digest = Path(filepath + DIGEST_SUFFIX)
        if trainer.is_global_zero:
            digest.unlink(missing_ok=True)
        super()._save_checkpoint(trainer, filepath)
        if trainer.is_global_zero and Path(filepath).is_file():
            temporary = digest.with_name(f".{digest.name}.tmp")
            temporary.write_text(file_digest(filepath) + "\n")
            os.replace(temporary, digest)

    def _remove_checkpoint(self, trainer: Trainer, filepath: str) -> None:
        super()._remove_checkpoint(trainer, filepath)
        if trainer.is_global_zero:
            Path(filepath + DIGEST_SUFFIX).unlink(missing_ok=True)

#: Entries every Lightning training checkpoint (resumable, not weights-only) holds.
REQUIRED_KEYS = ("state_dict", "epoch", "global_step", "loops", "optimizer_states")


def find_last_checkpoint(root: str | Path, name: str) -> Path | None:
    """The newest ``<root>/<name>/version_*/checkpoints/last.ckpt`` (by modification time),
    or None when no run there has one."""
    candidates = [p for p in Path(root).glob(f"{name}/version_*/checkpoints/last.ckpt")
                  if p.is_file()]
    if not candidates:
        return None
    return max(candidates, key=lambda p: (p.stat().st_mtime_ns, str(p)))


def validate_checkpoint(path: str | Path, module: nn.Module) -> dict[str, Any]:
    """Load ``path`` safely and check it can resume ``module``; the loaded checkpoint.

    Raises:
        CheckpointError: missing, unreadable, truncated, not a checkpoint, a pickle with
            anything but tensors and plain containers, not resumable, another architecture
            (keys or shapes differ from ``module.state_dict()``) or non-finite weights.
    """
    path = Path(path)
    where = f"checkpoint {str(path)!r}"
    if not path.is_file():
        raise CheckpointError(f"{where}: no such file. Fix: pass an existing .ckpt (e.g. "
                              "RUN/checkpoints/last.ckpt) or --ckpt_path last.")
    digest = path.with_name(path.name + DIGEST_SUFFIX)
    if digest.is_file():
        expected = digest.read_text().strip()
        if file_digest(path) != expected:
            raise CheckpointError(
                f"{where}: its SHA-256 does not match {digest.name} beside it (the file was "
                "modified or corrupted after it was saved). Fix: resume from another "
                "checkpoint of the run (best-*.ckpt beside it) or start without --ckpt_path."
            )
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any failure to unpickle means a bad file
        raise CheckpointError(
            f"{where}: could not be read as a weights-only torch checkpoint "
            f"({type(error).__name__}: {_first_line(error)}); it is truncated, corrupted, not a "
            "checkpoint, or a pickle holding code (never executed). Fix: resume from another "
            "checkpoint of the run (best-*.ckpt beside it) or start without --ckpt_path."
        ) from error
    _check_structure(checkpoint, where)
    _check_state(checkpoint["state_dict"], module.state_dict(), where)
    _check_optimizer(checkpoint, module, where)
    return checkpoint


def _check_optimizer(checkpoint: dict[str, Any], module: nn.Module, where: str) -> None:
    """The optimizer state must resume the module's trainable parameters: one AdamW state
    with their count and shapes (an empty list would resume with a fresh optimizer, silently;
    wrong shapes fail deep inside torch), and the loops a dict of the four Lightning loops."""
    fix = "Fix: resume from another checkpoint of the run, or start without --ckpt_path."
    loops = checkpoint.get("loops")
    if not isinstance(loops, dict) or not isinstance(loops.get("fit_loop"), dict):
        raise CheckpointError(f"{where}: 'loops' is not the Lightning loop state (a dict with "
                              f"'fit_loop'). {fix}")
    states = checkpoint.get("optimizer_states")
    if not isinstance(states, list) or len(states) != 1 or not isinstance(states[0], dict):
        count = len(states) if isinstance(states, list) else type(states).__name__
        raise CheckpointError(f"{where}: 'optimizer_states' should hold the one optimizer of "
                              f"the run, got {count}. {fix}")
    state, groups = states[0].get("state"), states[0].get("param_groups")
    if not isinstance(state, dict) or not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("params"), list) for g in groups):
        raise CheckpointError(f"{where}: the optimizer state lacks 'state' / 'param_groups'. "
                              f"{fix}")
    trainable = [p for p in module.parameters() if p.requires_grad]
    indices = [i for g in groups for i in g["params"]]
    if len(indices) != len(trainable):
        raise CheckpointError(f"{where}: the optimizer state is for {len(indices)} parameter "
                              f"tensors, the model trains {len(trainable)}. Fix: resume with "
                              "the --model options of the run that wrote it, or start without "
                              "--ckpt_path.")
    for position, (index, parameter) in enumerate(zip(indices, trainable)):
        entry = state.get(index, {})
        if not isinstance(entry, dict):
            raise CheckpointError(f"{where}: optimizer state {index!r} is not a dict. {fix}")
        for name, value in entry.items():
            if name == "step":
                continue
            if not isinstance(value, torch.Tensor) or value.shape != parameter.shape:
                shape = tuple(value.shape) if isinstance(value, torch.Tensor) else value
                raise CheckpointError(
                    f"{where}: optimizer state {name!r} of parameter {position} has shape "
                    f"{shape}, the parameter {tuple(parameter.shape)}. {fix}")


def _check_structure(checkpoint: Any, where: str) -> None:
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{where}: expected a Lightning checkpoint (a dict), got "
                              f"{type(checkpoint).__name__}. Fix: pass a .ckpt written by "
                              "python -m deepalign.train.")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(
            f"{where}: not a resumable Lightning checkpoint (missing {', '.join(missing)}). "
            "Fix: pass a .ckpt written by python -m deepalign.train (not a weights-only "
            "export; load exported encoders with deepalign.encoders.load_encoder)."
        )
    if not isinstance(checkpoint["state_dict"], dict):
        kind = type(checkpoint["state_dict"]).__name__
        raise CheckpointError(f"{where}: 'state_dict' is a {kind}, expected a dict of "
                              "tensors. Fix: pass an intact .ckpt.")
    for key in ("epoch", "global_step"):
        value = checkpoint[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CheckpointError(f"{where}: '{key}' must be an int >= 0, got {value!r}. "
                                  "Fix: pass an intact .ckpt.")


def _check_state(state: dict[str, Any], expected: dict[str, torch.Tensor], where: str) -> None:
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [
        f"{key} {tuple(state[key].shape)} (model: {tuple(expected[key].shape)})"
        for key in expected
        if key in state and isinstance(state[key], torch.Tensor)
        and state[key].shape != expected[key].shape
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected {_few(unexpected)}")
        if wrong:
            parts.append(f"wrong shapes {_few(wrong)}")
        raise CheckpointError(
            f"{where}: was saved from another architecture ({'; '.join(parts)}). Fix: resume "
            "with the same --model options (encoder head, rank, dims) as the run that wrote "
            "it (its config.yaml: --config RUN/config.yaml), or start without --ckpt_path."
        )
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{where}: state_dict[{key!r}] is a {type(value).__name__}, "
                                  "expected a tensor. Fix: pass an intact .ckpt.")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise CheckpointError(f"{where}: state_dict[{key!r}] holds NaN or inf (tampered "
                                  "or diverged). Fix: resume from an earlier checkpoint.")


def _few(names: list[str], limit: int = 3) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else ""
