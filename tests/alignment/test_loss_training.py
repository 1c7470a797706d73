"""Minimising each loss from a randomly initialised linear head raises Spearman alignment.

Synthetic problem (see conftest): 60 items in 3 complete blocks (570 judged pairs); human
similarity is (1 + cos) / 2 of 4 latent factors; the embeddings (d = 32) carry a weak linear
image of the factors plus noise, so a linear head can find the aligned subspace. Adam,
200 steps, full batch, seeded.
"""

import pytest
import torch

from deepalign.alignment import (
    CKALoss,
    LocalSimilarityRegularizer,
    PearsonLoss,
    SimilarityMSELoss,
    SoftSpearmanLoss,
    TripletOddOneOutLoss,
    cosine_similarity_matrix,
    spearman_alignment,
)


def _train(loss, embeddings, human, mask, steps=200, lr=0.01, seed=0, extra=None):
    torch.manual_seed(seed)
    head = torch.nn.Linear(embeddings.shape[1], 16)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        output = head(embeddings)
        value = loss(output, human, mask)
        if extra is not None:
            value = value + extra(output, human, mask)
        value.backward()
        optimizer.step()
    return head


def _spearman(head, embeddings, human, mask):
    with torch.no_grad():
        return spearman_alignment(cosine_similarity_matrix(head(embeddings)), human, mask)


LOSSES = [
    pytest.param(lambda: SimilarityMSELoss(), 0.90, id="mse"),
    pytest.param(lambda: PearsonLoss(), 0.93, id="pearson"),
    pytest.param(lambda: SoftSpearmanLoss(), 0.93, id="soft_spearman"),
    pytest.param(lambda: TripletOddOneOutLoss(1024, 0.1), 0.90, id="triplet"),
    pytest.param(lambda: CKALoss(), 0.88, id="cka"),
]


@pytest.mark.parametrize("make_loss,floor", LOSSES)
def test_minimising_raises_spearman_on_training_pairs(make_loss, floor, problem, one_thread):
    untrained = _spearman(_train(make_loss(), *problem[:3], steps=0), *problem[:3])
    trained = _spearman(_train(make_loss(), *problem[:3]), *problem[:3])
    assert untrained < 0.3  # a random head on weakly aligned embeddings
    assert trained > floor
    assert trained - untrained > 0.55


def test_training_on_some_items_raises_alignment_on_held_out_items(problem_factory, one_thread):
    """300 items in 3 blocks; items 0-199 train, items 200-299 are never seen by the loss."""
    data = problem_factory(n_items=300, n_blocks=3, signal=0.5)
    train = torch.arange(300) < 200
    block = torch.arange(300) % 3
    same_block = block[:, None] == block[None, :]
    train_mask = same_block & train[:, None] & train[None, :]
    heldout_mask = same_block & ~train[:, None] & ~train[None, :]
    for make_loss in (PearsonLoss, SoftSpearmanLoss):
        untrained = _train(make_loss(), data.embeddings, data.human_sim, train_mask, steps=0)
        before = _spearman(untrained, data.embeddings, data.human_sim, heldout_mask)
        head = _train(make_loss(), data.embeddings, data.human_sim, train_mask)
        after = _spearman(head, data.embeddings, data.human_sim, heldout_mask)
        assert after - before > 0.12, make_loss.__name__  # measured: 0.556 -> 0.733


def test_regularizer_alone_pulls_toward_its_reference(problem, one_thread):
    """Reference = the latent factors (perfectly aligned): Spearman rises to near 1.
    Reference = the input embeddings: Spearman returns to the pretrained level."""
    embeddings, human, mask, latent = problem
    untrained = _spearman(
        _train(PearsonLoss(), embeddings, human, mask, steps=0), embeddings, human, mask
    )
    to_latent = _train(LocalSimilarityRegularizer(latent, 1.0), embeddings, human, mask)
    assert _spearman(to_latent, embeddings, human, mask) > 0.85 > untrained + 0.55
    pretrained = spearman_alignment(cosine_similarity_matrix(embeddings), human, mask)
    to_inputs = _train(LocalSimilarityRegularizer(embeddings, 1.0), embeddings, human, mask)
    assert _spearman(to_inputs, embeddings, human, mask) == pytest.approx(pretrained, abs=0.05)


def test_regularizer_limits_drift_from_the_pretrained_similarities(problem, one_thread):
    embeddings, human, mask, _ = problem
    reference = cosine_similarity_matrix(embeddings)
    regularizer = LocalSimilarityRegularizer(embeddings, weight=10.0)

    def drift(head):
        with torch.no_grad():
            sim = cosine_similarity_matrix(head(embeddings))
        upper = torch.triu(torch.ones_like(mask), diagonal=1)
        return ((sim - reference)[upper] ** 2).mean().item()

    free = _train(PearsonLoss(), embeddings, human, mask)
    held = _train(PearsonLoss(), embeddings, human, mask, extra=regularizer)
    assert drift(held) < 0.5 * drift(free)
    assert _spearman(held, embeddings, human, mask) > 0.5
