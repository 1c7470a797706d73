"""The encoders a benchmark compares, and the item splits their training fixes.

An encoder is named by a zoo name (`deepalign.encoders.zoo.ZOO`: "minilm", "mpnet", ...) or a
directory: an exported encoder, or a trainer run directory (`runs/spa-verb/version_N`, or
`runs/spa-verb` for its newest finished run), resolved by `encoder_directory`. A trained
export records the human data it was aligned on (`export_info(dir)["aligned_on"]`: each
training set's name, options and item split); `trained_splits` turns those records into one
split per set of human judgments, so that every encoder can be scored on the pairs none of
them trained on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from deepalign.encoders import SentenceEncoder, export_info, load_encoder
from deepalign.encoders.zoo import ZOO
from deepalign.errors import ConfigError
from deepalign.studies.encoders import encoder_directory

__all__ = ["BenchmarkEncoder", "TrainedSplit", "resolve_encoders", "trained_splits"]

#: The split `build_alignment_data` uses where a training record leaves a field out.
_SPLIT_DEFAULTS = {"split_seed": 0, "heldout_fraction": 0.3, "val_fraction": 0.2}


@dataclass(frozen=True)
class BenchmarkEncoder:
    """One encoder to benchmark.

    Attributes:
        name: the argument as given (the row's name).
        zoo: the zoo name, or None for an exported encoder.
        directory: the exported encoder's directory (None for a zoo encoder).
        aligned_on: the training records of the export (`export_info`), () if untrained.
    """

    name: str
    zoo: str | None = None
    directory: Path | None = None
    aligned_on: tuple[dict, ...] = ()

    @property
    def source(self) -> str:
        """"zoo" or the resolved export directory."""
        return "zoo" if self.zoo is not None else str(self.directory)

    def build(self) -> nn.Module:
        """The encoder, in eval mode (a zoo backbone is materialised on first use)."""
        if self.zoo is not None:
            return SentenceEncoder(backbone=self.zoo).eval()
        return load_encoder(self.directory)


def _resolve(spec: str) -> BenchmarkEncoder:
    entry = ZOO.get(spec)
    if entry is not None:
        if not entry.installed():
            raise ConfigError(
                f"encoder {spec!r} ({entry.model}) is not installed; install it with "
                f"`{entry.install}` (or `make setup`, which installs the whole zoo), or leave "
                "it out."
            )
        return BenchmarkEncoder(spec, zoo=spec)
    if not Path(spec).is_dir():
        raise ConfigError(
            f"encoder {spec!r}: not a zoo name ({', '.join(ZOO)}) and not a directory; pass a "
            "zoo name (python -m deepalign.encoders list) or the directory of an exported "
            "encoder or a python -m deepalign.train run"
        )
    try:
        directory = encoder_directory(spec)
    except ConfigError as error:
        raise ConfigError(f"encoder {spec!r}: {error}") from error
    records = export_info(directory).get("aligned_on", [])
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("dataset"), str) for r in records
    ):
        raise ConfigError(
            f"encoder {spec!r}: {directory}/encoder.json 'training.aligned_on' should be a list "
            "of training-set records with a 'dataset' name; re-export the encoder."
        )
    return BenchmarkEncoder(spec, directory=directory, aligned_on=tuple(records))


def resolve_encoders(specs: Sequence[str]) -> tuple[BenchmarkEncoder, ...]:
    """Check every spec before anything is loaded: `ConfigError` naming the first bad one
    (unknown name, a directory without an encoder, a zoo encoder not installed, a repeat);
    a tampered export fails later, in `BenchmarkEncoder.build`, with a `CheckpointError`."""
    if isinstance(specs, str) or not specs:
        raise ConfigError(
            f"encoders: expected one or more encoder names or directories, got {specs!r}; "
            "pass e.g. ['minilm', 'glove']"
        )
    if len(set(specs)) != len(specs):
        raise ConfigError(f"encoders: {list(specs)} lists an encoder twice; name each once")
    return tuple(_resolve(str(spec)) for spec in specs)


@dataclass(frozen=True)
class TrainedSplit:
    """The item split of one set of human judgments some benchmarked encoder trained on.

    Attributes:
        source: whose judgments (`judgment_source`, e.g. "spa-verb" for spa-verb-act too).
        split_seed, heldout_fraction, val_fraction: the trainer's split
            (`trainers.splits.build_alignment_data`).
        encoders: the names of the encoders trained on these judgments.
    """

    source: str
    split_seed: int
    heldout_fraction: float
    val_fraction: float
    encoders: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"source": self.source, "split_seed": self.split_seed,
                "heldout_fraction": self.heldout_fraction, "val_fraction": self.val_fraction,
                "trained_by": list(self.encoders)}


def trained_splits(
    encoders: Sequence[BenchmarkEncoder], sources: Mapping[str, str]
) -> dict[str, TrainedSplit]:
    """Judgment source -> the split the encoders trained on it used.

    Args:
        encoders: the resolved encoders.
        sources: dataset name -> judgment source (`judgment_source`), for the bundled sets; a
            training set not listed is its own source.

    Raises `ConfigError` when two encoders trained on the same judgments with different
    held-out items (no column could be held out from both).
    """
    splits: dict[str, TrainedSplit] = {}
    for encoder in encoders:
        for record in encoder.aligned_on:
            source = sources.get(record["dataset"], record["dataset"])
            fields = {k: record.get(k, default) for k, default in _SPLIT_DEFAULTS.items()}
            split = TrainedSplit(source, int(fields["split_seed"]),
                                 float(fields["heldout_fraction"]),
                                 float(fields["val_fraction"]), (encoder.name,))
            known = splits.get(source)
            if known is None:
                splits[source] = split
                continue
            if (known.split_seed, known.heldout_fraction) != (split.split_seed,
                                                               split.heldout_fraction):
                raise ConfigError(
                    f"encoders {known.encoders[0]!r} (split_seed {known.split_seed}, "
                    f"heldout_fraction {known.heldout_fraction}) and {encoder.name!r} "
                    f"(split_seed {split.split_seed}, heldout_fraction "
                    f"{split.heldout_fraction}) trained on {source!r} judgments with different "
                    "held-out items, so no held-out pairs are new to both; benchmark them in "
                    "separate runs, or train them on one split (--data.split_seed)"
                )
            if encoder.name not in known.encoders:
                splits[source] = TrainedSplit(source, known.split_seed, known.heldout_fraction,
                                              known.val_fraction,
                                              known.encoders + (encoder.name,))
    return splits
