"""Exception types. Every error deepalign raises on user input derives from `DeepAlignError`.

Messages name the file (where there is one), the field, line or cell, what was expected,
what came, and the fix. `disk_error` turns a write the disk refused into a `DataError`.
"""

from __future__ import annotations

import errno
from pathlib import Path


class DeepAlignError(Exception):
    """Base class of every deepalign error."""


class DataError(DeepAlignError, ValueError):
    """A data file or in-memory judgment/rating array is malformed."""


class ConfigError(DeepAlignError, ValueError):
    """A configuration (YAML recipe, CLI option, constructor argument) is invalid."""


class CheckpointError(DeepAlignError, ValueError):
    """A checkpoint or exported encoder is missing, truncated, tampered or of the wrong shape."""


#: The errnos of a disk that refuses a write (full, over quota, no permission, read-only).
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS})


def disk_error(path: Path, error: OSError, elsewhere: str = "pass another --out",
               resumes: bool = True) -> DataError:
    """A write that failed on the disk, as a `DataError` naming the path and what to do
    (`elsewhere`: how to write somewhere else instead; `resumes`: a study's finished cells
    are kept, so a full disk says that re-running resumes)."""
    kept = "; finished cells are kept, so re-running resumes" if resumes else ""
    fixes = {errno.ENOSPC: f"free space on that disk (or {elsewhere}){kept}",
             errno.EDQUOT: f"free space within your quota (or {elsewhere})",
             errno.EACCES: f"make the directory writable, or {elsewhere}",
             errno.EPERM: f"make the directory writable, or {elsewhere}",
             errno.EROFS: f"the disk is read-only: {elsewhere}"}
    fix = fixes.get(error.errno, "check the disk and the directory's permissions")
    return DataError(f"{path}: cannot write ({error.strerror or error}). Fix: {fix}.")
