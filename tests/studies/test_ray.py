"""Studies on Ray: a worker killed mid-study is retried, and the table equals the in-process one.

Starts one local 2-CPU Ray instance for the module. A `before_task` hook kills (os._exit)
the worker that plays a chosen batch, on its first attempt only (a marker file counts the
attempts), so Ray must retry it; without retries the study fails, keeps its finished batches,
and the same call resumes to the same table.
"""

import os
import sys
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray")

from deepalign.studies import load_study_config, run_study  # noqa: E402
from deepalign.studies.distributed import (  # noqa: E402
    WORKER_ENV,
    RayOptions,
    StudyTaskError,
    ray_session,
)
from deepalign.studies.grid import batches  # noqa: E402
from deepalign.studies.pipeline import build_plans  # noqa: E402
from deepalign.studies.results import ResultsStore  # noqa: E402

RECIPE = """
name: ray-small
seeds: 3
horizon: 10
batch_runs: 2
synthetic:
  values: [act_evaluation]
  levels: [0.5]
  agents: [gp-ts, independent-ts]
  references: false
real:
  values: [act_evaluation]
  kernels: [human, lexical]
  agents: [gp-ts, kernel-regression]
  length_control: false
"""


class KillOnce:
    """Kill the worker playing the batch that holds `victim`, on its first attempt."""

    def __init__(self, marker: Path, victim: str) -> None:
        self.marker = str(marker)
        self.victim = victim

    def __call__(self, cells) -> None:
        if self.victim not in [cell.cell_id for cell in cells]:
            return
        with open(self.marker, "a") as handle:
            handle.write("attempt\n")
        with open(self.marker) as handle:
            if len(handle.readlines()) == 1:
                os._exit(1)  # the worker process dies mid-task, like a lost node


@pytest.fixture(scope="module")
def cluster():
    # the hook is defined here, in a module Ray workers cannot import: ship it by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": dict(WORKER_ENV)})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    path = tmp_path_factory.mktemp("recipe") / "ray-small.yaml"
    path.write_text(RECIPE)
    return path


@pytest.fixture(scope="module")
def reference(recipe, tmp_path_factory):
    """The in-process table (single-threaded, as the Ray tasks)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = run_study(load_study_config(recipe), tmp_path_factory.mktemp("local") / "out",
                           progress=False)
    finally:
        torch.set_num_threads(threads)
    return result


def _victim(config) -> tuple[str, int]:
    """A cell of the middle batch of the grid, and the number of batches."""
    plans = build_plans(config, None)
    cells = [cell for plan in plans.values() for cell in plan.cells()]
    groups = batches(cells, config.batch_runs)
    return groups[len(groups) // 2][0].cell_id, len(groups)


def test_killed_worker_is_retried_and_table_equals_in_process(cluster, recipe, reference,
                                                             tmp_path):
    config = load_study_config(recipe)
    victim, n_batches = _victim(config)
    marker = tmp_path / "attempts.txt"
    options = RayOptions(max_retries=2, before_task=KillOnce(marker, victim))
    result = run_study(config, tmp_path / "ray", progress=False, backend="ray",
                       ray_options=options)
    assert marker.read_text().count("attempt") == 2  # killed once, then retried
    assert result.n_run == result.n_cells == reference.n_cells == 18
    assert len(list((tmp_path / "ray" / "parts").glob("*.csv"))) == n_batches == 12
    assert result.table.read_text() == reference.table.read_text()  # bit-identical rows


def test_without_retries_the_study_fails_keeps_parts_and_resumes(cluster, recipe, reference,
                                                                tmp_path):
    config = load_study_config(recipe)
    victim, n_batches = _victim(config)
    marker = tmp_path / "attempts.txt"
    out = tmp_path / "ray"
    options = RayOptions(max_retries=0, before_task=KillOnce(marker, victim))
    with pytest.raises(StudyTaskError, match="re-run the same command"):
        run_study(config, out, progress=False, backend="ray", ray_options=options)
    assert not (out / "results.csv").exists()
    assert len(list((out / "parts").glob("*.csv"))) < n_batches
    written = ResultsStore(out).completed()
    assert victim not in written
    resumed = run_study(config, out, progress=False, backend="ray",
                        ray_options=RayOptions(max_retries=0, before_task=KillOnce(marker,
                                                                                   victim)))
    assert marker.read_text().count("attempt") == 2  # the second attempt lives
    assert resumed.n_skipped == len(written) and resumed.n_run == reference.n_cells - len(written)
    assert resumed.table.read_text() == reference.table.read_text()


def test_session_reuses_a_running_instance(cluster):
    with ray_session(RayOptions(address="nowhere:1")) as module:  # already initialised
        assert module.is_initialized()
    assert ray.is_initialized()  # not shut down: this session was not started there
