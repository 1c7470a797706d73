"""Build typed, frozen dataclasses from parsed YAML, with errors that name the file and key.

Supported field types: `int`, `float` (an int is accepted), `str`, `bool`, `None`, unions
(`int | tuple[int, ...]`, `X | None`), `tuple[X, ...]` (a YAML list), `dict[str, X]`
(a YAML mapping) and nested dataclasses (a YAML mapping). Unknown keys, wrong types and
missing required fields raise `ConfigError` naming the file and the dotted key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from deepalign.errors import ConfigError
from deepalign.yaml_load import DuplicateKeyError, load_yaml

__all__ = ["build_dataclass", "read_yaml_mapping"]

T = TypeVar("T")


def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Parse `path` as YAML whose top level is a mapping; ConfigError otherwise."""
    file = Path(path)
    if file.is_dir():
        raise ConfigError(f"{file}: is a directory, not a config file; pass the path of a YAML "
                          "recipe (e.g. configs/study/quick.yaml).")
    if not file.is_file():
        raise ConfigError(f"{file}: no such config file; pass the path of a YAML recipe "
                          "(e.g. configs/study/quick.yaml).")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{file}: not UTF-8 text (byte {error.start}: {error.reason}); save "
                          "the recipe as UTF-8 YAML.") from error
    except OSError as error:
        raise ConfigError(f"{file}: cannot be read ({error.strerror}); check its "
                          "permissions.") from error
    if not text.strip():
        raise ConfigError(f"{file}: the file is empty; write a recipe with at least one study "
                          "section (see configs/study/quick.yaml).")
    try:
        data = load_yaml(text)  # a SafeLoader: no object is built
    except DuplicateKeyError as error:
        raise ConfigError(f"{file}: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{file}: not valid YAML ({error}); fix the syntax.") from error
    if data is None:
        raise ConfigError(f"{file}: holds only comments; write a recipe with at least one "
                          "study section (see configs/study/quick.yaml).")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file}: the top level should be a mapping of keys to values but got "
            f"{type(data).__name__}; write 'key: value' lines."
        )
    return data


def build_dataclass(cls: type[T], data: Any, source: str, key: str = "") -> T:
    """Instantiate dataclass `cls` from mapping `data` (from file `source`, at `key`)."""
    where = f"{source}: key '{key}'" if key else f"{source}"
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected a mapping for {cls.__name__} but got "
            f"{type(data).__name__} ({data!r}); write it as 'key: value' lines."
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [name for name in data if name not in fields]
    if unknown:
        first = unknown[0]
        full = f"{key}.{first}" if key else str(first)
        raise ConfigError(
            f"{source}: unknown key '{full}' in {cls.__name__}; expected one of "
            f"{sorted(fields)}. Fix the spelling or remove it."
        )
    values: dict[str, Any] = {}
    for name, field in fields.items():
        full = f"{key}.{name}" if key else name
        if name in data:
            values[name] = _convert(hints[name], data[name], source, full)
        elif (
            field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        ):
            raise ConfigError(f"{source}: missing required key '{full}' of {cls.__name__}; add it.")
    return cls(**values)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping of str to {_describe(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _convert(arg, value, source, key)
            except ConfigError as error:
                if dataclasses.is_dataclass(arg) and isinstance(value, dict):
                    raise error
        raise _type_error(tp, value, source, key)
    if tp is type(None):
        if value is None:
            return None
        raise _type_error(tp, value, source, key)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise _type_error(tp, value, source, key)
        item_type = typing.get_args(tp)[0]
        return tuple(_convert(item_type, v, source, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise _type_error(tp, value, source, key)
        item_type = typing.get_args(tp)[1]
        return {
            str(k): _convert(item_type, v, source, f"{key}.{k}") for k, v in value.items()
        }
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, source, key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _type_error(tp, value, source, key)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _type_error(tp, value, source, key)
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _type_error(tp, value, source, key)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _type_error(tp, value, source, key)
    raise ConfigError(f"{source}: key '{key}' has an unsupported field type {tp!r} (a bug).")


def _type_error(tp: Any, value: Any, source: str, key: str) -> ConfigError:
    hint = ""
    if isinstance(value, str) and _reads_as_number(value):
        # YAML 1.1 (PyYAML) reads 1e12 as text: a float needs a dot and a signed exponent
        hint = (f" (YAML reads {value} as text: write {_yaml_float(value)}, with a dot and a "
                "signed exponent, or an integer without an exponent)")
    return ConfigError(
        f"{source}: key '{key}' should be {_describe(tp)} but got "
        f"{type(value).__name__} ({value!r}){hint}; fix the value."
    )


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity")


def _yaml_float(text: str) -> str:
    """`text` (a number Python reads) as a float PyYAML reads: 1e12 -> 1.0e+12."""
    mantissa, _, exponent = text.strip().lower().partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    if exponent and exponent[0] not in "+-":
        exponent = "+" + exponent
    return f"{mantissa}e{exponent}" if exponent else mantissa
