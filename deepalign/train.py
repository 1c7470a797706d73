"""`python -m deepalign.train`: train an encoder toward human similarity judgments.

With no argument it trains the default recipe (``configs/train/default.yaml`` records it):
``spa-verb`` (825 verbs rendered by `deepalign.data.render_verb_action`), items split by
`deepalign.data.split_items` with ``split_seed`` = ``--seed_everything`` (0), a frozen
all-MiniLM-L6-v2 with cached embeddings and a linear head (starting as the identity),
input dropout 0.5, `SoftSpearmanLoss` on the fit pairs + a preservation term (weight 30)
keeping the similarities among 1,000 unlabeled texts of other bundled datasets near the
pretrained encoder's, early stopping on ``val/spearman`` (pairs of validation items carved
from the train items; held-out items are never used). Every run reports the preservation
suite (every bundled similarity set it did not train on, before and after). The recipe was
chosen on validation items: ``docs/generalization.md``.

    python -m deepalign.train                                  # the default recipe
    python -m deepalign.train --config configs/train/activity_pairs.yaml
    python -m deepalign.train --config configs/train/multi.yaml       # two similarity sets
    python -m deepalign.train --seed_everything 1 --trainer.max_epochs 50
    python -m deepalign.train --ckpt_path RUN/checkpoints/last.ckpt   # resume
    python -m deepalign.train --ckpt_path last          # resume the newest run (or start one)
    python -m deepalign.train --config configs/train/ddp.yaml         # DDP, 2 CPU processes
    python -m deepalign.train --help                           # the options most runs need
    python -m deepalign.train --help-all                       # every option, typed (1,300 lines)

Options are LightningCLI's: ``--config FILE`` (YAML), ``--trainer.*``, ``--model.*``
(`trainers.AlignmentModule`), ``--data.*`` (`trainers.AlignmentDataModule`),
``--early_stopping.*``, ``--checkpoint.*``, ``--tensorboard.*``, ``--artifacts.*``. The
resolved configuration is saved as ``config.yaml`` in the run directory. The work is done by
`trainers.train_alignment` (which studies call too); this module prints and sets the exit
code. It is the only module of ``deepalign`` that imports Lightning (through `trainers`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from deepalign.errors import DeepAlignError
from trainers.run import (  # noqa: F401  (build_cli and the defaults are re-exported)
    MONITOR,
    TRAINER_DEFAULTS,
    AlignmentCLI,
    RunFinished,
    TrainingRun,
    build_cli,
    train_alignment,
)


def report(run: TrainingRun) -> str:
    """The lines printed at the end: where everything was written, the TensorBoard command."""
    summary, paths = run.summary, run.paths
    held = summary.get("heldout", {})
    lines = [
        "",
        f"alignment training on {summary.get('dataset')} "
        f"(split_seed {summary.get('split_seed')}) finished in {summary.get('seconds')} s; "
        f"best epoch {summary.get('best_epoch')} of {summary.get('epochs_run')}",
    ]
    if summary.get("best_epoch") == 0:
        lines.append(f"  no epoch beat the pretrained encoder on {summary.get('monitor')}: "
                     "kept its weights")
    for split in ("train", "val", "val_new", "heldout", "cross"):
        row = summary.get(split, {})
        lines.append(f"  {split:8s} Spearman {_fmt(row.get('spearman_before'))} -> "
                     f"{_fmt(row.get('spearman_after'))}")
    lines.append(f"  new x new held-out gain: {_fmt(_gain(held))}; cross gain: "
                 f"{_fmt(_gain(summary.get('cross', {})))}")
    sets = summary.get("preservation", {}).get("sets", {})
    for name, row in sets.items():
        lines.append(f"  preserve {name:18s} {_fmt(row.get('spearman_before'))} -> "
                     f"{_fmt(row.get('spearman_after'))} ({_signed(row.get('change'))})")
    for key in ("run_dir", "summary", "encoder", "best_checkpoint", "last_checkpoint", "config"):
        if paths.get(key):
            lines.append(f"  {key + ':':17s}{paths[key]}")
    lines.append(f"view it with:  tensorboard --logdir {run.root}")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _signed(value: Any) -> str:
    return "n/a" if value is None else f"{value:+.4f}"


def _gain(row: dict[str, Any]) -> float | None:
    before, after = row.get("spearman_before"), row.get("spearman_after")
    if before is None or after is None:
        return None
    return after - before


SHORT_HELP = """usage: python -m deepalign.train [--config FILE] [OPTIONS]

Train an encoder toward human similarity judgments (default: the recipe in
configs/train/default.yaml on spa-verb). The options most runs need:

  --config FILE                      a YAML recipe (configs/train/*.yaml)
  --seed_everything N                seed; also picks the held-out items (default 0)
  --data.dataset NAME|CSV|CARD       a bundled set, your items CSV or a dataset card
  --data.similarity FILE             with an items CSV: its similarity file (.npy/.csv)
  --data.heldout_fraction F          items never trained on (default 0.3)
  --trainer.max_epochs N             most epochs (default 500; early stopping ends sooner)
  --trainer.default_root_dir DIR     where runs go (default runs)
  --model.learning_rate LR           AdamW learning rate (default 1e-3)
  --model.preservation_weight W      keep unlabeled texts' similarities (default 30; 0 off)
  --model.encoder.init_args.backbone NAME   a zoo encoder (python -m deepalign.encoders list)
  --model.encoder.init_args.head H   identity | linear | mlp | lowrank (default linear)
  --early_stopping.monitor M         default val/spearman; or val_new/spearman
  --early_stopping.patience N        checks without improvement (default 80)
  --ckpt_path PATH|last              resume a run (weights-only, checked first)
  --print_config                     print the resolved recipe and exit

Every option, typed, with its default: python -m deepalign.train --help-all
"""


def main(args: Sequence[str] | None = None) -> int:
    """Run the CLI; 0 on success, 2 on a configuration or data error (message on stderr).
    ``--help`` prints the options most runs need; ``--help-all`` LightningCLI's full list."""
    argv = list(sys.argv[1:] if args is None else args)
    if "--help-all" in argv:
        argv = ["--help" if a == "--help-all" else a for a in argv]
        if args is None:  # LightningCLI reads sys.argv itself (and warns when given both)
            sys.argv[1:] = argv
        else:
            args = argv
    elif "--help" in argv or "-h" in argv:
        print(SHORT_HELP, end="")
        return 0
    try:
        run = train_alignment(args)
    except RunFinished as finished:
        print(str(finished))
        return 0
    except DeepAlignError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if run.summary:
        print(report(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
