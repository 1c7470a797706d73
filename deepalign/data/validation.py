"""Shared checks and the one message format every data error uses.

A message reads ``SOURCE: WHERE: expected EXPECTED, got GOT. Fix: FIX`` on one line, where
SOURCE is the file (or the in-memory object) and WHERE the line, column or cell.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from deepalign.errors import ConfigError, DataError

__all__ = [
    "check_finite",
    "check_in_scale",
    "check_scale",
    "data_error",
    "describe",
    "normalize_indices",
]


def describe(value: object, limit: int = 60) -> str:
    """A short one-line ``repr`` of ``value`` for error messages."""
    text = repr(value).replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def data_error(source: str, where: str, expected: str, got: str, fix: str) -> DataError:
    """Build a `DataError` in the house format (one line; names source, place, expectation, fix)."""
    message = f"{source}: {where}: expected {expected}, got {got}. Fix: {fix}"
    return DataError(message.replace("\n", " ").replace("\r", " "))


def check_scale(scale: object, name: str) -> tuple[float, float]:
    """Validate a declared ``(lo, hi)`` scale; returns it as a float pair.

    Raises `ConfigError` when it is not two finite numbers with ``lo < hi``.
    """
    try:
        lo, hi = (float(v) for v in scale)  # type: ignore[union-attr]
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{name}: expected a (lo, hi) pair of numbers, got {describe(scale)}. "
            f"Fix: pass e.g. {name}=(0, 100)."
        ) from exc
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ConfigError(
            f"{name}: expected finite lo < hi, got {(lo, hi)}. Fix: pass the lowest and the "
            "highest rating the scale allows, lowest first."
        )
    return lo, hi


def check_finite(
    values: np.ndarray, source: str, locate: Callable[[int], str], what: str, fix: str
) -> None:
    """Raise a `DataError` at the first NaN/inf entry of the flat array ``values``."""
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        k = int(bad[0])
        raise data_error(
            source, locate(k), f"a finite {what}", f"{values.flat[k]!r}", fix
        )


def check_in_scale(
    values: np.ndarray,
    scale: tuple[float, float],
    source: str,
    locate: Callable[[int], str],
    what: str,
) -> None:
    """Raise a `DataError` at the first entry of flat ``values`` outside ``scale``."""
    lo, hi = scale
    bad = np.flatnonzero((values < lo) | (values > hi))
    if bad.size:
        k = int(bad[0])
        raise data_error(
            source,
            locate(k),
            f"a {what} on the declared scale [{lo:g}, {hi:g}]",
            f"{float(values.flat[k]):g}",
            "correct the rating, or declare the scale the ratings were collected on",
        )


def normalize_indices(indices: object, n: int, name: str = "indices") -> list[int]:
    """Turn ``indices`` (ints, a LongTensor, or a length-``n`` bool mask) into a list of ints.

    Raises `ConfigError` for out-of-range, repeated, empty or non-integer indices.
    """
    if isinstance(indices, torch.Tensor):
        if indices.dtype == torch.bool:
            if indices.shape != (n,):
                raise ConfigError(
                    f"{name}: expected a bool mask of shape ({n},), got {tuple(indices.shape)}. "
                    "Fix: pass one flag per item."
                )
            indices = torch.nonzero(indices).flatten()
        elif indices.is_floating_point() or indices.is_complex():
            raise ConfigError(
                f"{name}: expected integer indices, got a {indices.dtype} tensor. "
                "Fix: pass a LongTensor or a list of ints."
            )
        out = [int(i) for i in indices.flatten().tolist()]
    elif isinstance(indices, np.ndarray) and indices.dtype == np.bool_:
        if indices.shape != (n,):
            raise ConfigError(
                f"{name}: expected a bool mask of shape ({n},), got {indices.shape}. "
                "Fix: pass one flag per item."
            )
        out = [int(i) for i in np.flatnonzero(indices)]
    else:
        if isinstance(indices, (str, bytes)) or not isinstance(indices, (Sequence, np.ndarray)):
            raise ConfigError(
                f"{name}: expected a sequence of ints, got {describe(indices)}. "
                "Fix: pass e.g. [0, 2, 5]."
            )
        out = []
        for i in indices:
            if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
                raise ConfigError(
                    f"{name}: expected ints, got {describe(i)}. Fix: pass integer positions."
                )
            out.append(int(i))
    if not out:
        raise ConfigError(f"{name}: expected at least one index, got none. Fix: select items.")
    for i in out:
        if not 0 <= i < n:
            raise ConfigError(
                f"{name}: expected positions in [0, {n}), got {i}. "
                "Fix: use non-negative positions below the number of items."
            )
    if len(set(out)) != len(out):
        raise ConfigError(
            f"{name}: expected distinct positions, got a repeated one. Fix: list each item once."
        )
    return out
