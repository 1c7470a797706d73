"""853 arms (every ACT behaviour): the study runner chunks runs to its memory budget by the
engine's formula, chunking changes no result, and the peak memory stays within the budget."""

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from deepalign.agents.calibration import KernelCalibration
from deepalign.agents.engine import GPBanditEngine
from deepalign.studies import load_study_config, read_table, run_study
from deepalign.studies.pipeline import build_plans
from deepalign.studies.runner import simulate_batch

N_ARMS = 853
RECIPE = """
name: act-small
seeds: 5
horizon: 8
real:
  dataset: act-behaviors
  values: [act_evaluation]
  kernels: [lexical]
  agents: [gp-ts]
  length_control: false
"""


def formula(n_arms: int, horizon: int, rng_chunk: int = 64, per_run_kernel: bool = False,
            calibrated: bool = False) -> int:
    """The README's memory formula, written out independently of the engine."""
    squares = 8 + (2 if per_run_kernel else 0) + (4 if calibrated else 0)
    return 8 * squares * n_arms**2 + 32 * rng_chunk * (1 + 2 * n_arms) + 16 * horizon


@pytest.fixture(autouse=True)
def single_thread():
    """Small eigen-decompositions and updates: fastest single-threaded (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _same(rows, others) -> bool:
    """Rows equal field by field, nan equal to nan."""
    def equal(a, b):
        return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a)
                          and math.isnan(b))

    return len(rows) == len(others) and all(
        row.keys() == other.keys() and all(equal(row[k], other[k]) for k in row)
        for row, other in zip(rows, others))


@pytest.fixture(scope="module")
def cell_batch(tmp_path_factory):
    path = tmp_path_factory.mktemp("act") / "act.yaml"
    path.write_text(RECIPE)
    plan = build_plans(load_study_config(path), None)["real"]
    return plan, plan.cells()


def test_bytes_per_run_is_the_documented_formula():
    kernel = torch.eye(N_ARMS, dtype=torch.float64)
    assert GPBanditEngine(kernel).bytes_per_run(100) == formula(N_ARMS, 100) == 50_064_512
    per_run = kernel.expand(2, N_ARMS, N_ARMS)
    assert GPBanditEngine(per_run).bytes_per_run(7) == formula(N_ARMS, 7, per_run_kernel=True)
    # the act853 recipe: 1024 MiB // 50.1 MB = 21 runs per chunk
    assert 2**30 // formula(N_ARMS, 100) == 21
    calibrated = GPBanditEngine(kernel, calibration=KernelCalibration())
    assert calibrated.bytes_per_run(100) == formula(N_ARMS, 100, calibrated=True)


@pytest.mark.parametrize("runs_per_chunk", [1, 2, 3])
def test_small_budget_forces_chunks_with_identical_rows(cell_batch, monkeypatch, runs_per_chunk):
    plan, cells = cell_batch
    assert len(cells) == 5 and plan.bandit(cells[0]).n_items == N_ARMS
    chunks: list[int] = []
    original = GPBanditEngine._simulate_chunk

    def counting(self, policy, runs, *args, **kwargs):
        chunks.append(runs.stop - runs.start)
        return original(self, policy, runs, *args, **kwargs)

    monkeypatch.setattr(GPBanditEngine, "_simulate_chunk", counting)
    whole = simulate_batch(plan, cells, memory_budget_bytes=2**40)
    assert chunks == [5]
    chunks.clear()
    one = formula(N_ARMS, 8, calibrated=True)  # studies calibrate by default
    budget = runs_per_chunk * one + one // 2  # not a multiple
    chunked = simulate_batch(plan, cells, memory_budget_bytes=budget)
    expected = [min(runs_per_chunk, 5 - start) for start in range(0, 5, runs_per_chunk)]
    assert chunks == expected and len(chunks) == math.ceil(5 / runs_per_chunk) > 1
    assert _same(chunked, whole)  # every metric of every run, bit for bit


def test_budget_below_one_run_still_runs_one_at_a_time(cell_batch, monkeypatch):
    plan, cells = cell_batch
    chunks: list[int] = []
    original = GPBanditEngine._simulate_chunk

    def counting(self, policy, runs, *args, **kwargs):
        chunks.append(runs.stop - runs.start)
        return original(self, policy, runs, *args, **kwargs)

    monkeypatch.setattr(GPBanditEngine, "_simulate_chunk", counting)
    simulate_batch(plan, cells[:2], memory_budget_bytes=1)
    assert chunks == [1, 1]


PROBE = """
import json, resource, sys, torch
torch.set_num_threads(1)
from deepalign.studies import load_study_config, read_table, run_study
from deepalign.studies.pipeline import build_plans
from deepalign.studies.runner import simulate_batch
from deepalign.studies.grid import Cell
plan = build_plans(load_study_config(sys.argv[1]), None)["real"]
cells = plan.cells()
simulate_batch(plan, cells[:1], memory_budget_bytes=2**40)  # warm: kernel, data, code
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
cells = [Cell(c.study, c.condition, c.dataset, c.value, c.kernel, c.agent, seed)
         for c in cells[:1] for seed in range(int(sys.argv[3]))]
simulate_batch(plan, cells, memory_budget_bytes=int(sys.argv[2]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "after": after}))
"""


def test_peak_memory_of_a_large_batch_stays_within_the_budget(tmp_path):
    """30 runs over 853 arms in one batch would take 1.4 GB by the formula (measured: ~0.7 GB
    unchunked, 4 n_arms^2 float64 per run at a refresh); with a 256 MiB budget the engine plays
    chunks of 5 runs and the process's peak grows by less than the budget."""
    recipe = tmp_path / "act.yaml"
    recipe.write_text(  # past a refresh (250); the fixed-prior path
        RECIPE.replace("horizon: 8", "horizon: 260\ncalibration: false")
    )
    budget = 256 * 2**20
    assert budget // formula(N_ARMS, 260) == 5
    _assert_peak_within(recipe, budget, 30)


def test_peak_memory_with_calibration_stays_within_the_budget(tmp_path):
    """Calibrated runs keep a per-run kernel and square root too (4 n_arms^2 more per run):
    8 runs past two fits (after 5 and 10 observations) in chunks of 2."""
    recipe = tmp_path / "act.yaml"
    recipe.write_text(RECIPE.replace("horizon: 8", "horizon: 11"))
    one = formula(N_ARMS, 11, calibrated=True)
    budget = 2 * one + one // 2
    _assert_peak_within(recipe, budget, 8)


def _assert_peak_within(recipe, budget: int, n_runs: int) -> None:
    probe = subprocess.run([sys.executable, "-c", PROBE, str(recipe), str(budget), str(n_runs)],
                           capture_output=True, text=True, timeout=300,
                           env={"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                                "PATH": "/usr/bin:/bin"})
    assert probe.returncode == 0, probe.stderr
    rss = json.loads(probe.stdout.strip().splitlines()[-1])
    grown = rss["after"] - rss["before"]
    assert grown < budget, f"peak grew by {grown / 2**20:.0f} MiB, budget 256 MiB"


def test_act853_recipe_runs_a_shrunk_cell(tmp_path):
    recipe = Path(__file__).resolve().parents[2] / "configs" / "study" / "act853.yaml"
    config = load_study_config(recipe)
    real = config.real
    assert (real.dataset, real.values, real.kernels, real.agents) == (
        "act-behaviors", ("act_evaluation",), ("pretrained",), ("gp-ts",))
    assert config.memory_budget_mb * 2**20 // formula(N_ARMS, config.horizon) == 21
    small = replace(config, seeds=2, horizon=5)
    table = read_table(run_study(small, tmp_path / "out", progress=False).table)
    assert len(table) == 2
    assert set(table.column("n_arms") + table.column("n_heldout")) == {N_ARMS}
    assert set(table.column("backend")) == {"engine"}
    assert all(math.isnan(v) for v in table.column("alignment_all"))
    assert "no human similarity" in table.rows[0]["alignment_source"]
    # two different runs of a real, non-degenerate bandit
    assert table.rows[0]["mean_reward"] != table.rows[1]["mean_reward"]
