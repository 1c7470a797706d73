"""`load_encoder`: rebuild an exported encoder, refusing anything missing, altered or
mismatched with a `CheckpointError` that names the file and the fix.

Only JSON and safetensors are read; nothing is unpickled. The format is in `artifact.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import Tensor, nn

from deepalign.encoders.artifact import (
    CONFIG_FILE,
    ENCODER_CLASSES,
    FORMAT,
    FORMAT_VERSION,
    REQUIRED_KEYS,
    WEIGHTS_FILE,
    describe_shapes,
    sha256_file,
)
from deepalign.encoders.backbone import backbone_fingerprint, resolve_backbone_path
from deepalign.encoders.heads import max_dim
from deepalign.errors import CheckpointError, ConfigError
from deepalign.limits import env_limit


def load_encoder(
    directory: str | os.PathLike,
    backbone: str | None = None,
    verify_backbone: bool = True,
) -> nn.Module:
    """The encoder exported in `directory`, in eval mode.

    Args:
        directory: a directory written by `export_encoder`.
        backbone: replaces `config.backbone` (e.g. the export moved to a machine where the
            backbone lives elsewhere); None = as recorded.
        verify_backbone: check the backbone directory's fingerprint against the export's.

    Raises `CheckpointError` (naming the file, what was expected and the fix) when the
    directory or a file is missing, the JSON is invalid or lacks keys, the weights file is
    truncated, corrupt or altered (sha256), the class is unknown, the backbone directory is
    missing or different, or the tensors do not fit the architecture.
    """
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise CheckpointError(
            f"encoder directory {str(root)!r} does not exist (or is not a directory); pass "
            f"the directory that export_encoder wrote (it holds {CONFIG_FILE} and "
            f"{WEIGHTS_FILE})."
        )
    config_path = root / CONFIG_FILE
    header = _read_header(config_path)
    class_name = header["class_name"]
    cls = ENCODER_CLASSES.get(class_name) if isinstance(class_name, str) else None
    if cls is None:
        raise CheckpointError(
            f"{config_path}: 'class_name' should be one of {sorted(ENCODER_CLASSES)} but is "
            f"{header['class_name']!r}; the export was written by another program or a newer "
            "deepalign: re-export it with this version."
        )
    weights_path = root / WEIGHTS_FILE
    tensors = _read_weights(weights_path, header)
    config = dict(header["config"])
    _check_sizes(config_path, config)
    if "backbone" in config:
        config["backbone"] = _check_backbone(config_path, header, config, backbone, verify_backbone)
    try:
        encoder = cls(**config)
    except (ConfigError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{config_path}: 'config' does not build a {cls.__name__} ({exc}); the file was "
            "edited or written by another deepalign version: re-export the encoder."
        ) from exc
    _check_architecture(weights_path, encoder, tensors)
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(
                f"{weights_path}: tensor {name!r} holds NaN or inf (a diverged or tampered "
                "export); re-export the encoder from a good checkpoint.")
    encoder.load_state_dict(tensors, strict=True)
    return encoder.eval()


#: The largest encoder.json read (MiB), checked before it is read; `DEEPALIGN_MAX_HEADER_MB`
#: raises it.
MAX_HEADER_MB = 32


def _check_sizes(config_path: Path, config: dict[str, Any]) -> None:
    """Refuse a dimension in `config` (a key ending in 'dim' or 'rank') that is not an int in
    [1, limit], before the class allocates it."""
    limit = max_dim()
    for key, value in config.items():
        if not (key.endswith("dim") or key.endswith("rank")) or value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
            raise CheckpointError(
                f"{config_path}: config[{key!r}] is {value!r}; a layer size must be an int in "
                f"1..{limit} (raise the limit with the environment variable DEEPALIGN_MAX_DIM). "
                "The file was edited or written by another program: re-export the encoder.")


def export_info(directory: str | os.PathLike) -> dict[str, Any]:
    """What the export in `directory` records about its training: ``{"aligned_on": [...]}``
    for a `deepalign.train` run (each training set's name, loader options, weight and item
    split), ``{}`` for an export written without it. Reads `encoder.json` only;
    `CheckpointError` as `load_encoder` for a missing or malformed file."""
    config_path = Path(directory).expanduser() / CONFIG_FILE
    return _read_header(config_path).get("training", {})


def _read_header(config_path: Path) -> dict[str, Any]:
    if not config_path.is_file():
        raise CheckpointError(
            f"{config_path} is missing; an exported encoder directory holds {CONFIG_FILE} and "
            f"{WEIGHTS_FILE}: re-export it with export_encoder(encoder, directory)."
        )
    limit_mb = env_limit("DEEPALIGN_MAX_HEADER_MB", MAX_HEADER_MB)
    size = config_path.stat().st_size
    if size > limit_mb * 2**20:
        raise CheckpointError(
            f"{config_path}: {size / 2**20:,.0f} MiB, above the {limit_mb} MiB an encoder.json "
            "may have (export_encoder writes a few KB, a large lexical vocabulary a few MB); "
            "it is not an export of this program: re-export the encoder, or raise the limit "
            "with the environment variable DEEPALIGN_MAX_HEADER_MB.")
    try:
        header = json.loads(config_path.read_text(encoding="utf-8"))
    except RecursionError:
        raise CheckpointError(
            f"{config_path}: nested too deeply to be an encoder.json written by "
            "export_encoder (its objects are two levels deep); re-export the encoder."
        ) from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(
            f"{config_path}: invalid JSON at line {exc.lineno}, column {exc.colno} ({exc.msg}); "
            "the file was truncated or edited: re-export the encoder."
        ) from exc
    except UnicodeDecodeError as exc:
        raise CheckpointError(
            f"{config_path} is not UTF-8 text ({exc}); it is not an encoder.json written by "
            "export_encoder: re-export the encoder."
        ) from exc
    if not isinstance(header, dict):
        raise CheckpointError(
            f"{config_path}: expected a JSON object but got {type(header).__name__}; "
            "re-export the encoder."
        )
    missing = [key for key in REQUIRED_KEYS if key not in header]
    if missing:
        raise CheckpointError(
            f"{config_path}: missing key(s) {missing} (required: {list(REQUIRED_KEYS)}); the "
            "file was edited or truncated: re-export the encoder."
        )
    if header["format"] != FORMAT:
        raise CheckpointError(
            f"{config_path}: 'format' should be {FORMAT!r} but is {header['format']!r}; "
            "this is not an encoder exported by deepalign."
        )
    version = header["format_version"]
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path}: 'format_version' {version!r} is not supported (this deepalign "
            f"reads 1..{FORMAT_VERSION}); upgrade deepalign or re-export the encoder."
        )
    if not isinstance(header["config"], dict) or not isinstance(header["tensors"], dict):
        raise CheckpointError(
            f"{config_path}: 'config' and 'tensors' should be JSON objects; re-export the encoder."
        )
    if not isinstance(header.get("training", {}), dict):
        raise CheckpointError(f"{config_path}: 'training' should be a JSON object but is "
                              f"{type(header['training']).__name__}; re-export the encoder.")
    return header


def _read_weights(weights_path: Path, header: dict[str, Any]) -> dict[str, Tensor]:
    if not weights_path.is_file():
        raise CheckpointError(
            f"{weights_path} is missing; copy it together with {CONFIG_FILE}, or re-export "
            "the encoder."
        )
    size = weights_path.stat().st_size
    if size != header["weights_bytes"]:
        raise CheckpointError(
            f"{weights_path} has {size} bytes but {CONFIG_FILE} records "
            f"{header['weights_bytes']}: the file is truncated or incomplete (an interrupted "
            "copy?); copy it again or re-export the encoder."
        )
    digest = sha256_file(weights_path)
    if digest != header["weights_sha256"]:
        raise CheckpointError(
            f"{weights_path}: sha256 is {digest} but {CONFIG_FILE} records "
            f"{header['weights_sha256']}: the weights were altered or corrupted after export; "
            "copy the original file again or re-export the encoder."
        )
    try:
        tensors = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(
            f"{weights_path} is not a readable safetensors file ({type(exc).__name__}: {exc}); "
            "re-export the encoder."
        ) from exc
    listed = {
        name: tuple(entry.get("shape", ())) if isinstance(entry, dict) else None
        for name, entry in header["tensors"].items()
    }
    stored = {name: tuple(value.shape) for name, value in tensors.items()}
    if listed != stored:
        raise CheckpointError(
            f"{weights_path} holds tensors {describe_shapes(stored)} but {CONFIG_FILE} lists "
            f"{describe_shapes(listed)}; the two files come from different exports: re-export."
        )
    return tensors


def _check_backbone(
    config_path: Path,
    header: dict[str, Any],
    config: dict[str, Any],
    override: str | None,
    verify: bool,
) -> str | None:
    """The backbone argument to build with; `CheckpointError` if missing or different."""
    argument = override if override is not None else config["backbone"]
    try:
        path = resolve_backbone_path(argument)
    except ConfigError as exc:
        raise CheckpointError(
            f"{config_path}: backbone directory {argument!r} (config.backbone; None = bundled "
            f"all-MiniLM-L6-v2) is not available ({exc}); pass load_encoder(directory, "
            "backbone='<local sentence-transformers directory>') pointing to the backbone "
            "the encoder was trained with."
        ) from exc
    record = header.get("backbone")
    if verify and isinstance(record, dict) and record.get("sha256"):
        fingerprint = backbone_fingerprint(path)
        if fingerprint != record["sha256"]:
            raise CheckpointError(
                f"{config_path}: the backbone at {str(path)!r} differs from the one exported "
                f"(fingerprint {fingerprint[:16]}... vs recorded {record['sha256'][:16]}..., "
                f"exported from {record.get('path')!r}); pass backbone= pointing to the "
                "original backbone directory, or verify_backbone=False to accept the change."
            )
    return argument if override is None else str(path)


def _check_architecture(weights_path: Path, encoder: nn.Module, tensors: dict[str, Tensor]) -> None:
    expected = {name: tuple(value.shape) for name, value in encoder.state_dict().items()}
    stored = {name: tuple(value.shape) for name, value in tensors.items()}
    problems = [
        f"{name}: missing (expected {list(shape)})"
        for name, shape in expected.items()
        if name not in stored
    ]
    problems += [f"{name}: unexpected" for name in stored if name not in expected]
    problems += [
        f"{name}: shape {list(stored[name])}, expected {list(shape)}"
        for name, shape in expected.items()
        if name in stored and stored[name] != shape
    ]
    if problems:
        shown = "; ".join(problems[:5]) + (
            f"; ... {len(problems) - 5} more" if len(problems) > 5 else ""
        )
        raise CheckpointError(
            f"{weights_path} does not fit the {type(encoder).__name__} described by "
            f"{CONFIG_FILE} ({shown}); the files come from different exports or were edited: "
            "re-export the encoder."
        )
