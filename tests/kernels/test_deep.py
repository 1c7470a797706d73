"""DeepKernel on a tiny deterministic encoder: closed forms, batches, gradients, freezing."""

import math

import gpytorch
import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood
from torch import nn

from deepalign.errors import ConfigError, DataError
from deepalign.kernels import DeepKernel, arm_inputs

TEXTS = (
    "kill someone",
    "hug someone",
    "help someone",
    "insult someone",
    "rescue someone",
    "betray someone",
    "comfort someone",
    "stab someone",
)


class TinyEncoder(nn.Module):
    """Letter counts -> a seeded linear map: ``forward(texts) -> n_items x d`` (float32)."""

    def __init__(self, output_dim: int = 5, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.linear = nn.Linear(26, output_dim)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(output_dim, 26, generator=generator))
            self.linear.bias.copy_(torch.randn(output_dim, generator=generator))
        self.output_dim = output_dim
        self.calls = 0

    def config(self) -> dict:
        return {"output_dim": self.output_dim}

    def forward(self, texts):
        self.calls += 1
        counts = torch.stack([_letter_counts(text) for text in texts])
        return self.linear(counts.to(self.linear.weight.dtype))


def _letter_counts(text: str) -> torch.Tensor:
    counts = torch.zeros(26)
    for char in text:
        if "a" <= char <= "z":
            counts[ord(char) - ord("a")] += 1
    return counts


def _embeddings(encoder=None) -> torch.Tensor:
    with torch.no_grad():
        return (encoder or TinyEncoder())(list(TEXTS)).double()


def _distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Brute-force pairwise Euclidean distances with a plain loop."""
    n_items = embeddings.shape[0]
    out = torch.zeros(n_items, n_items, dtype=torch.float64)
    for i in range(n_items):
        for j in range(n_items):
            out[i, j] = math.sqrt(float(((embeddings[i] - embeddings[j]) ** 2).sum()))
    return out


# ---------------------------------------------------------------- closed forms


def test_cosine_equals_explicit_kernel_on_embeddings():
    kernel = DeepKernel(TinyEncoder(), TEXTS, base="cosine", outputscale=1.7, cosine_shift=0.5)
    embeddings = _embeddings()
    unit = embeddings / embeddings.norm(dim=-1, keepdim=True)
    expected = 1.7 * (unit @ unit.T + 0.5)
    x = arm_inputs(len(TEXTS))
    torch.testing.assert_close(kernel(x).to_dense(), expected)
    torch.testing.assert_close(kernel.full_matrix(), expected)
    torch.testing.assert_close(kernel.matrix(), expected)
    assert kernel.embeddings.dtype == torch.float32  # buffer as the encoder gave it


def test_rbf_equals_explicit_kernel_with_median_heuristic():
    kernel = DeepKernel(TinyEncoder(), TEXTS, base="rbf")
    distances = _distances(_embeddings())
    upper = distances[torch.triu_indices(8, 8, 1).unbind()]
    median = float(upper.median())
    assert float(kernel.base_kernel.lengthscale.detach()) == pytest.approx(median, rel=1e-5)
    expected = torch.exp(-(distances**2) / (2 * median**2))
    torch.testing.assert_close(kernel.full_matrix(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("nu", "closed_form"),
    [
        (0.5, lambda r: torch.exp(-r)),
        (1.5, lambda r: (1 + math.sqrt(3) * r) * torch.exp(-math.sqrt(3) * r)),
        (2.5, lambda r: (1 + math.sqrt(5) * r + 5 / 3 * r**2) * torch.exp(-math.sqrt(5) * r)),
    ],
)
def test_matern_equals_explicit_kernel(nu, closed_form):
    kernel = DeepKernel(TinyEncoder(), TEXTS, base="matern", nu=nu, lengthscale=3.0)
    expected = closed_form(_distances(_embeddings()) / 3.0)
    torch.testing.assert_close(kernel.full_matrix(), expected, rtol=1e-5, atol=1e-6)


def test_items_may_be_an_item_set():
    from deepalign.data import ItemSet

    items = ItemSet(ids=tuple(f"item{i}" for i in range(8)), texts=TEXTS)
    by_items = DeepKernel(TinyEncoder(), items).full_matrix()
    torch.testing.assert_close(by_items, DeepKernel(TinyEncoder(), list(TEXTS)).full_matrix())


# ---------------------------------------------------------------- batches and diag


@pytest.mark.parametrize("base", ["cosine", "rbf", "matern"])
def test_batch_equals_stacked_unbatched(base):
    kernel = DeepKernel(TinyEncoder(), TEXTS, base=base)
    generator = torch.Generator().manual_seed(5)
    x1 = torch.randint(0, 8, (3, 2, 4, 1), generator=generator).double()
    x2 = torch.randint(0, 8, (3, 2, 6, 1), generator=generator).double()
    batched = kernel(x1, x2).to_dense()
    assert batched.shape == (3, 2, 4, 6)
    full = kernel.full_matrix()
    for i in range(3):
        for j in range(2):
            single = kernel(x1[i, j], x2[i, j]).to_dense()
            torch.testing.assert_close(batched[i, j], single)
            rows, columns = x1[i, j, :, 0].long(), x2[i, j, :, 0].long()
            torch.testing.assert_close(single, full[rows][:, columns])
    diagonal = kernel(x1, diag=True)
    torch.testing.assert_close(diagonal, kernel(x1).to_dense().diagonal(dim1=-2, dim2=-1))
    torch.testing.assert_close(
        kernel(x1, x2[0, 0]).to_dense()[2, 1], kernel(x1[2, 1], x2[0, 0]).to_dense()
    )


# ---------------------------------------------------------------- gradients (float64)


def test_lengthscale_gradcheck_float64():
    kernel = DeepKernel(TinyEncoder(), TEXTS, base="matern").double()
    x1, x2 = arm_inputs(8)[:5], arm_inputs(8)[3:]

    def covariance(raw_lengthscale, raw_outputscale):
        parameters = {
            "base_kernel.raw_lengthscale": raw_lengthscale,
            "raw_outputscale": raw_outputscale,
        }
        with gpytorch.settings.lazily_evaluate_kernels(False):
            return torch.func.functional_call(kernel, parameters, (x1, x2)).to_dense()

    raw = kernel.base_kernel.raw_lengthscale.detach().clone().requires_grad_(True)
    scale = torch.tensor(0.2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(covariance, (raw, scale))


def test_trainable_encoder_gradcheck_float64():
    encoder = TinyEncoder(output_dim=2).double()
    kernel = DeepKernel(encoder, TEXTS, base="rbf", trainable_encoder=True).double()
    x = arm_inputs(8)[:6]

    def covariance(weight):
        with gpytorch.settings.lazily_evaluate_kernels(False):
            out = torch.func.functional_call(kernel, {"encoder.linear.weight": weight}, (x, x))
        return out.to_dense()

    weight = encoder.linear.weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(covariance, (weight,))


# ---------------------------------------------------------------- frozen vs trainable encoder


def _fit(kernel, maxiter: int = 200):
    arms = arm_inputs(8)
    pulled = torch.tensor([0, 2, 3, 5, 7])
    values = torch.tensor([[-3.0], [2.0], [-1.5], [1.0], [-2.5]], dtype=torch.float64)
    gp = SingleTaskGP(arms[pulled], values, covar_module=kernel)
    mll = ExactMarginalLogLikelihood(gp.likelihood, gp)
    fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": maxiter}})
    return gp


def test_frozen_encoder_has_no_kernel_parameters_and_is_not_fitted():
    encoder = TinyEncoder()
    encoder.train()
    before = {name: value.clone() for name, value in encoder.state_dict().items()}
    kernel = DeepKernel(encoder, TEXTS, base="rbf")
    assert encoder.training  # its mode is restored after embedding in eval mode
    names = {name for name, _ in kernel.named_parameters()}
    assert names == {"raw_outputscale", "base_kernel.raw_lengthscale"}
    assert not any(p is q for p in kernel.parameters() for q in encoder.parameters())
    assert "encoder" not in dict(kernel.named_modules())
    embeddings = kernel.embeddings.clone()
    calls = encoder.calls
    gp = _fit(kernel)
    assert encoder.calls == calls  # never run again
    for name, value in encoder.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert torch.equal(kernel.embeddings, embeddings)
    fitted = {name for name, p in gp.named_parameters() if p.requires_grad}
    assert "covar_module.base_kernel.raw_lengthscale" in fitted
    assert float(kernel.base_kernel.lengthscale.detach()) != pytest.approx(
        float(DeepKernel(TinyEncoder(), TEXTS, base="rbf").base_kernel.lengthscale.detach())
    )


def test_frozen_hyperparameters_stay_put():
    kernel = DeepKernel(
        TinyEncoder(),
        TEXTS,
        base="rbf",
        lengthscale=2.0,
        outputscale=0.5,
        fit_lengthscale=False,
        fit_outputscale=False,
    )
    _fit(kernel)
    assert float(kernel.base_kernel.lengthscale.detach()) == pytest.approx(2.0, rel=1e-6)
    assert float(kernel.outputscale.detach()) == pytest.approx(0.5, rel=1e-6)


def test_trainable_encoder_is_fitted_only_when_asked():
    encoder = TinyEncoder().double()
    weight = encoder.linear.weight.detach().clone()
    kernel = DeepKernel(encoder, TEXTS, base="cosine", trainable_encoder=True)
    assert any(p is encoder.linear.weight for p in kernel.parameters())
    assert not hasattr(kernel, "embeddings")
    _fit(kernel, maxiter=5)
    assert not torch.equal(encoder.linear.weight.detach(), weight)


# ---------------------------------------------------------------- errors


class _Wrong(nn.Module):
    def forward(self, texts):
        return torch.zeros(len(texts) + 1, 3)


def test_constructor_errors_name_the_argument():
    with pytest.raises(ConfigError, match=r"'encoder' should be an nn.Module"):
        DeepKernel(lambda texts: torch.zeros(len(texts), 2), TEXTS)
    with pytest.raises(ConfigError, match=r"'base' should be one of"):
        DeepKernel(TinyEncoder(), TEXTS, base="linear")
    with pytest.raises(ConfigError, match=r"'lengthscale' has no meaning for base='cosine'"):
        DeepKernel(TinyEncoder(), TEXTS, lengthscale=1.0)
    with pytest.raises(ConfigError, match=r"'nu' should be one of"):
        DeepKernel(TinyEncoder(), TEXTS, base="matern", nu=2.0)
    with pytest.raises(ConfigError, match=r"'cosine_shift' should be a float >= 0"):
        DeepKernel(TinyEncoder(), TEXTS, cosine_shift=-1.0)
    with pytest.raises(ConfigError, match=r"'items' should be an ItemSet or a non-empty"):
        DeepKernel(TinyEncoder(), "kill someone")
    with pytest.raises(ConfigError, match=r"'items' should hold strings but item 1 is int"):
        DeepKernel(TinyEncoder(), ["kill someone", 3])
    with pytest.raises(ConfigError, match=r"'encoder' should return 8 finite embeddings"):
        DeepKernel(_Wrong(), TEXTS)
    with pytest.raises(DataError, match=r"'x1' should hold arm indices in \[0, 8\)"):
        DeepKernel(TinyEncoder(), TEXTS)(torch.tensor([[8.0]])).to_dense()
