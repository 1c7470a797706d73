"""`build_report(DIR)`: DIR/results.csv -> DIR/report.md, DIR/report.html, DIR/figures/*.png.

The report is built from the results table (analyses from `deepalign.studies.analysis` and
`deepalign.studies.kernel_checks`; figures, tables and text generated from the numbers), the
recipe's primary metric and calibration from DIR/study.json when it is there
(`deepalign.reports.answer.recipe_settings`) and study 3's preservation suite from
DIR/encoder_runs.json when it is there (`deepalign.reports.preservation`). Each study
present in the table gets a section, led by its primary score; a study absent from the
table is named as absent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deepalign.errors import DISK_ERRNOS
from deepalign.kernels.spectrum import NEAR_CONSTANT_TOP_SHARE
from deepalign.reports import answer, benchmark, figures, models, preservation, tables, text
from deepalign.reports.checks import (
    check_output_paths,
    check_results_file,
    check_writable,
    report_disk_error,
)
from deepalign.reports.document import Document, write_atomic
from deepalign.reports.tables import primary_first
from deepalign.studies.analysis import (
    PAPER_METRICS,
    RealAnalysis,
    SyntheticAnalysis,
    TrainedAnalysis,
    analyse_real,
    analyse_synthetic,
    analyse_trained,
    synthetic_conditions,
)
from deepalign.studies.kernel_checks import (
    KernelSpectrum,
    kernel_spectra,
    real_plane,
    synthetic_plane,
    trained_plane,
)
from deepalign.studies.models_analysis import analyse_models
from deepalign.studies.results import GENERALIZATION_METRICS, ResultsTable, read_table
from deepalign.studies.trained_analysis import (
    ENCODER_RUNS,
    EncoderRecord,
    read_encoder_records,
)

__all__ = ["Report", "build_report"]

_REAL_METRICS = ("mean_reward", "bad_actions", "unique_actions", "greedy_convergence",
                 "generalization_spearman", "greedy_value", "bad_in_top5", "simple_regret",
                 "generalization_regret")
_SYNTHETIC_EXTRA = ("final_guess_value", "simple_regret", *GENERALIZATION_METRICS)
_TRANSFER_METRICS = ("mean_reward", "bad_actions", "generalization_spearman", "bad_in_top5",
                     "generalization_regret")
_ABSENT = "Not in this results table."
_PLANE_CAPTION = (
    ": each kernel at x = mean bad actions, y = mean held-out rank agreement (bars: standard "
    "error over runs; grey crosses: reference kernels and kernel-free agents; open markers: "
    "near-constant kernels; dotted: no generalization). Few bad actions with no "
    "generalization (bottom left) may only mean the agent stopped exploring."
)


@dataclass(frozen=True)
class Report:
    """Where `build_report` wrote: `markdown`, `html`, `figures` (paths), `headline` lines."""

    markdown: Path
    html: Path
    figures: tuple[Path, ...]
    headline: tuple[str, ...]


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


def _plane(document: Document, panels: dict, path: Path, caption: str,
           ordered: bool = False) -> None:
    if panels:
        document.figure(figures.plane_figure(panels, path, ordered=ordered),
                        caption + _PLANE_CAPTION)


def _synthetic_section(document: Document, analyses: list[SyntheticAnalysis],
                       table: ResultsTable, settings: answer.RecipeSettings,
                       figure_dir: Path) -> None:
    """Study 1: the paper's table for every variant first, each with the generated verdict
    on which cells reproduce the paper; then each variant's details."""
    primary = settings.primary_metric
    document.paragraph(_setup(table, ("synthetic",)))
    for analysis in analyses:
        document.paragraph(text.paper_text(analysis))
        document.table(tables.paper_table(analysis))
    for analysis in analyses:
        # one variant keeps the plain figure names; several get one set each
        suffix = "" if len(analyses) == 1 else "_" + analysis.condition.replace(":", "_")
        if len(analyses) > 1:
            document.heading(3, text.variant_words(analysis.condition).capitalize())
        document.paragraph(answer.synthetic_primary(analysis, settings))
        for words in text.synthetic_text(analysis):
            document.paragraph(words)
        document.table(tables.synthetic_table(analysis, primary_first(primary, PAPER_METRICS)))
        metrics = [m for m in primary_first(primary, PAPER_METRICS + _SYNTHETIC_EXTRA)
                   if any(m in c for c in analysis.curves.values())]
        document.table(tables.synthetic_table(
            analysis, [m for m in metrics if m not in PAPER_METRICS and m != primary]))
        document.figure(
            figures.synthetic_figure(analysis, metrics, figure_dir / f"synthetic{suffix}.png"),
            "Study 1: each metric against measured alignment (mean and standard error per "
            "alignment level; dashed: agents without a kernel; dotted / dash-dotted: the "
            "constant / identity reference kernels, which have no alignment)",
        )
        _plane(document, synthetic_plane(table, analysis.alignment_column, analysis.condition),
               figure_dir / f"plane_synthetic{suffix}.png",
               "Study 1 (one point per alignment level, coloured dark to light from the lowest "
               "to the highest level; labels: mean measured alignment of the first and last)",
               ordered=True)


def _real_section(document: Document, analysis: RealAnalysis, table: ResultsTable,
                  settings: answer.RecipeSettings, near_constant: frozenset[str],
                  figure_dir: Path) -> None:
    document.paragraph(_setup(table, ("real",)))
    for condition in analysis.conditions:
        document.paragraph(answer.real_primary(analysis, str(condition), settings,
                                               near_constant))
    for words in text.real_text(analysis):
        document.paragraph(words)
    metrics = [m for m in primary_first(settings.primary_metric, _REAL_METRICS)
               if any(m in p for p in analysis.points.values())]
    document.table(tables.real_correlation_table(analysis, metrics))
    for condition, agent in analysis.points:
        document.table(tables.real_means_table(analysis, condition, agent, metrics))
        name = f"real_{condition}_{agent}.png".replace("/", "_")
        document.figure(
            figures.real_figure(analysis, condition, agent, metrics, figure_dir / name),
            f"Study 2 ({condition}, {agent}): metrics against kernel alignment "
            "(marker: kernel, colour: value, bars: standard error; reference kernels have no "
            "alignment and are not drawn here)",
        )
    _plane(document, real_plane(table), figure_dir / "plane_real.png",
           "Study 2 (per condition and agent, over all values and seeds)")
    across = analyse_models(table)
    if across is not None:
        models.models_section(document, across, settings.primary_metric, figure_dir)


def _trained_section(document: Document, analysis: TrainedAnalysis, table: ResultsTable,
                     settings: answer.RecipeSettings, figure_dir: Path,
                     records: tuple[EncoderRecord, ...] = ()) -> None:
    primary = settings.primary_metric
    document.paragraph(_setup(table, ("trained", "transfer")))
    if analysis.agents:
        document.paragraph(answer.trained_primary(analysis, settings))
    for words in text.trained_text(analysis):
        document.paragraph(words)
    if any(r.n for r in analysis.alignment.values()):
        document.table(tables.trained_alignment_table(analysis))
    document.paragraph(preservation.preservation_text(records))
    if preservation.recorded(records):
        document.table(preservation.preservation_table(records))
    for agent in analysis.agents:
        document.table(tables.trained_metric_table(analysis, agent, primary))
        results = analysis.metrics[agent]
        bars = {"alignment_heldout": analysis.alignment["heldout"],
                **{m: results[m] for m in primary_first(primary, results) if m in results}}
        document.figure(
            figures.paired_bars(bars, figure_dir / f"trained_{agent}.png",
                                f"untrained vs trained encoder, {agent}"),
            f"Study 3 ({agent}): before vs after training (bar: mean over paired units; "
            "whisker: 95% bootstrap CI of the change)",
        )
        if agent in analysis.dose:
            document.paragraph(
                "Dose-response along training checkpoints: Spearman between held-out "
                "alignment and each metric over checkpoints x encoder seeds x values: "
                + "; ".join(f"{m} {tables._rho(r)}"
                            for m, r in analysis.dose_correlations[agent].items()) + "."
            )
            document.figure(
                figures.dose_figure(analysis.dose[agent], figure_dir / f"dose_{agent}.png"),
                f"Study 3 ({agent}): metrics against held-out alignment along training",
            )
    _plane(document, trained_plane(table), figure_dir / "plane_trained.png",
           "Study 3 (before / after training; the uniformity-matched control and the reference "
           "kernels when the table has them)")
    if analysis.transfer:
        document.heading(3, "Transfer")
        document.paragraph(
            "The value datasets of the transfer test (e.g. dillion-morality, mfv) have no "
            "human similarity judgments between their items, so the alignment of a kernel "
            "over their arms cannot be measured. The alignment shown is the encoder's "
            "alignment on the held-out pairs of the similarity dataset it was trained on: "
            + "; ".join(f"{source}: {analysis.transfer_alignment[source].mean_before:.3f} "
                        f"\u2192 {analysis.transfer_alignment[source].mean_after:.3f}"
                        for source in analysis.transfer_alignment)
            + " (recorded in the table's alignment_source: "
            + "; ".join(sorted(set(analysis.transfer_alignment_source.values()))) + ")."
        )
        document.table(tables.transfer_table(analysis, primary_first(primary,
                                                                     _TRANSFER_METRICS)))


def _near_constant_words(flagged: list[KernelSpectrum]) -> str:
    if not flagged:
        return (f"No kernel in this table is near-constant (top-eigenvector share above "
                f"{NEAR_CONSTANT_TOP_SHARE}).")
    return (f"Near-constant kernels (top-eigenvector share above {NEAR_CONSTANT_TOP_SHARE}): "
            + "; ".join(f"{s.study} {s.kernel} ({s.top_share:.2f})" for s in flagged)
            + ". Few bad actions with them may only mean the agent stopped exploring (see the "
            "bad actions x generalization figures).")


def build_report(directory: str | Path, table: ResultsTable | None = None,
                 progress: Callable[[str], None] | None = None) -> Report:
    """Write the report of the study in `directory` (reads `directory/results.csv` unless a
    `table` is given, and `directory/study.json` and `directory/encoder_runs.json` when
    present) and return where it went. `progress` is called with the name of each stage as
    it starts (the CLI prints them)."""
    step = progress or (lambda stage: None)
    root = Path(directory)
    step("reading the results table")
    check_output_paths(root)
    if table is None:  # a file on disk: refuse what is unfit to report on (see checks)
        table = read_table(root / "results.csv")
        check_results_file(root / "results.csv", table)
    check_writable(root)
    try:
        return _build(root, table, step)
    except OSError as error:  # the disk refused a figure or the report mid-way
        if error.errno not in DISK_ERRNOS:
            raise
        raise report_disk_error(Path(error.filename or root), error) from error


def _build(root: Path, table: ResultsTable, step: Callable[[str], None]) -> Report:
    settings = answer.recipe_settings(root, table)
    figure_dir = root / "figures"
    document = Document(root)
    step("analysing")
    synthetic = [a for a in (analyse_synthetic(table, condition=c)
                             for c in synthetic_conditions(table)) if a is not None]
    real, trained = analyse_real(table), analyse_trained(table)
    spectra = kernel_spectra(table)
    flagged = [s for s in spectra if s.near_constant]
    near_constant = frozenset(s.kernel for s in flagged if s.study == "real")
    title = "deepalign study report"
    document.heading(1, title)
    document.heading(2, "Answer")
    headline = answer.headline(synthetic, real, trained, settings, near_constant)
    for line in headline:
        document.paragraph(line)
    document.paragraph(answer.primary_definition(settings))
    if flagged:
        document.paragraph(_near_constant_words(flagged))
    document.paragraph(
        f"Every sentence in this report is generated from the results table ({len(table)} runs, "
        "results.csv beside this file); significance means p < "
        f"{text.ALPHA}. Alignment is the Spearman correlation between the kernel's and the "
        "human similarities over observed pairs; reference kernels (constant, identity) have "
        "none and are left out of every correlation with alignment."
    )
    document.heading(2, "Study 1: synthetic kernels of controlled alignment")
    step("study 1: tables and figures")
    if not synthetic:
        document.paragraph(_ABSENT)
    else:
        _synthetic_section(document, synthetic, table, settings, figure_dir)
    document.heading(2, "Study 2: real human judgments")
    step("study 2: tables and figures")
    if real is None:
        document.paragraph(_ABSENT)
    else:
        _real_section(document, real, table, settings, near_constant, figure_dir)
    document.heading(2, "Study 3: does alignment gained by training help?")
    step("study 3: tables and figures")
    if trained is None:
        document.paragraph(_ABSENT)
    else:
        _trained_section(document, trained, table, settings, figure_dir,
                         read_encoder_records(root / ENCODER_RUNS))
    benchmark.benchmark_section(document, root)
    if spectra:
        document.heading(2, "Kernel spectra: near-constant kernels")
        document.paragraph(_near_constant_words(flagged))
        document.table(tables.kernel_spectrum_table(spectra))
    step("writing report.md and report.html")
    markdown_path, html_path = root / "report.md", root / "report.html"
    write_atomic(markdown_path, document.markdown())
    write_atomic(html_path, document.html(title))
    return Report(markdown_path, html_path, tuple(document.figures), tuple(headline))
