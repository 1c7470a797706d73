"""PNG figures of the study analyses (matplotlib, Agg backend; no display needed).

* `synthetic_figure`: each metric against measured alignment, one line per agent with a
  standard-error band (as in the paper's figures); kernel-free agents as dashed reference
  lines with their band.
* `real_figure`: each metric against kernel alignment, one marker per kernel and one
  colour per value, standard-error bars.
* `paired_bars`: before / after training bars per metric with the paired change annotated.
* `dose_figure`: each metric against held-out alignment along training checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from deepalign.reports.text import METRIC_WORDS, format_p  # noqa: E402
from deepalign.studies.analysis import Curve, RealAnalysis, SyntheticAnalysis  # noqa: E402
from deepalign.studies.stats import PairedResult  # noqa: E402

__all__ = ["dose_figure", "paired_bars", "real_figure", "synthetic_figure"]

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _title(metric: str) -> str:
    return METRIC_WORDS.get(metric, (metric.replace("_", " "),))[0].capitalize()


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
    figure.savefig(path, dpi=110)
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
        axis.set_title(_title(metric), fontsize=10)
        axis.set_xlabel(f"measured alignment ({analysis.alignment_column})", fontsize=8)
    axes[0].legend(fontsize=7)
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
    handles = [
        plt.Line2D([], [], marker=_MARKERS[i % len(_MARKERS)], linestyle="none", color="grey",
                   label=k) for i, k in enumerate(kernels)
    ] + [
        plt.Line2D([], [], marker="o", linestyle="none", color=colours[i % len(colours)],
                   label=v) for i, v in enumerate(values)
    ]
    axes[0].legend(handles=handles, fontsize=6)
    return _save(figure, path)


def paired_bars(results: dict[str, PairedResult], path: Path, title: str = "") -> Path:
    """Before / after bars for each entry of `results` (name -> PairedResult)."""
    names = [n for n, r in results.items() if r.n > 0]
    figure, axes = _grid(max(1, len(names)), width=2.6, height=2.6)
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
        axis.set_title(f"{label}\n\u0394 {result.mean_difference:+.3g}, "
                       f"{format_p(result.p_value)}", fontsize=8)
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
        for x, y, label in zip(curve.x, curve.y, curve.labels):
            axis.annotate(label.replace("epoch ", "e"), (x, y), fontsize=6)
        axis.set_title(_title(name), fontsize=10)
        axis.set_xlabel("held-out alignment", fontsize=8)
    return _save(figure, path)
