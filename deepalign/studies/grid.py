"""Study grids: cells = datasets x values x kernels x agents x seeds [x alignment levels].

A `Cell` is one bandit run, i.e. one row of the results table. Its `cell_id` is a readable
string built from every field, so it is stable across processes, machines and re-runs and
is how resume recognises finished work. Runs that share everything but the seed form a
`group` and are simulated together in one batch.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Cell", "batches", "stable_seed"]


@dataclass(frozen=True)
class Cell:
    """One run of the grid.

    `study`: "synthetic" | "real" | "trained" | "transfer". `condition`: the variant inside
    a study (study 1's "environment:arms", e.g. "gp-sample:block"; "human" or
    "length-control"; "paired" or "uniformity-control"; the transfer's training dataset;
    "reference" for the reference kernels of study 3).
    `kernel`: the kernel's name ("synthetic", "human", "pretrained", ..., "before", "after",
    "epoch-3", "uniformity-matched", "constant", "identity"). `level`: target alignment of a
    synthetic kernel (nan otherwise). `encoder_seed` / `epoch`: which trained encoder (nan
    when none; for "uniformity-matched", the trained encoder whose uniformity it matches).
    """

    study: str
    condition: str
    dataset: str
    value: str
    kernel: str
    agent: str
    seed: int
    level: float = math.nan
    encoder_seed: float = math.nan
    epoch: float = math.nan

    @property
    def cell_id(self) -> str:
        """Stable identifier: every field, '/'-joined (nan fields left out)."""
        parts = [self.study, self.condition, self.dataset, self.value, self.kernel, self.agent]
        if not math.isnan(self.level):
            parts.append(f"level={self.level:.6g}")
        if not math.isnan(self.encoder_seed):
            parts.append(f"encoder={int(self.encoder_seed)}")
        if not math.isnan(self.epoch):
            parts.append(f"epoch={self.epoch:g}")
        parts.append(f"seed={self.seed}")
        return "/".join(parts)

    @property
    def group(self) -> tuple:
        """Everything but the seed: runs with the same group share an environment and kernel
        family and are simulated in one batch."""
        return (
            self.study,
            self.condition,
            self.dataset,
            self.value,
            self.kernel,
            self.agent,
            _key(self.level),
            _key(self.encoder_seed),
            _key(self.epoch),
        )

    def kernel_seed(self) -> int:
        """Seed of a run's random kernel (synthetic level): shared by all agents and values
        of the same dataset, level and run seed, so agents are compared on the same kernels."""
        return stable_seed(self.dataset, f"{self.level:.6g}", self.seed)


def _key(value: float) -> float | str:
    return "nan" if math.isnan(value) else value


def stable_seed(*parts: object) -> int:
    """A seed in [0, 2**31) from the string forms of `parts` (crc32; the same everywhere)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode("utf-8")) & 0x7FFFFFFF


def batches(cells: Iterable[Cell], max_runs: int) -> list[list[Cell]]:
    """Split `cells` into batches of one group each, at most `max_runs` cells per batch,
    keeping the order in which groups first appear and, inside a group, the seed order."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.group, []).append(cell)
    out: list[list[Cell]] = []
    for members in groups.values():
        for start in range(0, len(members), max_runs):
            out.append(members[start : start + max_runs])
    return out


def check_unique(cells: Sequence[Cell]) -> None:
    """Raise ValueError if two cells share an id (a grid-building bug)."""
    seen: set[str] = set()
    for cell in cells:
        if cell.cell_id in seen:
            raise ValueError(f"duplicate cell id {cell.cell_id!r} in the grid")
        seen.add(cell.cell_id)
