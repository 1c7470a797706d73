"""Bounds on sizes a user gives, checked before anything is allocated.

`env_limit`: a limit that an environment variable may raise (DEEPALIGN_MAX_STEPS, _DIM, ...).
`check_threads`: a torch thread count. torch creates its intra-op pool on the first parallel
operation; 100,000 threads exhaust the process's memory (a MemoryError, or a segmentation
fault inside the pool), so every option that sets the count is checked here first.
"""

from __future__ import annotations

import os

from deepalign.errors import ConfigError

__all__ = ["MAX_THREADS", "check_threads", "env_limit"]

def env_limit(variable: str, default: int) -> int:
    """The positive int in the environment variable `variable`, else `default`."""
    try:
        value = int(os.environ.get(variable, default))
    except ValueError:
        return default
    return value if value > 0 else default


#: The most torch threads an option may ask for (past any machine's core count).
MAX_THREADS = 1024


def check_threads(value: object, option: str) -> int:
    """`value` when it is an int in 1..MAX_THREADS, else ConfigError naming `option`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_THREADS:
        raise ConfigError(f"{option}: expected an int in 1..{MAX_THREADS} (torch threads), got "
                          f"{value!r}. Fix: e.g. 1, or at most the cores this machine has "
                          f"({os.cpu_count()}).")
    return value
