"""A Ray study driver killed by SIGKILL mid-study leaves no Ray process behind (issue 16):
the reaper it launched kills the GCS server, raylet, helpers and workers it started."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RECIPE = """
name: raykill
seeds: 40
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


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs Linux /proc")
def test_killed_ray_driver_leaves_no_process(tmp_path):
    pytest.importorskip("ray")
    recipe = tmp_path / "raykill.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen(
        [sys.executable, "-m", "deepalign.study", str(recipe), "--out", str(out),
         "--backend", "ray", "--num-cpus", "1", "--no-progress"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and driver.poll() is None:
        if (out / "parts").is_dir() and len(list((out / "parts").glob("*.csv"))) >= 2:
            break
        time.sleep(0.1)
    assert driver.poll() is None, "the study ended before it could be killed"
    started = {pid for pid in _descendants(driver.pid) if _state(pid) not in (None, "Z")}
    assert started, "no Ray process was started under the driver"
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    deadline = time.monotonic() + 30
    left = started
    while time.monotonic() < deadline:
        left = {pid for pid in started if _state(pid) not in (None, "Z")}
        if not left:
            break
        time.sleep(0.5)
    names = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
             for pid in left if Path(f"/proc/{pid}/cmdline").exists()}
    assert not left, f"Ray processes outlived the killed driver: {names}"
