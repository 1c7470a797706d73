"""`python -m deepalign.study CONFIG --out DIR`: run a study recipe into DIR (resumable).

Runs the grid of the recipe (see `deepalign.studies.config`) with a progress bar, writing
`DIR/results.csv` (one row per run; every metric and the measured alignment of its kernel).
Re-running the same command skips cells already written, also after a crash or a kill.
`--backend ray` plays the grid's batches as Ray tasks (`pip install deepalign[distributed]`):
on a local instance of every CPU, or on the cluster at `--address`; the table is the same.
A bad recipe, option or results file exits with code 2 and a message naming the file and
key, and writes nothing into DIR. Then `python -m deepalign.report DIR` writes the report.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m deepalign.study",
        description="Run a deepalign study recipe (configs/study/*.yaml) into a directory.",
    )
    parser.add_argument("config", help="study recipe (YAML), e.g. configs/study/quick.yaml")
    parser.add_argument("--out", required=True, help="output directory (resumable)")
    parser.add_argument("--device", default=None, help="torch device of the engine "
                        "(overrides the recipe's 'device')")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads, per "
                        "Ray task with --backend ray (default 1: the study's many small "
                        "eigen-decompositions and updates run fastest single-threaded, above "
                        "all on a busy machine)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local",
                        help="where batches run: this process (default) or Ray tasks")
    parser.add_argument("--address", default=None, help="with --backend ray: join the Ray "
                        "cluster at this address ('auto', 'HOST:6379', 'ray://HOST:10001'); "
                        "default: start a local instance")
    parser.add_argument("--num-cpus", type=int, default=None, help="with --backend ray and no "
                        "--address: CPUs of the local instance (default: all)")
    parser.add_argument("--max-retries", type=int, default=3, help="with --backend ray: times "
                        "a batch is retried when its worker dies (default 3)")
    parser.add_argument("--gpus-per-task", type=float, default=0.0, help="with --backend ray: "
                        "GPUs each batch reserves (with --device cuda; default 0)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from dataclasses import replace

    import torch

    from deepalign.errors import ConfigError, DeepAlignError
    from deepalign.limits import check_threads
    from deepalign.studies import load_study_config, run_study
    from deepalign.studies.distributed import RayOptions, StudyTaskError
    from deepalign.studies.recipe_checks import check_device

    try:
        torch.set_num_threads(check_threads(args.threads, "--threads"))
        if args.backend != "ray" and (args.address is not None or args.num_cpus is not None):
            raise ConfigError("--address and --num-cpus set up Ray, so they need --backend ray; "
                              "add it or drop them.")
        options = RayOptions(address=args.address, num_cpus=args.num_cpus,
                             max_retries=args.max_retries, threads=args.threads,
                             gpus_per_task=args.gpus_per_task)
        options.check()
        config = load_study_config(args.config)
        if args.device is not None:
            config = replace(config, device=args.device)
        # a Ray cluster's workers may have a device this driver lacks
        if not (args.backend == "ray" and args.address is not None):
            check_device(config.device, "--device" if args.device is not None
                         else f"{args.config}: key 'device'")
        result = run_study(config, args.out, progress=not args.no_progress,
                           log=lambda line: print(line, file=sys.stderr),
                           backend=args.backend,
                           ray_options=options if args.backend == "ray" else None)
    except DeepAlignError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except StudyTaskError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # the disk: read-only, full, no permission; others propagate
        from pathlib import Path

        from deepalign.errors import DISK_ERRNOS, disk_error

        if error.errno not in DISK_ERRNOS:
            raise
        print(f"error: {disk_error(Path(error.filename or args.out), error)}", file=sys.stderr)
        return 2
    print(
        f"{result.n_run} runs done, {result.n_skipped} already written, {result.n_cells} in the "
        f"grid ({result.seconds:.1f} s); results: {result.table}\n"
        f"next: python -m deepalign.report {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
