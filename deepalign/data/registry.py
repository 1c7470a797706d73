"""The bundled datasets by name: `load_dataset` and `list_datasets`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from deepalign.data.act_behaviors import load_act_behaviors
from deepalign.data.activity_pairs import load_activity_pairs
from deepalign.data.dataset import Dataset
from deepalign.data.dillion import load_dillion_morality
from deepalign.data.ethics import load_ethics_commonsense_short, load_ethics_justice
from deepalign.data.mfv import load_mfv
from deepalign.data.spa_verb import load_spa_verb
from deepalign.data.spa_verb_act import load_spa_verb_act
from deepalign.data.sts_captions import load_sts_captions
from deepalign.data.validation import describe
from deepalign.errors import ConfigError

__all__ = ["list_datasets", "load_dataset"]

_LOADERS: dict[str, Callable[..., Dataset]] = {
    "spa-verb": load_spa_verb,
    "spa-verb-act": load_spa_verb_act,
    "dillion-morality": load_dillion_morality,
    "mfv": load_mfv,
    "activity-pairs": load_activity_pairs,
    "sts-captions": load_sts_captions,
    "ethics-justice": load_ethics_justice,
    "ethics-commonsense-short": load_ethics_commonsense_short,
    "act-behaviors": load_act_behaviors,
}


def list_datasets() -> tuple[str, ...]:
    """Names of the bundled datasets, for `load_dataset`."""
    return tuple(_LOADERS)


def load_dataset(name: str, **options: Any) -> Dataset:
    """Load bundled dataset ``name`` (see `list_datasets`) with its loader's ``options``.

    Options per dataset:

    - ``spa-verb``: none. 825 verbs, 29,721 judged pairs, similarity only.
    - ``spa-verb-act``: ``classes=(1, 2, 6, 7)``, ``values=("act_evaluation",)``.
    - ``dillion-morality``, ``mfv``, ``ethics-commonsense-short``: none.
    - ``act-behaviors``: none. 853 ACT behaviours, values only (E, P, A).
    - ``activity-pairs``: ``measure="sim"`` (``"sim" | "rel" | "ma" | "pac"``).
    - ``sts-captions``: ``splits=("train", "dev", "test")``.
    - ``ethics-justice``: ``split="test"`` (``"test" | "test_hard" | "all"``).

    Every call returns fresh objects (parsed files are cached, tensors are not shared).
    Raises `ConfigError` for an unknown name or option.
    """
    if name not in _LOADERS:
        raise ConfigError(f"name: expected one of {list(_LOADERS)}, got {describe(name)}. "
                          "Fix: pick a bundled dataset, or load your own with "
                          "load_user_dataset.")
    loader = _LOADERS[name]
    accepted = list(inspect.signature(loader).parameters)
    unknown = [key for key in options if key not in accepted]
    if unknown:
        raise ConfigError(f"options of {name!r}: expected {accepted or 'no options'}, got "
                          f"{unknown}. Fix: drop or rename the option.")
    return loader(**options)
