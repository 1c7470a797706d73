"""trainers.value_callback: value-learning metrics logged to TensorBoard while training."""

import warnings

import pytest
import torch

from deepalign.studies.encoders import EncoderRun
from deepalign.studies.runner import evaluate_kernel
from deepalign.studies.sources import StudySources
from deepalign.train import main as train_main

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)


def test_callback_logs_value_metrics_beside_alignment(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = train_main([
                "--seed_everything=0", f"--trainer.default_root_dir={tmp_path}",
                "--trainer.enable_progress_bar=false", "--trainer.max_epochs=2",
                "--data.dataset=spa-verb-act", '--data.dataset_options={"values": []}',
                "--tensorboard.projector=false", "--artifacts.projector=false",
                "--trainer.callbacks+=trainers.value_callback.ValueLearningCallback",
                "--trainer.callbacks.every_n_epochs=1", "--trainer.callbacks.n_runs=4",
                "--trainer.callbacks.horizon=12",
            ])
        assert code == 0
        run = EncoderRun.read(tmp_path, "spa-verb-act", 0)
        events = EventAccumulator(str(run.directory))
        events.Reload()
        tags = events.Tags()["scalars"]
        for tag in ("value/act_evaluation/mean_reward", "value/act_evaluation/bad_actions",
                    "value/act_evaluation/generalization_spearman",
                    "value/act_evaluation/kernel_alignment_heldout", "heldout/spearman"):
            assert tag in tags
        reward = events.Scalars("value/act_evaluation/mean_reward")
        assert [event.step for event in reward][0] == 0 and len(reward) == 3

        # step 0 is the pretrained (untrained) encoder, evaluated on the same seeds
        sources = StudySources(run.split_seed, run.heldout_fraction, None)
        dataset = sources.dataset("spa-verb-act", "act_evaluation")
        env = sources.bandit("x", dataset, "act_evaluation")
        matrix = sources.encoder_matrix(run.untrained_encoder(), tuple(dataset.items.texts))
        expected = evaluate_kernel(env, matrix, "gp-ts", 12, range(4))
        assert reward[0].value == pytest.approx(float(expected["mean_reward"].mean()), abs=1e-5)
    finally:
        torch.set_num_threads(threads)
