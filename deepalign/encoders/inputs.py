"""Validation of the text inputs every encoder takes."""

from __future__ import annotations

from collections.abc import Sequence

from deepalign.errors import DataError


def check_texts(texts: Sequence[str], argument: str = "texts") -> tuple[str, ...]:
    """Return `texts` as a tuple of str, or raise `DataError` naming the bad entry.

    Args:
        texts: `n_items` action descriptions (a list or tuple of str; not a single str).
        argument: the argument name used in error messages.
    """
    if isinstance(texts, str):
        raise DataError(
            f"'{argument}' should be a sequence of str (n_items texts) but got a single str "
            f"{texts[:40]!r}; wrap it in a list: [{texts[:40]!r}]."
        )
    try:
        items = tuple(texts)
    except TypeError as exc:
        raise DataError(
            f"'{argument}' should be a sequence of str (n_items texts) but got "
            f"{type(texts).__name__}; pass a list or tuple of str."
        ) from exc
    for index, text in enumerate(items):
        if not isinstance(text, str):
            raise DataError(
                f"'{argument}[{index}]' should be a str but got {type(text).__name__} "
                f"({text!r}); convert every item to its text description first."
            )
    return items
