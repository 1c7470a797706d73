"""Matplotlib figure of model vs human similarities on a set of items (for TensorBoard)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402

from deepalign.alignment import spearman_alignment  # noqa: E402


def similarity_figure(
    model_sim: Tensor,
    human_sim: Tensor,
    mask: Tensor,
    title: str,
    max_items: int = 300,
) -> Figure:
    """Human matrix, model matrix (both on observed pairs only) and a model-vs-human scatter.

    Args:
        model_sim: ``n_items x n_items`` model similarities.
        human_sim: ``n_items x n_items`` human similarities.
        mask: bool ``n_items x n_items``, observed pairs (diagonal ignored).
        title: figure title (e.g. the split and epoch).
        max_items: draw the matrices for the ``max_items`` items with the most observed
            pairs (in their original order); the scatter uses every observed pair.

    Returns:
        A figure (the caller closes it; ``SummaryWriter.add_figure`` does).
    """
    model = model_sim.detach().double().cpu()
    human = human_sim.detach().double().cpu()
    observed = mask.detach().cpu().clone()
    observed.fill_diagonal_(False)
    degree = observed.sum(dim=1)
    keep = torch.argsort(degree, descending=True, stable=True)[:max_items]
    keep = keep[degree[keep] > 0].sort().values
    shown = observed[keep][:, keep]
    upper = torch.triu(observed, diagonal=1)
    x, y = model[upper].numpy(), human[upper].numpy()

    figure, axes = plt.subplots(1, 3, figsize=(13.5, 4.4))
    for axis, matrix, name in ((axes[0], human, "human"), (axes[1], model, "model (cosine)")):
        image = np.where(shown.numpy(), matrix[keep][:, keep].numpy(), np.nan)
        drawn = axis.imshow(image, cmap="viridis", interpolation="nearest")
        axis.set_title(f"{name}, {len(keep)} items, observed pairs")
        axis.set_xticks([])
        axis.set_yticks([])
        figure.colorbar(drawn, ax=axis, fraction=0.046, pad=0.04)
    axes[2].scatter(y, x, s=4, alpha=0.35)
    axes[2].set_xlabel("human similarity")
    axes[2].set_ylabel("model similarity")
    if len(x) > 1:
        rho = spearman_alignment(model, human, observed)
        axes[2].set_title(f"{len(x)} pairs, Spearman {rho:.3f}")
    figure.suptitle(title)
    figure.tight_layout()
    return figure

