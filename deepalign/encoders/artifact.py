"""The exported-encoder format: file names, version, known classes, hashing.

Format (version 1), in one directory:

- `encoder.json`: `format` ("deepalign-encoder"), `format_version`, `class_name`, `config`
  (constructor arguments), `output_dim`, `tensors` (name -> shape, dtype), `weights_file`,
  `weights_bytes`, `weights_sha256`, `backbone` (resolved path and fingerprint of the
  backbone directory at export, or null), `deepalign_version`, `torch_version`.
- `encoder.safetensors`: the encoder's `state_dict()`. A frozen `SentenceEncoder` stores its
  head only (the backbone is rebuilt from `config.backbone`: null = the bundled MiniLM, so the
  export is portable); with `finetune_layers` it also stores the trainable backbone weights.
  `RandomInitEncoder` stores its random weights, `LexicalEncoder` its idf (the vocabulary is
  in the config), `LengthEncoder` nothing.

Only JSON and safetensors are read: nothing is ever unpickled (`torch.load` is not used,
so no `weights_only` question arises).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from torch import nn

from deepalign.encoders.length import LengthEncoder
from deepalign.encoders.lexical import LexicalEncoder
from deepalign.encoders.random_init import RandomInitEncoder
from deepalign.encoders.sentence import SentenceEncoder

FORMAT = "deepalign-encoder"
FORMAT_VERSION = 1
CONFIG_FILE = "encoder.json"
WEIGHTS_FILE = "encoder.safetensors"
ENCODER_CLASSES: dict[str, type[nn.Module]] = {
    cls.__name__: cls for cls in (SentenceEncoder, RandomInitEncoder, LexicalEncoder, LengthEncoder)
}
REQUIRED_KEYS = (
    "format",
    "format_version",
    "class_name",
    "config",
    "tensors",
    "weights_bytes",
    "weights_sha256",
    "deepalign_version",
)


def sha256_file(path: Path) -> str:
    """Hex sha256 of the bytes of `path`."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_shapes(shapes: dict[str, Any]) -> str:
    """Short text of a name -> shape mapping (first four entries) for error messages."""
    items = sorted(shapes.items())
    text = ", ".join(
        f"{name} {list(shape) if shape is not None else '?'}" for name, shape in items[:4]
    )
    return "{" + text + (f", ... {len(items) - 4} more" if len(items) > 4 else "") + "}"
