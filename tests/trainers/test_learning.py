"""Seeded short trainings on real spa-verb data: alignment on the training pairs rises, and
the Lightning module agrees with its plain-module parts."""

import json
import math

import pytest
import torch
from lightning.pytorch import Trainer, seed_everything
from lightning.pytorch.callbacks import ModelCheckpoint

from deepalign.alignment import (
    AlignmentLoss,
    PearsonLoss,
    cosine_similarity_matrix,
    spearman_alignment,
)
from deepalign.encoders import SentenceEncoder
from trainers import AlignmentDataModule, AlignmentModule, RunArtifacts, VerifiedCheckpoint
from trainers.checkpoints import file_digest


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Small matrices: one thread is as fast as two and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _fit(module: AlignmentModule, data_module: AlignmentDataModule, epochs: int) -> None:
    trainer = Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, accelerator="cpu", devices=1)
    trainer.fit(module, datamodule=data_module)


@pytest.fixture(scope="module")
def trained():
    """The default module, 40 full-batch epochs on the first 240 spa-verb verbs."""
    seed_everything(0)
    data_module = AlignmentDataModule(max_items=240, split_seed=0)
    module = AlignmentModule(learning_rate=3e-3, measure_every_n_epochs=1000)
    _fit(module, data_module, epochs=40)
    return module, data_module


def test_training_raises_train_pair_spearman_by_a_clear_margin(trained):
    module, _ = trained
    before, after = module.initial_measures, module.measure()
    assert before["fit"]["spearman"] < 0.35
    # measured: fit 0.16 -> 0.65, train 0.20 -> 0.56
    assert after["fit"]["spearman"] > before["fit"]["spearman"] + 0.35
    assert after["train"]["spearman"] > before["train"]["spearman"] + 0.25
    for split in ("fit", "train"):
        for name in ("kendall_tau_a", "pearson"):
            assert after[split][name] > before[split][name] + 0.15


def test_module_measures_equal_plain_encoder_measures(trained):
    """The module's numbers come from its encoder: recompute them outside Lightning."""
    module, data_module = trained
    data = data_module.alignment_data
    module.eval()
    with torch.no_grad():
        embeddings = module.encoder(list(data.texts))
    model_sim = cosine_similarity_matrix(embeddings)
    measured = module.measure(spearman_only=True)
    for split in ("fit", "val", "heldout", "cross"):
        reference = spearman_alignment(model_sim, data.human_sim, data.masks[split])
        assert math.isclose(measured[split]["spearman"], reference, abs_tol=1e-6)


def test_pretrained_measures_are_the_untrained_encoders(trained):
    module, data_module = trained
    data = data_module.alignment_data
    with torch.no_grad():
        pretrained = SentenceEncoder().eval()(list(data.texts))
    reference = spearman_alignment(cosine_similarity_matrix(pretrained), data.human_sim,
                                   data.masks["heldout"])
    assert math.isclose(module.initial_measures["heldout"]["spearman"], reference,
                        abs_tol=1e-6)


def test_loss_terms_and_minibatches():
    """Each loss term is the plain module's value; a mini-batch run trains too."""
    seed_everything(1)
    data_module = AlignmentDataModule(max_items=150, split_seed=1, batch_items=40)
    module = AlignmentModule(loss=PearsonLoss(), local_weight=5.0, learning_rate=3e-3,
                             input_dropout=0.0, measure_every_n_epochs=1000)
    _fit(module, data_module, epochs=15)
    data = data_module.alignment_data
    fit = data.indices("fit")
    module.eval()
    with torch.no_grad():
        terms = module.loss_terms(fit)
        embeddings = module.embed(fit)
        human, mask = data.human_sim[fit][:, fit], data.masks["fit"][fit][:, fit]
        expected = PearsonLoss()(embeddings, human, mask)
    assert math.isclose(float(terms["alignment"]), float(expected), rel_tol=1e-6)
    reference = module.reference_embeddings[fit]
    drift = cosine_similarity_matrix(embeddings) - cosine_similarity_matrix(reference)
    upper = torch.triu(torch.ones_like(drift, dtype=torch.bool), diagonal=1)
    assert math.isclose(float(terms["local"]), 5.0 * float((drift[upper] ** 2).mean()),
                        rel_tol=1e-5)
    # the preservation term (default weight 30): drift over the unlabeled pool's pairs
    pool = data_module.pool_texts
    assert len(pool) == 1000 and not set(pool) & set(data.texts)
    with torch.no_grad():
        now = cosine_similarity_matrix(module.encoder(list(pool)))
        pretrained = cosine_similarity_matrix(SentenceEncoder()(list(pool)))
    upper = torch.triu(torch.ones_like(now, dtype=torch.bool), diagonal=1)
    assert math.isclose(float(terms["preserve"]),
                        30.0 * float(((now - pretrained)[upper] ** 2).mean()), rel_tol=1e-4)
    assert float(terms["preserve"]) > 0.0
    after = module.measure(spearman_only=True)
    assert after["fit"]["spearman"] > module.initial_measures["fit"]["spearman"] + 0.1


class _AntiAlignmentLoss(AlignmentLoss):
    """Minus the Pearson correlation loss: training makes alignment worse."""

    def compute_loss(self, model_sim, human_sim, mask):
        return -PearsonLoss().compute_loss(model_sim, human_sim, mask)


def test_pretrained_is_kept_when_no_epoch_beats_it(tmp_path):
    """Epoch 0 (the pretrained encoder) is a model-selection candidate."""
    seed_everything(0)
    data_module = AlignmentDataModule(max_items=120, split_seed=0)
    module = AlignmentModule(loss=_AntiAlignmentLoss(), learning_rate=1e-2,
                             measure_every_n_epochs=1000)
    artifacts = RunArtifacts(export=False, projector=False)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val/spearman", mode="max")
    trainer = Trainer(max_epochs=3, logger=False, callbacks=[checkpoint, artifacts],
                      enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, accelerator="cpu", devices=1,
                      default_root_dir=tmp_path)
    trainer.fit(module, datamodule=data_module)
    assert float(checkpoint.best_model_score) < module.initial_measures["val"]["spearman"]
    summary = artifacts.summary
    assert summary["best_epoch"] == 0 and summary["selected"] == "pretrained"
    for split in ("train", "val", "heldout", "cross"):
        assert summary[split]["spearman_after"] == pytest.approx(
            summary[split]["spearman_before"], abs=1e-9)
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written["heldout"] == summary["heldout"]


def test_last_checkpoint_is_the_last_epoch_even_when_it_did_not_improve(tmp_path):
    """Lightning writes last.ckpt only in steps that saved a top-k checkpoint; ours writes
    it every epoch, so `--ckpt_path last` resumes where training stopped."""
    seed_everything(0)
    data_module = AlignmentDataModule(max_items=120, split_seed=0, preservation_sets=[],
                                      pool_size=100)
    module = AlignmentModule(loss=_AntiAlignmentLoss(), learning_rate=1e-2,
                             measure_every_n_epochs=1000)
    checkpoint = VerifiedCheckpoint(dirpath=tmp_path, monitor="val/spearman", mode="max",
                                    save_last=True, filename="best-{epoch:03d}")
    trainer = Trainer(max_epochs=4, logger=False, callbacks=[checkpoint],
                      enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, accelerator="cpu", devices=1,
                      default_root_dir=tmp_path)
    trainer.fit(module, datamodule=data_module)
    best = sorted(p.name for p in tmp_path.glob("best-*.ckpt"))
    assert best == ["best-epoch=000.ckpt"]  # only the first epoch was a top-1 save
    last = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert last["global_step"] == 4 and last["epoch"] == 3
    assert (tmp_path / "last.ckpt.sha256").read_text().strip() == file_digest(
        tmp_path / "last.ckpt")
