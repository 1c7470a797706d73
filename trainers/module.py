"""`AlignmentModule`: a thin LightningModule = encoder + alignment loss (+ local regulariser).

The model logic lives in plain modules (`deepalign.encoders`, `deepalign.alignment`); this
class wires them to Lightning: one optimisation step per batch of fit items, alignment
measures per split at validation, and the logs.

Logged scalars (TensorBoard tags):

- ``loss/total``, ``loss/alignment``, ``loss/local`` (training, per step) and
  ``loss/val_alignment`` (the alignment loss on the validation pairs, per epoch);
- ``val/spearman`` every epoch (the early-stopping and checkpoint monitor);
- ``loss/preserve`` (training, per step): the preservation term over the unlabeled pool;
- ``val/spearman`` and ``val_new/spearman`` every epoch (the early-stopping and checkpoint
  monitors to choose from: val x train pairs, or new x new pairs of validation items);
- ``{split}/{measure}`` for split in fit, val, val_new, train, heldout, cross and measure in
  spearman, kendall_tau_a, pearson, cka, every ``measure_every_n_epochs`` epochs (the
  pretrained encoder's values are logged at step 0 by `AlignmentTensorBoard`), with
  ``drift/all`` and ``drift/unobserved`` (RMS change of the cosine similarities from the
  pretrained encoder's, over all pairs / pairs without a human judgment);
- ``preserve/{set}/spearman`` (the preservation suite: bundled similarity sets not trained
  on) and ``{dataset}/{split}/spearman`` of every further training set, as often.
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
from deepalign.alignment.preservation import PreservationSuite
from deepalign.encoders import SentenceEncoder
from deepalign.errors import ConfigError, DataError
from trainers.evaluation import measure_splits, similarity_drift
from trainers.splits import AlignmentData

#: Splits measured every epoch (the monitors early stopping and checkpoints can use).
EPOCH_SPLITS = ("val", "val_new")

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
            similarities of the batch items from the pretrained encoder's); 0 = off (the
            default: it holds the training items back from the human judgments, and the
            pool term below preserves better; docs/generalization.md).
        preservation_weight: weight of the same term over the datamodule's unlabeled
            preservation pool (``pool_texts``: texts of other bundled datasets, never a
            training text); 0 = off.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW decoupled weight decay.
        input_dropout: dropout on the frozen backbone embeddings of the training items while
            training (a cheap augmentation against memorising items; the pool is not
            dropped); ignored when the backbone is fine-tuned.
        measure_every_n_epochs: log every measure on every split this often (``val/spearman``
            is logged every epoch regardless).
    """

    def __init__(
        self,
        encoder: nn.Module | None = None,
        loss: AlignmentLoss | None = None,
        local_weight: float = 0.0,
        preservation_weight: float = 30.0,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        input_dropout: float = 0.5,
        measure_every_n_epochs: int = 10,
    ) -> None:
        super().__init__()
        for name, value in (("local_weight", local_weight), ("weight_decay", weight_decay),
                            ("preservation_weight", preservation_weight)):
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
        self.preservation_weight = float(preservation_weight)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.input_dropout = float(input_dropout)
        self.measure_every_n_epochs = int(measure_every_n_epochs)
        self.data: AlignmentData | None = None
        self.extra_data: tuple[tuple[AlignmentData, float], ...] = ()
        self.suite = PreservationSuite()
        self.initial_measures: dict[str, dict[str, float]] = {}
        self.initial_extra: dict[str, dict[str, dict[str, float]]] = {}
        self.initial_preservation: dict[str, float] = {}
        self.initial_state: dict[str, Tensor] = {}
        self._backbone_table: Tensor | None = None
        self._reference: Tensor | None = None
        self._extra_tables: list[Tensor | None] = []
        self._suite_tables: list[Tensor | None] = []
        self._extra_references: list[Tensor] = []
        self._pool_texts: tuple[str, ...] = ()
        self._pool_table: Tensor | None = None
        self._pool_regularizer: LocalSimilarityRegularizer | None = None
        self._problems: dict[tuple[int, str], tuple[Tensor, Tensor, Tensor, Any]] = {}

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
        self.extra_data = tuple(getattr(datamodule, "extra_data", ()) or ())
        self.suite = getattr(datamodule, "suite", None) or PreservationSuite()
        self._problems = {}
        self._backbone_table = self._table(data.texts)
        self._suite_tables = [self._table(s.texts) for s in self.suite.sets]
        self._reference = self.embed_all().detach()
        self._extra_tables = [self._table(extra.texts) for extra, _ in self.extra_data]
        self._extra_references = [self.embed_all(k + 1).detach()
                                  for k in range(len(self.extra_data))]
        self._pool_texts = tuple(getattr(datamodule, "pool_texts", ()) or ())
        self._pool_table, self._pool_regularizer = None, None
        if self.preservation_weight > 0.0 and len(self._pool_texts) >= 2:
            self._pool_table = self._table(self._pool_texts)
            self._pool_regularizer = LocalSimilarityRegularizer(
                self._embed_texts(self._pool_texts, self._pool_table), self.preservation_weight)
        self.initial_state = {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}
        self.initial_measures = measure_splits(
            cosine_similarity_matrix(self._reference), data
        )
        self.initial_extra = {
            extra.dataset_name: measure_splits(cosine_similarity_matrix(reference), extra)
            for (extra, _), reference in zip(self.extra_data, self._extra_references)
        }
        self.initial_preservation = self.measure_preservation()

    def _table(self, texts: tuple[str, ...]) -> Tensor | None:
        """Cached backbone embeddings of ``texts`` for a frozen `SentenceEncoder`, else None
        (the encoder then reads the texts on every call)."""
        frozen = isinstance(self.encoder, SentenceEncoder) and self.encoder.frozen
        return self.encoder.embed_backbone(texts) if frozen else None

    def _encode(self, texts: tuple[str, ...], table: Tensor | None) -> Tensor:
        """Embeddings of ``texts`` in the current mode (``table``: their cached backbone
        embeddings from `_table`, or None)."""
        if table is not None:
            return self.encoder.head_forward(table.to(self.device))
        return self.encoder(list(texts))

    def _embed_texts(self, texts: tuple[str, ...], table: Tensor | None) -> Tensor:
        """`_encode` in evaluation mode, no grad."""
        was_training = self.training
        self.eval()
        with torch.no_grad():
            out = self._encode(texts, table)
        self.train(was_training)
        return out

    def initial_logged(self) -> dict[str, dict[str, float]]:
        """The pretrained encoder's measures under their TensorBoard tag prefixes: every
        split, ``preserve/{set}`` and ``{dataset}/{split}`` (what step 0 logs)."""
        logged = {split: dict(values) for split, values in self.initial_measures.items()}
        for name, value in self.initial_preservation.items():
            logged[f"preserve/{name}"] = {"spearman": value}
        for name, splits in self.initial_extra.items():
            for split, values in splits.items():
                logged[f"{name}/{split}"] = {"spearman": values["spearman"]}
        return logged

    def measure_preservation(self) -> dict[str, float]:
        """Spearman of the current encoder on each set of the preservation suite."""
        return {s.name: s.alignment(self._embed_texts(s.texts, table))
                for s, table in zip(self.suite.sets, self._suite_tables)}

    @property
    def reference_embeddings(self) -> Tensor | None:
        """The untrained encoder's embeddings of every item (``n_items x d``), from `setup`."""
        return self._reference

    def _set(self, which: int) -> tuple[AlignmentData, Tensor | None]:
        """Training set ``which`` (0 = primary, k = ``extra_data[k - 1]``) and its table."""
        if which == 0:
            return self._require_data(), self._backbone_table
        return self.extra_data[which - 1][0], self._extra_tables[which - 1]

    def embed(self, indices: Tensor, which: int = 0) -> Tensor:
        """Embeddings of the items at ``indices`` (long ``n_items``) of training set
        ``which`` (0 = the primary dataset): ``n_items x d``.

        Input dropout applies in training mode on the frozen-backbone path only.
        """
        data, table = self._set(which)
        if table is not None:
            inputs = table.to(self.device)[indices.to(self.device)]
            if self.training and self.input_dropout > 0.0:
                inputs = F.dropout(inputs, p=self.input_dropout)
            return self.encoder.head_forward(inputs)
        return self.encoder([data.texts[i] for i in indices.tolist()])

    def embed_all(self, which: int = 0) -> Tensor:
        """Embeddings of every item of set ``which``, evaluation mode, no grad."""
        data, _ = self._set(which)
        was_training = self.training
        self.eval()
        with torch.no_grad():
            embeddings = self.embed(torch.arange(data.n_items), which)
        self.train(was_training)
        return embeddings

    def model_similarity(self, which: int = 0) -> Tensor:
        """Cosine similarity of every pair of items of set ``which`` now."""
        return cosine_similarity_matrix(self.embed_all(which))

    def measure(self, spearman_only: bool = False) -> dict[str, dict[str, float]]:
        """Alignment of the current encoder on every split (see `measure_splits`)."""
        return measure_splits(self.model_similarity(), self._require_data(),
                              spearman_only=spearman_only)

    def measure_extra(self, spearman_only: bool = False) -> dict[str, dict[str, dict[str, float]]]:
        """``{dataset: {split: {measure: value}}}`` on every further training set."""
        return {extra.dataset_name: measure_splits(self.model_similarity(k + 1), extra,
                                                   spearman_only=spearman_only)
                for k, (extra, _) in enumerate(self.extra_data)}

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
        """Loss terms on the ``split`` pairs among ``indices`` (primary set): {"alignment",
        ["local"]}; on the fit split also every further training set (weighted, added into
        the same two terms) and ["preserve"] (the pool term)."""
        terms = self._set_terms(indices, split, 0)
        if split != "fit":
            return terms
        for k, (extra, weight) in enumerate(self.extra_data):
            extra_terms = self._set_terms(extra.indices("fit"), "fit", k + 1)
            for name, value in extra_terms.items():
                terms[name] = terms.get(name, 0.0) + weight * value
        if self._pool_regularizer is not None:
            embeddings = self._encode(self._pool_texts, self._pool_table)
            terms["preserve"] = self._pool_regularizer.to(embeddings.device).penalty(embeddings)
        return terms

    def _set_terms(self, indices: Tensor, split: str, which: int) -> dict[str, Tensor]:
        embeddings = self.embed(indices, which)
        human, mask, regularizer = self._pair_problem(indices.cpu(), split, which)
        human, mask = human.to(embeddings.device), mask.to(embeddings.device)
        terms = {"alignment": self.loss(embeddings, human, mask)}
        if regularizer is not None:
            terms["local"] = regularizer.to(embeddings.device)(embeddings, human, mask)
        return terms

    def _pair_problem(
        self, indices: Tensor, split: str, which: int = 0
    ) -> tuple[Tensor, Tensor, LocalSimilarityRegularizer | None]:
        """Human sub-matrix, pair mask and regulariser of ``indices`` of set ``which``; the
        last one per (set, split) is kept, so full-batch training slices the matrices once."""
        cached = self._problems.get((which, split))
        if cached is not None and torch.equal(cached[0], indices):
            return cached[1], cached[2], cached[3]
        data, _ = self._set(which)
        human = data.human_sim[indices][:, indices]
        mask = data.masks[split][indices][:, indices]
        regularizer = None
        reference = self._reference if which == 0 else self._extra_references[which - 1]
        if self.local_weight > 0.0 and reference is not None:
            regularizer = LocalSimilarityRegularizer(reference[indices.to(reference.device)],
                                                     self.local_weight)
        self._problems[(which, split)] = (indices.clone(), human, mask, regularizer)
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
        measures = measure_splits(model_sim, data, spearman_only=not full,
                                  **({} if full else {"splits": EPOCH_SPLITS}))
        if full:
            measures["drift"] = self.drift(model_sim)
            for name, value in self.measure_preservation().items():
                measures[f"preserve/{name}"] = {"spearman": value}
            for name, splits in self.measure_extra(spearman_only=True).items():
                for split, values in splits.items():
                    measures[f"{name}/{split}"] = values
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
