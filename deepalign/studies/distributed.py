"""Studies on Ray: every grid batch is a Ray task with bounded retries; the driver writes parts.

`run_grid_ray` plays the batches of a grid that are not yet in the `ResultsStore` as Ray tasks
(one batch = the runs of one group, as in-process; at most `batch_runs` runs). A task rebuilds
the study's plans in its worker from the recipe (`PlanContext`, cached per worker process),
plays its batch with `simulate_batch` and returns the rows; the driver writes each returned
batch as one atomic part file (`ResultsStore.write_batch`). So:

* a worker that dies (killed, out of memory, node lost) has its task retried by Ray up to
  `max_retries` times, and nothing of the lost attempt is on disk;
* a task that runs twice (a retry racing a slow first attempt, or a re-run study) gives the
  same rows under the same part name, and rows are deduplicated by cell id on read;
* a killed driver loses only the batches in flight: the same command resumes from the parts.

Results do not depend on where or in what order batches run: every run has its own seeded
generators, and the merged table is sorted in grid order. Workers need the same deepalign
installation and, for encoders named by path in the recipe, the same files (a shared
filesystem on a multi-node cluster); results travel back through Ray, so the output directory
only needs to exist on the driver's machine.

Ray is an optional extra (`pip install deepalign[distributed]`), imported only here.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from deepalign.errors import ConfigError, DeepAlignError
from deepalign.limits import check_threads
from deepalign.studies.grid import Cell, batches
from deepalign.studies.ray_reaper import session_pids, start_reaper
from deepalign.studies.results import ResultsStore
from deepalign.studies.runner import DEFAULT_MEMORY_BUDGET, GridRun, simulate_batch

__all__ = ["PlanContext", "RayOptions", "StudyTaskError", "check_address", "import_ray",
           "ray_session", "run_grid_ray"]

#: Environment of every worker: offline model loading, quiet tokenizers.
WORKER_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


class StudyTaskError(RuntimeError):
    """A batch failed on Ray after its retries (not bad input: the finished batches are
    saved, and the same command resumes)."""


@dataclass(frozen=True)
class RayOptions:
    """How to run a study on Ray.

    Args:
        address: a running cluster to join ("auto", "ray://host:10001", "host:6379"); None
            starts a local instance for this study and stops it at the end.
        num_cpus: CPUs of a local instance (None: `os.cpu_count()`); ignored with `address`.
        max_retries: times Ray re-runs a batch whose worker died (>= 0).
        threads: torch intra-op threads in each task (each task reserves one CPU).
        gpus_per_task: GPUs each task reserves (0 for CPU engines; e.g. 1 or 0.25 with
            `device: cuda`).
        before_task: called in the worker with the batch's cells before it is played (tests
            use it to kill a worker); must be picklable by Ray.
    """

    address: str | None = None
    num_cpus: int | None = None
    max_retries: int = 3
    threads: int = 1
    gpus_per_task: float = 0.0
    before_task: Callable[[Sequence[Cell]], None] | None = None

    def check(self) -> None:
        """ConfigError for out-of-range options."""
        if self.num_cpus is not None and self.num_cpus < 1:
            raise ConfigError(f"'num_cpus' (--num-cpus) should be at least 1 but got "
                              f"{self.num_cpus}. Fix: give the CPUs of the local Ray "
                              "instance, or leave it unset (all CPUs).")
        if self.max_retries < 0:
            raise ConfigError(f"'max_retries' (--max-retries) should be >= 0 but got "
                              f"{self.max_retries}. Fix: give 0 (never retry) or more.")
        check_threads(self.threads, "'threads' (--threads)")
        if self.gpus_per_task < 0:
            raise ConfigError(f"'gpus_per_task' (--gpus-per-task) should be >= 0 but got "
                              f"{self.gpus_per_task}. Fix: give 0 (CPU engines) or a share "
                              "of a GPU such as 0.25.")


@dataclass(frozen=True)
class PlanContext:
    """What a worker needs to rebuild the plans of a study: `build(*args)` returns
    `{study name: plan}`; `token` names this study run (plans are cached per token)."""

    build: Callable[..., dict[str, Any]]
    args: tuple
    token: str

    @classmethod
    def create(cls, build: Callable[..., dict[str, Any]], *args: Any) -> PlanContext:
        return cls(build, args, uuid.uuid4().hex)


def import_ray() -> Any:
    """The `ray` module, or ConfigError saying how to install it."""
    try:
        import ray
    except ImportError as error:
        raise ConfigError(
            "--backend ray needs Ray, which is not installed; install the extra with "
            "`pip install 'deepalign[distributed]'` (or `pip install 'ray[default]>=2.9'`), "
            "or use the default --backend local."
        ) from error
    return ray


def check_address(address: str, timeout: float = 5.0) -> None:
    """ConfigError unless `address` ("HOST:PORT" or "ray://HOST:PORT") accepts a TCP
    connection within `timeout` seconds ("auto" is left to Ray). Ray itself would retry
    an unreachable address for minutes."""
    if address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address!r}: expected HOST:PORT, ray://HOST:PORT or "
                          "'auto' (the address `ray start --head` prints).")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConfigError(
            f"--address {address}: nothing answers there ({error}); start the cluster with "
            "`ray start --head` on that machine and pass the address it prints, or leave "
            "--address out to start a local instance."
        ) from error


@contextmanager
def ray_session(options: RayOptions) -> Iterator[Any]:
    """Ray, initialised for a study: reuse a running session, else join `options.address`,
    else start a local instance of `options.num_cpus` CPUs; a session started here is shut
    down on exit."""
    options.check()
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        runtime_env = {"env_vars": dict(WORKER_ENV)}
        if options.address is not None:
            check_address(options.address)
        try:
            if options.address is not None:
                ray.init(address=options.address, runtime_env=runtime_env,
                         log_to_driver=False)
            else:
                # "local": always a new instance, never a stale one named in /tmp/ray
                ray.init(address="local", num_cpus=options.num_cpus or os.cpu_count() or 1,
                         include_dashboard=False, runtime_env=runtime_env, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as error:
            if options.address is None:
                raise ConfigError(
                    f"--backend ray: could not start a local Ray instance ({error}); check "
                    "`ray status`/the logs under /tmp/ray, or use --backend local."
                ) from error
            raise ConfigError(
                f"--address {options.address}: could not join Ray ({error}); start a cluster "
                "with `ray start --head` and pass the address it prints. If the cluster uses "
                "token authentication, export RAY_AUTH_MODE=token (Ray sends no token to an "
                "explicit address otherwise)."
            ) from error
        started = True
        if options.address is None:  # a local instance dies with this driver, even killed
            start_reaper(session_pids(ray))
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


_WORKER_PLANS: dict[str, dict[str, Any]] = {}


def _play_batch(context: PlanContext, cells: list[Cell], device: str, memory_budget_bytes: int,
                threads: int, before_task: Callable[[Sequence[Cell]], None] | None
                ) -> list[dict[str, object]]:
    """The Ray task: the rows of one batch (plans rebuilt once per worker and study run)."""
    import torch

    if before_task is not None:
        before_task(cells)
    torch.set_num_threads(threads)
    if context.token not in _WORKER_PLANS:
        _WORKER_PLANS.clear()  # one study's caches at a time
        _WORKER_PLANS[context.token] = context.build(*context.args)
    plans = _WORKER_PLANS[context.token]
    return simulate_batch(plans[cells[0].study], cells, device,
                          memory_budget_bytes=memory_budget_bytes)


def run_grid_ray(
    context: PlanContext,
    cells: Sequence[Cell],
    store: ResultsStore,
    options: RayOptions,
    batch_runs: int = 512,
    device: str = "cpu",
    progress: bool = True,
    after_batch: Callable[[int], None] | None = None,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET,
) -> GridRun:
    """`run_grid` on Ray: every cell of `cells` not already in `store`, one task per batch.

    Must run inside `ray_session(options)`. Args as `run_grid`; `context` rebuilds the plans
    in the workers. Raises the worker's `DeepAlignError` for bad input found while playing,
    and `StudyTaskError` when a batch still fails after `options.max_retries` retries; in both
    cases the batches finished so far are saved and the other tasks are cancelled.
    """
    from tqdm.auto import tqdm

    ray = import_ray()
    done = store.completed()
    todo = [cell for cell in cells if cell.cell_id not in done]
    remote = ray.remote(_play_batch).options(
        num_cpus=1, num_gpus=options.gpus_per_task, max_retries=options.max_retries,
        retry_exceptions=False,
    )
    context_ref = ray.put(context)
    pending = {
        remote.remote(context_ref, batch, device, memory_budget_bytes, options.threads,
                      options.before_task): batch
        for batch in batches(todo, batch_runs)
    }
    bar = tqdm(total=len(todo), desc="study runs (ray)", unit="run",
               disable=None if progress else True, dynamic_ncols=True)
    written = 0
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            batch = pending.pop(ready[0])
            try:
                rows = ray.get(ready[0])
            except ray.exceptions.RayTaskError as error:
                cause = getattr(error, "cause", None)
                if isinstance(cause, DeepAlignError):
                    raise cause from error
                raise StudyTaskError(_failure(batch, options, error)) from error
            except ray.exceptions.RayError as error:
                raise StudyTaskError(_failure(batch, options, error)) from error
            store.write_batch(rows)
            bar.update(len(batch))
            written += 1
            if after_batch is not None:
                after_batch(written)
    finally:
        for ref in pending:
            ray.cancel(ref)  # not force: a forced cancel kills the worker, racing later tasks
        bar.close()
    return GridRun(len(cells), len(cells) - len(todo), len(todo))


def _failure(batch: Sequence[Cell], options: RayOptions, error: BaseException) -> str:
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return (
        f"batch of {len(batch)} runs starting at {batch[0].cell_id} failed after "
        f"{options.max_retries} retries ({type(error).__name__}: {first}); the finished "
        "batches are saved: re-run the same command to resume (raise --max-retries if "
        "workers keep dying, e.g. of memory)."
    )
