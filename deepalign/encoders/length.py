"""`LengthEncoder`: the length control, an embedding that knows only a text's length."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from deepalign.encoders.inputs import check_texts
from deepalign.errors import ConfigError

LENGTH_UNITS = ("characters", "words")
#: Grid centres per bump width: at 2 the finite grid reproduces the Gaussian kernel to
#: ~1e-17 (Poisson summation: ripple ~ exp(-pi^2 * 2^2)).
CENTRES_PER_WIDTH = 2
#: Bump widths of grid beyond each end of the length range: the cut-off tail is ~exp(-25).
GRID_MARGIN = 5.0


def text_length(text: str, unit: str) -> int:
    """Characters of the stripped text, or whitespace-separated words."""
    return len(text.strip()) if unit == "characters" else len(text.split())


class LengthEncoder(nn.Module):
    """Length control: a text's embedding depends only on its length.

    A text of length `L` (in `unit`, clipped to `max_length`) sits at `x = log(1 + L)`; its
    embedding is the row of Gaussian bumps `exp(-(x - c_j)^2 / bandwidth^2)` at centres
    `c_j` spaced `bandwidth / (sqrt(2) * CENTRES_PER_WIDTH)` apart, covering
    `[0, log(1 + max_length)]` with `GRID_MARGIN` bump widths to spare on each side,
    normalised to unit norm. Up to float32 round-off (the grid and margin cut-offs add
    < 1e-10) the cosine similarity of two texts is the RBF kernel of log-length,

        `cos(L1, L2) = exp(-(log(1 + L1) - log(1 + L2))^2 / (2 * bandwidth^2))`,

    which for `L >> 1` depends only on the ratio of the lengths: with `bandwidth = 0.5`,
    texts 10% apart have similarity 0.98, 1.5x apart 0.72, 2x apart 0.38, 4x apart 0.02. So
    it resolves both short texts ("kill someone" vs "help my neighbour") and long ones (150
    vs 300 characters) up to `max_length`. The embeddings are a Gram-matrix factor, so the cosine
    kernel is PSD. Texts are embedded one at a time (no fitting to a corpus); no parameters,
    no randomness. `d` (`output_dim`) is the number of grid centres (61 for the defaults).

    Args:
        unit: "characters" (default; SpA-Verb texts are mostly two words) or "words".
        max_length: lengths above it are clipped to it (all such texts embed alike); the
            grid covers `0..max_length`. Default 1000 characters.
        bandwidth: the RBF length scale in units of `log(1 + L)`.
    """

    def __init__(
        self, unit: str = "characters", max_length: int = 1000, bandwidth: float = 0.5
    ) -> None:
        super().__init__()
        if unit not in LENGTH_UNITS:
            raise ConfigError(f"'unit' should be one of {LENGTH_UNITS} but got {unit!r}.")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ConfigError(f"'max_length' should be an int >= 1 but got {max_length!r}.")
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, float)):
            raise ConfigError(f"'bandwidth' should be a positive number but got {bandwidth!r}.")
        if not (math.isfinite(bandwidth) and bandwidth > 0):
            raise ConfigError(
                f"'bandwidth' should be a positive finite number but got {bandwidth!r}; "
                "0.5 (texts twice as long have similarity 0.38) is the default."
            )
        self.unit = unit
        self.max_length = max_length
        self.bandwidth = float(bandwidth)
        width = self.bandwidth / math.sqrt(2.0)  # bump std: products integrate to the RBF
        spacing = width / CENTRES_PER_WIDTH
        low, high = -GRID_MARGIN * width, math.log1p(max_length) + GRID_MARGIN * width
        count = math.ceil((high - low) / spacing) + 1
        # a plain attribute, not a buffer: it follows from the config, so exports store nothing
        self._centres = low + spacing * torch.arange(count, dtype=torch.float64)

    @property
    def output_dim(self) -> int:
        """The number of grid centres (61 for the default configuration)."""
        return int(self._centres.numel())

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable)."""
        return {"unit": self.unit, "max_length": self.max_length, "bandwidth": self.bandwidth}

    def lengths(self, texts: Sequence[str]) -> Tensor:
        """Lengths of `texts` in `unit`: `n_items` int64 (not clipped)."""
        items = check_texts(texts)
        return torch.tensor([text_length(text, self.unit) for text in items], dtype=torch.long)

    def forward(self, texts: Sequence[str]) -> Tensor:
        """Unit-norm bump embeddings of `texts`' log-lengths: `n_items x output_dim` float32."""
        x = torch.log1p(self.lengths(texts).clamp(max=self.max_length).double())  # n_items
        width = self.bandwidth / math.sqrt(2.0)
        bumps = torch.exp(-0.5 * ((x[:, None] - self._centres[None, :]) / width) ** 2)
        return nn.functional.normalize(bumps, dim=-1).float()
