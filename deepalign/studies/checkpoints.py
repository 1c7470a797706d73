"""Encoders at intermediate training checkpoints (the dose-response view of study 3).

Lightning checkpoints (`*.ckpt`) of a `deepalign.train` run are read with
`torch.load(weights_only=True)` (tensors and plain containers only; never arbitrary
pickles). The encoder's weights are the entries of `state_dict` under the module's
`encoder.` prefix; they are loaded into the untrained encoder rebuilt from the run's export
config.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import torch
from torch import nn

from deepalign.errors import CheckpointError

__all__ = ["ENCODER_PREFIX", "encoder_from_checkpoint", "list_checkpoints"]

ENCODER_PREFIX = "encoder."


def _load(path: Path) -> dict:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, ValueError) as error:
        raise CheckpointError(
            f"{path}: cannot be read as a weights-only checkpoint ({error}); it is truncated "
            "or not a Lightning checkpoint: delete it or re-run training."
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path}: no 'state_dict' in the checkpoint; not a Lightning "
                              "checkpoint of deepalign.train.")
    return checkpoint


def list_checkpoints(root: str | Path) -> tuple[tuple[float, Path], ...]:
    """(epochs completed, file) of the checkpoints under `root`, one per epoch, in order.

    The epoch of a checkpoint is its `epoch` entry + 1 (Lightning counts from 0, saving
    after that epoch); unreadable files are skipped.
    """
    found: dict[float, Path] = {}
    for path in sorted(Path(root).rglob("*.ckpt")):
        try:
            checkpoint = _load(path)
        except CheckpointError:
            continue
        epoch = checkpoint.get("epoch")
        if not isinstance(epoch, int):
            continue
        found.setdefault(float(epoch + 1), path)
    return tuple(sorted(found.items()))


def encoder_from_checkpoint(path: str | Path, encoder: nn.Module) -> nn.Module:
    """Load the `encoder.`-prefixed weights of checkpoint `path` into `encoder` (returned)."""
    checkpoint = _load(Path(path))
    weights = {
        key[len(ENCODER_PREFIX):]: value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(ENCODER_PREFIX)
    }
    if not weights:
        raise CheckpointError(
            f"{path}: no weights under the '{ENCODER_PREFIX}' prefix; the checkpoint is not of a "
            "deepalign.train module."
        )
    result = encoder.load_state_dict(weights, strict=False)
    if result.unexpected_keys:
        raise CheckpointError(
            f"{path}: weights {result.unexpected_keys[:3]} do not fit the encoder of the export "
            "config (wrong architecture); use the checkpoints of the same run."
        )
    encoder.eval()
    return encoder


def checkpoint_epoch_label(epoch: float) -> str:
    """'epoch-3' (nan -> 'final')."""
    return "final" if math.isnan(epoch) else f"epoch-{epoch:g}"
