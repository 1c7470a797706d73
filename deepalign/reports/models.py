"""Study 2 across language models in the report: the paper's table and figure.

Generated from `deepalign.studies.models_analysis.ModelsAnalysis` only: the correlation table
(metric x alignment measure, per agent, with the uniformity control), the per-kernel table
(alignment and mean scores), one sentence per agent on the primary score, and the figure
(primary score, bad actions and held-out rank agreement against all-pairs alignment; open
markers: pretrained, filled: aligned in the study, a line joins the two of one model).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from deepalign.reports.document import Document  # noqa: E402
from deepalign.reports.tables import Table, _number, _rho, primary_first  # noqa: E402
from deepalign.reports.text import ALPHA, METRIC_WORDS, format_p  # noqa: E402
from deepalign.studies.analysis import HIGHER_IS_BETTER  # noqa: E402
from deepalign.studies.config import ALIGNED_PREFIX  # noqa: E402
from deepalign.studies.models_analysis import MODELS_MEASURES, ModelsAnalysis  # noqa: E402
from deepalign.studies.results import GENERALIZATION_METRICS  # noqa: E402

__all__ = ["models_section"]

_FIGURE_METRICS = ("bad_actions", "generalization_spearman")


def _words(metric: str) -> str:
    return METRIC_WORDS.get(metric, (metric.replace("_", " "),))[0]


def primary_sentence(analysis: ModelsAnalysis, agent: str, primary: str) -> str:
    """One generated sentence: the primary score against all-pairs alignment for `agent`."""
    result = analysis.correlations.get((agent, "alignment_all"), {}).get(primary)
    if result is None or not math.isfinite(result.rho):
        return f"{agent}: the {_words(primary)} has no measurable relation with alignment here."
    better = (result.rho > 0) == (primary in HIGHER_IS_BETTER)
    if result.p_value >= ALPHA:
        verdict = "no clear relation"
    else:
        verdict = "more human-aligned encoders score better" if better else \
            "more human-aligned encoders score worse"
    control = analysis.uniformity.get(agent, {}).get(primary)
    control_words = ""
    if control is not None and math.isfinite(control.rho):
        control_words = (f" Against the kernel's top-eigenvector share instead (the uniformity "
                         f"control): rho = {control.rho:+.3f} ({format_p(control.p_value)}).")
    encoder = analysis.per_encoder.get(agent, {}).get(primary)
    encoder_words = ""
    if encoder is not None and math.isfinite(encoder.rho):
        encoder_words = (f" With one point per encoder (n = {encoder.n}; the points above share "
                         f"their alignment within an encoder): rho = {encoder.rho:+.3f} "
                         f"({format_p(encoder.p_value)}).")
    return (f"{agent}: across {result.n} encoder x value points, Spearman between all-pairs "
            f"alignment and the {_words(primary)} is rho = {result.rho:+.3f} "
            f"({format_p(result.p_value)}): {verdict}.{encoder_words}{control_words}")


def correlation_table(analysis: ModelsAnalysis, agent: str, primary: str) -> Table:
    metrics = primary_first(primary, analysis.metrics)
    rows = []
    for metric in metrics:
        if metric not in analysis.metrics:
            continue
        phase = "generalization" if metric in GENERALIZATION_METRICS else (
            "primary" if metric == primary else "personalization")
        rows.append((metric, phase,
                     *(_rho(analysis.correlations[(agent, column)].get(metric))
                       for column, _ in MODELS_MEASURES),
                     _rho(analysis.per_encoder[agent].get(metric)),
                     _rho(analysis.uniformity[agent].get(metric))))
    return Table(
        f"Across language models ({agent}): Spearman rho (p) between kernel alignment and "
        f"each metric over {analysis.n_points} encoder x value points (metric centred within "
        f"value); 'per encoder': all pairs with one point per encoder (n = "
        f"{len(analysis.kernels)}, value-mean score); last column: against the kernel's "
        "top-eigenvector share instead of alignment (uniformity control)",
        ("metric", "phase", *(label for _, label in MODELS_MEASURES), "per encoder",
         "top-eigenvector share"),
        tuple(rows),
    )


def survival_table(analysis: ModelsAnalysis, primary: str) -> Table:
    """Which version of the primary test survives: every correlation beside the controls."""
    rows = []
    for agent in analysis.agents:
        cells = [("all encoder x value points", analysis.correlations[(agent, "alignment_all")]),
                 ("one point per encoder", analysis.per_encoder[agent]),
                 ("pretrained encoders only", analysis.within[(agent, "pretrained")]),
                 ("aligned encoders only", analysis.within[(agent, "aligned")]),
                 ("top-eigenvector share instead of alignment", analysis.uniformity[agent])]
        rows += [(agent, label, _rho(result.get(primary)),
                  str(result[primary].n) if primary in result else "0")
                 for label, result in cells]
        gains = [g[primary] for g in analysis.training[agent].values() if math.isfinite(g[primary])]
        if gains:
            better = sum((g > 0) == (primary in HIGHER_IS_BETTER) and g != 0 for g in gains)
            rows.append((agent, "alignment training, paired by model (aligned - pretrained)",
                         f"{better} of {len(gains)} better; mean {sum(gains) / len(gains):+.3f}",
                         str(len(gains))))
    return Table(f"Which effects survive: the {_words(primary)} against all-pairs alignment "
                 "(Spearman rho, p), and the controls", ("agent", "test", "result", "n"),
                 tuple(rows))


def survival_sentence(analysis: ModelsAnalysis, agent: str, primary: str) -> str:
    """Does the relation hold inside each group, or only between pretrained and aligned?"""
    def significant(result) -> bool:
        return result is not None and math.isfinite(result.p_value) and result.p_value < ALPHA

    across = analysis.per_encoder[agent].get(primary)
    inside = {g: analysis.within[(agent, g)].get(primary) for g in ("pretrained", "aligned")}
    held = [g for g, r in inside.items() if significant(r)]
    if not significant(across):
        return (f"{agent}: one point per encoder, the relation is not significant "
                f"({_rho(across)}); no effect of alignment across encoders is claimed.")
    if len(held) == 2:
        return (f"{agent}: the relation holds across all encoders and inside both groups.")
    missing = ", ".join(f"{g} only: {_rho(inside[g])}, n = {inside[g].n}" for g in inside
                        if g not in held and inside[g] is not None)
    return (f"{agent}: across all encoders the relation is significant ({_rho(across)}), "
            f"but not inside every group ({missing}). Aligned encoders sit far to the right of "
            "pretrained ones, so part of the across-encoder relation is the effect of alignment "
            "training itself (the paired row), and groups of six encoders have little power.")


def kernel_table(analysis: ModelsAnalysis, agent: str, primary: str) -> Table:
    metrics = [m for m in primary_first(primary, ("bad_actions", "generalization_spearman"))
               if m in analysis.metrics]
    rows = [(kernel, *(_number(analysis.alignment[kernel][c]) for c, _ in MODELS_MEASURES),
             *(_number(analysis.scores[(agent, kernel)][m]) for m in metrics))
            for kernel in analysis.kernels]
    rows += [(f"{kernel} (reference)", "", "", "",
              *(_number(analysis.references[(a, kernel)][m]) for m in metrics))
             for a, kernel in analysis.references if a == agent]
    return Table(
        f"Encoders ({agent}): alignment with the human similarity and mean scores (mean over "
        "values of the seed means)",
        ("kernel", *(label for _, label in MODELS_MEASURES), *metrics), tuple(rows),
    )


def models_figure(analysis: ModelsAnalysis, agent: str, primary: str, path: Path) -> Path:
    metrics = [m for m in (primary, *_FIGURE_METRICS) if m in analysis.metrics]
    figure, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.1),
                                squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    models = list(dict.fromkeys(k.removeprefix(ALIGNED_PREFIX) for k in analysis.kernels))
    for axis, metric in zip(axes[0], metrics):
        for i, model in enumerate(models):
            xs, ys = [], []
            for kernel, filled in ((model, False), (ALIGNED_PREFIX + model, True)):
                if kernel not in analysis.alignment:
                    continue
                x = analysis.alignment[kernel]["alignment_all"]
                y = analysis.scores[(agent, kernel)][metric]
                xs.append(x)
                ys.append(y)
                axis.plot(x, y, marker="o", linestyle="none", markersize=6,
                          color=colours[i % len(colours)],
                          markerfacecolor=colours[i % len(colours)] if filled else "white",
                          label=model if not filled or len(xs) == 1 else None)
            axis.plot(xs, ys, color=colours[i % len(colours)], linewidth=0.8)
        better = "higher" if metric in HIGHER_IS_BETTER else "lower"
        axis.set_title(f"{_words(metric).capitalize()} ({better} is better)", fontsize=9)
        axis.set_xlabel("kernel alignment (all pairs)", fontsize=8)
        axis.set_ylabel(_words(metric), fontsize=8)
    figure.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right center",
                  fontsize=7, title="open: pretrained\nfilled: aligned", title_fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def models_section(document: Document, analysis: ModelsAnalysis, primary: str,
                   figure_dir: Path) -> None:
    """The "Across language models" part of study 2."""
    document.heading(3, "Across language models")
    document.paragraph(
        f"Zoo encoders in this table: {', '.join(analysis.kernels)} (\"{ALIGNED_PREFIX}NAME\": "
        "the same encoder with a head trained by the default recipe on the personalization "
        "items). The paper's question: do the more human-aligned kernels learn values better "
        "and more safely? Every correlation below is across encoders x values."
    )
    document.table(survival_table(analysis, primary))
    for agent in analysis.agents:
        document.paragraph(survival_sentence(analysis, agent, primary))
    for agent in analysis.agents:
        document.paragraph(primary_sentence(analysis, agent, primary))
        document.table(correlation_table(analysis, agent, primary))
        document.table(kernel_table(analysis, agent, primary))
        document.figure(
            models_figure(analysis, agent, primary, figure_dir / f"models_{agent}.png"),
            f"Across language models ({agent}): mean over values of each metric against "
            "all-pairs alignment (open: pretrained, filled: aligned in the study; a line joins "
            "the two of one model)",
        )
