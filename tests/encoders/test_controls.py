"""Control encoders: random-init transformer, TF-IDF, length only."""

import json
import math

import pytest
import torch
from torch.nn import functional as F

from deepalign.encoders import LengthEncoder, LexicalEncoder, RandomInitEncoder, SentenceEncoder
from deepalign.errors import ConfigError

TEXTS = ["kill someone", "help someone", "eat an apple with a friend at noon", "Kill the cat"]


@pytest.fixture(scope="module")
def random_init():
    return RandomInitEncoder(seed=0)


def test_random_init_deterministic_per_seed_and_rng_untouched(random_init):
    state = torch.get_rng_state()
    again = RandomInitEncoder(seed=0)
    other = RandomInitEncoder(seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    out = random_init(TEXTS)
    assert out.shape == (4, 384) and out.dtype == torch.float32 and random_init.output_dim == 384
    assert torch.equal(out, again(TEXTS))
    assert (out - other(TEXTS)).abs().max() > 1e-2
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(4), atol=1e-6, rtol=0)


def test_random_init_is_mean_pooling_of_the_random_network(random_init):
    text = TEXTS[2]
    encoded = random_init.tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        hidden = random_init.model(**encoded).last_hidden_state[0]
    expected = F.normalize(hidden.mean(dim=0), dim=-1)
    torch.testing.assert_close(random_init([text])[0], expected, atol=1e-6, rtol=0)
    batched = random_init(TEXTS)
    random_init.clear_cache()
    alone = torch.cat([random_init([t]) for t in TEXTS])
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


def test_random_init_has_the_backbone_shape(random_init):
    pretrained = SentenceEncoder().backbone
    pretrained_names = {
        name.split("model.", 1)[1]: tuple(parameter.shape)
        for name, parameter in pretrained.named_parameters()
    }
    random_names = {name: tuple(p.shape) for name, p in random_init.model.named_parameters()}
    assert random_names == pretrained_names
    assert all(not parameter.requires_grad for parameter in random_init.parameters())


def test_lexical_matches_sklearn_tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    corpus = TEXTS + ["someone kills someone", "an apple, an apple!"]
    reference = TfidfVectorizer(token_pattern=r"(?u)[^\W_]+").fit(corpus)
    encoder = LexicalEncoder().fit(corpus)
    assert list(encoder.vocabulary) == list(reference.get_feature_names_out())
    expected = torch.tensor(reference.transform(corpus).toarray())
    torch.testing.assert_close(encoder(corpus).double(), expected, atol=1e-6, rtol=0)
    queries = ["apple someone zebra", "zebra"]
    expected_queries = torch.tensor(reference.transform(queries).toarray())
    torch.testing.assert_close(encoder(queries).double(), expected_queries, atol=1e-6, rtol=0)
    assert encoder(["zebra"]).abs().sum() == 0  # no known word: the zero vector


def test_lexical_fits_at_first_call_deterministically():
    first = LexicalEncoder()
    out = first(TEXTS)
    assert first.fitted and first.output_dim == len(first.vocabulary)
    assert first.vocabulary == tuple(sorted(first.vocabulary))
    shuffled = LexicalEncoder().fit(TEXTS[::-1])
    torch.testing.assert_close(shuffled(TEXTS), out, atol=0, rtol=0)
    assert torch.equal(first(["someone"]), LexicalEncoder().fit(TEXTS)(["someone"]))
    rebuilt = LexicalEncoder(**json.loads(json.dumps(first.config())))
    assert torch.equal(rebuilt(TEXTS), out)


def test_lexical_errors():
    with pytest.raises(ConfigError, match="fit"):
        _ = LexicalEncoder().output_dim
    with pytest.raises(ConfigError, match="together"):
        LexicalEncoder(vocabulary=["a"])
    with pytest.raises(ConfigError, match="document_frequency"):
        LexicalEncoder(vocabulary=["a", "b"], document_frequency=[1], n_documents=2)


def _cosine(encoder, texts):
    embeddings = encoder(texts).double()
    return embeddings @ embeddings.T


def _off_diagonal(matrix):
    return matrix[~torch.eye(matrix.shape[0], dtype=torch.bool)]


def test_length_encoder_closed_form_similarity():
    encoder = LengthEncoder(max_length=40, bandwidth=0.7)
    texts = TEXTS + ["x" * 60, "", "  y  "]
    lengths = torch.tensor([len(t.strip()) for t in texts], dtype=torch.float64).clamp(max=40)
    x = torch.log1p(lengths)
    expected = torch.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * 0.7**2))
    embeddings = encoder(texts)
    assert embeddings.shape == (7, encoder.output_dim) and embeddings.dtype == torch.float32
    torch.testing.assert_close(embeddings.norm(dim=-1), torch.ones(7), atol=1e-6, rtol=0)
    torch.testing.assert_close(_cosine(encoder, texts), expected, atol=1e-6, rtol=0)
    # defaults: 12 vs 24 characters (log(13/25)) and 150 vs 300 (log(151/301))
    default = LengthEncoder()
    assert default.output_dim == 61
    pair = _cosine(default, ["x" * 12, "x" * 24, "x" * 150, "x" * 300])
    assert pair[0, 1].item() == pytest.approx(math.exp(-2 * math.log(13 / 25) ** 2), abs=1e-6)
    assert pair[2, 3].item() == pytest.approx(math.exp(-2 * math.log(151 / 301) ** 2), abs=1e-6)


def test_length_encoder_resolves_the_whole_range():
    encoder = LengthEncoder()
    lengths = list(range(5, 401, 5))
    similarity = _cosine(encoder, ["x" * n for n in lengths])
    assert _off_diagonal(similarity).std().item() > 0.1
    assert torch.linalg.eigvalsh(similarity).min().item() > -1e-6  # PSD
    # from an anchor, similarity falls as the other length moves away, on both sides
    anchor = lengths.index(150)
    assert (similarity[anchor, anchor + 1 :].diff() < 0).all()
    assert (similarity[anchor, :anchor].diff() > 0).all()
    pair = _cosine(encoder, ["x" * 150, "x" * 160, "x" * 300])
    assert pair[0, 2].item() < 0.5 < 0.99 < pair[0, 1].item()  # 0.39 and 0.992
    # short "X someone" texts (8..30 characters) are told apart
    short = ["hit someone", "kill someone", "help someone", "lie to someone", "hug someone",
             "steal from someone", "insult someone", "rob someone", "save someone's life",
             "give money to someone in need", "cheat someone", "x someone"]
    assert min(map(len, short)) >= 8 and max(map(len, short)) <= 30
    assert _off_diagonal(_cosine(encoder, short)).mean().item() < 0.9
    # one text at a time gives the same rows as the batch (no fitting to the corpus)
    texts = ["x" * n for n in (7, 90, 400)]
    alone = torch.cat([encoder([text]) for text in texts])
    assert torch.equal(alone, encoder(texts))


def test_length_encoder_clips_at_max_length_and_round_trips_its_config():
    encoder = LengthEncoder(max_length=100)
    rows = encoder(["x" * 100, "x" * 150, "x" * 99])
    assert torch.equal(rows[0], rows[1]) and not torch.equal(rows[0], rows[2])
    rebuilt = LengthEncoder(**json.loads(json.dumps(encoder.config())))
    assert rebuilt.config() == {"unit": "characters", "max_length": 100, "bandwidth": 0.5}
    assert torch.equal(rebuilt(TEXTS), encoder(TEXTS))
    for bad in (0.0, -1.0, float("inf"), "wide", True):
        with pytest.raises(ConfigError, match="bandwidth"):
            LengthEncoder(bandwidth=bad)


def test_length_encoder_depends_only_on_length():
    encoder = LengthEncoder()
    same_length = ["kill someone", "hug a friend", "eat  noodles"]  # 12 characters each
    assert len({len(text) for text in same_length}) == 1
    embeddings = encoder(same_length)
    assert torch.equal(embeddings, embeddings[:1].expand(3, encoder.output_dim))
    words = LengthEncoder(unit="words", max_length=10)
    rows = words(["kill someone", "a b", "one two three"])
    assert torch.equal(rows[0], rows[1]) and not torch.equal(rows[0], rows[2])
    with pytest.raises(ConfigError, match="unit"):
        LengthEncoder(unit="tokens")
