"""`ValueLearningCallback`: watch value learning move with alignment while an encoder trains.

Every `every_n_epochs` epochs (and once before training, for the pretrained encoder) the
callback turns the *current* encoder into a kernel over the actions of a value dataset
(cosine similarities of its embeddings, unit diagonal), plays a small batch of seeded GP
bandit runs on the batched exact engine (`deepalign.studies.runner.evaluate_kernel`), and
logs the mean of every metric to TensorBoard beside the alignment curves, at the same global
step:

- ``value/{value}/{metric}`` for metric in mean_reward, bad_actions, unique_actions,
  non_optimal_actions, iterations_to_convergence, cumulative_regret,
  generalization_spearman, greedy_value, greedy_is_bad, bad_in_top5;
- ``value/{value}/kernel_alignment_{train,heldout}``: Spearman of that kernel with the value
  dataset's human similarity (where it has one).

The bandit's held-out items follow the training run's item split (the datamodule's
``split_seed``), so generalization is scored on items the encoder never trained on when the
value dataset shares item ids with the training set (spa-verb / spa-verb-act). The same
seeds are used at every evaluation (common random numbers), so changes come from the
encoder, not from the draw.

Register it with ``--trainer.callbacks+=trainers.value_callback.ValueLearningCallback``
(options ``--trainer.callbacks.every_n_epochs=5`` ...), or as an option group in
`deepalign.train`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from lightning.pytorch import Callback, LightningModule, Trainer

from deepalign.errors import ConfigError
from deepalign.studies.config import ENGINE_AGENTS
from deepalign.studies.measure import kernel_alignment
from deepalign.studies.runner import evaluate_kernel
from deepalign.studies.sources import StudySources
from trainers.callbacks import tensorboard_logger

__all__ = ["ValueLearningCallback"]


class ValueLearningCallback(Callback):
    """Log a batched value-learning evaluation of the current encoder every few epochs.

    Args:
        dataset: value dataset whose items are the bandit's actions.
        values: value columns to learn (one evaluation each).
        agent: engine agent, "gp-ts", "gp-ucb" or "safe-gp".
        n_runs: seeded runs per evaluation (seeds 0..n_runs-1, the same every time).
        horizon: steps per run.
        every_n_epochs: evaluate after every this many epochs (0 = only before and after).
        heldout_fraction: share of held-out items (used when the datamodule has none).
        device: torch device of the engine.
    """

    def __init__(
        self,
        dataset: str = "spa-verb-act",
        values: Sequence[str] = ("act_evaluation",),
        agent: str = "gp-ts",
        n_runs: int = 32,
        horizon: int = 50,
        every_n_epochs: int = 10,
        heldout_fraction: float = 0.3,
        device: str = "cpu",
    ) -> None:
        super().__init__()
        if agent not in ENGINE_AGENTS:
            raise ConfigError(f"value_learning.agent: expected one of {ENGINE_AGENTS}, got "
                              f"{agent!r}. Fix: e.g. gp-ts.")
        for name, value, minimum in (("n_runs", n_runs, 1), ("horizon", horizon, 1),
                                     ("every_n_epochs", every_n_epochs, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"value_learning.{name}: expected an int >= {minimum}, got "
                                  f"{value!r}.")
        if not values:
            raise ConfigError("value_learning.values: expected at least one value name.")
        self.dataset = dataset
        self.values = tuple(values)
        self.agent = agent
        self.n_runs = n_runs
        self.horizon = horizon
        self.every_n_epochs = every_n_epochs
        self.heldout_fraction = heldout_fraction
        self.device = device
        self.history: list[tuple[int, dict[str, float]]] = []
        self._sources: StudySources | None = None

    def _split_seed(self, trainer: Trainer) -> int:
        data = getattr(getattr(trainer, "datamodule", None), "alignment_data", None)
        seed = getattr(data, "split_seed", None)
        if seed is None:
            seed = getattr(getattr(trainer, "datamodule", None), "split_seed", None)
        return int(seed or 0)

    def _fraction(self, trainer: Trainer) -> float:
        data = getattr(getattr(trainer, "datamodule", None), "alignment_data", None)
        return float(getattr(data, "heldout_fraction", None) or self.heldout_fraction)

    def evaluate(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float]:
        """Metric means of the current encoder (`pl_module.encoder`), as logged."""
        if self._sources is None:
            self._sources = StudySources(self._split_seed(trainer), self._fraction(trainer),
                                         None)
        sources = self._sources
        encoder = getattr(pl_module, "encoder", None)
        if encoder is None:
            raise ConfigError("ValueLearningCallback needs a LightningModule with an "
                              "'encoder' attribute (trainers.AlignmentModule has one).")
        logged: dict[str, float] = {}
        for value in self.values:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                dataset = sources.dataset(self.dataset, value)
                env = sources.bandit((self.dataset, "callback"), dataset, value)
                texts = tuple(dataset.items.texts)
                with torch.no_grad():
                    matrix = sources.encoder_matrix(encoder, texts)
            metrics = evaluate_kernel(env, matrix, self.agent, self.horizon,
                                      tuple(range(self.n_runs)), self.device)
            for name, runs in metrics.items():
                logged[f"value/{value}/{name}"] = float(runs.mean())
            if dataset.similarity is not None:
                similarity = dataset.similarity
                alignment = kernel_alignment(matrix, similarity.matrix, similarity.mask,
                                             env.heldout)
                for split in ("train", "heldout"):
                    if not math.isnan(alignment[split]):
                        logged[f"value/{value}/kernel_alignment_{split}"] = alignment[split]
        return logged

    def _log(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        logged = self.evaluate(trainer, pl_module)
        self.history.append((trainer.global_step, logged))
        logger = tensorboard_logger(trainer)
        if logger is not None:
            logger.log_metrics(logged, step=trainer.global_step)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.global_step == 0:
            self._log(trainer, pl_module)  # the pretrained encoder, at step 0

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or self.every_n_epochs < 1:
            return
        if (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self._log(trainer, pl_module)
