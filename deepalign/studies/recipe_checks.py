"""Checks of a study recipe beyond its types: ranges, and names against what exists
(datasets, agents, kernels, zoo encoders, value columns). `load_study_config` calls
`validate_study_config`; every error is a `ConfigError` naming the file and the dotted key.
"""

from __future__ import annotations

from pathlib import Path

from deepalign.errors import ConfigError
from deepalign.limits import env_limit
from deepalign.studies.config import (
    AGENTS,
    REAL_KERNELS,
    SYNTHETIC_ARM_SETS,
    SYNTHETIC_ENVIRONMENTS,
    BenchmarkConfig,
    StudyConfig,
    level_list,
    seed_list,
    zoo_kernels,
)

__all__ = ["LIMIT_VARIABLES", "SIZE_LIMITS", "check_device", "size_limit",
           "validate_study_config"]

#: The largest reward noise a recipe may ask for, as a fraction of the scale range (noise
#: 100 times the whole scale already drowns every reward).
MAX_NOISE = 100.0

#: Upper bounds on a recipe's sizes, checked before anything is allocated or run; each can
#: be raised with its environment variable (`LIMIT_VARIABLES`).
SIZE_LIMITS = {"steps": 100_000, "seeds": 100_000, "levels": 10_000, "cells": 10_000_000}
LIMIT_VARIABLES = {what: f"DEEPALIGN_MAX_{what.upper()}" for what in SIZE_LIMITS}


def size_limit(what: str) -> int:
    """The limit on `what` ("steps", "seeds", "levels"): `SIZE_LIMITS`, or its environment
    variable when that holds a positive int."""
    return env_limit(LIMIT_VARIABLES[what], SIZE_LIMITS[what])


def check_device(device: str, where: str, available: bool = True) -> None:
    """Refuse a torch device string torch does not parse, or (with `available`) one this
    machine lacks."""
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"{where}: {device!r} is not a torch device. Fix: 'cpu', 'cuda', "
                          "'cuda:1' or 'mps'.") from None
    if parsed.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"{where}: {device!r}: the engine runs on 'cpu', 'cuda' or 'mps'. "
                          "Fix: pick one of those.")
    if not available:
        return
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{where}: {device!r} asks for CUDA, which this machine does not "
                          "have (torch.cuda.is_available() is False). Fix: use 'cpu' (or "
                          "--device cpu).")
    if parsed.type == "cuda" and parsed.index is not None \
            and parsed.index >= torch.cuda.device_count():
        raise ConfigError(f"{where}: {device!r}: this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s). Fix: pick one of them.")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{where}: {device!r} asks for MPS, which this machine does not "
                          "have. Fix: use 'cpu' (or --device cpu).")


def validate_study_config(config: StudyConfig) -> None:
    """Check ranges and names (datasets against `deepalign.data.list_datasets()`; a user
    dataset, an items CSV or a dataset card, is loaded here and its values checked, so a
    broken file fails before anything is written)."""
    from deepalign.data import is_user_dataset, list_datasets

    src = config.source
    known_datasets = set(list_datasets())

    def check_names(key: str, names: tuple[str, ...], allowed: set[str] | tuple[str, ...]) -> None:
        for i, name in enumerate(names):
            if name not in allowed:
                raise ConfigError(
                    f"{src}: key '{key}[{i}]' names unknown {key.rsplit('.', 1)[-1]} "
                    f"{name!r}; expected one of {sorted(allowed)}."
                )

    def check_dataset(key: str, name: str, values: tuple[str, ...] | None = None,
                      values_key: str = "") -> None:
        if is_user_dataset(name):
            _check_user_dataset(src, key, name, values, values_key)
            return
        if name not in known_datasets:
            raise ConfigError(
                f"{src}: key '{key}' names unknown dataset {name!r}; expected one of "
                f"{sorted(known_datasets)} (see `python -m deepalign.data list`), or the path "
                "of an items CSV or dataset card (.csv/.yaml/.toml)."
            )

    def check_seeds(key: str, seeds: int | tuple[int, ...] | None) -> None:
        if seeds is None:
            return
        if isinstance(seeds, int) and seeds < 1:
            raise ConfigError(f"{src}: key '{key}' should be at least 1 but got {seeds}.")
        if isinstance(seeds, tuple) and (not seeds or len(set(seeds)) != len(seeds)):
            raise ConfigError(f"{src}: key '{key}' should list distinct seeds but got {seeds}.")
        if isinstance(seeds, tuple) and any(seed < 0 for seed in seeds):
            raise ConfigError(f"{src}: key '{key}' should list seeds >= 0 but got "
                              f"{min(seeds)}; seeds seed torch generators, which take no "
                              "negative numbers.")
        count = seeds if isinstance(seeds, int) else len(seeds)
        check_limit(key, "seeds", count)

    def check_positive(key: str, value: int | None) -> None:
        if value is not None and value < 1:
            raise ConfigError(f"{src}: key '{key}' should be at least 1 but got {value}.")

    def check_limit(key: str, what: str, value: int | None) -> None:
        if value is None:
            return
        limit = size_limit(what)
        if value > limit:
            raise ConfigError(
                f"{src}: key '{key}' is {value}, above the limit of {limit} {what} (a guard "
                f"against a typo that would allocate or run for ever). Fix: lower it, or "
                f"raise the limit with the environment variable {LIMIT_VARIABLES[what]}.")

    def check_horizon(key: str, value: int | None) -> None:
        check_positive(key, value)
        check_limit(key, "steps", value)

    def check_nonempty(key: str, names: tuple[str, ...]) -> None:
        if not names:
            raise ConfigError(f"{src}: key '{key}' is an empty list; list at least one, or "
                              "drop the key for the default.")

    check_seeds("seeds", config.seeds)
    check_horizon("horizon", config.horizon)
    if config.split_seed < 0:
        raise ConfigError(f"{src}: key 'split_seed' should be >= 0 but got "
                          f"{config.split_seed}.")
    # the syntax only: whether this machine has it is checked for the device the run uses
    # (after --device), in `deepalign.study`
    check_device(config.device, f"{src}: key 'device'", available=False)
    check_positive("batch_runs", config.batch_runs)
    check_positive("memory_budget_mb", config.memory_budget_mb)
    if not 0.0 < config.heldout_fraction < 1.0:
        raise ConfigError(
            f"{src}: key 'heldout_fraction' should be in (0, 1) but got {config.heldout_fraction}."
        )
    from deepalign.studies.results import METRICS

    if config.primary_metric not in METRICS:
        raise ConfigError(
            f"{src}: key 'primary_metric' names unknown metric {config.primary_metric!r}; "
            f"expected one of {sorted(METRICS)} (default safe_general_score)."
        )
    if config.noise is not None and not 0.0 < config.noise <= MAX_NOISE:
        raise ConfigError(f"{src}: key 'noise' should be in (0, {MAX_NOISE:g}] (the reward noise "
                          f"SD as a fraction of the value's scale range) but got "
                          f"{config.noise}. Fix: e.g. 0.1, or drop the key for the raters' SD.")
    if config.synthetic is None and config.real is None and config.trained is None:
        raise ConfigError(
            f"{src}: no study section; add at least one of 'synthetic', 'real', 'trained'."
        )
    if (s := config.synthetic) is not None:
        check_nonempty("synthetic.values", s.values)
        check_nonempty("synthetic.agents", s.agents)
        check_dataset("synthetic.dataset", s.dataset, s.values, "synthetic.values")
        check_names("synthetic.agents", s.agents, AGENTS)
        for key, names, allowed in (
            ("synthetic.environment", s.environments(), SYNTHETIC_ENVIRONMENTS),
            ("synthetic.arms", s.arm_sets(), SYNTHETIC_ARM_SETS),
        ):
            if not names:
                raise ConfigError(f"{src}: key '{key}' is an empty list; give at least one of "
                                  f"{list(allowed)}.")
            check_names(key, names, allowed)
            if len(set(names)) != len(names):
                raise ConfigError(f"{src}: key '{key}' lists a name twice: {list(names)}.")
        check_seeds("synthetic.seeds", s.seeds)
        check_horizon("synthetic.horizon", s.horizon)
        if isinstance(s.levels, int):  # before expanding it into a tuple
            check_limit("synthetic.levels", "levels", s.levels)
        levels = level_list(s.levels)
        if not levels or any(not 0.0 <= level <= 1.0 for level in levels):
            raise ConfigError(
                f"{src}: key 'synthetic.levels' should be an int >= 1 or a list of alignments "
                f"in [0, 1] but got {s.levels}."
            )
        check_limit("synthetic.levels", "levels", len(levels))
        # a cell id keeps a level to 6 significant digits: two levels must differ there
        keys = [f"{level:.6g}" for level in levels]
        if len(set(keys)) != len(keys):
            twice = next(k for k in keys if keys.count(k) > 1)
            raise ConfigError(
                f"{src}: key 'synthetic.levels' lists level {twice} twice (levels are told "
                f"apart to 6 significant digits) in {list(s.levels)}. Fix: list each level "
                "once.")
    if (r := config.real) is not None:
        check_nonempty("real.values", r.values)
        check_nonempty("real.kernels", r.kernels)
        check_nonempty("real.agents", r.agents)
        check_dataset("real.dataset", r.dataset, r.values, "real.values")
        check_names("real.kernels", r.kernels, REAL_KERNELS + zoo_kernels())
        check_dataset("real.train_dataset", r.train_dataset)
        for name in r.aligned_runs:
            if name not in r.aligned_zoo():
                raise ConfigError(
                    f"{src}: key 'real.aligned_runs.{name}' names no 'aligned-{name}' kernel "
                    f"of 'real.kernels'; add the kernel or drop the entry."
                )
        check_names("real.agents", r.agents, AGENTS)
        check_seeds("real.seeds", r.seeds)
        check_horizon("real.horizon", r.horizon)
        if "aligned" in r.kernels and r.aligned_encoder is None:
            raise ConfigError(
                f"{src}: key 'real.kernels' lists 'aligned' but 'real.aligned_encoder' is null; "
                "give an encoder directory, 'trained', or drop the kernel."
            )
        if r.aligned_encoder == "trained" and "aligned" in r.kernels and config.trained is None:
            raise ConfigError(
                f"{src}: key 'real.aligned_encoder' is 'trained' but there is no 'trained' "
                "section; add one or give an encoder directory."
            )
    if (b := config.benchmark) is not None:
        _check_benchmark(config, b)
    check_limit("seeds x values x agents x kernels (the grid)", "cells", _cell_bound(config))
    if (t := config.trained) is not None:
        check_nonempty("trained.values", t.values)
        check_nonempty("trained.agents", t.agents)
        check_dataset("trained.dataset", t.dataset, t.values, "trained.values")
        check_dataset("trained.train_dataset", t.train_dataset)
        check_names("trained.agents", t.agents, AGENTS)
        check_seeds("trained.encoder_seeds", t.encoder_seeds)
        check_seeds("trained.seeds", t.seeds)
        check_horizon("trained.horizon", t.horizon)
        if t.dose_points < 0:
            raise ConfigError(f"{src}: key 'trained.dose_points' should be >= 0 but got "
                              f"{t.dose_points}.")
        if t.runs and len(t.runs) != len(seed_list(t.encoder_seeds)):
            raise ConfigError(
                f"{src}: key 'trained.runs' lists {len(t.runs)} run directories but "
                f"'trained.encoder_seeds' gives {len(seed_list(t.encoder_seeds))} seeds; "
                "give one run per seed."
            )
        if (x := t.transfer) is not None:
            for i, name in enumerate(x.train_datasets):
                check_dataset(f"trained.transfer.train_datasets[{i}]", name)
            for i, name in enumerate(x.test_datasets):
                check_dataset(f"trained.transfer.test_datasets[{i}]", name)
            for name in x.values:
                if name not in x.test_datasets:
                    raise ConfigError(
                        f"{src}: key 'trained.transfer.values.{name}' is not one of "
                        f"'trained.transfer.test_datasets' {list(x.test_datasets)}."
                    )
            for name in x.runs:
                if name not in x.train_datasets:
                    raise ConfigError(
                        f"{src}: key 'trained.transfer.runs.{name}' is not one of "
                        f"'trained.transfer.train_datasets' {list(x.train_datasets)}."
                    )


def _cell_bound(config: StudyConfig) -> int:
    """An upper bound on the grid's cells (runs), from the recipe alone: seeds x values x
    agents x kernels or levels (x variants, x encoder seeds, + references and controls),
    so a recipe that would list billions of cells is refused before the list is built."""
    def seeds(section_seeds) -> int:
        chosen = config.seeds if section_seeds is None else section_seeds
        return len(seed_list(chosen)) if isinstance(chosen, tuple) else int(chosen)

    total = 0
    if (s := config.synthetic) is not None:
        levels = s.levels if isinstance(s.levels, int) else len(s.levels)
        total += (seeds(s.seeds) * len(s.values) * len(s.agents) * len(s.variants())
                  * (levels + 2))
    if (r := config.real) is not None:
        total += seeds(r.seeds) * (len(r.values) + 1) * len(r.agents) * len(r.kernels)
    if (t := config.trained) is not None:
        encoder_seeds = (len(t.encoder_seeds) if isinstance(t.encoder_seeds, tuple)
                         else int(t.encoder_seeds))
        total += (seeds(t.seeds) * len(t.values) * len(t.agents) * encoder_seeds
                  * (t.dose_points + 8))
    return total


def _check_user_dataset(src: str, key: str, spec: str, values: tuple[str, ...] | None,
                        values_key: str) -> None:
    """Load a user dataset named by a recipe (errors name the recipe and key) and check
    that it has the recipe's `values`."""
    import warnings

    from deepalign.data import open_dataset
    from deepalign.errors import DeepAlignError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # its notes are in the dataset
            dataset = open_dataset(spec)
    except DeepAlignError as error:
        raise ConfigError(f"{src}: key '{key}': {' '.join(str(error).split())}") from error
    if values is None:
        return
    names = () if dataset.values is None else dataset.values.names
    for i, value in enumerate(values):
        if value not in names:
            raise ConfigError(
                f"{src}: key '{values_key}[{i}]' names value {value!r}, which {spec} does not "
                f"have; its values are {list(names) or 'none'}. Fix: list values of the "
                "dataset (the default names spa-verb-act's).")


def _check_benchmark(config: StudyConfig, section: BenchmarkConfig) -> None:
    from deepalign.data.spa_verb_act import VALUE_NAMES
    from deepalign.encoders.zoo import ZOO

    src = config.source
    if not section.encoders:
        raise ConfigError(f"{src}: key 'benchmark.encoders' is empty; list zoo names "
                          "(python -m deepalign.encoders list), encoder directories or 'trained'.")
    for i, name in enumerate(section.encoders):
        if name == "trained" and config.trained is None:
            raise ConfigError(f"{src}: key 'benchmark.encoders[{i}]' is 'trained' but there is no "
                              "'trained' section; add one or name another encoder.")
        if name != "trained" and name not in ZOO and not Path(name).is_dir():
            raise ConfigError(
                f"{src}: key 'benchmark.encoders[{i}]' names {name!r}, which is not a zoo encoder "
                f"{sorted(ZOO)}, 'trained' or an existing directory; fix the name or the path."
            )
    for i, value in enumerate(section.values):
        if value not in VALUE_NAMES:
            raise ConfigError(f"{src}: key 'benchmark.values[{i}]' names unknown value {value!r}; "
                              f"expected one of {list(VALUE_NAMES)}.")
    for key in ("seeds", "horizon"):
        if getattr(section, key) < 1:
            raise ConfigError(f"{src}: key 'benchmark.{key}' should be >= 1 but got "
                              f"{getattr(section, key)}.")
