"""`check_threads`: a torch thread count from the user, bounded before torch gets it.

torch creates its intra-op pool on the first parallel operation; 100,000 threads exhaust the
process's memory (a MemoryError, or a segmentation fault inside the pool), so every option
that sets the count is checked here first.
"""

from __future__ import annotations

import os

from deepalign.errors import ConfigError

__all__ = ["MAX_THREADS", "check_threads"]

#: The most torch threads an option may ask for (past any machine's core count).
MAX_THREADS = 1024


def check_threads(value: object, option: str) -> int:
    """`value` when it is an int in 1..MAX_THREADS, else ConfigError naming `option`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_THREADS:
        raise ConfigError(f"{option}: expected an int in 1..{MAX_THREADS} (torch threads), got "
                          f"{value!r}. Fix: e.g. 1, or at most the cores this machine has "
                          f"({os.cpu_count()}).")
    return value
