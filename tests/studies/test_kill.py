"""A study process killed by SIGKILL mid-run resumes, with the same command, to exactly the
table of an uninterrupted run: no row missing, none duplicated, no half row."""

import os
import signal
import subprocess
import sys
import time

import torch

from deepalign.studies import load_study_config, read_table, run_study
from deepalign.studies.results import ResultsStore

# 24 batches of one run over the 853 ACT behaviours (~0.1 s each): long enough to kill mid-way.
# Calibration off keeps each batch that short (calibrated runs' batch and process invariance
# is tested in tests/agents/test_engine_calibrated.py and test_large_arms.py).
RECIPE = """
name: kill
seeds: 12
horizon: 40
batch_runs: 1
calibration: false
real:
  dataset: act-behaviors
  values: [act_evaluation]
  kernels: [lexical, length]
  agents: [gp-ts]
  length_control: false
"""


def _command(recipe, out):
    return [sys.executable, "-m", "deepalign.study", str(recipe), "--out", str(out),
            "--no-progress", "--threads", "1"]


def _env():
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


def test_sigkilled_study_resumes_to_the_uninterrupted_table(tmp_path):
    recipe = tmp_path / "kill.yaml"
    recipe.write_text(RECIPE)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        full = run_study(load_study_config(recipe), tmp_path / "full", progress=False)
    finally:
        torch.set_num_threads(threads)
    assert full.n_cells == 24

    out = tmp_path / "cut"
    parts = out / "parts"
    process = subprocess.Popen(_command(recipe, out), env=_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if parts.is_dir() and len(list(parts.glob("*.csv"))) >= 3:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL  # killed, not finished
    written = ResultsStore(out).completed()  # every part on disk reads back whole
    assert 3 <= len(written) < full.n_cells
    assert not (out / "results.csv").exists()

    rerun = subprocess.run(_command(recipe, out), env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{full.n_cells - len(written)} runs done, {len(written)} already written" in (
        rerun.stdout)
    table = read_table(out / "results.csv")
    ids = [row["cell_id"] for row in table.rows]
    assert len(ids) == len(set(ids)) == full.n_cells  # none missing, none duplicated
    assert (out / "results.csv").read_text() == full.table.read_text()
