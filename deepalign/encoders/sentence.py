"""`SentenceEncoder`: a pretrained sentence-transformers backbone plus a trainable head."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from deepalign.encoders.backbone import (
    backbone_fingerprint,
    embedding_dimension,
    load_backbone,
    resolve_backbone_path,
    transformer_layers,
)
from deepalign.encoders.cache import EmbeddingCache, shared_cache
from deepalign.encoders.disk_cache import disk_cached
from deepalign.encoders.heads import build_head
from deepalign.encoders.inputs import check_texts
from deepalign.encoders.zoo.fixed import FixedBackbone
from deepalign.errors import ConfigError, DataError


class SentenceEncoder(nn.Module):
    """Text -> embedding: backbone (all-MiniLM-L6-v2 by default, or any zoo encoder), a head,
    L2 normalisation.

    With `finetune_layers=0` (default) the backbone is frozen and kept in eval mode; its
    embeddings are computed once per text and cached (per text, and the last few text
    tuples whole), so a training loop over the same item set runs the head at tensor speed.
    The cache is shared by every frozen encoder on the same backbone directory, device and
    dtype in the process (frozen weights are treated as read-only; loading other backbone
    weights through `load_state_dict` gives the encoder a private cache).
    `finetune_layers=k > 0` unfreezes the last `k` transformer blocks (plus any modules the
    backbone applies after the transformer, e.g. pooling; MiniLM's mean pooling has no
    weights); `-1` unfreezes every backbone parameter. Then the backbone runs with grad on
    every call and nothing is cached.

    `state_dict()` holds the head and the trainable backbone parameters only; frozen backbone
    weights are restored from the backbone directory (so checkpoints stay small). Loading a
    state dict without them keeps the current frozen weights.

    Args:
        backbone: a zoo name (minilm, mpnet, minilm-l3, use, e5, glove: `python -m
            deepalign.encoders list`), a local sentence-transformers directory, or None =
            the bundled all-MiniLM-L6-v2. Fixed zoo encoders (use, e5, glove) train heads
            only (`finetune_layers=0`).
        head: "identity" | "linear" | "mlp" | "lowrank" (`x + U V^T x`); see `heads.py`.
        rank: rank of the lowrank head.
        hidden_dim: hidden width of the mlp head.
        output_dim: width of the linear / mlp head output; None = backbone width.
        finetune_layers: 0 = frozen backbone; k = last k blocks trainable; -1 = all.
        normalize: L2-normalise the output rows.
        seed: seeds the head's initial values (a local generator; global RNG untouched).
        batch_size: texts per backbone forward pass.
    """

    def __init__(
        self,
        backbone: str | None = None,
        head: str = "identity",
        rank: int = 32,
        hidden_dim: int = 256,
        output_dim: int | None = None,
        finetune_layers: int = 0,
        normalize: bool = True,
        seed: int = 0,
        batch_size: int = 128,
    ) -> None:
        super().__init__()
        _check_int("rank", rank, minimum=1)
        _check_int("hidden_dim", hidden_dim, minimum=1)
        if output_dim is not None:
            _check_int("output_dim", output_dim, minimum=1)
        _check_int("finetune_layers", finetune_layers, minimum=-1)
        _check_int("seed", seed, minimum=None)
        _check_int("batch_size", batch_size, minimum=1)
        if isinstance(backbone, os.PathLike):
            backbone = str(backbone)
        self._backbone_argument = backbone
        self._backbone_path = resolve_backbone_path(backbone)
        self.backbone = load_backbone(self._backbone_path)
        self.head_kind = head
        self.rank = rank
        self.hidden_dim = hidden_dim
        self._output_dim_argument = output_dim
        self.finetune_layers = finetune_layers
        self.normalize = normalize
        self.seed = seed
        self.batch_size = batch_size
        self.input_dim = embedding_dimension(self.backbone)
        self._trainable_backbone = self._set_trainable(finetune_layers)
        self.head = build_head(head, self.input_dim, output_dim, rank, hidden_dim, seed)
        self._output_dim = self.input_dim if output_dim is None else output_dim
        self._private_cache: EmbeddingCache | None = None
        self._private_key: tuple[str, ...] | None = None
        self.register_state_dict_post_hook(_drop_frozen_backbone)
        self.register_load_state_dict_pre_hook(_fill_frozen_backbone)
        self.backbone.eval()

    @property
    def output_dim(self) -> int:
        """Width `d` of the embeddings `forward` returns."""
        return self._output_dim

    @property
    def backbone_path(self) -> Path:
        """Resolved directory of the backbone."""
        return self._backbone_path

    @property
    def frozen(self) -> bool:
        """True when no backbone parameter is trained (embeddings are cached)."""
        return not self._trainable_backbone

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable): `SentenceEncoder(**config())` rebuilds."""
        return {
            "backbone": self._backbone_argument,
            "head": self.head_kind,
            "rank": self.rank,
            "hidden_dim": self.hidden_dim,
            "output_dim": self._output_dim_argument,
            "finetune_layers": self.finetune_layers,
            "normalize": self.normalize,
            "seed": self.seed,
            "batch_size": self.batch_size,
        }

    def embed_backbone(self, texts: Sequence[str]) -> Tensor:
        """Backbone embeddings of `texts`: `n_items x d_in` float32.

        Frozen: cached, no grad (MiniLM's output is already unit-norm). Fine-tuning: computed
        on every call, with grad when grad is enabled.
        """
        items = check_texts(texts)
        if not items:
            return torch.zeros(0, self.input_dim, device=self._device())
        if not self.frozen:
            return self._run_backbone(items)
        with torch.no_grad():
            return self._embedding_cache().lookup(items, self._frozen_backbone)

    def head_forward(self, backbone_embeddings: Tensor) -> Tensor:
        """Head, then L2 normalisation: `n_items x d_in -> n_items x d`.

        Use with precomputed `embed_backbone` output for fast head training.
        """
        x = backbone_embeddings
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[-1] != self.input_dim:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise DataError(
                f"'backbone_embeddings' should be a n_items x {self.input_dim} tensor but got "
                f"{got}; pass the output of embed_backbone(texts)."
            )
        out = self.head(x)
        return F.normalize(out, dim=-1) if self.normalize else out

    def forward(self, texts: Sequence[str]) -> Tensor:
        """Embeddings of `texts`: `n_items x d` float32 (`d = output_dim`)."""
        return self.head_forward(self.embed_backbone(texts))

    def train(self, mode: bool = True) -> SentenceEncoder:
        """As `nn.Module.train`, but a frozen backbone always stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def clear_cache(self) -> None:
        """Forget the cached backbone embeddings (of every encoder sharing the cache)."""
        self._embedding_cache().clear()

    def cache_info(self) -> dict[str, int]:
        """Counters of the cache in use (shared ones count for all its encoders):
        tuple_hits, tuple_misses, compute_calls, texts_encoded, cached_texts."""
        return self._embedding_cache().info()

    def _embedding_cache(self) -> EmbeddingCache:
        """The shared cache of this backbone, device and dtype, or the private one."""
        key = (str(self._backbone_path), str(self._device()), str(self._dtype()))
        if self._private_cache is None:
            return shared_cache(key)
        if key != self._private_key:
            self._private_cache.clear()
            self._private_key = key
        return self._private_cache

    def _frozen_backbone(self, texts: tuple[str, ...]) -> Tensor:
        """`_run_backbone`, through the disk cache (`disk_cache.py`) when on the CPU with the
        bundled or recorded backbone weights (not after `load_state_dict` replaced them)."""
        if self._private_cache is not None or self._device().type != "cpu":
            return self._run_backbone(texts)
        namespace = (backbone_fingerprint(self._backbone_path), type(self.backbone).__name__,
                     str(self.batch_size), str(self._dtype()))
        return disk_cached(namespace, texts, self.input_dim, self._run_backbone)

    def _run_backbone(self, texts: tuple[str, ...]) -> Tensor:
        """One backbone pass over `texts` in length-sorted batches: `n_items x d_in`."""
        if isinstance(self.backbone, FixedBackbone):
            return self.backbone.encode(texts).to(self._device(), self._dtype())
        order = sorted(range(len(texts)), key=lambda index: -len(texts[index]))
        device = self._device()
        chunks = []
        for start in range(0, len(order), self.batch_size):
            batch = [texts[index] for index in order[start : start + self.batch_size]]
            features = _preprocess(self.backbone, batch)
            features = {
                key: value.to(device) if isinstance(value, Tensor) else value
                for key, value in features.items()
            }
            chunks.append(self.backbone(features)["sentence_embedding"])
        sorted_embeddings = torch.cat(chunks).float()
        inverse = torch.empty(len(order), dtype=torch.long)
        inverse[torch.tensor(order)] = torch.arange(len(order))
        return sorted_embeddings[inverse.to(sorted_embeddings.device)]

    def _set_trainable(self, finetune_layers: int) -> frozenset[str]:
        """Freeze the backbone, then unfreeze per `finetune_layers`; trainable names."""
        for parameter in self.backbone.parameters():
            parameter.requires_grad_(False)
        if finetune_layers == 0:
            return frozenset()
        if isinstance(self.backbone, FixedBackbone):
            raise ConfigError(
                f"backbone {self._backbone_argument!r} is a fixed encoder outside torch "
                f"({type(self.backbone).__name__}); it cannot be fine-tuned: use "
                f"finetune_layers=0 (a head still trains on its embeddings) or a "
                "sentence-transformers backbone (python -m deepalign.encoders list)."
            )
        if finetune_layers == -1:
            modules: list[nn.Module] = [self.backbone]
        else:
            layers = transformer_layers(self.backbone)
            if finetune_layers > len(layers):
                raise ConfigError(
                    f"'finetune_layers' should be at most the backbone's {len(layers)} "
                    f"transformer blocks (or -1 for all parameters) but got {finetune_layers}."
                )
            after_transformer = list(self.backbone.children())[1:]
            modules = list(layers[len(layers) - finetune_layers :]) + after_transformer
        for module in modules:
            for parameter in module.parameters():
                parameter.requires_grad_(True)
        return frozenset(
            name for name, parameter in self.backbone.named_parameters() if parameter.requires_grad
        )

    def _device(self) -> torch.device:
        return _first_tensor(self.backbone).device

    def _dtype(self) -> torch.dtype:
        return _first_tensor(self.backbone).dtype


def _first_tensor(backbone: nn.Module) -> Tensor:
    """A parameter of `backbone` (or, for a fixed backbone, its device/dtype anchor buffer)."""
    for tensor in backbone.parameters():
        return tensor
    return next(backbone.buffers())


def _preprocess(backbone: nn.Module, texts: list[str]) -> dict[str, Any]:
    """Tokenise with the backbone's own preprocessing (`preprocess` in sentence-transformers
    >= 5, `tokenize` before)."""
    if hasattr(backbone, "preprocess"):
        return backbone.preprocess(texts)
    return backbone.tokenize(texts)


def _drop_frozen_backbone(
    module: SentenceEncoder, state_dict: dict[str, Tensor], prefix: str, local_metadata: dict
) -> None:
    """state_dict post-hook: keep only trainable backbone parameters."""
    backbone_prefix = prefix + "backbone."
    for key in [key for key in state_dict if key.startswith(backbone_prefix)]:
        if key[len(backbone_prefix) :] not in module._trainable_backbone:
            del state_dict[key]


def _fill_frozen_backbone(
    module: SentenceEncoder,
    state_dict: dict[str, Tensor],
    prefix: str,
    local_metadata: dict,
    strict: bool,
    missing_keys: list[str],
    unexpected_keys: list[str],
    error_msgs: list[str],
) -> None:
    """load_state_dict pre-hook: frozen backbone entries absent from the dict keep their
    current values; if the dict brings frozen backbone weights, the encoder stops sharing
    its embedding cache."""
    backbone_prefix = prefix + "backbone."
    if any(
        key.startswith(backbone_prefix)
        and key[len(backbone_prefix) :] not in module._trainable_backbone
        for key in state_dict
    ):
        module._private_cache = EmbeddingCache()
        module._private_key = None
    backbone_state = module.backbone.state_dict(keep_vars=True)
    for name, value in backbone_state.items():
        key = backbone_prefix + name
        if key not in state_dict and name not in module._trainable_backbone:
            state_dict[key] = value


def _check_int(name: str, value: Any, minimum: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"'{name}' should be an int but got {type(value).__name__} {value!r}.")
    if minimum is not None and value < minimum:
        raise ConfigError(f"'{name}' should be >= {minimum} but got {value}.")
