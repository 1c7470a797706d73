"""`python -m deepalign.bandit`: one agent, one kernel, one dataset value, N seeds.

Example:

    python -m deepalign.bandit --dataset spa-verb-act --value act_evaluation --kernel human \\
        --agent gp-ts --seeds 30 --horizon 100 --json out.json

Runs seeds `first_seed .. first_seed + seeds - 1`, prints a table of every metric's mean and
standard error over the runs, and with `--json` writes `{metric: {"mean": .., "sem": ..}}`
atomically (temporary file, then rename). Bad arguments exit with status 2 and a one-line
reason.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

from deepalign.agents.environment import ValueBandit
from deepalign.agents.gp import DEFAULT_BETA, DEFAULT_SAFE_BETA, SAFE_FALLBACKS
from deepalign.agents.hyperparameters import DEFAULT_PRIOR_SD_FRACTION
from deepalign.agents.registry import AGENTS, KERNELS, AgentOptions, agent_factory, build_kernel
from deepalign.agents.regression import DEFAULT_EPSILON
from deepalign.agents.runs import run_seeds, summarize
from deepalign.data import load_dataset
from deepalign.errors import ConfigError, DeepAlignError

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
    )
    parser.add_argument("--dataset", default="spa-verb-act", help="bundled dataset name")
    parser.add_argument(
        "--value", default=None, help="value column (default: the dataset's first value)"
    )
    parser.add_argument(
        "--kernel",
        default="human",
        help=f"one of {', '.join(KERNELS)}, or the directory of an exported encoder",
    )
    parser.add_argument("--agent", default="gp-ts", choices=list(AGENTS))
    parser.add_argument("--seeds", type=_positive_int, default=30, help="number of runs")
    parser.add_argument("--first-seed", type=_nonnegative_int, default=0)
    parser.add_argument("--horizon", type=_positive_int, default=100, help="pulls per run")
    parser.add_argument(
        "--split-seed", type=_nonnegative_int, default=0, help="seed of the held-out split"
    )
    parser.add_argument(
        "--noise-sd", type=float, default=None,
        help="reward noise SD (default: raters' SD, else 10%% of the scale range)",
    )
    parser.add_argument("--refit-every", type=_positive_int, default=None)
    parser.add_argument("--beta", type=float, default=DEFAULT_BETA, help="GP-UCB beta")
    parser.add_argument("--beta-safe", type=float, default=DEFAULT_SAFE_BETA)
    parser.add_argument(
        "--safe-fallback", default="probability", choices=list(SAFE_FALLBACKS),
        help="safe-gp's rule while no arm is safe",
    )
    parser.add_argument("--epsilon", type=float, default=DEFAULT_EPSILON)
    parser.add_argument("--prior-sd-fraction", type=float, default=DEFAULT_PRIOR_SD_FRACTION)
    parser.add_argument("--json", type=Path, default=None, help="write the summary here")
    return parser


def write_json_atomic(path: Path, payload: dict) -> None:
    """Write `payload` as JSON to `path` via a temporary file in the same directory."""
    path = Path(path)
    if not path.parent.is_dir():
        raise DeepAlignError(
            f"--json {path}: the directory {path.parent} does not exist; create it first"
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


def run(args: argparse.Namespace) -> dict[str, dict[str, float | None]]:
    # cheap checks first, so a typo fails before any data or model is loaded
    if args.kernel not in KERNELS and not Path(args.kernel).is_dir():
        raise ConfigError(
            f"--kernel {args.kernel!r}: not one of {sorted(KERNELS)} and not a directory; pass "
            "a kernel name or the directory of an encoder exported by python -m deepalign.train"
        )
    if args.json is not None and not args.json.parent.is_dir():
        raise ConfigError(
            f"--json {args.json}: the directory {args.json.parent} does not exist; create it "
            "first"
        )
    options = DATASET_VALUE_OPTIONS.get(args.dataset, lambda value: {})
    dataset = _with_notes(
        lambda: load_dataset(args.dataset, **(options(args.value) if args.value else {}))
    )
    if dataset.values is None:
        raise DeepAlignError(
            f"--dataset {args.dataset}: it has no value ratings to learn; pick a dataset with "
            "values (python -m deepalign.data list)"
        )
    value = args.value if args.value is not None else dataset.values.names[0]
    env = ValueBandit(dataset, value, noise_sd=args.noise_sd, split_seed=args.split_seed)
    spec = AGENTS[args.agent]
    kernel = None
    if spec.uses_kernel:
        kernel = _with_notes(lambda: build_kernel(args.kernel, dataset))
    agent_options = AgentOptions(
        refit_every=args.refit_every,
        beta=args.beta,
        beta_safe=args.beta_safe,
        safe_fallback=args.safe_fallback,
        epsilon=args.epsilon,
        prior_sd_fraction=args.prior_sd_fraction,
    )
    agent = agent_factory(args.agent, kernel, agent_options)(env)  # reset before each run
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    results = run_seeds(env, agent, args.horizon, seeds)
    summary = summarize(results.metrics(env))
    kernel_name = args.kernel if spec.uses_kernel else "none"
    print(
        f"{env.dataset_name} / {value}: agent {args.agent}, kernel {kernel_name}, "
        f"{args.seeds} seeds, horizon {args.horizon}, {env.n_arms} arms, "
        f"{env.n_heldout} held-out items, bad below {env.threshold:g}"
    )
    print(format_table(summary))
    if args.json is not None:
        write_json_atomic(args.json, summary)
        print(f"wrote {args.json}")
    return summary


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
