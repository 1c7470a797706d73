"""The report's opening answer, led by each study's primary score.

The primary score is the recipe's `primary_metric`, fixed before the run and recorded in the
study directory's `study.json` (`recipe_settings`; "safe_general_score" for a record that
predates the setting). For every study the answer states it first:

* study 1 (`synthetic_primary`): Spearman of measured alignment with the score over runs;
* study 2 (`real_primary`): the score per kernel (mean over values) and its Spearman with
  alignment across kernel-value pairs (reference kernels, which have no alignment, are shown
  but left out of the correlation);
* study 3 (`trained_primary`): the paired after-minus-before change with its bootstrap CI and
  Wilcoxon p (and after minus the uniformity-matched control, when present);

then the secondary statements (`headline`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from deepalign.errors import DataError
from deepalign.reports.text import (
    AGENT_NAMES,
    ALPHA,
    METRIC_WORDS,
    format_p,
    paired_direction,
    paired_numbers,
    trained_text,
)
from deepalign.studies.analysis import (
    HIGHER_IS_BETTER,
    PAPER_METRICS,
    REFERENCE_KERNELS,
    RealAnalysis,
    SyntheticAnalysis,
    TrainedAnalysis,
)
from deepalign.studies.results import METRICS, ResultsTable
from deepalign.studies.stats import CorrelationResult, PairedResult

__all__ = [
    "DEFAULT_PRIMARY_METRIC",
    "RecipeSettings",
    "headline",
    "primary_definition",
    "real_primary",
    "recipe_settings",
    "synthetic_primary",
    "trained_primary",
]

#: The primary metric of a study whose `study.json` names none.
DEFAULT_PRIMARY_METRIC = "safe_general_score"


@dataclass(frozen=True)
class RecipeSettings:
    """What the report needs from the recipe: the `primary_metric`, whether the recipe named
    it (`from_recipe`), and `calibration` ("on", "off", "on in some runs and off in others"
    or "not recorded")."""

    primary_metric: str = DEFAULT_PRIMARY_METRIC
    from_recipe: bool = False
    calibration: str = "not recorded"


def recipe_settings(directory: str | Path, table: ResultsTable) -> RecipeSettings:
    """The settings of the study in `directory`: primary metric from `study.json`'s
    `settings` (default `DEFAULT_PRIMARY_METRIC`), calibration from the table's `calibration`
    column, else from `study.json`. DataError for an unreadable record or an unknown metric."""
    record = Path(directory) / "study.json"
    settings: dict = {}
    if record.is_file():
        try:
            settings = json.loads(record.read_text(encoding="utf-8")).get("settings") or {}
        except (ValueError, AttributeError) as error:
            raise DataError(f"{record}: not a study record written by `python -m "
                            f"deepalign.study` ({error}); restore it or delete it.") from error
    primary = settings.get("primary_metric", DEFAULT_PRIMARY_METRIC)
    if primary not in METRICS:
        raise DataError(f"{record}: settings.primary_metric is {primary!r}, not a metric of the "
                        f"results table; expected one of {METRICS}.")
    recorded = {str(v) for v in table.unique("calibration")} & {"on", "off"}
    if len(recorded) == 2:
        calibration = "on in some runs and off in others"
    elif recorded:
        calibration = recorded.pop()
    elif isinstance(settings.get("calibration"), bool):
        calibration = "on" if settings["calibration"] else "off"
    else:
        calibration = "not recorded"
    return RecipeSettings(primary, "primary_metric" in settings, calibration)


def _noun(metric: str) -> str:
    return METRIC_WORDS.get(metric, (metric.replace("_", " "),))[0]


def _lead(settings: RecipeSettings) -> str:
    fixed = ("fixed in the recipe before the run" if settings.from_recipe
             else "the default; this study's record names none")
    return (f"Primary score ({settings.primary_metric}, {fixed}; calibration "
            f"{settings.calibration}): ")


def primary_definition(settings: RecipeSettings) -> str:
    """One sentence saying what the primary score measures and which direction is better."""
    metric = settings.primary_metric
    better = "higher" if metric in HIGHER_IS_BETTER else "lower"
    if metric == "safe_general_score":
        what = ("1 - (bad actions / T + bad items among the top-5 held-out picks / 5) / 2, the "
                "share of good choices averaged over the exploration pulls and the top-5 "
                "held-out recommendations; not exploring cannot win it, since the held-out "
                "picks need a kernel that generalizes")
    else:
        what = _noun(metric)
    return (f"The primary score {metric} is {what} ({better} is better); every other metric "
            "is secondary.")


def _correlation(metric: str, result: CorrelationResult | None) -> str:
    if result is None or not math.isfinite(result.rho):
        return "\u03c1 n/a (too few runs with an alignment, or a constant score)"
    detail = f"\u03c1 = {result.rho:+.2f}, {format_p(result.p_value)}, n = {result.n}"
    if result.p_value >= ALPHA:
        return f"{detail}: no clear relation"
    noun, up, down = METRIC_WORDS.get(metric, (_noun(metric), "higher", "lower"))
    better = (result.rho > 0) == (metric in HIGHER_IS_BETTER)
    return (f"{detail}: {up if result.rho > 0 else down} {noun} with more alignment "
            f"({'better' if better else 'worse'})")


def synthetic_primary(analysis: SyntheticAnalysis, settings: RecipeSettings) -> str:
    """Study 1: per agent, Spearman of measured alignment with the primary score."""
    metric = settings.primary_metric
    parts = [f"with {AGENT_NAMES.get(a, a)}, "
             + _correlation(metric, analysis.correlations[a].get(metric))
             for a in analysis.agents]
    if not parts:
        return _lead(settings) + "no agent with a kernel in this table."
    return (_lead(settings) + "; ".join(parts) + f" (Spearman of measured alignment "
            f"({analysis.alignment_column}) with the score over runs).")


def real_primary(analysis: RealAnalysis, condition: str, settings: RecipeSettings,
                 near_constant: frozenset[str] = frozenset()) -> str:
    """Study 2, one condition: per agent, the score per kernel (mean over values; kernels
    in `near_constant` and reference kernels marked) and its correlation with alignment."""
    metric = settings.primary_metric
    what = ("human" if condition == "human" else "its own reference") + " similarity"
    parts = []
    for agent in analysis.agents:
        if (condition, agent) not in analysis.points:
            continue
        means = []
        for kernel, mean in analysis.kernel_means(condition, agent, metric).items():
            marks = [word for word, marked in (("reference", kernel in REFERENCE_KERNELS),
                                               ("near-constant", kernel in near_constant))
                     if marked]
            means.append(f"{kernel} {mean:.3g}" + (f" ({', '.join(marks)})" if marks else ""))
        means += [f"{a} (no kernel) {m[metric]:.3g}" for (c, a), m in analysis.references.items()
                  if c == condition and metric in m]
        result = analysis.correlations[(condition, agent)].get(metric)
        parts.append(
            f"with {AGENT_NAMES.get(agent, agent)}, mean per kernel over values: "
            f"{', '.join(means)}; across the kernel-value pairs with a measured alignment "
            f"(value-centred score, alignment with {what}): {_correlation(metric, result)}"
        )
    if not parts:
        return _lead(settings) + f"no runs with a kernel in condition {condition}."
    where = "" if condition == "human" else f"in the {condition} condition, "
    return _lead(settings) + where + "; ".join(parts) + "."


def _paired_words(metric: str, result: PairedResult, versus: str) -> str:
    """'after minus {versus} Δ = ... (a → b), CI, Wilcoxon p, n: verdict'; a change that is
    not clear (CI excluding 0 and Wilcoxon p < ALPHA) is "no clear change", never a
    direction."""
    where = "after training" if versus == "before" else f"than with the {versus}"
    direction = paired_direction(metric, result)
    if direction.startswith("no clear change"):
        verdict = direction
    else:
        better = (result.mean_difference > 0) == (metric in HIGHER_IS_BETTER)
        verdict = f"{direction} {where} ({'better' if better else 'worse'})"
    return f"after minus {versus}: {paired_numbers(result)}: {verdict}"


def trained_primary(analysis: TrainedAnalysis, settings: RecipeSettings) -> str:
    """Study 3: per agent, the paired after-minus-before change of the primary score, and
    after minus the uniformity-matched control when the table has it."""
    metric = settings.primary_metric
    parts = []
    for agent in analysis.agents:
        result = analysis.metrics.get(agent, {}).get(metric)
        name = AGENT_NAMES.get(agent, agent)
        if result is None or result.n == 0:
            parts.append(f"with {name}, no paired before/after runs")
            continue
        words = f"with {name}, {_paired_words(metric, result, 'before')}"
        control = analysis.control.get(agent, {}).get(metric)
        if control is not None and control.n:
            words += (" and, against the uniformity-matched control (the untrained kernel "
                      "made as uniform as the trained one), "
                      + _paired_words(metric, control, "control"))
        parts.append(words)
    if not parts:
        return _lead(settings) + "no paired before/after runs in this table."
    return (_lead(settings) + "; ".join(parts) + " (units: encoder seed x value, bandit "
            "seeds averaged).")


def _synthetic_secondary(analysis: SyntheticAnalysis) -> str:
    for agent in analysis.agents[:1]:
        correlations = analysis.correlations[agent]
        metrics = tuple(m for m in PAPER_METRICS if m in correlations)
        better = [m for m in metrics if correlations[m].p_value < ALPHA
                  and (correlations[m].rho > 0) == (m in HIGHER_IS_BETTER)]
        worse = [m for m in metrics if correlations[m].p_value < ALPHA and m not in better]
        return (f" Secondary: with {AGENT_NAMES.get(agent, agent)}, {len(better)} of "
                f"{len(metrics)} paper metrics improved significantly with alignment and "
                f"{len(worse)} got worse.")
    return ""


def _real_secondary(analysis: RealAnalysis, condition: str) -> str:
    agents = [a for a in analysis.agents if (condition, a) in analysis.correlations]
    if not agents:
        return ""
    agent = "gp-ts" if "gp-ts" in agents else agents[0]
    correlations = analysis.correlations[(condition, agent)]
    shown = [f"{_noun(m)} {_correlation(m, correlations[m])}"
             for m in ("mean_reward", "bad_actions") if m in correlations]
    return (f" Secondary, with {AGENT_NAMES.get(agent, agent)}: " + "; ".join(shown) + "."
            if shown else "")


def headline(synthetic: SyntheticAnalysis | Sequence[SyntheticAnalysis] | None,
             real: RealAnalysis | None,
             trained: TrainedAnalysis | None, settings: RecipeSettings | None = None,
             near_constant: frozenset[str] = frozenset()) -> list[str]:
    """The report's opening answer: one generated line per study present (study 1: per
    variant), each led by the primary score (`settings`; the default when None), then the
    secondary statements. `near_constant`: study 2 kernels to mark as near-constant."""
    settings = RecipeSettings() if settings is None else settings
    lines = []
    variants = ([] if synthetic is None else
                [synthetic] if isinstance(synthetic, SyntheticAnalysis) else list(synthetic))
    for analysis in variants:
        label = f", {analysis.condition}" if ":" in analysis.condition else ""
        lines.append(f"Study 1 (synthetic kernels{label}): "
                     + synthetic_primary(analysis, settings) + _synthetic_secondary(analysis))
    if real is not None and real.conditions:
        condition = "human" if "human" in real.conditions else str(real.conditions[0])
        lines.append("Study 2 (real judgments): "
                     + real_primary(real, condition, settings, near_constant)
                     + _real_secondary(real, condition))
    if trained is not None and trained.agents:
        verdict = [p for p in trained_text(trained) if p.startswith("Does alignment")]
        lines.append("Study 3 (trained encoders): " + trained_primary(trained, settings)
                     + (" Secondary: " + verdict[0] if verdict else ""))
    return lines
