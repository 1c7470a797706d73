"""`study_lock(out)`: one `deepalign.study` process at a time per output directory.

The lock is an advisory `fcntl.flock` on `OUT/.deepalign.lock`, taken without waiting: a
second process on the same `--out` is refused at once with a message naming the holder's
pid, instead of computing every cell a second time. The kernel drops the lock when its
process ends, however it ends, so a killed study never leaves a stale lock behind. The
file itself stays (empty but for the last holder's pid) and is ignored by the directory
checks; a directory the lock created for a run that then wrote nothing is removed again.
Where `fcntl` does not exist (Windows) there is no lock.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from deepalign.errors import ConfigError

__all__ = ["LOCK_NAME", "study_lock"]

LOCK_NAME = ".deepalign.lock"


@contextlib.contextmanager
def study_lock(out: Path) -> Iterator[None]:
    """Hold the lock of `out` (created if missing) for the body; ConfigError when another
    process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    handle = open(path, "a+", encoding="utf-8")
    acquired = False
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ConfigError(
                f"{out}: another `python -m deepalign.study` (pid {holder}) is writing into "
                "this directory. Fix: wait for it to finish (then re-run: finished cells are "
                "skipped), or pass another --out.") from None
        acquired = True
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        # only the holder cleans up, and while it still holds the lock: a directory it
        # created for a run that then wrote nothing is removed again
        if acquired and created and [p.name for p in out.iterdir()] == [LOCK_NAME]:
            path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                out.rmdir()
        handle.close()  # closing the file drops the lock
