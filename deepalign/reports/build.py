"""`build_report(DIR)`: DIR/results.csv -> DIR/report.md, DIR/report.html, DIR/figures/*.png.

The report is built from the results table alone (no model, no config): analyses from
`deepalign.studies.analysis`, figures, tables and text generated from the numbers. Each
study present in the table gets a section; a study absent from the table is named as absent.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path

from deepalign.reports import figures, tables, text
from deepalign.studies.analysis import (
    PAPER_METRICS,
    analyse_real,
    analyse_synthetic,
    analyse_trained,
)
from deepalign.studies.results import GENERALIZATION_METRICS, ResultsTable, read_table

__all__ = ["Report", "build_report"]

_REAL_METRICS = ("mean_reward", "bad_actions", "unique_actions", "greedy_convergence",
                 "generalization_spearman", "greedy_value", "bad_in_top5")


@dataclass(frozen=True)
class Report:
    """Where `build_report` wrote: `markdown`, `html`, `figures` (paths), `headline` lines."""

    markdown: Path
    html: Path
    figures: tuple[Path, ...]
    headline: tuple[str, ...]


class _Document:
    """Blocks rendered to both Markdown and HTML."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blocks: list[tuple[str, object]] = []
        self.figures: list[Path] = []

    def heading(self, level: int, words: str) -> None:
        self.blocks.append((f"h{level}", words))

    def paragraph(self, words: str) -> None:
        self.blocks.append(("p", words))

    def table(self, table: tables.Table) -> None:
        self.blocks.append(("table", table))

    def figure(self, path: Path, caption: str) -> None:
        self.figures.append(path)
        self.blocks.append(("figure", (path, caption)))

    def markdown(self) -> str:
        out = []
        for kind, content in self.blocks:
            if kind.startswith("h"):
                out.append("#" * int(kind[1:]) + " " + str(content))
            elif kind == "p":
                out.append(str(content))
            elif kind == "table":
                out.append(content.markdown())  # type: ignore[union-attr]
            else:
                path, caption = content  # type: ignore[misc]
                out.append(f"![{caption}]({path.relative_to(self.root).as_posix()})\n\n"
                           f"*{caption}*")
        return "\n\n".join(out) + "\n"

    def html(self, title: str) -> str:
        body = []
        for kind, content in self.blocks:
            if kind.startswith("h"):
                body.append(f"<{kind}>{html.escape(str(content))}</{kind}>")
            elif kind == "p":
                body.append(f"<p>{html.escape(str(content))}</p>")
            elif kind == "table":
                body.append(content.html())  # type: ignore[union-attr]
            else:
                path, caption = content  # type: ignore[misc]
                source = html.escape(path.relative_to(self.root).as_posix())
                body.append(f"<figure><img src=\"{source}\" alt=\"{html.escape(caption)}\">"
                            f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
                 "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}"
                 "td,th{border:1px solid #ccc;padding:3px 6px}caption{font-style:italic}"
                 "img{max-width:100%}")
        return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>"
                f"{html.escape(title)}</title><style>{style}</style></head><body>"
                + "\n".join(body) + "</body></html>\n")


def _write(path: Path, content: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, path)


def _setup(table: ResultsTable, studies: tuple[str, ...]) -> str:
    """One generated sentence describing the runs of `studies` in the table."""
    rows = table.where(study=studies)

    def listed(name: str) -> str:
        return ", ".join(str(v) for v in rows.unique(name))

    kernels = [str(k) for k in rows.unique("kernel")]
    checkpoints = [k for k in kernels if k.startswith("epoch-")]
    shown = [k for k in kernels if not k.startswith("epoch-")]
    if checkpoints:
        shown.append(f"checkpoints at {len(checkpoints)} training epochs")
    horizons = ", ".join(f"{h:g}" for h in rows.unique("horizon"))
    arms = ", ".join(f"{a:g}" for a in rows.unique("n_arms"))
    return (f"Setup (from the table): {len(rows)} runs on {listed('dataset')}; values "
            f"{listed('value')}; kernels {', '.join(shown)}; agents {listed('agent')}; "
            f"{len(rows.unique('seed'))} seeds; horizon {horizons}; arms {arms}.")


def build_report(directory: str | Path, table: ResultsTable | None = None) -> Report:
    """Write the report of the study in `directory` (reads `directory/results.csv` unless a
    `table` is given) and return where it went."""
    root = Path(directory)
    table = read_table(root / "results.csv") if table is None else table
    figure_dir = root / "figures"
    document = _Document(root)
    synthetic, real, trained = analyse_synthetic(table), analyse_real(table), analyse_trained(table)
    title = "deepalign study report"
    document.heading(1, title)
    document.heading(2, "Answer")
    headline = text.headline(synthetic, real, trained)
    for line in headline:
        document.paragraph(line)
    document.paragraph(
        f"Every sentence in this report is generated from the results table ({len(table)} runs, "
        "results.csv beside this file); significance means p < "
        f"{text.ALPHA}. Alignment is the Spearman correlation between the kernel's and the "
        "human similarities over observed pairs."
    )

    document.heading(2, "Study 1: synthetic kernels of controlled alignment")
    if synthetic is None:
        document.paragraph("Not in this results table.")
    else:
        document.paragraph(_setup(table, ("synthetic",)))
        for words in text.synthetic_text(synthetic):
            document.paragraph(words)
        document.table(tables.synthetic_table(synthetic))
        metrics = [m for m in PAPER_METRICS + GENERALIZATION_METRICS
                   if any(m in c for c in synthetic.curves.values())]
        document.table(tables.synthetic_table(
            synthetic, [m for m in metrics if m not in PAPER_METRICS]))
        document.figure(
            figures.synthetic_figure(synthetic, metrics, figure_dir / "synthetic.png"),
            "Study 1: each metric against measured alignment (mean and standard error per "
            "alignment level; dashed: agents without a kernel)",
        )

    document.heading(2, "Study 2: real human judgments")
    if real is None:
        document.paragraph("Not in this results table.")
    else:
        document.paragraph(_setup(table, ("real",)))
        for words in text.real_text(real):
            document.paragraph(words)
        metrics = [m for m in _REAL_METRICS if any(m in p for p in real.points.values())]
        document.table(tables.real_correlation_table(real, metrics))
        for condition, agent in real.points:
            document.table(tables.real_means_table(real, condition, agent, metrics))
            name = f"real_{condition}_{agent}.png".replace("/", "_")
            document.figure(
                figures.real_figure(real, condition, agent, metrics, figure_dir / name),
                f"Study 2 ({condition}, {agent}): metrics against kernel alignment "
                "(marker: kernel, colour: value, bars: standard error)",
            )

    document.heading(2, "Study 3: does alignment gained by training help?")
    if trained is None:
        document.paragraph("Not in this results table.")
    else:
        document.paragraph(_setup(table, ("trained", "transfer")))
        for words in text.trained_text(trained):
            document.paragraph(words)
        if any(r.n for r in trained.alignment.values()):
            document.table(tables.trained_alignment_table(trained))
        for agent in trained.agents:
            document.table(tables.trained_metric_table(trained, agent))
            bars = {"alignment_heldout": trained.alignment["heldout"], **trained.metrics[agent]}
            document.figure(
                figures.paired_bars(bars, figure_dir / f"trained_{agent}.png",
                                    f"untrained vs trained encoder, {agent}"),
                f"Study 3 ({agent}): before vs after training (bar: mean over paired units; "
                "whisker: 95% bootstrap CI of the change)",
            )
            if agent in trained.dose:
                document.paragraph(
                    "Dose-response along training checkpoints: Spearman between held-out "
                    "alignment and each metric over checkpoints x encoder seeds x values: "
                    + "; ".join(f"{m} {tables._rho(r)}"
                                for m, r in trained.dose_correlations[agent].items()) + "."
                )
                document.figure(
                    figures.dose_figure(trained.dose[agent], figure_dir / f"dose_{agent}.png"),
                    f"Study 3 ({agent}): metrics against held-out alignment along training",
                )
        if trained.transfer:
            document.heading(3, "Transfer")
            document.paragraph(
                "The value datasets of the transfer test (e.g. dillion-morality, mfv) have no "
                "human similarity judgments between their items, so the alignment of a kernel "
                "over their arms cannot be measured. The alignment shown is the encoder's "
                "alignment on the held-out pairs of the similarity dataset it was trained on: "
                + "; ".join(f"{source}: {trained.transfer_alignment[source].mean_before:.3f} "
                            f"\u2192 {trained.transfer_alignment[source].mean_after:.3f}"
                            for source in trained.transfer_alignment)
                + " (recorded in the table's alignment_source: "
                + "; ".join(sorted(set(trained.transfer_alignment_source.values()))) + ")."
            )
            document.table(tables.transfer_table(
                trained, ("mean_reward", "bad_actions", "generalization_spearman", "bad_in_top5")
            ))
    markdown_path, html_path = root / "report.md", root / "report.html"
    _write(markdown_path, document.markdown())
    _write(html_path, document.html(title))
    return Report(markdown_path, html_path, tuple(document.figures), tuple(headline))
