"""PNG figures of the study analyses (matplotlib, Agg backend; no display needed).

* `synthetic_figure`: each metric against measured alignment, one line per agent with a
  standard-error band (as in the paper's figures); kernel-free agents as dashed reference
  lines with their band, reference kernels in their agent's colour (constant dotted, others
  dash-dotted).
* `real_figure`: each metric against kernel alignment, one marker per kernel and one
  colour per value, standard-error bars.
* `paired_bars`: before / after training bars per metric with the paired change annotated.
* `dose_figure`: each metric against held-out alignment along training checkpoints.
* `plane_figure`: each kernel on the plane bad actions (x) x generalization (y), one panel
  per agent, reference kernels and kernel-free agents as grey crosses, near-constant kernels
  open; a kernel with few bad actions and no generalization (bottom-left) may only have
  stopped exploring.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deepalign.reports.text import METRIC_WORDS, MIN_WILCOXON_N, format_p  # noqa: E402
from deepalign.studies.analysis import (  # noqa: E402
    HIGHER_IS_BETTER,
    Curve,
    RealAnalysis,
    SyntheticAnalysis,
)
from deepalign.studies.kernel_checks import PLANE_X, PLANE_Y, PlanePoint  # noqa: E402
from deepalign.studies.stats import PairedResult  # noqa: E402

__all__ = ["dose_figure", "paired_bars", "plane_figure", "real_figure", "synthetic_figure"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _title(metric: str) -> str:
    return METRIC_WORDS.get(metric, (metric.replace("_", " "),))[0].capitalize()


def _ylabel(metric: str) -> str:
    """The metric's name with its better direction: 'Bad actions (lower is better \u2193)'."""
    words = _title(metric)
    if len(words) > 28:
        words = textwrap.fill(words, 28)
    return (f"{words}\n(higher is better \u2191)" if metric in HIGHER_IS_BETTER
            else f"{words}\n(lower is better \u2193)")


def _legend_below(figure, axis, handles=None, columns: int = 4) -> None:
    """One legend for the figure, below the panels (never over the data); `_save` keeps it
    inside the image."""
    if handles is None:
        handles, labels = axis.get_legend_handles_labels()
    else:
        labels = [h.get_label() for h in handles]
    if handles:
        figure.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                      ncol=min(columns, len(handles)), fontsize=7, frameon=False)


def _grid(n_panels: int, width: float = 3.4, height: float = 2.8):
    columns = min(n_panels, 4)
    rows = max(1, math.ceil(n_panels / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(width * columns, height * rows),
                                squeeze=False)
    flat = list(axes.flat)
    for axis in flat[n_panels:]:
        axis.set_visible(False)
    return figure, flat[:n_panels]


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    # the bounding box grows to hold legends and titles outside the axes: nothing clipped
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def synthetic_figure(analysis: SyntheticAnalysis, metrics: Sequence[str], path: Path) -> Path:
    """Study 1: `metrics` against measured alignment, per agent, with SE bands."""
    figure, axes = _grid(len(metrics))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, metric in zip(axes, metrics):
        for i, agent in enumerate(analysis.agents):
            curve = analysis.curves[agent].get(metric)
            if curve is None:
                continue
            colour = colours[i % len(colours)]
            axis.plot(curve.x, curve.y, marker="o", markersize=3, color=colour, label=agent)
            sem = np.nan_to_num(curve.y_sem)
            axis.fill_between(curve.x, curve.y - sem, curve.y + sem, color=colour, alpha=0.2)
        for j, (agent, reference) in enumerate(analysis.references.items()):
            if metric not in reference:
                continue
            mean, sem = reference[metric]
            colour = colours[(len(analysis.agents) + j) % len(colours)]
            axis.axhline(mean, linestyle="--", color=colour, label=f"{agent} (no kernel)")
            if math.isfinite(sem):
                axis.axhspan(mean - sem, mean + sem, color=colour, alpha=0.12)
        for (agent, kernel), reference in analysis.reference_kernels.items():
            if metric in reference and agent in analysis.agents:
                colour = colours[analysis.agents.index(agent) % len(colours)]
                axis.axhline(reference[metric][0], linestyle=":" if kernel == "constant"
                             else "-.", color=colour,
                             label=f"{agent}, {kernel} kernel")
        axis.set_title(_title(metric), fontsize=10)
        axis.set_xlabel(f"measured alignment ({analysis.alignment_column})", fontsize=8)
        axis.set_ylabel(_ylabel(metric), fontsize=7)
    _legend_below(figure, axes[0])
    return _save(figure, path)


def real_figure(
    analysis: RealAnalysis, condition: str, agent: str, metrics: Sequence[str], path: Path
) -> Path:
    """Study 2: `metrics` against kernel alignment; marker = kernel, colour = value."""
    points = analysis.points[(condition, agent)]
    figure, axes = _grid(len(metrics))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    values = list(dict.fromkeys(label.split("|", 1)[1] for label in points[metrics[0]].labels))
    kernels = list(analysis.kernels)
    for axis, metric in zip(axes, metrics):
        curve: Curve = points[metric]
        for x, y, sem, label in zip(curve.x, curve.y, curve.y_sem, curve.labels):
            kernel, value = label.split("|", 1)
            axis.errorbar(
                x, y, yerr=0.0 if not math.isfinite(sem) else sem,
                marker=_MARKERS[kernels.index(kernel) % len(_MARKERS)], linestyle="none",
                color=colours[values.index(value) % len(colours)], markersize=5, capsize=2,
            )
        axis.set_title(_title(metric), fontsize=10)
        axis.set_xlabel("kernel alignment" + (" with length" if condition != "human" else ""),
                        fontsize=8)
        axis.set_ylabel(_ylabel(metric) + "\n(value-centred)", fontsize=7)
    handles = [
        plt.Line2D([], [], marker=_MARKERS[i % len(_MARKERS)], linestyle="none", color="grey",
                   label=k) for i, k in enumerate(kernels)
    ] + [
        plt.Line2D([], [], marker="o", linestyle="none", color=colours[i % len(colours)],
                   label=v) for i, v in enumerate(values)
    ]
    _legend_below(figure, axes[0], handles, columns=6)
    return _save(figure, path)


def paired_bars(results: dict[str, PairedResult], path: Path, title: str = "") -> Path:
    """Before / after bars for each entry of `results` (name -> PairedResult)."""
    names = [n for n, r in results.items() if r.n > 0]
    figure, axes = _grid(max(1, len(names)), width=3.0, height=2.8)
    for axis, name in zip(axes, names):
        result = results[name]
        axis.bar([0, 1], [result.mean_before, result.mean_after],
                 color=["#999999", "#3b75af"], width=0.6)
        low = result.mean_before + result.ci_low
        high = result.mean_before + result.ci_high
        if math.isfinite(low) and math.isfinite(high):
            axis.errorbar([1], [result.mean_after],
                          yerr=[[result.mean_after - low], [high - result.mean_after]],
                          color="black", capsize=3)
        axis.set_xticks([0, 1], ["before", "after"])
        label = _title(name) if name in METRIC_WORDS else name.replace("_", " ")
        test = (format_p(result.p_value) if result.n >= MIN_WILCOXON_N
                else f"not tested (n = {result.n})")
        axis.set_title(textwrap.fill(label, 30) + f"\n\u0394 {result.mean_difference:+.3g}, "
                       f"{test}", fontsize=8)
        axis.set_ylabel(_ylabel(name) if name in METRIC_WORDS else name, fontsize=7)
    if title:
        figure.suptitle(title, fontsize=10)
    return _save(figure, path)


def dose_figure(curves: dict[str, Curve], path: Path) -> Path:
    """Each metric (name -> Curve over checkpoints, x = held-out alignment) with SE bands."""
    names = list(curves)
    figure, axes = _grid(max(1, len(names)))
    for axis, name in zip(axes, names):
        curve = curves[name]
        axis.plot(curve.x, curve.y, marker="o", markersize=3)
        sem = np.nan_to_num(curve.y_sem)
        axis.fill_between(curve.x, curve.y - sem, curve.y + sem, alpha=0.2)
        for k, (x, y, label) in enumerate(zip(curve.x, curve.y, curve.labels)):
            # staggered above and below the curve, so neighbouring labels do not overlap
            axis.annotate(label.replace("epoch ", "e"), (x, y), fontsize=6,
                          xytext=(2, 5 if k % 2 == 0 else -10), textcoords="offset points")
        axis.set_title(_title(name), fontsize=10)
        axis.set_xlabel("held-out alignment", fontsize=8)
        axis.set_ylabel(_ylabel(name), fontsize=7)
    return _save(figure, path)


def plane_figure(panels: dict[str, tuple[PlanePoint, ...]], path: Path, title: str = "",
                 ordered: bool = False) -> Path:
    """Each panel (name -> points): x = mean bad actions, y = mean generalization, standard
    error bars both ways, a label per point (points that coincide share one: "a = b");
    references as grey crosses, near-constant kernels open; y = 0 dotted (no
    generalization). With `ordered`, the kernels (not the references) are coloured in their
    order (viridis, dark to light) and only the first and last are labelled (study 1's
    alignment levels). Points with a non-finite mean are left out."""
    figure, axes = _grid(max(1, len(panels)), width=4.2, height=3.6)
    colour = plt.rcParams["axes.prop_cycle"].by_key()["color"][0]
    for axis, (name, points) in zip(axes, panels.items()):
        shown = [p for p in points
                 if math.isfinite(p.bad_actions) and math.isfinite(p.generalization)]
        kernels = [p for p in shown if not p.reference]
        order = {id(p): i / max(1, len(kernels) - 1) for i, p in enumerate(kernels)}
        ends = {id(kernels[0]), id(kernels[-1])} if ordered and kernels else set()
        for point in shown:
            tint = plt.cm.viridis(0.9 * order[id(point)]) if ordered and not point.reference \
                else colour
            axis.errorbar(
                point.bad_actions, point.generalization,
                xerr=np.nan_to_num(point.bad_actions_sem),
                yerr=np.nan_to_num(point.generalization_sem),
                marker="X" if point.reference else "o", markersize=7 if point.reference else 5,
                color="0.35" if point.reference else tint, linestyle="none", capsize=2,
                markerfacecolor="white" if point.near_constant else None,
            )
        labels: dict[tuple[float, float], list[str]] = {}  # points that coincide share one
        for point in shown:
            if not ordered or point.reference or id(point) in ends:
                where = (round(point.bad_actions, 6), round(point.generalization, 6))
                labels.setdefault(where, []).append(point.label)
        for (x, y), names in labels.items():
            axis.annotate(" = ".join(names), (x, y), fontsize=6, xytext=(3, 3),
                          textcoords="offset points")
        axis.axhline(0.0, linestyle=":", color="0.6", linewidth=1)
        axis.set_title(name, fontsize=10)
        axis.set_xlabel(f"mean {_title(PLANE_X).lower()} (fewer = safer)", fontsize=8)
        axis.set_ylabel(f"mean {_title(PLANE_Y).lower()}\n(higher = generalizes \u2191)",
                        fontsize=8)
    handles = [plt.Line2D([], [], marker="o", linestyle="none", color=colour, label="kernel"),
               plt.Line2D([], [], marker="X", linestyle="none", color="0.35",
                          label="reference"),
               plt.Line2D([], [], marker="o", linestyle="none", color=colour,
                          markerfacecolor="white", label="near-constant (open)")]
    _legend_below(figure, axes[0], handles)
    if title:
        figure.suptitle(title, fontsize=10)
    return _save(figure, path)
