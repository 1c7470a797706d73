"""Report tables from the analyses, rendered to Markdown and HTML by `Table`."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from deepalign.kernels.spectrum import NEAR_CONSTANT_TOP_SHARE
from deepalign.reports.text import (
    AGENT_NAMES,
    KERNEL_NAMES,
    MIN_WILCOXON_N,
    format_p,
    variant_words,
)
from deepalign.studies.analysis import (
    PAPER_ALPHA,
    PAPER_COLUMNS,
    PAPER_METRICS,
    PULLED_ARM_AGENTS,
    RealAnalysis,
    SyntheticAnalysis,
    TrainedAnalysis,
    paper_cells,
)
from deepalign.studies.kernel_checks import KernelSpectrum
from deepalign.studies.stats import CorrelationResult, PairedResult

__all__ = [
    "NEAR_CONSTANT_NOTE",
    "Table",
    "kernel_spectrum_table",
    "paper_table",
    "primary_first",
    "real_correlation_table",
    "real_means_table",
    "synthetic_table",
    "trained_alignment_table",
    "trained_metric_table",
    "transfer_table",
]


#: What the near-constant flag means, as the report words it.
NEAR_CONSTANT_NOTE = "near-constant: few bad actions here may only mean the agent stopped exploring"


def primary_first(primary: str, metrics: Sequence[str]) -> tuple[str, ...]:
    """`metrics` with `primary` moved (or added) to the front."""
    return (primary, *(m for m in metrics if m != primary))


@dataclass(frozen=True)
class Table:
    """A caption, column headers and rows of cell strings."""

    caption: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]

    def markdown(self) -> str:
        lines = [f"*{self.caption}*", "", "| " + " | ".join(self.headers) + " |",
                 "|" + "|".join("---" for _ in self.headers) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in self.rows
        )
        return (f"<table><caption>{html.escape(self.caption)}</caption>"
                f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _rho(result: CorrelationResult | None) -> str:
    if result is None or not math.isfinite(result.rho):
        return "n/a"
    return f"{result.rho:+.3f} ({format_p(result.p_value)})"


def _number(value: float, digits: int = 3) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.{digits}g}"


def synthetic_table(analysis: SyntheticAnalysis, metrics: Sequence[str] = PAPER_METRICS) -> Table:
    """The paper's table: Spearman (p) between measured alignment and each metric."""
    shown = [m for m in metrics if any(m in c for c in analysis.correlations.values())]
    rows = tuple(
        (agent, *(_rho(analysis.correlations[agent].get(m)) for m in shown))
        for agent in analysis.agents
    )
    n = max((c.n for a in analysis.correlations.values() for c in a.values()), default=0)
    return Table(
        f"Spearman \u03c1 (p) between the kernel's measured alignment and each metric, over "
        f"runs (up to {n} per agent)",
        ("agent", *shown), rows,
    )


def _exact_p(p: float) -> str:
    if not math.isfinite(p):
        return "p n/a"
    return f"p = {p:.3f}" if p >= 0.001 else f"p = {p:.1e}"


#: Column headers of the paper's table.
_PAPER_HEADERS = {"mean_reward": "mean reward", "unique_actions": "unique actions",
                  "non_optimal_actions": "non-optimal actions", "bad_actions": "bad actions",
                  "convergence": "convergence"}


def paper_table(analysis: SyntheticAnalysis) -> Table:
    """The paper's synthetic table for one variant: Spearman (exact p) of measured alignment
    with each metric, per agent; convergence is measured as fits the agent (named in the
    row); a check mark where the cell reproduces the paper."""
    cells = {(c.agent, c.column): c for c in paper_cells(analysis)}
    rows = []
    for agent in analysis.agents:
        measure = ("pulled arm" if agent in PULLED_ARM_AGENTS else "best guess")
        row = [AGENT_NAMES.get(agent, agent), measure]
        for column in PAPER_COLUMNS:
            cell = cells[(agent, column)]
            result = cell.result
            if result is None or not math.isfinite(result.rho):
                row.append("n/a")
                continue
            mark = " \u2713" if cell.reproduces else ""
            row.append(f"{result.rho:+.3f} ({_exact_p(result.p_value)}){mark}")
        rows.append(tuple(row))
    n = max((c.result.n for c in cells.values() if c.result is not None), default=0)
    return Table(
        f"The paper's table, {variant_words(analysis.condition)}: Spearman \u03c1 (p) between "
        f"the kernel's measured alignment and each metric over runs (up to {n} per agent); "
        f"\u2713 = the paper's direction (more aligned, better and safer) with "
        f"p < {PAPER_ALPHA}; convergence is the step after which the pulled arm (deterministic "
        "agents) or the best guess (sampling agents) never changes",
        ("agent", "convergence measured on",
         *(_PAPER_HEADERS[c] for c in PAPER_COLUMNS)), tuple(rows),
    )


def real_means_table(analysis: RealAnalysis, condition: str, agent: str,
                     metrics: Sequence[str]) -> Table:
    """Per kernel: alignment and each metric averaged over values (mean of value means)."""
    means = {m: analysis.kernel_means(condition, agent, m) for m in metrics}
    rows = []
    for kernel in analysis.kernels:
        if not any(kernel in means[m] for m in metrics):
            continue
        cells = [KERNEL_NAMES.get(kernel, kernel),
                 _number(analysis.kernel_alignment.get((condition, kernel), math.nan))]
        cells += [_number(means[m].get(kernel, math.nan)) for m in metrics]
        rows.append(tuple(cells))
    for (ref_condition, ref_agent), means in analysis.references.items():
        if ref_condition == condition:
            rows.append((f"none ({ref_agent})", "n/a",
                         *(_number(means.get(m, math.nan)) for m in metrics)))
    return Table(
        f"{condition}: kernel alignment ({analysis.alignment_column}) and metrics averaged over "
        f"values, agent {agent}",
        ("kernel", "alignment", *metrics), tuple(rows),
    )


def real_correlation_table(analysis: RealAnalysis, metrics: Sequence[str]) -> Table:
    """Spearman between kernel alignment and each metric, per condition and agent."""
    rows = []
    for (condition, agent), correlations in analysis.correlations.items():
        rows.append((condition, agent, "own reference",
                     *(_rho(correlations.get(m)) for m in metrics)))
        human = analysis.human_correlations.get((condition, agent))
        if human:
            rows.append((condition, agent, "human similarity",
                         *(_rho(human.get(m)) for m in metrics)))
    return Table(
        "Spearman \u03c1 (p) between kernel alignment and each metric across kernel-value "
        "pairs (metric centred within each value)",
        ("condition", "agent", "alignment with", *metrics), tuple(rows),
    )


def _paired_cells(result: PairedResult) -> tuple[str, ...]:
    if result.n == 0:
        return ("n/a",) * 5
    interval = ("[n/a]" if not (math.isfinite(result.ci_low) and math.isfinite(result.ci_high))
                else f"[{result.ci_low:+.3g}, {result.ci_high:+.3g}]")
    test = (format_p(result.p_value) if result.n >= MIN_WILCOXON_N
            else f"not tested (n < {MIN_WILCOXON_N})")
    return (
        _number(result.mean_before), _number(result.mean_after),
        f"{result.mean_difference:+.3g} {interval}", test, str(result.n),
    )


_PAIRED_HEADERS = ("before", "after", "\u0394 [95% CI]", "Wilcoxon", "n")


def trained_alignment_table(analysis: TrainedAnalysis) -> Table:
    """Alignment before and after training, per split, paired over encoder seeds."""
    rows = tuple((split, *_paired_cells(r)) for split, r in analysis.alignment.items())
    return Table("Alignment (Spearman with human similarity) before vs after training, paired "
                 "by encoder seed", ("items", *_PAIRED_HEADERS), rows)


def trained_metric_table(analysis: TrainedAnalysis, agent: str,
                         primary: str | None = None) -> Table:
    """Each metric before vs after training, paired by (encoder seed, value); `primary`
    first when given."""
    results = analysis.metrics[agent]
    order = (primary_first(primary, results) if primary is not None and primary in results
             else tuple(results))
    rows = tuple((m, *_paired_cells(results[m])) for m in order)
    return Table(f"Agent {agent}: metrics with the untrained vs trained encoder, paired by "
                 "encoder seed and value (bandit seeds averaged)", ("metric", *_PAIRED_HEADERS),
                 rows)


def transfer_table(analysis: TrainedAnalysis, metrics: Sequence[str]) -> Table:
    """Transfer: per (training set, test set, value, agent), the change of each metric."""
    rows = []
    for (source, dataset, value, agent), results in analysis.transfer.items():
        cells = [source, dataset, value, agent]
        for metric in metrics:
            r = results.get(metric)
            cells.append("n/a" if r is None or r.n == 0 else
                         f"{r.mean_difference:+.3g} ({format_p(r.p_value)})"
                         if r.n >= MIN_WILCOXON_N else
                         f"{r.mean_difference:+.3g} (not tested, n = {r.n})")
        rows.append(tuple(cells))
    return Table("Transfer: change (after - before, Wilcoxon p over paired runs) of each metric "
                 "with the encoder aligned on the training set", ("aligned on", "tested on",
                 "value", "agent", *metrics), tuple(rows))


def kernel_spectrum_table(spectra: Sequence[KernelSpectrum]) -> Table:
    """Per (study, kernel): mean effective rank and top-eigenvector share, flagged above
    `NEAR_CONSTANT_TOP_SHARE`."""
    rows = tuple(
        (s.study, KERNEL_NAMES.get(s.kernel, s.kernel), _number(s.effective_rank),
         _number(s.top_share), str(s.n), NEAR_CONSTANT_NOTE if s.near_constant else "")
        for s in spectra
    )
    return Table(
        "Kernel spectra (the kernel as given, over all its items; mean over runs): effective "
        "rank (1 = every action alike, n = independent arms) and the share of variance on the "
        f"top eigenvector; flagged when the top share exceeds {NEAR_CONSTANT_TOP_SHARE}",
        ("study", "kernel", "effective rank", "top share", "runs", "flag"), rows,
    )
