"""A tiny, real study for tests: recipe text and cached "trained" encoder runs.

The encoder runs are trained here, in-process, without Lightning: a SentenceEncoder with a
low-rank head takes a few Adam steps of `SimilarityMSELoss` on the human similarity of the
personalization (train) items of spa-verb-act, then is exported with `export_encoder` next to
a `summary.json` like the trainer's (alignment before / after per split).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from deepalign.alignment import SimilarityMSELoss, cosine_similarity_matrix, spearman_alignment
from deepalign.data import load_dataset, split_items, split_pair_masks
from deepalign.encoders import SentenceEncoder, export_encoder


def make_encoder_run(directory: Path, seed: int, steps: int = 15,
                     extra_summary: dict | None = None) -> Path:
    """Train and export one small encoder into `directory` (a cached run); returns it.
    `extra_summary`: further `summary.json` keys (e.g. the trainer's "preservation")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dataset = load_dataset("spa-verb-act", values=("act_evaluation",))
    similarity = dataset.similarity
    heldout = split_items(dataset.items.ids, seed=0)
    masks = split_pair_masks(similarity.mask, heldout)
    encoder = SentenceEncoder(head="lowrank", rank=4, seed=seed)
    texts = list(dataset.items.texts)
    backbone = encoder.embed_backbone(texts)

    def measure() -> dict[str, float]:
        with torch.no_grad():
            model = cosine_similarity_matrix(encoder.head_forward(backbone))
        return {split: spearman_alignment(model, similarity.matrix, masks[split])
                for split in ("train", "heldout")}

    before = measure()
    torch.manual_seed(seed)
    loss = SimilarityMSELoss()
    optimizer = torch.optim.Adam(encoder.head.parameters(), lr=0.02)
    train_mask = masks["train"] | torch.eye(len(texts), dtype=torch.bool)
    for _ in range(steps):
        optimizer.zero_grad()
        loss(encoder.head_forward(backbone), similarity.matrix.float(), train_mask).backward()
        optimizer.step()
    after = measure()
    export_encoder(encoder, directory / "encoder")
    summary = {
        "dataset": "spa-verb-act", "split_seed": 0, "heldout_fraction": 0.3, "epochs": 1,
        **{split: {"spearman_before": before[split], "spearman_after": after[split]}
           for split in before},
        **(extra_summary or {}),
    }
    (directory / "summary.json").write_text(json.dumps(summary))
    return directory


RECIPE = """
name: tiny
seeds: 2
horizon: 10
batch_runs: 2
synthetic:
  values: [act_evaluation]
  levels: [0.2, 0.9]
  agents: [gp-ts, kernel-regression, independent-ts]
real:
  values: [act_evaluation]
  kernels: [human, pretrained, aligned, lexical, length]
  aligned_encoder: trained
trained:
  values: [act_evaluation, glasgow_valence]
  encoder_seeds: 2
  runs: [{run0}, {run1}]
  checkpoints: false
"""


def write_recipe(directory: Path, runs: list[Path]) -> Path:
    """The tiny recipe in `directory/tiny.yaml`, using the cached encoder `runs`."""
    path = directory / "tiny.yaml"
    path.write_text(RECIPE.format(run0=runs[0], run1=runs[1]))
    return path
