"""DeepKernel on the real bundled SentenceEncoder, and from an exported checkpoint driving
BoTorch (SingleTaskGP + MaxPosteriorSampling + optimize_acqf_discrete with UCB)."""

import pytest
import torch
from botorch.acquisition import UpperConfidenceBound
from botorch.fit import fit_gpytorch_mll
from botorch.generation import MaxPosteriorSampling
from botorch.models import SingleTaskGP
from botorch.optim import optimize_acqf_discrete
from gpytorch.mlls import ExactMarginalLogLikelihood

from deepalign.alignment import cosine_similarity_matrix
from deepalign.encoders import SentenceEncoder, export_encoder
from deepalign.errors import CheckpointError
from deepalign.kernels import DeepKernel, arm_indices, arm_inputs

TEXTS = (
    "kill someone",
    "stab someone",
    "hurt someone",
    "hug someone",
    "kiss someone",
    "help someone",
    "comfort someone",
    "rescue someone",
    "insult someone",
    "annoy someone",
    "betray someone",
    "defend someone",
)
# A value rating per text (good actions high): what the bandit learns.
VALUES = (-4.0, -3.8, -3.0, 2.6, 2.4, 3.0, 2.9, 3.4, -2.2, -1.5, -3.1, 2.0)


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder(head="lowrank", rank=4, seed=3)


def test_cosine_deep_kernel_equals_cosine_of_sentence_embeddings(encoder):
    kernel = DeepKernel(encoder, TEXTS, base="cosine")
    with torch.no_grad():
        expected = cosine_similarity_matrix(encoder(list(TEXTS)).double())
    torch.testing.assert_close(kernel.full_matrix(), expected, rtol=1e-6, atol=1e-6)
    # the bundled MiniLM puts "kill" nearer "stab" than "hug"
    assert expected[0, 1] > expected[0, 3]


def _thompson_and_ucb(kernel):
    arms = arm_inputs(len(TEXTS))
    pulled = torch.tensor([0, 3, 5, 8])
    rewards = torch.tensor(VALUES, dtype=torch.float64)[pulled].unsqueeze(-1)
    gp = SingleTaskGP(arms[pulled], rewards, covar_module=kernel)
    fit_gpytorch_mll(ExactMarginalLogLikelihood(gp.likelihood, gp))
    torch.manual_seed(0)
    picks = MaxPosteriorSampling(gp, replacement=False)(arms, num_samples=3)
    candidate, value = optimize_acqf_discrete(UpperConfidenceBound(gp, beta=4.0), q=1, choices=arms)
    return gp, picks, candidate, value


def test_from_checkpoint_drives_botorch(encoder, tmp_path):
    path = export_encoder(encoder, tmp_path / "encoder")
    kernel = DeepKernel.from_checkpoint(path, TEXTS, base="rbf")
    with torch.no_grad():
        expected = encoder(list(TEXTS))
    torch.testing.assert_close(kernel.embeddings, expected, rtol=1e-5, atol=1e-6)
    assert kernel.encoder_config == encoder.config()
    assert {name for name, _ in kernel.named_parameters()} == {
        "raw_outputscale",
        "base_kernel.raw_lengthscale",
    }
    gp, picks, candidate, value = _thompson_and_ucb(kernel)
    n_arms = len(TEXTS)
    picked = arm_indices(picks, n_arms)
    assert picks.shape == (3, 1) and len(set(picked.tolist())) == 3  # without replacement
    assert torch.equal(picks, picked.double().unsqueeze(-1))  # exact rows of the arm set
    gp.eval()
    posterior = gp.posterior(arm_inputs(n_arms))
    ucb = posterior.mean.squeeze(-1) + (4.0 * posterior.variance.squeeze(-1)).sqrt()
    assert int(arm_indices(candidate, n_arms)) == int(ucb.argmax())  # brute-force argmax
    torch.testing.assert_close(value, ucb.max())
    # the posterior has learnt something: good unseen actions above bad unseen ones
    mean = posterior.mean.squeeze(-1)
    assert mean[[4, 6, 7]].mean() > mean[[1, 2, 10]].mean()


def test_fit_does_not_change_encoder_weights(encoder):
    before = {name: value.clone() for name, value in encoder.state_dict().items()}
    assert before  # the lowrank head has weights to protect
    kernel = DeepKernel(encoder, TEXTS, base="matern")
    embeddings = kernel.embeddings.clone()
    _thompson_and_ucb(kernel)
    after = encoder.state_dict()
    assert before.keys() == after.keys()
    for name, value in before.items():
        assert torch.equal(after[name], value), name
    assert torch.equal(kernel.embeddings, embeddings)


def test_from_checkpoint_missing_export_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError):
        DeepKernel.from_checkpoint(tmp_path / "nothing-here", TEXTS)
