"""A `BenchmarkResult` as a printed table, `benchmark.json`, `benchmark.csv` and
`benchmark.png`, written together: every file goes to a temporary sibling first and is
renamed into place only when all three are complete, so a failure leaves no half-written
output (and no new file at all)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deepalign.errors import ConfigError  # noqa: E402
from deepalign.studies.benchmark import PRIMARY_METRIC, BenchmarkResult  # noqa: E402

__all__ = ["OUTPUT_FILES", "benchmark_csv", "benchmark_figure", "format_benchmark",
           "write_benchmark"]

OUTPUT_FILES = ("benchmark.json", "benchmark.csv", "benchmark.png")


def _number(value: float, digits: int = 3) -> str:
    return "nan" if math.isnan(value) else f"{value:.{digits}f}"


def format_benchmark(result: BenchmarkResult) -> str:
    """One line of settings, then one row per encoder: Spearman per dataset column (held-out
    columns say so) and `safe_general_score` mean +- sem."""
    s = result.settings
    labels = [c.label for c in result.columns]
    width = max(len("encoder"), *(len(r.encoder) for r in result.rows))
    header = [f"{'encoder':<{width}}"] + [f"{label:>{max(len(label), 6)}}" for label in labels]
    header.append(f"{PRIMARY_METRIC:>21}")
    lines = [
        f"Spearman with human similarity per dataset; {PRIMARY_METRIC} of {s.agent} "
        f"(calibrated) on {s.dataset}, {len(s.values)} value(s) x {s.seeds} seeds, horizon "
        f"{s.horizon}, split seed {s.split_seed} (mean +- sem over runs; higher is better)",
        "  ".join(header),
    ]
    for row in result.rows:
        cells = [f"{row.encoder:<{width}}"]
        cells += [f"{_number(row.alignment[label]):>{max(len(label), 6)}}" for label in labels]
        score = f"{_number(row.score_mean)} +- {_number(row.score_sem)}"
        cells.append(f"{score:>21}")
        lines.append("  ".join(cells))
    for column in result.columns:
        if column.split is not None:
            lines.append(
                f"{column.label}: {column.n_pairs} pairs of items held out by split seed "
                f"{column.split.split_seed} (trained on by {', '.join(column.split.encoders)})"
            )
    return "\n".join(lines)


def benchmark_csv(result: BenchmarkResult) -> str:
    """One CSV row per encoder: name, source, each column's Spearman, the score."""
    labels = [c.label for c in result.columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["encoder", "source", *labels, f"{PRIMARY_METRIC}_mean",
                     f"{PRIMARY_METRIC}_sem", "n_runs"])
    for row in result.rows:
        writer.writerow([row.encoder, row.source, *(repr(row.alignment[k]) for k in labels),
                         repr(row.score_mean), repr(row.score_sem), row.n_runs])
    return buffer.getvalue()


def benchmark_figure(result: BenchmarkResult, path: Path) -> None:
    """Grouped bars of Spearman per dataset (left), and the primary score as points with
    standard-error bars (right), one colour per encoder; PNG at `path`."""
    labels = [c.label for c in result.columns]
    rows = result.rows
    figure, (left, right) = plt.subplots(
        1, 2, figsize=(3.0 + 1.6 * len(labels) + 0.5 * len(rows), 4.2),
        gridspec_kw={"width_ratios": [max(len(labels), 1), max(1.2, 0.35 * len(rows))]},
    )
    width = 0.8 / len(rows)
    colours = plt.get_cmap("tab10")
    x = np.arange(len(labels))
    for k, row in enumerate(rows):
        offset = (k - (len(rows) - 1) / 2) * width
        left.bar(x + offset, [row.alignment[label] for label in labels], width,
                 label=row.encoder, color=colours(k % 10))
        right.errorbar([k], [row.score_mean], fmt="o", color=colours(k % 10), capsize=4,
                       yerr=[0.0 if math.isnan(row.score_sem) else row.score_sem])
    left.set_xticks(x, labels, rotation=15, ha="right")
    left.set_ylabel("Spearman with human similarity")
    left.set_title("Human alignment per dataset (higher is better)")
    left.axhline(0.0, color="black", linewidth=0.6)
    left.legend(title="encoder", fontsize="small", ncol=1 + len(rows) // 4)
    s = result.settings
    right.set_xticks(range(len(rows)), [r.encoder for r in rows], rotation=30, ha="right")
    right.set_xlim(-0.6, len(rows) - 0.4)
    right.set_xlabel(f"{s.dataset}, {len(s.values)} value(s) x {s.seeds} seeds")
    right.set_ylabel(f"{PRIMARY_METRIC} (mean +- sem)")
    right.set_title("Value learning\n(higher is better)")
    figure.tight_layout()
    figure.savefig(path, dpi=120, format="png")
    plt.close(figure)


def _temporary(directory: Path, name: str) -> Path:
    """An empty hidden file beside `name`, with the permissions `open` would give it
    (mkstemp makes it owner-only)."""
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.close(descriptor)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    return Path(temporary)


def write_benchmark(result: BenchmarkResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write `OUTPUT_FILES` into `out` (created if missing) all-or-nothing; their paths.

    `ConfigError` when `out` exists and is not a directory."""
    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"--out {directory}: exists and is not a directory; pass a directory")
    created = [p for p in (directory, *directory.parents) if not p.exists()]  # deepest first
    directory.mkdir(parents=True, exist_ok=True)
    staged: dict[str, Path] = {}
    try:
        for name in OUTPUT_FILES:
            staged[name] = _temporary(directory, name)
        staged["benchmark.json"].write_text(
            json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        staged["benchmark.csv"].write_text(benchmark_csv(result), encoding="utf-8")
        benchmark_figure(result, staged["benchmark.png"])
        for temporary in staged.values():
            with open(temporary, "rb") as handle:
                os.fsync(handle.fileno())
    except BaseException:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
        for folder in created:
            folder.rmdir()
        raise
    paths = {}
    for name, temporary in staged.items():
        paths[name] = directory / name
        os.replace(temporary, paths[name])
    return paths
