"""TensorBoard views of alignment training: the pretrained encoder's alignment at step 0,
model-vs-human similarity figures on held-out items, the embedding projector, hparams.

Everything here writes through the trainer's `TensorBoardLogger`; with another logger (or
none) the callback does nothing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from torch import Tensor

from deepalign.alignment import cosine_similarity_matrix
from deepalign.errors import ConfigError
from trainers.figures import similarity_figure
from trainers.module import AlignmentModule
from trainers.splits import AlignmentData


def tensorboard_logger(trainer: Trainer) -> TensorBoardLogger | None:
    """The trainer's first `TensorBoardLogger`, or None."""
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger
    return None


def flat_measures(measures: dict[str, dict[str, float]], suffix: str = "") -> dict[str, float]:
    """``{split: {measure: v}}`` -> ``{"split/measure<suffix>": v}`` without NaNs."""
    return {
        f"{split}/{name}{suffix}": value
        for split, values in measures.items()
        for name, value in values.items()
        if not math.isnan(value)
    }


def log_heldout_figure(
    logger: TensorBoardLogger, data: AlignmentData, model_sim: Tensor, tag: str, step: int,
    max_items: int,
) -> None:
    """Add the held-out model-vs-human figure under ``similarity/heldout`` at ``step``
    (one tag for the whole run, so TensorBoard's step slider shows it change); ``tag``
    (pretrained, training, trained) goes in the title."""
    items = data.item_masks["heldout"].nonzero().squeeze(1)
    mask = data.masks["heldout"][items][:, items]
    figure = similarity_figure(
        model_sim[items][:, items], data.human_sim[items][:, items], mask,
        title=f"{data.dataset_name}: held-out items, {tag} (step {step})", max_items=max_items,
    )
    logger.experiment.add_figure("similarity/heldout", figure, global_step=step)


def log_embeddings(
    logger: TensorBoardLogger, data: AlignmentData, embeddings: Tensor, tag: str, step: int
) -> None:
    """Add ``embeddings`` (``n_items x d``) to the projector with text and split labels."""
    split = ["heldout" if h else ("val" if v else "fit") for h, v in
             zip(data.item_masks["heldout"].tolist(), data.item_masks["val"].tolist())]
    metadata = [[" ".join(text.split()), name] for text, name in zip(data.texts, split)]
    logger.experiment.add_embedding(
        embeddings.detach().cpu(), metadata=metadata, metadata_header=["text", "split"],
        tag=tag, global_step=step,
    )


HPARAMS_RUN = "hparams"


def _hparam_value(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def log_hparams_session(logger: TensorBoardLogger, hparams: dict[str, Any],
                        metrics: dict[str, float], step: int) -> None:
    """The HPARAMS tab's session for this run: the hyperparameters and the trained
    (best-checkpoint) value of each measure, written to the sub-run ``hparams/``. Its
    metric tags are the training curves' own (``heldout/spearman``, ...), so the scalars page
    gets no chart of its own, only the final point on each curve."""
    from torch.utils.tensorboard import SummaryWriter

    flat = {key: _hparam_value(value) for key, value in hparams.items()}
    with SummaryWriter(log_dir=str(Path(logger.log_dir) / HPARAMS_RUN)) as writer:
        writer.add_hparams(flat, metrics, run_name=".", global_step=step)


def log_run_end(
    trainer: Trainer, module: AlignmentModule, after: dict[str, dict[str, float]],
    hparams: dict[str, Any], figure_items: int = 300, projector: bool = True,
) -> None:
    """Final TensorBoard records: the hparams session with the trained measures, the
    trained held-out figure and the trained embeddings (best checkpoint's weights, already
    loaded)."""
    logger = tensorboard_logger(trainer)
    if logger is None or module.data is None:
        return
    step = trainer.global_step
    metrics = {key: value for key, value in flat_measures(after).items()
               if key.split("/")[0] in ("train", "val", "heldout", "cross")}
    logger.log_hyperparams(hparams)  # hparams.yaml; no metrics, so no scalars from Lightning
    log_hparams_session(logger, hparams, metrics, step)
    embeddings = module.embed_all()
    log_heldout_figure(logger, module.data, module.model_similarity(), "trained", step,
                       figure_items)
    if projector:
        log_embeddings(logger, module.data, embeddings, "trained", step)
    logger.experiment.flush()


class AlignmentTensorBoard(Callback):
    """Step-0 pretrained alignment, periodic held-out figures, pretrained projector.

    Args:
        figure_every_n_epochs: add the held-out model-vs-human figure this often (0 = only
            at the start and the end).
        figure_items: most held-out items drawn in the matrices of the figure.
        projector: add the pretrained embeddings (step 0) to the embedding projector (the
            trained ones are added at the end by `RunArtifacts`).
    """

    def __init__(
        self, figure_every_n_epochs: int = 25, figure_items: int = 300, projector: bool = True
    ) -> None:
        super().__init__()
        if figure_every_n_epochs < 0 or figure_items < 2:
            raise ConfigError(
                f"tensorboard: expected figure_every_n_epochs >= 0 and figure_items >= 2, got "
                f"{figure_every_n_epochs} and {figure_items}. Fix: e.g. 25 and 300."
            )
        self.figure_every_n_epochs = figure_every_n_epochs
        self.figure_items = figure_items
        self.projector = projector

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        logger = tensorboard_logger(trainer)
        if logger is None or not isinstance(pl_module, AlignmentModule) or pl_module.data is None:
            return
        if trainer.ckpt_path is not None or not trainer.is_global_zero:
            return  # resumed: step 0 was logged by the first run
        logger.log_metrics(flat_measures(pl_module.initial_logged()), step=0)
        reference = pl_module.reference_embeddings
        if reference is None:
            return
        log_heldout_figure(logger, pl_module.data, cosine_similarity_matrix(reference),
                           "pretrained", 0, self.figure_items)
        if self.projector:
            log_embeddings(logger, pl_module.data, reference, "pretrained", 0)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or self.figure_every_n_epochs < 1:
            return
        if (trainer.current_epoch + 1) % self.figure_every_n_epochs != 0:
            return
        logger = tensorboard_logger(trainer)
        if logger is None or not isinstance(pl_module, AlignmentModule) or pl_module.data is None:
            return
        log_heldout_figure(logger, pl_module.data, pl_module.model_similarity(),
                           "training", trainer.global_step, self.figure_items)
