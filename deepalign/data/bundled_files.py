"""Where the vendored copies of the public datasets live inside the package."""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLED_ROOT", "bundled_file", "bundled_label"]

BUNDLED_ROOT = Path(__file__).resolve().parent / "bundled"


def bundled_file(*parts: str) -> Path:
    """Path of a vendored file, e.g. ``bundled_file("spa_verb", "SpA-Verb.txt")``."""
    return BUNDLED_ROOT.joinpath(*parts)


def bundled_label(*parts: str) -> str:
    """The short name of a vendored file used in notes, e.g. ``"bundled/spa_verb/SpA-Verb.txt"``."""
    return "/".join(("bundled", *parts))
