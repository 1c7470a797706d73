"""`python -m deepalign.report DIR`: write DIR/report.md and DIR/report.html from
DIR/results.csv (figures in DIR/figures/). Exit code 2 with a message when the table is
missing or not a deepalign results table."""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deepalign.report",
        description="Build the Markdown + HTML report of a study directory.",
    )
    parser.add_argument("directory", help="a directory written by python -m deepalign.study")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress lines on stderr")
    args = parser.parse_args(argv)

    from deepalign.errors import DeepAlignError
    from deepalign.reports import build_report

    started = time.perf_counter()

    def progress(stage: str) -> None:
        if not args.quiet:
            print(f"report [{time.perf_counter() - started:5.1f} s]: {stage}", file=sys.stderr,
                  flush=True)

    try:
        report = build_report(args.directory, progress=progress)
    except DeepAlignError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in report.headline:
        print(line)
    print(f"report: {report.markdown}\nhtml:   {report.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
