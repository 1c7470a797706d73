"""`RandomInitEncoder`: the backbone's architecture with random weights (a control)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from deepalign.encoders.backbone import resolve_backbone_path
from deepalign.encoders.cache import EmbeddingCache
from deepalign.encoders.inputs import check_texts
from deepalign.encoders.sentence import _check_int


class RandomInitEncoder(nn.Module):
    """Same transformer as the backbone (built from its `config.json`), randomly initialised.

    Control for studies: how much alignment comes from the architecture and tokenizer alone.
    The weights are drawn by the transformers library's own initialiser under
    `torch.manual_seed(seed)` inside `torch.random.fork_rng`, so they depend only on `seed`
    (for a given transformers version) and the caller's global RNG state is untouched. The
    network is frozen; embeddings are mean-pooled over the attention mask (as MiniLM's
    sentence-transformers pooling), L2-normalised, and cached per text.

    Args:
        backbone: local sentence-transformers directory whose config and tokenizer to use;
            None = bundled all-MiniLM-L6-v2.
        seed: seeds the random weights.
        normalize: L2-normalise the output rows.
        batch_size: texts per forward pass.
    """

    def __init__(
        self,
        backbone: str | None = None,
        seed: int = 0,
        normalize: bool = True,
        batch_size: int = 128,
    ) -> None:
        super().__init__()
        _check_int("seed", seed, minimum=None)
        _check_int("batch_size", batch_size, minimum=1)
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        if isinstance(backbone, os.PathLike):
            backbone = str(backbone)
        self._backbone_argument = backbone
        self._backbone_path = resolve_backbone_path(backbone)
        model_config = AutoConfig.from_pretrained(self._backbone_path, local_files_only=True)
        self.tokenizer = AutoTokenizer.from_pretrained(self._backbone_path, local_files_only=True)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = AutoModel.from_config(model_config)
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        self.model.eval()
        self.seed = seed
        self.normalize = normalize
        self.batch_size = batch_size
        self.max_length = _max_seq_length(self._backbone_path, model_config)
        self._output_dim = int(model_config.hidden_size)
        self._cache = EmbeddingCache()
        self._cache_device: tuple[torch.device, torch.dtype] | None = None
        self.register_load_state_dict_pre_hook(_clear_cache_hook)

    @property
    def output_dim(self) -> int:
        """Width `d` of the embeddings (the backbone's hidden size)."""
        return self._output_dim

    @property
    def backbone_path(self) -> Path:
        """Resolved directory of the backbone whose config and tokenizer are used."""
        return self._backbone_path

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable)."""
        return {
            "backbone": self._backbone_argument,
            "seed": self.seed,
            "normalize": self.normalize,
            "batch_size": self.batch_size,
        }

    def forward(self, texts: Sequence[str]) -> Tensor:
        """Embeddings of `texts`: `n_items x d` float32 (cached, no grad)."""
        items = check_texts(texts)
        parameter = next(self.model.parameters())
        if not items:
            return torch.zeros(0, self.output_dim, device=parameter.device)
        if (parameter.device, parameter.dtype) != self._cache_device:
            self._cache.clear()
            self._cache_device = (parameter.device, parameter.dtype)
        with torch.no_grad():
            embeddings = self._cache.lookup(items, self._embed)
        return F.normalize(embeddings, dim=-1) if self.normalize else embeddings

    def train(self, mode: bool = True) -> RandomInitEncoder:
        """The random network is frozen: it stays in eval mode (no dropout)."""
        super().train(mode)
        self.model.eval()
        return self

    def clear_cache(self) -> None:
        """Forget the cached embeddings."""
        self._cache.clear()

    def cache_info(self) -> dict[str, int]:
        """Cache counters (see `EmbeddingCache.info`)."""
        return self._cache.info()

    def _embed(self, texts: tuple[str, ...]) -> Tensor:
        """Mean-pooled last hidden states: `n_items x d`."""
        device = next(self.model.parameters()).device
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start : start + self.batch_size])
            encoded = self.tokenizer(
                batch,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(device)
            hidden = self.model(**encoded).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9)
            chunks.append(pooled)
        return torch.cat(chunks).float()


def _max_seq_length(path: Path, model_config: Any) -> int:
    """`max_seq_length` of sentence_bert_config.json, else the model's position limit."""
    limit = int(getattr(model_config, "max_position_embeddings", 512))
    settings = path / "sentence_bert_config.json"
    if settings.is_file():
        value = json.loads(settings.read_text()).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return min(value, limit)
    return limit


def _clear_cache_hook(module: RandomInitEncoder, *args: Any) -> None:
    module.clear_cache()
