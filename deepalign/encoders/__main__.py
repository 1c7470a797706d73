"""``python -m deepalign.encoders``: the encoder zoo.

    python -m deepalign.encoders list            # name, model, dimension, licence, installed
    python -m deepalign.encoders list --json     # the same as JSON

Every name works as ``--kernel NAME`` (``python -m deepalign.bandit``), as a study recipe's
kernel, and as a backbone (``SentenceEncoder(backbone=NAME)``,
``--model.encoder.init_args.backbone NAME``). Kind "fixed" encoders train heads only.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from deepalign.encoders.zoo import ZOO

__all__ = ["list_rows", "main"]

_COLUMNS = ("name", "model", "dim", "kind", "licence", "installed", "install")


def list_rows() -> list[dict[str, object]]:
    """One row per zoo encoder: the columns of ``list``."""
    return [{"name": e.name, "model": e.model, "dim": e.dimension, "kind": e.kind,
             "licence": e.licence, "installed": e.installed(), "install": e.install,
             "notes": e.notes} for e in ZOO.values()]


def _table(rows: list[dict[str, object]]) -> str:
    shown = [{k: ("yes" if r[k] is True else "no" if r[k] is False else str(r[k]))
              for k in _COLUMNS} for r in rows]
    widths = {k: max(len(k), *(len(r[k]) for r in shown)) for k in _COLUMNS[:-1]}
    lines = ["  ".join(k.ljust(widths.get(k, 0)) for k in _COLUMNS).rstrip()]
    lines += ["  ".join(r[k].ljust(widths.get(k, 0)) for k in _COLUMNS).rstrip() for r in shown]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad usage)."""
    parser = argparse.ArgumentParser(prog="python -m deepalign.encoders",
                                     description="The offline encoder zoo.")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="every zoo encoder, installed or not")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    rows = list_rows()
    print(json.dumps(rows, indent=2) if args.json else _table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
