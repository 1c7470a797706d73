"""`python -m deepalign.bandit`: one agent, one or more kernels, one dataset value, N seeds.

Example:

    python -m deepalign.bandit --dataset spa-verb-act --value act_evaluation --kernel human \\
        --agent gp-ts --seeds 30 --horizon 100 --json out.json
    python -m deepalign.bandit --kernel human pretrained random-init length constant identity \\
        --seeds 50 --horizon 100

Runs seeds `first_seed .. first_seed + seeds - 1` with every kernel calibrated
(`deepalign.agents.calibration`; `--calibration off` keeps the fixed prior). `--dataset`
is a bundled name, your items CSV (with `--similarity FILE`) or a dataset card
(`deepalign.data.cards`). GP agents run on the batched engine
(`deepalign.agents.engine.runs`: the same posterior as BoTorch's `SingleTaskGP`, all seeds
at once); `--backend botorch` plays the BoTorch agents one seed at a time instead (needed for
`--refit-every`). A progress bar over runs shows on a terminal (`--no-progress`: none).
With one kernel it prints a table of every metric's mean and standard error over the runs,
and with `--json` writes `{"settings": {...}, "metrics": {metric: {"mean": .., "sem": ..}}}`;
with several it prints one row per kernel (the primary `safe_general_score`, bad and unique
actions, generalization, and the kernel's effective rank and top-eigenvector share,
flagging near-constant kernels) and `--json` writes `{"settings": {...}, "kernels":
{kernel: {metric: {"mean": .., "sem": ..}}}}`. `settings` records every option and what the
data made of them (arms, held-out items, threshold). The file is written atomically
(temporary file, then rename). Bad arguments exit with status 2 and a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from deepalign.agents.calibration import DEFAULT_CALIBRATION
from deepalign.agents.engine.runs import ENGINE_AGENTS, run_engine_seeds
from deepalign.agents.environment import ValueBandit
from deepalign.agents.gp import DEFAULT_BETA, DEFAULT_SAFE_BETA, SAFE_FALLBACKS
from deepalign.agents.hyperparameters import DEFAULT_PRIOR_SD_FRACTION
from deepalign.agents.registry import AGENTS, KERNELS, AgentOptions, agent_factory, build_kernel
from deepalign.agents.regression import DEFAULT_EPSILON, kernel_matrix
from deepalign.agents.runs import run_seeds, summarize
from deepalign.data import open_dataset
from deepalign.errors import ConfigError, DeepAlignError
from deepalign.kernels import NEAR_CONSTANT_TOP_SHARE, kernel_spectrum

__all__ = ["main"]

# Loader options that select one value column, per dataset (other datasets load everything).
DATASET_VALUE_OPTIONS = {"spa-verb-act": lambda value: {"values": (value,)}}


def _int_at_least(minimum: int, expected: str):
    """An argparse type: an int >= `minimum`, else an error saying `expected`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive int")
_nonnegative_int = _int_at_least(0, "an int >= 0")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deepalign.bandit",
        description="Run a value-learning bandit agent for N seeds and print its metrics.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--dataset", default="spa-verb-act",
        help="a bundled dataset name (python -m deepalign.data list), your items CSV or a "
             "dataset card (.yaml/.toml; see deepalign.data.cards)")
    parser.add_argument(
        "--similarity", default=None,
        help="with an items CSV: its similarity file (.npy/.csv matrix or pairs CSV)")
    parser.add_argument(
        "--value", default=None, help="value column; none given: the dataset's first value"
    )
    parser.add_argument(
        "--kernel",
        default=["human"],
        nargs="+",
        help=f"one or more of {', '.join(KERNELS)}, or directories of exported encoders",
    )
    parser.add_argument("--agent", default="gp-ts", choices=list(AGENTS),
                        help="the bandit agent (deepalign.agents.registry)")
    parser.add_argument("--seeds", type=_positive_int, default=30, help="number of runs")
    parser.add_argument("--first-seed", type=_nonnegative_int, default=0,
                        help="seed of the first run; runs use first-seed .. first-seed+seeds-1")
    parser.add_argument("--horizon", type=_positive_int, default=100, help="pulls per run")
    parser.add_argument(
        "--split-seed", type=_nonnegative_int, default=0, help="seed of the held-out split"
    )
    parser.add_argument(
        "--noise-sd", type=float, default=None,
        help="reward noise SD (default: raters' SD, else 10%% of the scale range)",
    )
    parser.add_argument(
        "--calibration", default="on", choices=["on", "off"],
        help="fit each kernel's temperature and outputscale to the agent's own rewards "
             "(default on; off: the paper's fixed prior)",
    )
    parser.add_argument(
        "--backend", default="engine", choices=["engine", "botorch"],
        help="GP agents: the batched engine (default, fast) or BoTorch SingleTaskGP agents "
             "one seed at a time",
    )
    parser.add_argument("--refit-every", type=_positive_int, default=None,
                        help="refit mean/outputscale/noise by BoTorch every k steps "
                             "(needs --calibration off)")
    parser.add_argument("--beta", type=float, default=DEFAULT_BETA, help="GP-UCB beta")
    parser.add_argument("--beta-safe", type=float, default=DEFAULT_SAFE_BETA,
                        help="safe-gp: confidence width of the safety bound")
    parser.add_argument(
        "--safe-fallback", default="probability", choices=list(SAFE_FALLBACKS),
        help="safe-gp's rule while no arm is safe",
    )
    parser.add_argument("--epsilon", type=float, default=DEFAULT_EPSILON,
                        help="epsilon-greedy regression agents: exploration rate")
    parser.add_argument("--prior-sd-fraction", type=float, default=DEFAULT_PRIOR_SD_FRACTION,
                        help="GP prior SD as a fraction of the value's scale range")
    parser.add_argument("--json", type=Path, default=None,
                        help="write the settings and the summary here")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (it is shown on a terminal only)")
    return parser


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write `payload` as JSON to `path` via a temporary file in the same directory."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DeepAlignError(
            f"--json {path}: the directory {path.parent} does not exist. Fix: create it "
            "first, or pass a path in an existing directory"
        )
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(descriptor, "w") as handle:
            json.dump(payload, handle, indent=2, allow_nan=False)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def format_table(summary: dict[str, dict[str, float | None]]) -> str:
    width = max(len(name) for name in summary)
    lines = [f"{'metric':<{width}}  {'mean':>10}  {'sem':>8}"]
    for name, stats in summary.items():
        sem = "-" if stats["sem"] is None else f"{stats['sem']:.4f}"
        lines.append(f"{name:<{width}}  {stats['mean']:>10.4f}  {sem:>8}")
    return "\n".join(lines)


def _with_notes(build):
    """Call `build()`, printing its warnings (dropped items, PSD repair) as notes on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = build()
    for warning in caught:
        print(f"note: {warning.message}", file=sys.stderr)
    return result


COMPARISON_METRICS = (
    "safe_general_score", "bad_actions", "unique_actions", "generalization_spearman",
    "generalization_regret", "mean_reward", "simple_regret",
)
"""The columns of the table printed for several kernels (the primary score first)."""


def format_comparison(summaries: dict[str, dict], spectra: dict[str, tuple[float, float]]) -> str:
    """One row per kernel: mean +- sem of `COMPARISON_METRICS`, effective rank, top share."""
    metrics = [m for m in COMPARISON_METRICS if all(m in s for s in summaries.values())]
    width = max(len("kernel"), *(len(name) for name in summaries))
    header = [f"{'kernel':<{width}}"] + [f"{m:>24}" for m in metrics]
    header += [f"{'eff_rank':>9}", f"{'top_share':>9}"]
    lines = ["  ".join(header)]
    for name, summary in summaries.items():
        cells = [f"{name:<{width}}"]
        for metric in metrics:
            stats = summary[metric]
            sem = "" if stats["sem"] is None else f" +- {stats['sem']:.3f}"
            cells.append(f"{stats['mean']:.3f}{sem}".rjust(24))
        rank, share = spectra[name]
        flag = " near-constant" if share > NEAR_CONSTANT_TOP_SHARE else ""
        cells += [f"{rank:>9.1f}", f"{share:>9.3f}{flag}"]
        lines.append("  ".join(cells))
    return "\n".join(lines)


def _check_sizes_and_ranges(args: argparse.Namespace) -> None:
    """The study's size limits on --seeds and --horizon (checked before anything is
    allocated), the agents' parameters within their ranges, and --json a file path in an
    existing directory."""
    from deepalign.studies.recipe_checks import LIMIT_VARIABLES, size_limit

    for option, what, value in (("--seeds", "seeds", args.seeds),
                                ("--horizon", "steps", args.horizon)):
        if value > size_limit(what):
            raise ConfigError(
                f"{option} {value}: above the limit of {size_limit(what)} {what} (a guard "
                "against a typo that would allocate or run for ever). Fix: lower it, or raise "
                f"the limit with the environment variable {LIMIT_VARIABLES[what]}.")
    if not 0.0 <= args.epsilon <= 1.0:
        raise ConfigError(f"--epsilon {args.epsilon}: expected a probability in [0, 1] (the "
                          "chance of a random pull). Fix: e.g. 0.1.")
    for option, value in (("--beta", args.beta), ("--beta-safe", args.beta_safe)):
        if not 0.0 <= value < math.inf:
            raise ConfigError(f"{option} {value}: expected a finite number >= 0 (the bound "
                              "is mu + sqrt(beta) sd). Fix: e.g. the default.")
    if args.json is not None and args.json.is_dir():
        raise ConfigError(f"--json {args.json}: is a directory. Fix: pass a file path, e.g. "
                          f"{args.json / 'bandit.json'}.")
    if args.json is not None and not args.json.parent.is_dir():
        raise ConfigError(f"--json {args.json}: the directory {args.json.parent} does not "
                          "exist. Fix: create it first, or pass a path in an existing directory.")


def run(args: argparse.Namespace) -> dict:
    # cheap checks first, so a typo fails before any data or model is loaded
    for name in args.kernel:
        if name not in KERNELS and not Path(name).is_dir():
            raise ConfigError(
                f"--kernel {name!r}: not one of {sorted(KERNELS)} and not a directory; pass "
                "a kernel name or the directory of an encoder exported by python -m "
                "deepalign.train"
            )
    if len(set(args.kernel)) != len(args.kernel):
        raise ConfigError(f"--kernel lists a kernel twice: {args.kernel}. Fix: name each "
                          "once")
    _check_sizes_and_ranges(args)
    if args.refit_every is not None and args.calibration == "on":
        raise ConfigError(
            "--refit-every and calibration both refit GP hyperparameters; add --calibration "
            "off (and --backend botorch) to refit with BoTorch every k steps"
        )
    engine = args.backend == "engine" and args.agent in ENGINE_AGENTS
    if args.refit_every is not None and engine:
        raise ConfigError(
            "--refit-every refits by BoTorch, which the batched engine does not do; add "
            "--backend botorch"
        )
    options = DATASET_VALUE_OPTIONS.get(args.dataset, lambda value: {})
    dataset = _with_notes(lambda: open_dataset(
        args.dataset, args.similarity, **(options(args.value) if args.value else {})))
    if dataset.values is None:
        raise DeepAlignError(
            f"--dataset {args.dataset}: it has no value ratings to learn; pick a dataset with "
            "values (python -m deepalign.data list)"
        )
    value = args.value if args.value is not None else dataset.values.names[0]
    env = ValueBandit(dataset, value, noise_sd=args.noise_sd, split_seed=args.split_seed)
    spec = AGENTS[args.agent]
    agent_options = AgentOptions(
        refit_every=args.refit_every,
        beta=args.beta,
        beta_safe=args.beta_safe,
        safe_fallback=args.safe_fallback,
        epsilon=args.epsilon,
        prior_sd_fraction=args.prior_sd_fraction,
        calibration=DEFAULT_CALIBRATION if args.calibration == "on" else None,
    )
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    names = args.kernel if spec.uses_kernel else ["none"]
    summaries: dict[str, dict] = {}
    spectra: dict[str, tuple[float, float]] = {}
    from tqdm.auto import tqdm

    # disable=None: a bar on a terminal, nothing in a log file
    bar = tqdm(total=len(names) * args.seeds, desc="bandit runs", unit="run",
               disable=True if args.no_progress else None, file=sys.stderr)
    for name in names:
        kernel = None
        if spec.uses_kernel:
            kernel = _with_notes(lambda name=name: build_kernel(name, dataset))
            matrix = kernel_matrix(kernel, env.n_items)
            rank, share = kernel_spectrum(matrix)
            spectra[name] = (float(rank), float(share))
        if engine:
            results, _ = run_engine_seeds(env, matrix, args.agent, args.horizon, seeds,
                                          agent_options)
            bar.update(len(seeds))
        else:
            agent = agent_factory(args.agent, kernel, agent_options)(env)  # reset per run
            done = bar.n
            results = run_seeds(env, agent, args.horizon, seeds, record_greedy=True,
                                progress=lambda k, done=done: bar.update(done + k - bar.n))
        summaries[name] = summarize(results.metrics(env))
    bar.close()
    print(
        f"{env.dataset_name} / {value}: agent {args.agent}, kernel {', '.join(names)}, "
        f"{args.seeds} seeds, horizon {args.horizon}, {env.n_arms} arms, "
        f"{env.n_heldout} held-out items, bad below {env.threshold:g}, calibration "
        f"{args.calibration}, {'engine' if engine else 'sequential'}"
    )
    settings = _settings(args, env, value, names, engine)
    if len(names) == 1:
        print(format_table(summaries[names[0]]))
        payload = {"settings": settings, "metrics": summaries[names[0]]}
    else:
        print(format_comparison(summaries, spectra))
        payload = {"settings": settings, "kernels": summaries}
    if args.json is not None:
        write_json_atomic(args.json, payload)
        print(f"wrote {args.json}")
    return payload


def _settings(args: argparse.Namespace, env: ValueBandit, value: str, names: list[str],
              engine: bool) -> dict:
    """What the run was: every option, plus what the data made of it (arms, threshold)."""
    from deepalign import __version__

    return {
        "dataset": args.dataset, "similarity": args.similarity, "dataset_name":
        env.dataset_name, "value": value, "agent": args.agent, "kernels": list(names),
        "seeds": args.seeds, "first_seed": args.first_seed, "horizon": args.horizon,
        "split_seed": args.split_seed, "noise_sd": args.noise_sd,
        "noise_sd_mean": float(env.noise_sd.mean()),
        "calibration": args.calibration, "backend": "engine" if engine else "sequential",
        "refit_every": args.refit_every, "beta": args.beta, "beta_safe": args.beta_safe,
        "safe_fallback": args.safe_fallback, "epsilon": args.epsilon,
        "prior_sd_fraction": args.prior_sd_fraction, "n_arms": env.n_arms,
        "n_heldout": env.n_heldout, "threshold": float(env.threshold),
        "deepalign": __version__,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run(args)
    except DeepAlignError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
