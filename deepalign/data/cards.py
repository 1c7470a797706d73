"""Dataset cards and `open_dataset`: one way in for a bundled name, an items CSV or a card.

A dataset card is a small YAML (``.yaml``/``.yml``) or TOML (``.toml``) file naming your
files and what their columns mean; paths are relative to the card::

    name: my-actions                 # optional; default the card's stem
    items: actions.csv               # required: the items CSV
    similarity: survey_similarity.npy   # optional: matrix (.npy/.csv) or pairs CSV
    kind: similarity                 # or distance (declared, never guessed)
    similarity_scale: [0, 1]         # optional
    text_column: action              # optional (default: text, action, description, ...)
    id_column: id                    # optional
    scale: [0, 100]                  # default scale of every value
    threshold: 50                    # default bad-action threshold (else the midpoint)
    values:                          # optional: a list of columns, or per column:
      justice: {scale: [0, 100], threshold: 50}
      care: {}

`open_dataset(spec, similarity=None, **options)` is what every command calls: a bundled
name goes to `load_dataset` (with `options`), a ``.csv`` to `load_user_dataset` (with
`similarity`), a card to `load_user_dataset` with the card's settings. Every error names
the card and the key.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from deepalign.data.dataset import Dataset
from deepalign.data.registry import list_datasets, load_dataset
from deepalign.data.user import load_user_dataset
from deepalign.data.validation import describe
from deepalign.errors import ConfigError, DataError
from deepalign.yaml_load import DuplicateKeyError, load_yaml

__all__ = ["CARD_SUFFIXES", "dataset_label", "is_user_dataset", "open_dataset", "read_card"]

CARD_SUFFIXES = (".yaml", ".yml", ".toml")
_TOP_KEYS = ("name", "items", "similarity", "kind", "similarity_scale", "similarity_format",
             "ignore_diagonal", "text_column", "id_column", "scale", "threshold", "values")
_VALUE_KEYS = ("scale", "threshold", "spread_column")
#: What a dataset spec may be, for error messages.
SPEC_WORDS = ("a bundled dataset name (python -m deepalign.data list), an items CSV (.csv) "
              "or a dataset card (.yaml/.toml)")


def is_user_dataset(spec: str) -> bool:
    """Whether `spec` names a user file (items CSV or card) rather than a bundled set."""
    return str(spec).lower().endswith((".csv", *CARD_SUFFIXES))


def dataset_label(spec: str | os.PathLike[str]) -> str:
    """A name for `spec` fit for a directory: the bundled name, a card's `name` (when it
    reads as one), else the user file's stem."""
    text = os.fspath(spec)
    if not is_user_dataset(text):
        return text
    if text.lower().endswith(CARD_SUFFIXES):
        try:
            name = _load_card_file(Path(text)).get("name")
        except DataError:
            name = None
        if (isinstance(name, str) and name.strip() and "/" not in name and "\\" not in name
                and name.strip() not in (".", "..")):
            return name.strip()
    return Path(text).stem


def open_dataset(spec: str | os.PathLike[str], similarity: str | os.PathLike[str] | None = None,
                 **options: Any) -> Dataset:
    """The dataset `spec` names: a bundled name (`options` go to its loader), an items CSV
    (`similarity`: its similarity file; `options` go to `load_user_dataset`) or a dataset
    card. Raises `ConfigError`/`DataError` naming the file and field."""
    text = os.fspath(spec)
    if not is_user_dataset(text):
        if similarity is not None:
            raise ConfigError(f"similarity: only an items CSV takes a similarity file, got "
                              f"dataset {text!r} (bundled). Fix: drop the similarity file, or "
                              "pass your items CSV as the dataset.")
        if text not in list_datasets():
            raise ConfigError(f"dataset: expected {SPEC_WORDS}, got {describe(text)}. Fix: "
                              f"pick one of {', '.join(list_datasets())}, or pass a path "
                              "ending in .csv, .yaml or .toml.")
        return load_dataset(text, **options)
    path = Path(text)
    if not path.is_file():
        raise DataError(f"{path}: no such file (the dataset). Fix: give the path of an "
                        "existing items CSV or dataset card.")
    if text.lower().endswith(".csv"):
        return load_user_dataset(path, similarity, **options)
    if similarity is not None:
        raise ConfigError(f"similarity: a dataset card names its own similarity file, got "
                          f"{os.fspath(similarity)!r} beside {path}. Fix: put it in the card's "
                          "'similarity:' key.")
    arguments = read_card(path)
    arguments.update(options)
    try:
        return load_user_dataset(**arguments)
    except ConfigError as error:  # an option's error: say which card set it
        raise ConfigError(f"{path}: {error}") from error


def _load_card_file(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror}). Fix: check the path and "
                        "its permissions.") from error
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (byte {error.start}). Fix: save the card as "
                        "UTF-8.") from error
    try:
        data = (tomllib.loads(text) if path.suffix.lower() == ".toml"
                else load_yaml(text))
    except DuplicateKeyError as error:
        raise DataError(f"{path}: {error}") from None
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as error:
        what = "TOML" if path.suffix.lower() == ".toml" else "YAML"
        detail = " ".join(str(error).split())
        raise DataError(f"{path}: not valid {what} ({detail}). Fix: correct the syntax.") \
            from error
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a mapping of keys (items, similarity, values, ...), "
                        f"got {type(data).__name__ if data is not None else 'an empty file'}. "
                        "Fix: write 'items: FILE.csv' and the other keys (see "
                        "deepalign.data.cards).")
    return data


def _card_error(path: Path, key: str, expected: str, got: object, fix: str) -> ConfigError:
    return ConfigError(f"{path}: {key}: expected {expected}, got {describe(got)}. Fix: {fix}")


def _pair(path: Path, key: str, value: object) -> tuple[float, float]:
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise _card_error(path, key, "a [LO, HI] pair of numbers", value, "write e.g. [0, 100].")
    lo, hi = float(value[0]), float(value[1])
    if not (abs(lo) < float("inf") and abs(hi) < float("inf") and lo < hi):
        raise _card_error(path, key, "finite numbers with LO < HI", value,
                          "write e.g. [0, 100].")
    return lo, hi


def _number(path: Path, key: str, value: object) -> float:
    if (not isinstance(value, (int, float)) or isinstance(value, bool)
            or not abs(float(value)) < float("inf")):
        raise _card_error(path, key, "a finite number", value, "write e.g. 50.")
    return float(value)


def _string(path: Path, key: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _card_error(path, key, "a non-empty string", value, "write the name or path.")
    return value


def _file(path: Path, key: str, value: object) -> Path:
    file = path.parent / _string(path, key, value)
    if not file.is_file():
        raise DataError(f"{path}: {key}: no such file {str(file)!r}. Fix: give a path that "
                        "exists, relative to the card.")
    return file


def read_card(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Parse and check a dataset card; returns `load_user_dataset` keyword arguments."""
    path = Path(path)
    data = _load_card_file(path)
    unknown = [k for k in data if k not in _TOP_KEYS]
    if unknown:
        raise _card_error(path, str(unknown[0]), f"one of the keys {', '.join(_TOP_KEYS)}",
                          unknown[0], "remove or rename the key.")
    if "items" not in data:
        raise ConfigError(f"{path}: items: missing. Fix: name the items CSV, e.g. "
                          "'items: actions.csv'.")
    out: dict[str, Any] = {"items_csv": _file(path, "items", data["items"]),
                           "name": _string(path, "name", data.get("name", path.stem))}
    if data.get("similarity") is not None:
        out["similarity"] = _file(path, "similarity", data["similarity"])
    for key in ("kind", "similarity_format", "text_column", "id_column"):
        if key in data:
            out[key] = _string(path, key, data[key])
    if "ignore_diagonal" in data:
        if not isinstance(data["ignore_diagonal"], bool):
            raise _card_error(path, "ignore_diagonal", "true or false", data["ignore_diagonal"],
                              "write true or false.")
        out["ignore_diagonal"] = data["ignore_diagonal"]
    if "similarity_scale" in data:
        out["similarity_scale"] = _pair(path, "similarity_scale", data["similarity_scale"])
    default_scale = _pair(path, "scale", data["scale"]) if "scale" in data else None
    default_threshold = (_number(path, "threshold", data["threshold"])
                         if "threshold" in data else None)
    values = data.get("values")
    if values is None:
        if default_scale is not None:
            out["scales"] = default_scale
        if default_threshold is not None:
            out["thresholds"] = default_threshold
        return out
    if isinstance(values, list):
        names = [_string(path, f"values[{k}]", v) for k, v in enumerate(values)]
        twice = next((v for v in names if names.count(v) > 1), None)
        if twice is not None:
            raise _card_error(path, "values", "each value column once", twice,
                              "list it once.")
        values = {name: {} for name in names}
    if not isinstance(values, dict) or not values:
        raise _card_error(path, "values", "a list of value columns or a mapping column -> "
                          "{scale, threshold}", values, "e.g. 'values: [justice, care]'.")
    scales, thresholds, spreads = {}, {}, {}
    for column, settings in values.items():
        key = f"values.{column}"
        settings = {} if settings is None else settings
        if not isinstance(settings, dict):
            raise _card_error(path, key, "a mapping with scale / threshold / spread_column",
                              settings, "write e.g. {scale: [0, 100], threshold: 50}.")
        extra = [k for k in settings if k not in _VALUE_KEYS]
        if extra:
            raise _card_error(path, f"{key}.{extra[0]}", f"one of {', '.join(_VALUE_KEYS)}",
                              extra[0], "remove or rename the key.")
        if "scale" in settings or default_scale is not None:
            scales[column] = (_pair(path, f"{key}.scale", settings["scale"])
                              if "scale" in settings else default_scale)
        if "threshold" in settings or default_threshold is not None:
            thresholds[column] = (_number(path, f"{key}.threshold", settings["threshold"])
                                  if "threshold" in settings else default_threshold)
        if "spread_column" in settings:
            spreads[column] = _string(path, f"{key}.spread_column", settings["spread_column"])
    out["value_columns"] = tuple(str(c) for c in values)
    if scales:
        out["scales"] = scales
    if thresholds:
        out["thresholds"] = thresholds
    if spreads:
        out["spread_columns"] = spreads
    return out
