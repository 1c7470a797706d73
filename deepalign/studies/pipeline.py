"""`run_study(config, out)`: everything `python -m deepalign.study` does, resumable.

1. Check `out` holds no results of a different recipe (`out/study.json` records the settings
   that change results but are not part of cell ids: horizon, split, noise, encoders, ...);
   changing seeds, values, levels, kernels or agents only adds or drops cells.
2. Train (or find) the encoders study 3 needs (`trained.prepare_encoders`), each once.
3. Build the grid from the plans, play every cell not yet written (`run_grid`), and merge
   the parts into `out/results.csv` in grid order (only the cells of this grid).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepalign.errors import ConfigError, DeepAlignError
from deepalign.studies.config import StudyConfig
from deepalign.studies.encoders import encoder_directory
from deepalign.studies.grid import check_unique
from deepalign.studies.real import RealPlan
from deepalign.studies.results import ResultsStore
from deepalign.studies.runner import run_grid
from deepalign.studies.sources import StudySources
from deepalign.studies.synthetic import SyntheticPlan
from deepalign.studies.trained import TrainedPlan, TransferPlan, prepare_encoders

__all__ = ["StudyRun", "result_settings", "run_study"]

_GRID_ONLY = {
    "name", "seeds", "batch_runs", "device", "source", "values", "levels", "agents", "kernels",
    "test_datasets", "encoder_seeds", "checkpoints", "dose_points",
}


@dataclass(frozen=True)
class StudyRun:
    """What `run_study` did."""

    table: Path
    n_cells: int
    n_skipped: int
    n_run: int
    seconds: float


def result_settings(config: StudyConfig) -> dict:
    """The recipe's settings that change results but are not in cell ids (JSON-ready)."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in sorted(value.items()) if k not in _GRID_ONLY}
        if isinstance(value, list | tuple):
            return [strip(v) for v in value]
        return value

    return strip(dataclasses.asdict(config))


def _check_directory(config: StudyConfig, out: Path) -> None:
    record = out / "study.json"
    settings = result_settings(config)
    if record.is_file():
        previous = json.loads(record.read_text(encoding="utf-8")).get("settings")
        if previous != settings:
            changed = sorted(
                k for k in set(previous or {}) | set(settings)
                if (previous or {}).get(k) != settings.get(k)
            )
            raise ConfigError(
                f"{out}: holds results of a recipe with other settings (changed: {changed}); "
                f"use another --out directory, or delete {out} to start over."
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(f".study.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"settings": settings}, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, record)


def _validate_inputs(config: StudyConfig, sources: StudySources) -> None:
    """Every value a section names exists in its dataset, and the aligned encoder exists
    (checked before anything is written)."""
    checks = []
    if config.synthetic is not None:
        checks.append(("synthetic", config.synthetic.dataset, config.synthetic.values))
    if config.real is not None:
        checks.append(("real", config.real.dataset, config.real.values))
    if config.trained is not None:
        checks.append(("trained", config.trained.dataset, config.trained.values))
        if config.trained.transfer is not None:
            for name, values in config.trained.transfer.values.items():
                checks.append((f"trained.transfer.values.{name}", name, values))
    real = config.real
    if real is not None and "aligned" in real.kernels and real.aligned_encoder != "trained":
        try:
            encoder_directory(str(real.aligned_encoder))
        except ConfigError as error:
            raise ConfigError(f"{config.source}: key 'real.aligned_encoder': {error}") from error
    for key, dataset, values in checks:
        for i, value in enumerate(values):
            where = f"{config.source}: key '{key}.values[{i}]'" if "." not in key else (
                f"{config.source}: key '{key}[{i}]'")
            try:
                names = sources.dataset(dataset, value).values
            except DeepAlignError as error:
                raise ConfigError(f"{where}: {error}") from error
            if names is None or value not in names.names:
                known = [] if names is None else list(names.names)
                raise ConfigError(
                    f"{where} names value {value!r}, which dataset {dataset!r} does not have; "
                    f"expected one of {known}."
                )


def run_study(
    config: StudyConfig,
    out: str | Path,
    progress: bool = True,
    after_batch: Callable[[int], None] | None = None,
    log: Callable[[str], None] = print,
) -> StudyRun:
    """Run (or resume) the study of `config` into directory `out`; see the module docstring."""
    start = time.perf_counter()
    out = Path(out)
    sources = StudySources(config.split_seed, config.heldout_fraction, config.noise)
    _validate_inputs(config, sources)
    _check_directory(config, out)
    if Path(config.source).is_file():
        shutil.copyfile(config.source, out / "config.yaml")
    plans = {}
    encoders = prepare_encoders(config, out, log=log) if config.trained is not None else None
    if config.synthetic is not None:
        plans["synthetic"] = SyntheticPlan(config, sources)
    if config.real is not None:
        aligned = None
        if "aligned" in config.real.kernels:
            if config.real.aligned_encoder == "trained":
                aligned = encoders.paired[0].encoder_dir if encoders else None
            else:
                aligned = Path(config.real.aligned_encoder)
        plans["real"] = RealPlan(config, sources, aligned)
    if encoders is not None:
        plans["trained"] = TrainedPlan(config, encoders.paired)
        if encoders.transfer:
            plans["transfer"] = TransferPlan(config, sources, encoders.transfer)
    cells = [cell for plan in plans.values() for cell in plan.cells()]
    check_unique(cells)
    store = ResultsStore(out)
    grid = run_grid(plans, cells, store, config.batch_runs, config.device, progress, after_batch)
    table = store.merge([cell.cell_id for cell in cells], keep_only=True)
    return StudyRun(table, grid.n_cells, grid.n_skipped, grid.n_run,
                    time.perf_counter() - start)
