"""Plain-language answers generated from the analyses (never written by hand).

Every sentence is assembled from the numbers of `deepalign.studies.analysis`: the sign and
p-value of a correlation choose the words ("more aligned, fewer bad actions"), and the
verdict of study 3 follows fixed rules stated in `trained_text`.
"""

from __future__ import annotations

import math

from deepalign.studies.analysis import (
    HIGHER_IS_BETTER,
    PAPER_ALPHA,
    PAPER_METRICS,
    RealAnalysis,
    SyntheticAnalysis,
    TrainedAnalysis,
    paper_cells,
)
from deepalign.studies.config import split_variant
from deepalign.studies.stats import CorrelationResult, PairedResult

__all__ = [
    "AGENT_NAMES",
    "ALPHA",
    "KERNEL_NAMES",
    "METRIC_WORDS",
    "MIN_WILCOXON_N",
    "format_p",
    "paired_direction",
    "paired_numbers",
    "paper_text",
    "real_text",
    "synthetic_text",
    "trained_text",
    "variant_words",
    "wilcoxon_words",
]

#: Significance level of every "significant" in the generated text.
ALPHA = 0.05

#: metric -> (noun phrase, word when it goes up, word when it goes down).
METRIC_WORDS: dict[str, tuple[str, str, str]] = {
    "safe_general_score": ("safe-and-general score", "higher", "lower"),
    "mean_reward": ("mean reward", "higher", "lower"),
    "cumulative_regret": ("cumulative regret", "more", "less"),
    "unique_actions": ("unique actions", "more", "fewer"),
    "non_optimal_actions": ("non-optimal actions", "more", "fewer"),
    "bad_actions": ("bad actions", "more", "fewer"),
    "iterations_to_convergence": ("iterations until the pulled arm settles", "more", "fewer"),
    "greedy_convergence": ("iterations until the best guess settles", "more", "fewer"),
    "final_guess_value": ("value of the final best guess", "higher", "lower"),
    "simple_regret": ("simple regret of the final best guess", "more", "less"),
    "generalization_spearman": ("held-out rank agreement", "higher", "lower"),
    "greedy_value": ("value of the greedy held-out pick", "higher", "lower"),
    "greedy_is_bad": ("bad greedy held-out picks", "more", "fewer"),
    "bad_in_top5": ("bad items among the top-5 held-out picks", "more", "fewer"),
    "generalization_regret": ("regret of the top-5 held-out picks", "more", "less"),
}

AGENT_NAMES = {
    "gp-ts": "GP Thompson sampling",
    "gp-ucb": "GP-UCB",
    "safe-gp": "the safe GP agent",
    "greedy": "the greedy GP agent (reference, no exploration)",
    "kernel-regression": "kernel regression",
    "svr": "SVR",
    "kernel-regression-decay": "kernel regression (decaying epsilon)",
    "svr-decay": "SVR (decaying epsilon)",
    "independent-ts": "independent Thompson sampling",
    "random": "the random agent",
}

_REFERENCE_WORDS = {"constant": "every action alike", "identity": "independent arms"}
#: Kernels with a fixed meaning, as the report's tables name them.
KERNEL_NAMES = {k: f"{k} (reference: {words})" for k, words in _REFERENCE_WORDS.items()}


_ENVIRONMENT_WORDS = {
    "ratings": "rewards: the mean human ratings",
    "gp-sample": "rewards: drawn per run from a GP whose covariance is the human kernel",
}
_ARM_WORDS = {
    "all": "arms: every item with a rating",
    "block": "arms: the largest complete block of the human matrix",
}


def variant_words(condition: str) -> str:
    """'variant gp-sample:block (rewards: ...; arms: ...)' for a study 1 condition."""
    environment, arms = split_variant(condition)
    return (f"variant {environment}:{arms} ({_ENVIRONMENT_WORDS.get(environment, environment)}"
            f"; {_ARM_WORDS.get(arms, arms)})")


def paper_text(analysis: SyntheticAnalysis) -> str:
    """Which cells of the paper's table reproduce the paper in this variant: its direction
    ("more aligned, better and safer") with p < `PAPER_ALPHA`, per agent, naming every
    miss and every cell that went significantly the other way."""
    cells = paper_cells(analysis)
    if not cells:
        return f"In {variant_words(analysis.condition)} no agent with a kernel ran."
    reproduced = [c for c in cells if c.reproduces]
    per_agent = []
    against = []
    for agent in analysis.agents:
        mine = [c for c in cells if c.agent == agent]
        hits = [c for c in mine if c.reproduces]
        misses = []
        for cell in mine:
            if cell.reproduces:
                continue
            result = cell.result
            noun = METRIC_WORDS.get(cell.metric, (cell.metric,))[0]
            if result is None or not math.isfinite(result.rho):
                misses.append(f"{noun} (not measurable)")
                continue
            misses.append(f"{noun} (\u03c1 = {result.rho:+.2f}, {format_p(result.p_value)})")
            if result.p_value < PAPER_ALPHA:
                against.append(f"{AGENT_NAMES.get(agent, agent)}, {noun}")
        words = f"{AGENT_NAMES.get(agent, agent)} {len(hits)} of {len(mine)}"
        if misses:
            words += " (misses: " + "; ".join(misses) + ")"
        per_agent.append(words)
    text = (f"In {variant_words(analysis.condition)}, {len(reproduced)} of {len(cells)} cells "
            f"of the paper's table reproduce the paper (its direction, more aligned, better "
            f"and safer, with p < {PAPER_ALPHA}): " + "; ".join(per_agent) + ".")
    if against:
        text += (f" Significantly the other way (p < {PAPER_ALPHA}): " + "; ".join(against)
                 + ".")
    return text


def format_p(p: float) -> str:
    """'p < 0.001', 'p = 0.012' or 'p n/a'."""
    if not math.isfinite(p):
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _better(metric: str, sign: float) -> bool:
    """Whether a change of `sign` in `metric` is the better outcome."""
    return (sign > 0) == (metric in HIGHER_IS_BETTER)


def _relation(metric: str, result: CorrelationResult) -> str:
    noun, up, down = METRIC_WORDS.get(metric, (metric, "higher", "lower"))
    if not math.isfinite(result.rho):
        return f"no measurable relation with {noun} (constant)"
    detail = f"\u03c1 = {result.rho:+.2f}, {format_p(result.p_value)}"
    if result.p_value >= ALPHA:
        return f"no clear relation with {noun} ({detail})"
    return f"{up if result.rho > 0 else down} {noun} ({detail})"


def _join(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _tally(correlations: dict[str, CorrelationResult], metrics: tuple[str, ...]):
    better = [m for m in metrics if m in correlations
              and correlations[m].p_value < ALPHA and _better(m, correlations[m].rho)]
    worse = [m for m in metrics if m in correlations
             and correlations[m].p_value < ALPHA and not _better(m, correlations[m].rho)]
    return better, worse


def synthetic_text(analysis: SyntheticAnalysis) -> list[str]:
    """One paragraph per agent of study 1, plus the reference line."""
    paragraphs = []
    for agent in analysis.agents:
        correlations = analysis.correlations[agent]
        metrics = tuple(m for m in PAPER_METRICS if m in correlations)
        relations = [_relation(m, correlations[m]) for m in metrics]
        better, worse = _tally(correlations, metrics)
        n = next(iter(correlations.values())).n if correlations else 0
        verdict = (
            f"{len(better)} of {len(metrics)} metrics moved significantly (p < {ALPHA}) in "
            "the direction \"more aligned, better and safer\""
        )
        if worse:
            verdict += "; " + _join([METRIC_WORDS[m][0] for m in worse]) + " went the other way"
        paragraphs.append(
            f"With {AGENT_NAMES.get(agent, agent)}, kernels more aligned with human similarity "
            f"gave {_join(relations)} (Spearman over {n} runs). {verdict}."
        )
    for agent, reference in analysis.references.items():
        if "mean_reward" in reference and "bad_actions" in reference:
            paragraphs.append(
                f"Reference: {AGENT_NAMES.get(agent, agent)}, which uses no kernel, earned "
                f"{_reward_and_bad(reference)} (mean \u00b1 standard error)."
            )
    for (agent, kernel), reference in analysis.reference_kernels.items():
        if "mean_reward" in reference and "bad_actions" in reference:
            paragraphs.append(
                f"Reference: with {AGENT_NAMES.get(agent, agent)}, the {kernel} kernel "
                f"({_REFERENCE_WORDS.get(kernel, 'a reference')}; it has no alignment and is "
                f"left out of the correlations) earned {_reward_and_bad(reference)}."
            )
    return paragraphs


def _reward_and_bad(reference: dict) -> str:
    """"mean reward R ± s with B ± s bad actions" from a reference's (mean, sem) pairs."""
    reward, reward_sem = reference["mean_reward"]
    bad, bad_sem = reference["bad_actions"]
    return (f"mean reward {reward:.3g} \u00b1 {reward_sem:.2g} with {bad:.3g} \u00b1 "
            f"{bad_sem:.2g} bad actions")


def real_text(analysis: RealAnalysis) -> list[str]:
    """Study 2: the human-judgment condition, then the length control."""
    paragraphs = []
    metrics = ("mean_reward", "bad_actions", "generalization_spearman", "bad_in_top5")
    for (condition, agent), correlations in analysis.correlations.items():
        shown = tuple(m for m in metrics if m in correlations)
        relations = [_relation(m, correlations[m]) for m in shown]
        n = correlations[shown[0]].n if shown else 0
        ranked = sorted(
            (a, k) for (c, k), a in analysis.kernel_alignment.items()
            if c == condition and math.isfinite(a)
        )
        span = ""
        if ranked:
            span = (f" (alignment from {ranked[0][0]:+.2f} for {ranked[0][1]} to "
                    f"{ranked[-1][0]:+.2f} for {ranked[-1][1]})")
        if condition == "human":
            paragraphs.append(
                f"On real judgments, with {AGENT_NAMES.get(agent, agent)}, kernels more aligned "
                f"with human similarity{span} gave {_join(relations)} (Spearman across {n} "
                "kernel-value pairs, each value's metric centred)."
            )
            continue
        human = analysis.human_correlations.get((condition, agent), {})
        paragraphs.append(
            f"In the length control (reward and reference similarity both from action length), "
            f"with {AGENT_NAMES.get(agent, agent)}, kernels more aligned with length "
            f"similarity{span} gave {_join(relations)}."
        )
        human_key = ("human", agent)
        specific, general = [], []
        for metric in shown:
            in_human = analysis.correlations.get(human_key, {}).get(metric)
            in_control = human.get(metric)
            if in_human is None or in_control is None or in_human.p_value >= ALPHA:
                continue
            if in_control.p_value < ALPHA and in_control.rho * in_human.rho > 0:
                general.append(METRIC_WORDS[metric][0])
            else:
                specific.append(METRIC_WORDS[metric][0])
        if specific or general:
            sentence = f"Compared with the human condition ({AGENT_NAMES.get(agent, agent)}): "
            if specific:
                sentence += (f"the effect of human alignment on {_join(specific)} does not appear "
                             "when the reward is action length, so it is specific to human "
                             "judgments")
            if general:
                sentence += ("; " if specific else "") + (
                    f"human alignment also predicts {_join(general)} under the length reward, "
                    "so that effect is not specific to human values")
            paragraphs.append(sentence + ".")
    return paragraphs


#: The fewest nonzero paired differences with which a two-sided exact Wilcoxon signed-rank
#: test can reach p < ALPHA (its smallest p is 2 / 2^n); below it no test is reported.
MIN_WILCOXON_N = next(n for n in range(1, 64) if 2.0 / 2**n < ALPHA)
#: Fewer paired units than this and a verdict carries a caveat (a single seed or value can
#: move it).
FEW_UNITS = 10


def wilcoxon_words(result: PairedResult) -> str:
    """'Wilcoxon p = 0.012', or why no test is reported (n too small to reach ALPHA)."""
    if result.n < MIN_WILCOXON_N:
        return (f"no Wilcoxon test (n = {result.n} paired units cannot reach p < {ALPHA}; it "
                f"needs at least {MIN_WILCOXON_N})")
    return f"Wilcoxon {format_p(result.p_value)}"


def _interval(result: PairedResult) -> str:
    if not (math.isfinite(result.ci_low) and math.isfinite(result.ci_high)):
        return f"{round(100 * result.confidence)}% CI n/a"
    return (f"{round(100 * result.confidence)}% CI [{result.ci_low:+.3g}, "
            f"{result.ci_high:+.3g}]")


def paired_numbers(result: PairedResult) -> str:
    """'a → b, Δ = d, 95% CI [l, h], Wilcoxon p = .., n = k'."""
    return (f"{result.mean_before:.3g} \u2192 {result.mean_after:.3g}, "
            f"\u0394 = {result.mean_difference:+.3g}, {_interval(result)}, "
            f"{wilcoxon_words(result)}, n = {result.n} paired units")


def paired_direction(metric: str, result: PairedResult) -> str:
    """'fewer bad actions' when the change is clear (`_clear`), else 'no clear change in
    bad actions': a null result never gets a direction."""
    noun = METRIC_WORDS.get(metric, (metric,))[0]
    if not _clear(result):
        return f"no clear change in {noun}"
    return _moved(metric, result.mean_difference)


def _change(metric: str, result: PairedResult) -> str:
    noun = METRIC_WORDS.get(metric, (metric,))[0]
    if not math.isfinite(result.mean_difference):
        return f"{noun}: no pairs"
    return f"{paired_direction(metric, result)} ({paired_numbers(result)})"


def _moved(metric: str, change: float) -> str:
    """'fewer bad actions' / 'higher mean reward' for a change of sign `change`."""
    noun, up, down = METRIC_WORDS.get(metric, (metric, "higher", "lower"))
    return f"{up if change > 0 else down} {noun}"


def _clear(result: PairedResult) -> bool:
    """A change counts when its CI excludes 0 and the Wilcoxon test gives p < ALPHA (with
    at least `MIN_WILCOXON_N` units, so the test could reach it)."""
    excludes = result.ci_low > 0 or result.ci_high < 0
    return (excludes and result.n >= MIN_WILCOXON_N and math.isfinite(result.p_value)
            and result.p_value < ALPHA)


def trained_text(analysis: TrainedAnalysis) -> list[str]:
    """Study 3 and its verdict.

    Rules: alignment counts as gained when the bootstrap CI of the held-out gain (over
    encoder seeds) lies above 0. A metric changed when its CI excludes 0 and its Wilcoxon
    p < ALPHA. Verdict: "yes" if alignment was gained and some metric improved and none got
    worse; "mixed" if some improved and some got worse; "not measurably" if alignment was
    gained but no metric changed; "inconclusive" if alignment was not reliably gained.
    """
    paragraphs = []
    gain = analysis.alignment.get("heldout")
    verdicts = []
    if gain is not None and gain.n:
        gained = gain.ci_low > 0
        paragraphs.append(
            f"Training changed held-out alignment (Spearman with human similarity on items "
            f"never trained on) from {gain.mean_before:.3f} to {gain.mean_after:.3f} "
            f"(\u0394 = {gain.mean_difference:+.3f}, {round(100 * gain.confidence)}% CI "
            f"[{gain.ci_low:+.3f}, {gain.ci_high:+.3f}] over {gain.n} encoder seeds)."
        )
        for agent in analysis.agents:
            results = analysis.metrics.get(agent, {})
            improved = [m for m, r in results.items()
                        if _clear(r) and _better(m, r.mean_difference)]
            worsened = [m for m, r in results.items()
                        if _clear(r) and not _better(m, r.mean_difference)]
            shown = [m for m in ("bad_actions", "mean_reward", "generalization_spearman",
                                 "bad_in_top5") if m in results]
            paragraphs.append(
                f"With {AGENT_NAMES.get(agent, agent)}, the trained encoder gave "
                f"{_join([_change(m, results[m]) for m in shown])}."
            )
            n_units = max((r.n for r in results.values()), default=0)
            small = n_units < MIN_WILCOXON_N
            names = _join([_moved(m, results[m].mean_difference) for m in improved])
            worse_names = _join([_moved(m, results[m].mean_difference) for m in worsened])
            if not gained:
                verdict = ("inconclusive: training did not reliably raise held-out alignment, "
                           "so this run cannot say whether gained alignment helps")
            elif improved and not worsened:
                verdict = f"yes: alignment gained by training gave {names}"
            elif improved and worsened:
                verdict = f"mixed: it gave {names} (better) but {worse_names} (worse)"
            elif worsened:
                verdict = f"no: alignment rose but it gave {worse_names} (worse)"
            else:
                verdict = "not measurably: alignment rose but no metric changed beyond chance"
            if small:  # then no change counts as clear (`_clear`), whatever the verdict
                verdict += (f" (only {n_units} paired units, too few for the Wilcoxon test "
                            f"to reach p < {ALPHA})")
            elif (improved or worsened) and n_units < FEW_UNITS:
                verdict += (f" (caveat: this rests on only {n_units} paired units from "
                            f"{gain.n} encoder seeds; one seed or value can move it, so run "
                            "more encoder seeds before relying on it)")
            verdicts.append(f"{AGENT_NAMES.get(agent, agent)}: {verdict} ({n_units} paired "
                            f"units, {gain.n} encoder seeds)")
    for source, result in analysis.transfer_alignment.items():
        paragraphs.append(
            f"Transfer: the encoder aligned on {source} changed alignment on its held-out "
            f"similarity data from {result.mean_before:.3f} to {result.mean_after:.3f}; the "
            "value datasets it was tested on have no human similarity for their arms, so "
            "their alignment cannot be measured there."
        )
    if verdicts:
        paragraphs.append("Does alignment gained by training help? " + "; ".join(verdicts) + ".")
    return paragraphs
