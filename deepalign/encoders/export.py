"""`export_encoder`: write an encoder as `encoder.json` + `encoder.safetensors` (atomic).

The format is described in `artifact.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from deepalign.encoders.artifact import (
    CONFIG_FILE,
    ENCODER_CLASSES,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    sha256_file,
)
from deepalign.encoders.backbone import backbone_fingerprint
from deepalign.encoders.lexical import LexicalEncoder
from deepalign.encoders.random_init import RandomInitEncoder
from deepalign.encoders.sentence import SentenceEncoder
from deepalign.errors import ConfigError


def export_encoder(
    encoder: nn.Module, directory: str | os.PathLike, training: dict[str, Any] | None = None
) -> Path:
    """Write `encoder` to `directory` (`encoder.json` + `encoder.safetensors`); its path.

    `training` (JSON-serialisable) is recorded as the header's ``training`` entry: the
    trainer puts ``{"aligned_on": [...]}`` there, the human data the encoder was aligned on
    (read it back with `export_info`).

    Atomic: both files are written into a temporary sibling directory which is then renamed
    into place, so `directory` never holds a half-written export. An existing `directory`
    is replaced only if it is empty or holds an earlier export (nothing else).
    """
    class_name = type(encoder).__name__
    if ENCODER_CLASSES.get(class_name) is not type(encoder):
        raise ConfigError(
            f"'encoder' should be one of {sorted(ENCODER_CLASSES)} but got {class_name}; "
            "export one of those (save a custom nn.Module with safetensors.torch.save_model)."
        )
    if isinstance(encoder, LexicalEncoder) and not encoder.fitted:
        raise ConfigError(
            "'encoder' is a LexicalEncoder that was never fitted, so it has no vocabulary to "
            "export; call encoder.fit(texts) first."
        )
    target = Path(directory).expanduser().absolute()
    _check_replaceable(target)
    tensors = {
        name: value.detach().to("cpu").contiguous().clone()
        for name, value in encoder.state_dict().items()
    }
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class_name": class_name,
        "config": encoder.config(),
        "output_dim": encoder.output_dim,
        "tensors": {
            name: {"shape": list(value.shape), "dtype": str(value.dtype).removeprefix("torch.")}
            for name, value in tensors.items()
        },
        "weights_file": WEIGHTS_FILE,
        "backbone": _backbone_record(encoder),
        "deepalign_version": _deepalign_version(),
        "training": dict(training or {}),
        "torch_version": torch.__version__,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        weights_path = staging / WEIGHTS_FILE
        save_file(tensors, str(weights_path), metadata={"format": FORMAT})
        header["weights_bytes"] = weights_path.stat().st_size
        header["weights_sha256"] = sha256_file(weights_path)
        config_path = staging / CONFIG_FILE
        config_path.write_text(json.dumps(header, indent=2, sort_keys=True) + "\n")
        for path in (weights_path, config_path):
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _backbone_record(encoder: nn.Module) -> dict[str, str] | None:
    if isinstance(encoder, SentenceEncoder | RandomInitEncoder):
        path = encoder.backbone_path
        return {"path": str(path), "sha256": backbone_fingerprint(path)}
    return None


def _check_replaceable(target: Path) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise ConfigError(
            f"'directory' {str(target)!r} exists and is not a directory; choose a new path."
        )
    others = sorted(p.name for p in target.iterdir() if p.name not in (CONFIG_FILE, WEIGHTS_FILE))
    if others:
        raise ConfigError(
            f"'directory' {str(target)!r} holds other files ({others[:5]}); export_encoder "
            "replaces only an empty directory or an earlier export: choose a new path."
        )


def _move_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        os.replace(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, retired / "previous")
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(retired / "previous", target)
        raise
    finally:
        shutil.rmtree(retired, ignore_errors=True)


def _deepalign_version() -> str:
    import deepalign

    return deepalign.__version__
