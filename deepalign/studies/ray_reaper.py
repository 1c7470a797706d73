"""`start_reaper()`: the Ray processes a study started die with its driver, however it dies.

`ray.shutdown()` stops a local instance when the driver exits normally, but a driver killed
by SIGKILL runs no cleanup, and its GCS server, raylet and helpers lingered for minutes. Right
after starting a local instance the driver launches a small detached watcher (standard
library only) with its own pid and the pids of the instance's processes. The watcher polls
once every half second, noting the driver's descendants each time; when the driver is gone
(or a zombie) it SIGKILLs those processes, their descendants (the workers) and the driver's
last-seen descendants (Ray's agents, an encoder training the study started), then exits.
It also exits, doing nothing, once every watched process is gone (a normal shutdown).
Linux `/proc` finds descendants and zombies; elsewhere only the listed processes are killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

__all__ = ["session_pids", "start_reaper"]

_WATCHER = r"""
import os, signal, sys, time
driver, watched = int(sys.argv[1]), [int(p) for p in sys.argv[2:]]

def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False

def family(roots):
    children = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        entries = []
    for entry in entries:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found

me = os.getpid()
seen = set()
while alive(driver) and any(alive(pid) for pid in watched):
    # the driver's descendants as last seen: Ray's agents are started under it, and once it
    # dies they are re-parented where /proc no longer ties them to it
    seen = set(family([driver])) - {driver, me}
    time.sleep(0.5)
if not alive(driver):
    for pid in (seen | set(family(watched))) - {me}:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""


def session_pids(ray: Any) -> list[int]:
    """Pids of the processes of the local Ray instance this driver started (GCS server,
    raylet, log monitor, ...); [] when Ray does not say (its internals moved)."""
    try:
        node = ray._private.worker._global_node
        return sorted({int(info.process.pid) for infos in node.all_processes.values()
                       for info in infos if getattr(info, "process", None) is not None})
    except Exception:  # noqa: BLE001 - a private API; without it there is no reaper
        return []


def start_reaper(pids: list[int]) -> subprocess.Popen | None:
    """Launch the detached watcher for `pids` on behalf of this process (None when there
    is nothing to watch)."""
    if not pids:
        return None
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHER, str(os.getpid()), *map(str, pids)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )
