"""`python -m deepalign.benchmark ENCODER...`: encoders side by side.

Example:

    python -m deepalign.benchmark minilm mpnet minilm-l3 use glove
    python -m deepalign.benchmark minilm runs/spa-verb/version_0 --out runs/benchmark/trained
    python -m deepalign.benchmark minilm glove --quick        # a few seconds once cached

Each ENCODER is a zoo name (`python -m deepalign.encoders list`), an exported encoder's
directory or a `python -m deepalign.train` run directory. Prints one table (rows: encoders;
columns: Spearman with human similarity on every bundled similarity set, held-out pairs
where a listed encoder was trained on that set, then `safe_general_score` of calibrated GP
Thompson sampling on `spa-verb-act`, mean +- sem) and writes `benchmark.json`,
`benchmark.csv` and `benchmark.png` into `--out` (default `runs/benchmark`), all three or
none (`deepalign.studies.benchmark_output`). The numbers come from
`deepalign.studies.benchmark.run_benchmark`. Progress goes to stderr. Bad arguments exit
with status 2 and a one-line reason; nothing is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from deepalign.data.spa_verb_act import VALUE_NAMES
from deepalign.errors import ConfigError, DeepAlignError
from deepalign.studies.benchmark import QUICK_SEEDS, QUICK_VALUES, run_benchmark

__all__ = ["main"]

DEFAULT_SEEDS = 50


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deepalign.benchmark",
        description="Benchmark encoders: human alignment per dataset and the primary "
                    "value-learning score.",
    )
    parser.add_argument("encoders", nargs="+", metavar="ENCODER",
                        help="zoo names (python -m deepalign.encoders list) or directories of "
                             "exported encoders / training runs")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark"),
                        help="directory for benchmark.json, .csv and .png (default "
                             "runs/benchmark)")
    parser.add_argument("--seeds", type=_positive_int, default=None,
                        help=f"bandit runs per value (default {DEFAULT_SEEDS}; --quick "
                             f"{QUICK_SEEDS})")
    parser.add_argument("--values", nargs="+", default=None, choices=list(VALUE_NAMES),
                        metavar="VALUE",
                        help="spa-verb-act values to learn (default all six; --quick "
                             f"{' '.join(QUICK_VALUES)})")
    parser.add_argument("--horizon", type=_positive_int, default=100, help="pulls per run")
    parser.add_argument("--quick", action="store_true",
                        help="few seeds and values (the quick study, smoke tests)")
    parser.add_argument("--threads", type=_positive_int, default=1,
                        help="torch intra-op threads (default 1, as python -m deepalign.study: "
                             "the full benchmark took 31 s with 1 and 48 s with 2 on 2 idle "
                             "cores, and 7 min with 2 beside another busy process)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def run(args: argparse.Namespace) -> int:
    # cheap checks first, so a bad --out fails before any encoder is loaded
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out}: exists and is not a directory; pass a directory")
    import torch

    from deepalign.limits import check_threads
    from deepalign.studies.benchmark_output import format_benchmark, write_benchmark

    torch.set_num_threads(check_threads(args.threads, "--threads"))
    seeds = args.seeds or (QUICK_SEEDS if args.quick else DEFAULT_SEEDS)
    values = args.values or (QUICK_VALUES if args.quick else VALUE_NAMES)
    result = run_benchmark(args.encoders, values=values, seeds=seeds, horizon=args.horizon,
                           progress=not args.no_progress)
    print(format_benchmark(result))
    paths = write_benchmark(result, args.out)
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({result.seconds:.0f} s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"),
                        ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    try:
        return run(args)
    except DeepAlignError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
