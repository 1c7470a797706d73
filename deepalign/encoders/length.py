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


def text_length(text: str, unit: str) -> int:
    """Characters of the stripped text, or whitespace-separated words."""
    return len(text.strip()) if unit == "characters" else len(text.split())


class LengthEncoder(nn.Module):
    """Length control: a text's embedding depends only on its length.

    A text of length `L` (in `unit`, clipped to `max_length`) maps to the unit vector at
    angle `theta = (pi / 2) * min(L, max_length) / max_length`: `[cos theta, sin theta]`.
    The cosine similarity of two texts is therefore `cos((pi / 2) * (L1 - L2) / max_length)`:
    1 for equal lengths, falling monotonically to 0 at `max_length` apart; and any kernel of
    the embeddings (cosine, RBF, ...) is a function of the two lengths alone. `d = 2`.
    No parameters; no randomness.

    Args:
        unit: "characters" (default; SpA-Verb texts are mostly two words) or "words".
        max_length: length at which the angle saturates at 90 degrees.
    """

    def __init__(self, unit: str = "characters", max_length: int = 100) -> None:
        super().__init__()
        if unit not in LENGTH_UNITS:
            raise ConfigError(f"'unit' should be one of {LENGTH_UNITS} but got {unit!r}.")
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ConfigError(f"'max_length' should be an int >= 1 but got {max_length!r}.")
        self.unit = unit
        self.max_length = max_length

    @property
    def output_dim(self) -> int:
        """Always 2."""
        return 2

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable)."""
        return {"unit": self.unit, "max_length": self.max_length}

    def lengths(self, texts: Sequence[str]) -> Tensor:
        """Lengths of `texts` in `unit`: `n_items` int64 (not clipped)."""
        items = check_texts(texts)
        return torch.tensor([text_length(text, self.unit) for text in items], dtype=torch.long)

    def forward(self, texts: Sequence[str]) -> Tensor:
        """Embeddings `[cos theta, sin theta]` of `texts`: `n_items x 2` float32."""
        clipped = self.lengths(texts).clamp(max=self.max_length).double()
        theta = clipped * (math.pi / 2.0) / self.max_length
        return torch.stack([torch.cos(theta), torch.sin(theta)], dim=-1).float()
