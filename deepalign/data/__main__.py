"""``python -m deepalign.data``: list, show and validate datasets.

    python -m deepalign.data list
    python -m deepalign.data show NAME
    python -m deepalign.data validate ITEMS.csv [--similarity FILE] [--id-column C]
        [--text-column C] [--value-columns A,B] [--kind similarity|distance]
        [--scale LO,HI] [--similarity-scale LO,HI] [--ignore-diagonal]
    python -m deepalign.data validate CARD.yaml     (a dataset card: deepalign.data.cards)

On bad input ``validate`` (and ``show``) print a one-line ``error: ...`` on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Sequence

from deepalign.data.cards import CARD_SUFFIXES, open_dataset
from deepalign.data.dataset import Dataset
from deepalign.data.registry import list_datasets, load_dataset
from deepalign.data.user import load_user_dataset
from deepalign.errors import ConfigError, DeepAlignError

__all__ = ["main"]


def _pair(text: str) -> tuple[float, float]:
    fix = ("Fix: give the lowest and the highest value the scale allows, lowest first, e.g. "
           "0,100 (a negative one also as --scale=-4,4)")
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LO,HI such as 0,100, got {text!r}. "
                                         f"{fix}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise argparse.ArgumentTypeError(f"expected two finite numbers LO < HI, got {text!r}. "
                                         f"{fix}")
    return lo, hi


def _join_negative(argv: Sequence[str]) -> list[str]:
    """`--scale -4,4` as `--scale=-4,4`: argparse would read the negative pair as an option."""
    out: list[str] = []
    items = list(argv)
    k = 0
    while k < len(items):
        if items[k] in ("--scale", "--similarity-scale") and k + 1 < len(items) \
                and items[k + 1].startswith("-") and items[k + 1][1:2].isdigit():
            out.append(f"{items[k]}={items[k + 1]}")
            k += 2
            continue
        out.append(items[k])
        k += 1
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m deepalign.data",
                                     description="List, show and validate deepalign datasets.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="every bundled dataset with its counts and licence")
    show = commands.add_parser("show", help="a summary and five example items")
    show.add_argument("name", help="a bundled dataset name (see `list`)")
    check = commands.add_parser("validate", help="validate your own files")
    check.add_argument("items_csv", help="your items CSV, or a dataset card (.yaml/.toml) "
                       "that names the files and settings (then give no other option)")
    check.add_argument("--similarity", help="square .npy/.csv matrix or pairs CSV")
    check.add_argument("--id-column")
    check.add_argument("--text-column")
    check.add_argument("--value-columns", help="comma-separated; default every other column")
    check.add_argument("--kind", choices=("similarity", "distance"), default="similarity")
    check.add_argument("--scale", type=_pair, help="LO,HI of every value column")
    check.add_argument("--similarity-scale", type=_pair, help="LO,HI of the similarity scores")
    check.add_argument("--ignore-diagonal", action="store_true")
    return parser


def summary(dataset: Dataset) -> list[str]:
    """Lines describing ``dataset``: counts, value scales and thresholds, licence, notes."""
    lines = [f"{dataset.name}: {len(dataset.items)} items"]
    if dataset.similarity is not None:
        s = dataset.similarity
        lines.append(f"  similarity: {s.n_pairs} observed pairs ({s.kind} on "
                     f"[{s.scale[0]:g}, {s.scale[1]:g}], normalised to [0, 1])")
    if dataset.values is not None:
        v = dataset.values
        for k, name in enumerate(v.names):
            column = v.ratings[:, k]
            lines.append(f"  value {name}: scale [{v.scales[k][0]:g}, {v.scales[k][1]:g}], "
                         f"threshold {float(v.thresholds[k]):g}, mean {float(column.mean()):.3g}"
                         f", {int((column < v.thresholds[k]).sum())} items below threshold")
    for key in ("description", "license"):
        if dataset.info.get(key):
            lines.append(f"  {key}: {dataset.info[key]}")
    lines += [f"  note: {note}" for note in dataset.info["notes"]]
    return lines


def _examples(dataset: Dataset, count: int = 5) -> list[str]:
    lines = ["  examples:"]
    for i in range(min(count, len(dataset.items))):
        text = f"    {dataset.items.ids[i]}: {dataset.items.texts[i][:70]}"
        if dataset.values is not None:
            text += "  [" + ", ".join(f"{n}={float(dataset.values.ratings[i, k]):g}"
                                      for k, n in enumerate(dataset.values.names)) + "]"
        lines.append(text)
    return lines


def _list() -> list[str]:
    rows = [("name", "items", "pairs", "values", "licence")]
    for name in list_datasets():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = load_dataset(name)
        pairs = "-" if dataset.similarity is None else str(dataset.similarity.n_pairs)
        values = "-" if dataset.values is None else (
            f"{dataset.values.n_values} ({', '.join(dataset.values.names)})")
        if len(values) > 48:
            values = values[:45] + "..."
        rows.append((name, str(len(dataset.items)), pairs, values, dataset.info["license"]))
    widths = [max(len(row[k]) for row in rows) for k in range(4)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4]
            for row in rows]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input)."""
    args = _parser().parse_args(_join_negative(sys.argv[1:] if argv is None else argv))
    try:
        if args.command == "list":
            lines = _list()
        elif args.command == "show":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # what a loader warns about is in its notes
                dataset = load_dataset(args.name)
            lines = summary(dataset) + _examples(dataset)
        else:
            value_columns = None if args.value_columns is None else [
                c.strip() for c in args.value_columns.split(",") if c.strip()]
            card = args.items_csv.lower().endswith(CARD_SUFFIXES)
            given = [flag for flag, value in (
                ("--similarity", args.similarity), ("--id-column", args.id_column),
                ("--text-column", args.text_column), ("--value-columns", args.value_columns),
                ("--scale", args.scale), ("--similarity-scale", args.similarity_scale),
                ("--ignore-diagonal", args.ignore_diagonal or None),
                ("--kind", None if args.kind == "similarity" else args.kind))
                if value is not None]
            if card and given:
                raise ConfigError(f"{args.items_csv}: a dataset card holds its own settings, "
                                  f"got {', '.join(given)} beside it. Fix: put them in the "
                                  "card, or validate the CSV with the options.")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                dataset = open_dataset(args.items_csv) if card else load_user_dataset(
                    args.items_csv, args.similarity, id_column=args.id_column,
                    text_column=args.text_column, value_columns=value_columns,
                    scales=args.scale, kind=args.kind, similarity_scale=args.similarity_scale,
                    ignore_diagonal=args.ignore_diagonal,
                )
            lines = ["ok: " + summary(dataset)[0]] + summary(dataset)[1:] + _examples(dataset)
            lines += [f"  warning: {w.message}" for w in caught
                      if str(w.message) not in dataset.info["notes"]]
    except DeepAlignError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
