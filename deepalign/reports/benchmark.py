"""The encoder benchmark in the report: DIR/benchmark/benchmark.json (written by a recipe's
`benchmark` section, or `python -m deepalign.benchmark --out DIR/benchmark`) as one table
and its figure. A missing file leaves the section out; a damaged one is named, not used."""

from __future__ import annotations

import json
import math
from pathlib import Path

from deepalign.reports.document import Document
from deepalign.reports.tables import Table

__all__ = ["BENCHMARK_FILE", "benchmark_section", "read_benchmark"]

BENCHMARK_FILE = Path("benchmark") / "benchmark.json"


def read_benchmark(root: Path) -> tuple[dict | None, str]:
    """(the benchmark JSON under `root`, "") or (None, why it is not shown)."""
    path = root / BENCHMARK_FILE
    if not path.is_file():
        return None, ""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        columns = [c["label"] for c in data["columns"]]
        for row in data["rows"]:
            _ = [row["alignment"][c] for c in columns], row["safe_general_score"]["mean"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        return None, (f"{path} is damaged ({type(error).__name__}: {error}); rerun "
                      "python -m deepalign.benchmark --out to rewrite it.")
    return data, ""


def _number(value) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value):.3f}"


def benchmark_table(data: dict) -> Table:
    columns = data["columns"]
    headers = ["encoder", *(c["label"] for c in columns), "safe_general_score (mean +- sem)"]
    rows = []
    for row in data["rows"]:
        score = row["safe_general_score"]
        rows.append((row["encoder"], *(_number(row["alignment"][c["label"]]) for c in columns),
                     f"{_number(score['mean'])} +- {_number(score.get('sem'))}"))
    s = data["settings"]
    return Table(
        f"Encoder benchmark: Spearman with human similarity per dataset (held-out pairs where "
        f"a listed encoder trained on those judgments), and the safe-and-general score of "
        f"{s['agent']} (calibrated) on {s['dataset']}, {len(s['values'])} value(s) x "
        f"{s['seeds']} seeds, horizon {s['horizon']}; higher is better everywhere",
        tuple(headers), tuple(rows))


def benchmark_section(document: Document, root: Path) -> None:
    """The "Encoder benchmark" section, when DIR/benchmark/benchmark.json is there."""
    data, problem = read_benchmark(root)
    if data is None and not problem:
        return
    document.heading(2, "Encoder benchmark")
    if data is None:
        document.paragraph(problem)
        return
    held = [c for c in data["columns"] if c.get("pairs") != "all"]
    document.paragraph(
        "Which encoder to use as a human-like kernel, by evidence: "
        + (", ".join(f"{c['label']} is scored on {c['n_pairs']} held-out pairs" for c in held)
           + " (an encoder in the list trained on those judgments)" if held else
           "every dataset is scored on all its judged pairs (no listed encoder trained on them)")
        + ". The score column is the study's primary score with each encoder as the kernel.")
    document.table(benchmark_table(data))
    figure = root / "benchmark" / "benchmark.png"
    if figure.is_file():
        document.figure(figure, "Encoder benchmark: alignment per dataset and the primary "
                        "score (higher is better)")
