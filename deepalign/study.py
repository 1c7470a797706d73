"""`python -m deepalign.study CONFIG --out DIR`: run a study recipe into DIR (resumable).

Runs the grid of the recipe (see `deepalign.studies.config`) with a progress bar, writing
`DIR/results.csv` (one row per run; every metric and the measured alignment of its kernel).
Re-running the same command skips cells already written. A bad recipe exits with code 2 and
a message naming the file and key. Then `python -m deepalign.report DIR` writes the report.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deepalign.study",
        description="Run a deepalign study recipe (configs/study/*.yaml) into a directory.",
    )
    parser.add_argument("config", help="study recipe (YAML), e.g. configs/study/quick.yaml")
    parser.add_argument("--out", required=True, help="output directory (resumable)")
    parser.add_argument("--device", default=None, help="torch device of the engine "
                        "(overrides the recipe's 'device')")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads "
                        "(default 1: the study's many small eigen-decompositions and updates "
                        "run fastest single-threaded, above all on a busy machine)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from dataclasses import replace

    import torch

    from deepalign.errors import DeepAlignError
    from deepalign.studies import load_study_config, run_study

    torch.set_num_threads(max(1, args.threads))
    try:
        config = load_study_config(args.config)
        if args.device is not None:
            config = replace(config, device=args.device)
        result = run_study(config, args.out, progress=not args.no_progress,
                           log=lambda line: print(line, file=sys.stderr))
    except DeepAlignError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"{result.n_run} runs done, {result.n_skipped} already written, {result.n_cells} in the "
        f"grid ({result.seconds:.1f} s); results: {result.table}\n"
        f"next: python -m deepalign.report {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
