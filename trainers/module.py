"""`AlignmentModule`: a thin LightningModule = encoder + alignment loss (+ local regulariser).

The model logic lives in plain modules (`deepalign.encoders`, `deepalign.alignment`); this
class wires them to Lightning: one optimisation step per batch of fit items, alignment
measures per split at validation, and the logs.

Logged scalars (TensorBoard tags):

- ``loss/total``, ``loss/alignment``, ``loss/local`` (training, per step) and
  ``loss/val_alignment`` (the alignment loss on the validation pairs, per epoch);
- ``val/spearman`` every epoch (the early-stopping and checkpoint monitor);
- ``{split}/{measure}`` for split in fit, val, train, heldout, cross and measure in
  spearman, kendall_tau_a, pearson, cka, every ``measure_every_n_epochs`` epochs (the
  pretrained encoder's values are logged at step 0 by `AlignmentTensorBoard`), with
  ``drift/all`` and ``drift/unobserved`` (RMS change of the cosine similarities from the
  pretrained encoder's, over all pairs / pairs without a human judgment).
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torch.nn import functional as F

from deepalign.alignment import (
    AlignmentLoss,
    LocalSimilarityRegularizer,
    SoftSpearmanLoss,
    cosine_similarity_matrix,
)
from deepalign.encoders import SentenceEncoder
from deepalign.errors import ConfigError, DataError
from trainers.evaluation import measure_splits, similarity_drift
from trainers.splits import AlignmentData

#: Constructor arguments of the default encoder (the CLI records them in config.yaml).
DEFAULT_ENCODER: dict[str, Any] = {"head": "linear"}
#: Constructor arguments of the default alignment loss (`SoftSpearmanLoss`).
DEFAULT_LOSS: dict[str, Any] = {"regularization_strength": 0.1}


class AlignmentModule(LightningModule):
    """Train an encoder so its cosine similarities match human similarity judgments.

    Needs a datamodule with an ``alignment_data`` attribute (`AlignmentDataModule`). With a
    frozen `SentenceEncoder` the backbone embeddings of every item are computed once in
    `setup`, and training runs the head only.

    Args:
        encoder: any deepalign encoder (``forward(texts) -> n_items x d``); None =
            ``SentenceEncoder(**DEFAULT_ENCODER)``.
        loss: alignment loss on the fit pairs; None = ``SoftSpearmanLoss(**DEFAULT_LOSS)``.
        local_weight: weight of `LocalSimilarityRegularizer` (squared drift of the cosine
            similarities of the batch items from the pretrained encoder's); 0 = off.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW decoupled weight decay.
        input_dropout: dropout on the frozen backbone embeddings while training (a cheap
            augmentation against memorising items); ignored when the backbone is fine-tuned.
        measure_every_n_epochs: log every measure on every split this often (``val/spearman``
            is logged every epoch regardless).
    """

    def __init__(
        self,
        encoder: nn.Module | None = None,
        loss: AlignmentLoss | None = None,
        local_weight: float = 3.0,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        input_dropout: float = 0.2,
        measure_every_n_epochs: int = 10,
    ) -> None:
        super().__init__()
        for name, value in (("local_weight", local_weight), ("weight_decay", weight_decay)):
            if not value >= 0.0:
                raise ConfigError(f"model.{name}: expected a number >= 0, got {value}. "
                                  "Fix: 0 turns it off.")
        if not learning_rate > 0.0:
            raise ConfigError(f"model.learning_rate: expected a number > 0, got {learning_rate}."
                              " Fix: e.g. 1e-3.")
        if not 0.0 <= input_dropout < 1.0:
            raise ConfigError(f"model.input_dropout: expected a number in [0, 1), got "
                              f"{input_dropout}. Fix: e.g. 0.2, or 0 for none.")
        if measure_every_n_epochs < 1:
            raise ConfigError(f"model.measure_every_n_epochs: expected an int >= 1, got "
                              f"{measure_every_n_epochs}. Fix: e.g. 10.")
        self.save_hyperparameters(ignore=["encoder", "loss"], logger=False)
        self.encoder = SentenceEncoder(**DEFAULT_ENCODER) if encoder is None else encoder
        self.loss = SoftSpearmanLoss(**DEFAULT_LOSS) if loss is None else loss
        self.local_weight = float(local_weight)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.input_dropout = float(input_dropout)
        self.measure_every_n_epochs = int(measure_every_n_epochs)
        self.data: AlignmentData | None = None
        self.initial_measures: dict[str, dict[str, float]] = {}
        self.initial_state: dict[str, Tensor] = {}
        self._backbone_table: Tensor | None = None
        self._reference: Tensor | None = None
        self._problems: dict[str, tuple[Tensor, Tensor, Tensor, Any]] = {}

    # ---------------------------------------------------------------- setup and embedding
    def setup(self, stage: str) -> None:
        """Take the data from the datamodule; cache backbone embeddings; record the
        pretrained encoder's embeddings (the regulariser's reference), weights
        (``initial_state``) and alignment (``initial_measures``).

        Runs before a checkpoint is restored, so on resume these still describe the
        untrained encoder.
        """
        datamodule = getattr(self.trainer, "datamodule", None)
        data = getattr(datamodule, "alignment_data", None)
        if not isinstance(data, AlignmentData):
            raise ConfigError(
                "AlignmentModule needs a datamodule with `alignment_data` (got "
                f"{type(datamodule).__name__}). Fix: fit with trainers.AlignmentDataModule."
            )
        if self.data is data:
            return
        self.data = data
        self._problems = {}
        frozen = isinstance(self.encoder, SentenceEncoder) and self.encoder.frozen
        self._backbone_table = self.encoder.embed_backbone(data.texts) if frozen else None
        self._reference = self.embed_all().detach()
        self.initial_state = {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}
        self.initial_measures = measure_splits(
            cosine_similarity_matrix(self._reference), data
        )

    @property
    def reference_embeddings(self) -> Tensor | None:
        """The untrained encoder's embeddings of every item (``n_items x d``), from `setup`."""
        return self._reference

    def embed(self, indices: Tensor) -> Tensor:
        """Embeddings of the items at ``indices`` (long ``n_items``): ``n_items x d``.

        Input dropout applies in training mode on the frozen-backbone path only.
        """
        data = self._require_data()
        if self._backbone_table is not None:
            table = self._backbone_table.to(self.device)
            inputs = table[indices.to(self.device)]
            if self.training and self.input_dropout > 0.0:
                inputs = F.dropout(inputs, p=self.input_dropout)
            return self.encoder.head_forward(inputs)
        return self.encoder([data.texts[i] for i in indices.tolist()])

    def embed_all(self) -> Tensor:
        """Embeddings of every item, evaluation mode, no grad: ``n_items x d``."""
        data = self._require_data()
        was_training = self.training
        self.eval()
        with torch.no_grad():
            embeddings = self.embed(torch.arange(data.n_items))
        self.train(was_training)
        return embeddings

    def model_similarity(self) -> Tensor:
        """Cosine similarity of every pair of items now: ``n_items x n_items``."""
        return cosine_similarity_matrix(self.embed_all())

    def measure(self, spearman_only: bool = False) -> dict[str, dict[str, float]]:
        """Alignment of the current encoder on every split (see `measure_splits`)."""
        return measure_splits(self.model_similarity(), self._require_data(),
                              spearman_only=spearman_only)

    def drift(self, model_sim: Tensor | None = None) -> dict[str, float]:
        """RMS change of the cosine similarities from the pretrained encoder's
        (`similarity_drift`): ``{"all", "unobserved"}``."""
        data = self._require_data()
        if self._reference is None:
            raise ConfigError("AlignmentModule.drift needs setup() to have run.")
        model_sim = self.model_similarity() if model_sim is None else model_sim
        reference_sim = cosine_similarity_matrix(self._reference)
        observed = data.masks["train"] | data.masks["heldout"] | data.masks["cross"]
        return similarity_drift(model_sim, reference_sim, observed)

    # ------------------------------------------------------------------------ training
    def loss_terms(self, indices: Tensor, split: str = "fit") -> dict[str, Tensor]:
        """Loss terms on the ``split`` pairs among ``indices``: {"alignment", ["local"]}."""
        embeddings = self.embed(indices)
        human, mask, regularizer = self._pair_problem(indices.cpu(), split)
        human, mask = human.to(embeddings.device), mask.to(embeddings.device)
        terms = {"alignment": self.loss(embeddings, human, mask)}
        if regularizer is not None:
            terms["local"] = regularizer.to(embeddings.device)(embeddings, human, mask)
        return terms

    def _pair_problem(
        self, indices: Tensor, split: str
    ) -> tuple[Tensor, Tensor, LocalSimilarityRegularizer | None]:
        """Human sub-matrix, pair mask and regulariser of ``indices``; the last one per
        split is kept, so full-batch training slices the matrices once."""
        cached = self._problems.get(split)
        if cached is not None and torch.equal(cached[0], indices):
            return cached[1], cached[2], cached[3]
        data = self._require_data()
        human = data.human_sim[indices][:, indices]
        mask = data.masks[split][indices][:, indices]
        regularizer = None
        if self.local_weight > 0.0 and self._reference is not None:
            reference = self._reference[indices.to(self._reference.device)]
            regularizer = LocalSimilarityRegularizer(reference, self.local_weight)
        self._problems[split] = (indices.clone(), human, mask, regularizer)
        return human, mask, regularizer

    def training_step(self, batch: Tensor, batch_idx: int) -> Tensor | None:
        """One step on the fit pairs among the batch items (``batch``: long ``n_items``)."""
        _, fit_pairs, _ = self._pair_problem(batch.cpu(), "fit")
        if int(torch.triu(fit_pairs, diagonal=1).sum()) < max(3, self.loss.min_pairs):
            # too few judged pairs among these items: skip the batch. Under DDP every rank
            # must run backward on every step, so this rank contributes a zero gradient
            # instead (the step then averages the other ranks' gradients with zeros).
            if self.trainer.world_size > 1:
                trainable = [p for p in self.parameters() if p.requires_grad]
                return torch.stack([p.sum() for p in trainable]).sum() * 0.0
            return None
        terms = self.loss_terms(batch)
        total = sum(terms.values())
        self.log("loss/total", total, prog_bar=True, batch_size=len(batch))
        for name, value in terms.items():
            self.log(f"loss/{name}", value, batch_size=len(batch))
        return total

    def validation_step(self, batch: Tensor, batch_idx: int) -> None:
        """Measure alignment (``batch``: every item index, one batch)."""
        data = self._require_data()
        model_sim = self.model_similarity()
        epoch = self.current_epoch + 1
        full = epoch % self.measure_every_n_epochs == 0 or (
            self.trainer.max_epochs is not None and epoch >= self.trainer.max_epochs
        )
        measures = measure_splits(model_sim, data, spearman_only=not full)
        if full:
            measures["drift"] = self.drift(model_sim)
        else:
            measures = {"val": measures["val"]}
        # x-axis of these points: optimizer steps applied so far (0 = pretrained, logged by
        # AlignmentTensorBoard), so curves start where the untrained encoder stood.
        self.log("step", float(self.trainer.global_step), batch_size=1)
        val_indices = data.item_masks["train"].nonzero().squeeze(1)
        try:
            with torch.no_grad():
                terms = self.loss_terms(val_indices.to(self.device), split="val")
            self.log("loss/val_alignment", terms["alignment"], batch_size=1)
        except DataError:
            pass  # e.g. no observed triples among the validation pairs: no val loss curve
        for split, values in measures.items():
            for name, value in values.items():
                self.log(f"{split}/{name}", value, prog_bar=(split, name) == ("val", "spearman"),
                         batch_size=1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        parameters = [p for p in self.parameters() if p.requires_grad]
        if not parameters:
            raise ConfigError(
                "model.encoder: has no trainable parameters (e.g. head='identity' with a "
                "frozen backbone). Fix: pick head 'lowrank', 'linear' or 'mlp', or set "
                "finetune_layers."
            )
        return torch.optim.AdamW(parameters, lr=self.learning_rate, weight_decay=self.weight_decay)

    def _require_data(self) -> AlignmentData:
        if self.data is None:
            raise ConfigError("AlignmentModule has no data yet; fit it with a Trainer and "
                              "trainers.AlignmentDataModule (setup() attaches the data).")
        return self.data
