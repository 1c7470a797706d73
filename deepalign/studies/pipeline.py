"""`run_study(config, out)`: everything `python -m deepalign.study` does, resumable.

1. Validate every input before anything is written: the recipe's datasets and values, then
   `out` itself: it holds no results of a different recipe (`out/study.json` records the
   settings that change results but are not part of cell ids: horizon, split, noise,
   encoders, ...; changing seeds, values, levels, kernels or agents only adds or drops
   cells), is not some other directory, and every finished part file in it is readable.
2. Train (or find) the encoders studies 2 and 3 need (`encoder_training.prepare_encoders`),
   each once, and save what their summaries report beyond the table (the preservation suite,
   the held-out generalization gains) in `out/encoder_runs.json`
   (`trained_analysis.EncoderRecord`).
3. Build the grid from the plans, play every cell not yet written, in process (`run_grid`)
   or as Ray tasks (`backend="ray"`, `distributed.run_grid_ray`), and merge the parts into
   `out/results.csv` in grid order (only the cells of this grid). Both backends give the
   same table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepalign.errors import ConfigError, DataError, DeepAlignError
from deepalign.studies.config import BenchmarkConfig, StudyConfig
from deepalign.studies.distributed import (
    PlanContext,
    RayOptions,
    check_address,
    import_ray,
    ray_session,
    run_grid_ray,
)
from deepalign.studies.encoder_training import PreparedEncoders, needs_encoders, prepare_encoders
from deepalign.studies.encoders import encoder_directory
from deepalign.studies.grid import check_unique
from deepalign.studies.lock import LOCK_NAME, study_lock
from deepalign.studies.real import RealPlan
from deepalign.studies.results import ResultsStore, read_header
from deepalign.studies.runner import run_grid
from deepalign.studies.sources import StudySources
from deepalign.studies.synthetic import SyntheticPlan
from deepalign.studies.trained import TrainedPlan, TransferPlan
from deepalign.studies.trained_analysis import (
    ENCODER_RUNS,
    EncoderRecord,
    write_encoder_records,
)

__all__ = ["BACKENDS", "StudyRun", "build_plans", "result_settings", "run_study"]

#: Where the grid runs: in this process, or as Ray tasks (`deepalign[distributed]`).
BACKENDS = ("local", "ray")

#: Where `run_study` writes the recipe's encoder benchmark (`benchmark` section).
BENCHMARK_DIR = "benchmark"
_GRID_ONLY = {
    "benchmark", "name", "seeds", "batch_runs", "memory_budget_mb", "device", "source",
    "values", "levels", "agents", "kernels", "test_datasets", "encoder_seeds", "checkpoints",
    "dose_points", "references", "uniformity_control", "uniformity_checkpoints",
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


def _check_directory(config: StudyConfig, out: Path) -> bool:
    """Check `out` without writing: True when it already holds this recipe's study.

    ConfigError for results of other settings or a directory that is not a study's;
    DataError (naming the file) for a damaged part file or a `results.csv` of another schema.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: exists and is not a directory; pass a directory for --out.")
    record = out / "study.json"
    settings = result_settings(config)
    if record.is_file():
        try:
            previous = json.loads(record.read_text(encoding="utf-8")).get("settings")
        except (ValueError, AttributeError) as error:
            raise DataError(
                f"{record}: damaged (not the JSON object `python -m deepalign.study` writes: "
                f"{error}); delete {out} to start over, or restore the file."
            ) from error
        if previous != settings:
            changed = sorted(
                k for k in set(previous or {}) | set(settings)
                if (previous or {}).get(k) != settings.get(k)
            )
            raise ConfigError(
                f"{out}: holds results of a recipe with other settings (changed: {changed}); "
                f"use another --out directory, or delete {out} to start over."
            )
        ResultsStore(out).completed()  # every part readable (DataError names a damaged one)
    elif out.is_dir() and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise ConfigError(
            f"{out}: is not empty and holds no study.json, so it is not a study directory "
            "(nothing there was touched); pass a new or empty --out directory."
        )
    table = out / "results.csv"
    if table.is_file():
        read_header(table)  # another schema: refuse rather than overwrite it
    return record.is_file()


def _write_record(config: StudyConfig, out: Path) -> None:
    record = out / "study.json"
    if record.is_file():
        return
    out.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(f".study.json.{os.getpid()}.tmp")
    settings = result_settings(config)
    tmp.write_text(json.dumps({"settings": settings}, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, record)


def _write_encoder_records(out: Path, encoders: PreparedEncoders) -> None:
    records = [EncoderRecord.from_run("trained", run) for run in encoders.paired]
    records += [EncoderRecord.from_run("transfer", run) for run in encoders.transfer]
    records += [EncoderRecord.from_run(f"models:{name}", run) for name, run in encoders.models]
    write_encoder_records(out / ENCODER_RUNS, records)


def _validate_inputs(config: StudyConfig, sources: StudySources) -> None:
    """Every value a section names exists in its dataset, the datasets that need human
    similarity have it, and the aligned encoder exists (checked before anything is written)."""
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
                loaded = sources.dataset(dataset, value)
            except DeepAlignError as error:
                raise ConfigError(f"{where}: {error}") from error
            names = loaded.values
            if names is None or value not in names.names:
                known = [] if names is None else list(names.names)
                raise ConfigError(
                    f"{where} names value {value!r}, which dataset {dataset!r} does not have; "
                    f"expected one of {known}."
                )
            if int(sources.heldout(loaded).sum()) >= len(loaded):
                raise ConfigError(
                    f"{config.source}: key 'heldout_fraction' {config.heldout_fraction} holds "
                    f"out all {len(loaded)} items of {dataset!r} (value {value!r}), leaving no "
                    "arm to pull. Fix: a smaller fraction, e.g. 0.3.")
    needs_similarity = []
    if config.synthetic is not None:
        needs_similarity.append(("synthetic.dataset", config.synthetic.dataset,
                                 "synthetic kernels are built around the human similarity"))
    if real is not None and "human" in real.kernels:
        needs_similarity.append(("real.dataset", real.dataset, "the 'human' kernel is it"))
    if config.trained is not None:
        needs_similarity.append(("trained.dataset", config.trained.dataset,
                                 "the paired study measures alignment against it"))
    for key, dataset, why in needs_similarity:
        values = config.synthetic.values if key.startswith("synthetic") else (
            real.values if key.startswith("real") else config.trained.values)
        if sources.dataset(dataset, values[0] if values else None).similarity is None:
            fix = ("drop 'human' from 'real.kernels'" if key == "real.dataset"
                   else "pick a dataset with similarity judgments, e.g. spa-verb-act")
            raise ConfigError(
                f"{config.source}: key '{key}' names {dataset!r}, which has no human "
                f"similarity judgments, but {why}; {fix}."
            )


def build_plans(config: StudyConfig, encoders: PreparedEncoders | None,
                sources: StudySources | None = None) -> dict:
    """{study name: plan} of `config`, with the encoders study 3 prepared (None without a
    'trained' section) and shared data caches `sources` (None: new ones). Deterministic: Ray
    workers rebuild the same plans from the same arguments."""
    if sources is None:
        sources = StudySources(config.split_seed, config.heldout_fraction, config.noise)
    plans: dict = {}
    if config.synthetic is not None:
        plans["synthetic"] = SyntheticPlan(config, sources)
    if config.real is not None:
        aligned = None
        if "aligned" in config.real.kernels:
            if config.real.aligned_encoder == "trained":
                aligned = encoders.paired[0].encoder_dir if encoders else None
            else:
                aligned = Path(config.real.aligned_encoder)
        models = {name: run.encoder_dir for name, run in encoders.models} if encoders else {}
        plans["real"] = RealPlan(config, sources, aligned, models)
    if encoders is not None and config.trained is not None:
        plans["trained"] = TrainedPlan(config, encoders.paired)
        if encoders.transfer:
            plans["transfer"] = TransferPlan(config, sources, encoders.transfer)
    return plans


def run_study(
    config: StudyConfig,
    out: str | Path,
    progress: bool = True,
    after_batch: Callable[[int], None] | None = None,
    log: Callable[[str], None] = print,
    backend: str = "local",
    ray_options: RayOptions | None = None,
) -> StudyRun:
    """Run (or resume) the study of `config` into directory `out`; see the module docstring.

    Args:
        backend: "local" (this process) or "ray" (one Ray task per batch; `ray_options`
            says which cluster, retries and threads; default `RayOptions()`: a local
            instance of every CPU).
        after_batch: called with the number of batches written so far (tests interrupt
            a study with it).
    """
    start = time.perf_counter()
    out = Path(out)
    if backend not in BACKENDS:
        raise ConfigError(f"'backend' should be one of {BACKENDS} but got {backend!r}.")
    if backend == "local" and ray_options is not None and ray_options.address is not None:
        raise ConfigError("--address joins a Ray cluster, so it needs --backend ray; add it "
                          "or drop --address.")
    sources = StudySources(config.split_seed, config.heldout_fraction, config.noise)
    _validate_inputs(config, sources)
    _check_directory(config, out)
    options = ray_options or RayOptions()
    if backend == "ray":
        options.check()
        import_ray()
        if options.address is not None:
            check_address(options.address)  # before the lock creates --out
    budget = config.memory_budget_mb * 2**20
    with study_lock(out):
        return _run_locked(config, out, sources, options, backend, budget, progress,
                           after_batch, log, start)


def _run_locked(config: StudyConfig, out: Path, sources: StudySources, options: RayOptions,
                backend: str, budget: int, progress: bool,
                after_batch: Callable[[int], None] | None, log: Callable[[str], None],
                start: float) -> StudyRun:
    """`run_study` once the directory's lock is held."""
    with ray_session(options) if backend == "ray" else contextlib.nullcontext():
        trains = needs_encoders(config)
        if not trains:  # the whole grid is checked before the first file is written
            plans, cells = _plan(config, None, sources)
        _write_record(config, out)
        if Path(config.source).is_file():
            shutil.copyfile(config.source, out / "config.yaml")
        encoders = prepare_encoders(config, out, log=log) if trains else None
        if encoders is not None:
            _write_encoder_records(out, encoders)
            plans, cells = _plan(config, encoders, sources)
        store = ResultsStore(out)
        if backend == "ray":
            context = PlanContext.create(build_plans, config, encoders)
            grid = run_grid_ray(context, cells, store, options, config.batch_runs,
                                config.device, progress, after_batch, budget)
        else:
            grid = run_grid(plans, cells, store, config.batch_runs, config.device, progress,
                            after_batch, budget)
    table = store.merge([cell.cell_id for cell in cells], keep_only=True)
    if config.benchmark is not None:
        _run_benchmark(config.benchmark, out, encoders, progress, log)
    return StudyRun(table, grid.n_cells, grid.n_skipped, grid.n_run,
                    time.perf_counter() - start)


def _plan(config: StudyConfig, encoders: PreparedEncoders | None, sources: StudySources
          ) -> tuple[dict, list]:
    """The study's plans and cells (`build_plans`, every cell id once); a ConfigError names
    the recipe."""
    try:
        plans = build_plans(config, encoders, sources)
        cells = [cell for plan in plans.values() for cell in plan.cells()]
        check_unique(cells)
    except ConfigError as error:
        if config.source in str(error):
            raise
        raise ConfigError(f"{config.source}: {error}") from error
    return plans, cells


def _run_benchmark(section: BenchmarkConfig, out: Path, encoders: PreparedEncoders | None,
                   progress: bool, log: Callable[[str], None]) -> None:
    """The recipe's encoder benchmark into OUT/benchmark/ (skipped once written)."""
    from deepalign.studies.benchmark import run_benchmark
    from deepalign.studies.benchmark_output import write_benchmark

    if (out / BENCHMARK_DIR / "benchmark.json").is_file():
        log(f"benchmark: already written, reusing {out / BENCHMARK_DIR}")
        return
    specs = [str(encoders.paired[0].directory) if name == "trained" and encoders else name
             for name in section.encoders]
    result = run_benchmark(specs, section.values, section.seeds, section.horizon, progress)
    write_benchmark(result, out / BENCHMARK_DIR)
    log(f"benchmark: {len(specs)} encoders in {result.seconds:.1f} s -> {out / BENCHMARK_DIR}")
