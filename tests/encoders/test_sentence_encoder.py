"""SentenceEncoder: bundled backbone offline, heads, cache, gradients, seeds, validation."""

import json

import pytest
import torch
from torch.nn import functional as F

from deepalign.encoders import SentenceEncoder
from deepalign.encoders.backbone import bundled_backbone_path
from deepalign.encoders.heads import build_head
from deepalign.errors import ConfigError, DataError

TEXTS = ["kill someone", "help someone", "eat an apple with a friend at noon"]


@pytest.fixture(scope="module")
def identity():
    return SentenceEncoder()


@pytest.fixture(scope="module")
def reference():
    """SentenceTransformer.encode of TEXTS from an independently loaded copy: 3 x 384."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bundled_backbone_path()), device="cpu", local_files_only=True)
    return model.encode(TEXTS, convert_to_tensor=True, normalize_embeddings=True)


def test_bundled_backbone_matches_sentence_transformers_encode(identity, reference):
    embeddings = identity.embed_backbone(TEXTS)
    assert embeddings.shape == (3, 384) and embeddings.dtype == torch.float32
    assert not embeddings.requires_grad
    torch.testing.assert_close(embeddings, reference, atol=1e-5, rtol=0)


def test_identity_head_is_pretrained_embedding(identity, reference):
    out = identity(TEXTS)
    assert identity.output_dim == 384
    torch.testing.assert_close(out, reference, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3), atol=1e-6, rtol=0)


@pytest.mark.parametrize("head", ["lowrank", "linear", "mlp"])
def test_square_heads_start_as_identity(identity, head):
    encoder = SentenceEncoder(head=head, seed=3)
    torch.testing.assert_close(encoder(TEXTS), identity(TEXTS), atol=1e-6, rtol=0)


def test_lowrank_head_closed_form(identity):
    encoder = SentenceEncoder(head="lowrank", rank=4, seed=1)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        encoder.head.U.copy_(torch.randn(384, 4, generator=generator))
    x = identity.embed_backbone(TEXTS).double()
    U, V = encoder.head.U.double(), encoder.head.V.double()
    expected = F.normalize(x + x @ V @ U.T, dim=-1)  # rows of (I + U V^T) x, normalised
    torch.testing.assert_close(encoder(TEXTS).double(), expected, atol=1e-6, rtol=0)


def test_mlp_and_linear_heads_closed_form():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(5, 6, generator=generator, dtype=torch.float64)
    mlp = build_head("mlp", 6, None, rank=2, hidden_dim=4, seed=0).double()
    with torch.no_grad():
        mlp.weight_out.copy_(torch.randn(6, 4, generator=generator))
    hidden = F.gelu(x @ mlp.weight_in.T + mlp.bias_in)
    torch.testing.assert_close(mlp(x), x + hidden @ mlp.weight_out.T + mlp.bias_out)
    linear = build_head("linear", 6, 3, rank=2, hidden_dim=4, seed=0).double()
    torch.testing.assert_close(linear.weight @ linear.weight.T, torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(linear(x), x @ linear.weight.T + linear.bias)


@pytest.mark.parametrize("kind", ["linear", "mlp", "lowrank"])
def test_heads_gradcheck_float64(kind):
    head = build_head(kind, 5, None, rank=2, hidden_dim=3, seed=0).double()
    with torch.no_grad():
        for parameter in head.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    x = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    params = tuple(head.parameters())

    def function(inputs, *weights):
        state = dict(zip((name for name, _ in head.named_parameters()), weights))
        return F.normalize(torch.func.functional_call(head, state, (inputs,)), dim=-1)

    assert torch.autograd.gradcheck(function, (x, *params))


def test_head_forward_batch_consistency(identity):
    encoder = SentenceEncoder(head="mlp", output_dim=16, seed=2)
    x = identity.embed_backbone(TEXTS)
    batched = encoder.head_forward(x)
    assert batched.shape == (3, 16)
    single = torch.cat([encoder.head_forward(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-6, rtol=0)
    torch.testing.assert_close(batched.norm(dim=-1), torch.ones(3), atol=1e-6, rtol=0)


def test_backbone_batch_consistency():
    encoder = SentenceEncoder(batch_size=2)
    encoder.clear_cache()  # the shared cache may hold TEXTS from a batch of 128
    together = encoder.embed_backbone(TEXTS)  # two length-sorted batches: 2 + 1
    encoder.clear_cache()
    alone = torch.cat([encoder.embed_backbone([text]) for text in TEXTS])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def _count_backbone_calls(encoder):
    """Record the text tuples `encoder` sends through its backbone."""
    calls = []
    original = encoder._run_backbone

    def counting(texts):
        calls.append(texts)
        return original(texts)

    encoder._run_backbone = counting
    return calls


def test_cache_hit_avoids_backbone_calls(monkeypatch):
    monkeypatch.setenv("DEEPALIGN_DISK_CACHE", "0")  # count the network's calls, not disk hits
    texts = ["cache test one", "cache test two", "cache test three"]
    encoder = SentenceEncoder(head="lowrank")
    encoder.clear_cache()
    before = encoder.cache_info()
    calls = _count_backbone_calls(encoder)
    first = encoder(texts)
    assert calls == [tuple(texts)]
    second = encoder(texts)
    subset = encoder.embed_backbone([texts[2], texts[0], texts[2]])
    assert len(calls) == 1
    torch.testing.assert_close(first, second)
    torch.testing.assert_close(subset, encoder.embed_backbone(texts)[[2, 0, 2]])
    encoder.embed_backbone([texts[0], "cache test four"])
    assert calls[1:] == [("cache test four",)]
    info = encoder.cache_info()
    assert info["texts_encoded"] - before["texts_encoded"] == 4
    assert info["compute_calls"] - before["compute_calls"] == 2
    assert info["tuple_hits"] - before["tuple_hits"] >= 2


def test_cache_is_shared_by_frozen_encoders_until_backbone_weights_are_loaded(identity):
    texts = ["shared cache one", "shared cache two"]
    expected = identity.embed_backbone(texts)
    other = SentenceEncoder(head="mlp", seed=1)
    calls = _count_backbone_calls(other)
    torch.testing.assert_close(other.embed_backbone(texts), expected, atol=0, rtol=0)
    assert calls == []
    full_state = {"backbone." + k: v for k, v in other.backbone.state_dict().items()}
    full_state.update(other.state_dict())
    other.load_state_dict(full_state, strict=True)
    torch.testing.assert_close(other.embed_backbone(texts), expected, atol=1e-6, rtol=0)
    assert calls == [tuple(texts)]


def test_frozen_backbone_gets_no_gradient():
    encoder = SentenceEncoder(head="lowrank").train()
    assert not encoder.backbone.training
    out = encoder(TEXTS)
    (out @ torch.linspace(-1, 1, 384)).pow(2).sum().backward()
    assert all(parameter.grad is None for parameter in encoder.backbone.parameters())
    assert encoder.head.U.grad is not None and encoder.head.U.grad.abs().sum() > 0
    assert set(encoder.state_dict()) == {"head.U", "head.V"}


@pytest.mark.parametrize("k", [1, 2])
def test_finetune_last_k_layers_get_gradient_and_are_in_state_dict(k):
    encoder = SentenceEncoder(head="lowrank", finetune_layers=k).train()
    calls = _count_backbone_calls(encoder)
    out = encoder(TEXTS)
    assert out.requires_grad
    (out @ torch.linspace(-1, 1, 384)).pow(2).sum().backward()
    grads = {name: p.grad for name, p in encoder.backbone.named_parameters()}
    tuned = tuple(f".encoder.layer.{6 - i}." for i in range(1, k + 1))
    last = [name for name in grads if any(block in name for block in tuned)]
    assert last and all(grads[name] is not None and grads[name].abs().sum() > 0 for name in last)
    others = [name for name in grads if name not in last]
    assert others and all(grads[name] is None for name in others)
    keys = set(encoder.state_dict())
    assert {"backbone." + name for name in last} | {"head.U", "head.V"} == keys
    encoder(TEXTS)
    assert calls == [tuple(TEXTS)] * 2  # no caching while fine-tuning


def test_finetune_all_unfreezes_every_backbone_parameter():
    encoder = SentenceEncoder(finetune_layers=-1)
    assert all(parameter.requires_grad for parameter in encoder.backbone.parameters())
    assert len(encoder.state_dict()) == len(encoder.backbone.state_dict())


def test_state_dict_nested_in_a_parent_module():
    parent, other = torch.nn.Module(), torch.nn.Module()
    parent.encoder = SentenceEncoder(head="lowrank", seed=4)
    other.encoder = SentenceEncoder(head="lowrank", seed=5)
    with torch.no_grad():
        parent.encoder.head.U.normal_()
    state = parent.state_dict()
    assert set(state) == {"encoder.head.U", "encoder.head.V"}
    other.load_state_dict(state, strict=True)
    torch.testing.assert_close(other.encoder(TEXTS), parent.encoder(TEXTS))


def test_state_dict_round_trip_keeps_frozen_backbone(identity):
    source = SentenceEncoder(head="lowrank", seed=4)
    with torch.no_grad():
        source.head.U.normal_()
    target = SentenceEncoder(head="lowrank", seed=9)
    target.load_state_dict(source.state_dict(), strict=True)
    torch.testing.assert_close(target(TEXTS), source(TEXTS))


def test_seeded_init_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a = SentenceEncoder(head="lowrank", seed=0)
    b = SentenceEncoder(head="lowrank", seed=0)
    c = SentenceEncoder(head="lowrank", seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.head.V, b.head.V) and not torch.equal(a.head.V, c.head.V)


def test_config_is_json_and_rebuilds():
    encoder = SentenceEncoder(head="mlp", hidden_dim=8, output_dim=12, seed=7)
    config = json.loads(json.dumps(encoder.config()))
    rebuilt = SentenceEncoder(**config)
    assert rebuilt.config() == encoder.config() and rebuilt.output_dim == 12
    torch.testing.assert_close(rebuilt(TEXTS), encoder(TEXTS))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"head": "conv"}, "head"),
        ({"head": "lowrank", "rank": 0}, "rank"),
        ({"head": "identity", "output_dim": 10}, "output_dim"),
        ({"finetune_layers": 7}, "finetune_layers"),
        ({"finetune_layers": -2}, "finetune_layers"),
        ({"backbone": "/nonexistent/minilm"}, "backbone"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        SentenceEncoder(**kwargs)


def test_bad_inputs_raise_data_error(identity):
    with pytest.raises(DataError, match="single str"):
        identity("kill someone")
    with pytest.raises(DataError, match=r"texts\[1\]"):
        identity(["kill someone", 3])
    with pytest.raises(DataError, match="backbone_embeddings"):
        identity.head_forward(torch.zeros(2, 10))
    assert identity([]).shape == (0, 384)
