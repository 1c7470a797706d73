"""export_encoder / load_encoder: round trips, atomic writes, and every refusal."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from deepalign.encoders import (
    LengthEncoder,
    LexicalEncoder,
    RandomInitEncoder,
    SentenceEncoder,
    export_encoder,
    load_encoder,
)
from deepalign.encoders.backbone import bundled_backbone_path
from deepalign.errors import CheckpointError, ConfigError

TEXTS = ["kill someone", "help someone", "eat an apple with a friend at noon"]


def _perturbed(encoder, seed=0):
    """Move every trainable parameter away from its initial value (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in encoder.parameters():
            if parameter.requires_grad:
                noise = torch.randn(parameter.shape, generator=generator)
                parameter.add_(0.05 * noise)
    return encoder.eval()


@pytest.fixture(scope="module")
def lowrank():
    return _perturbed(SentenceEncoder(head="lowrank", rank=8))


@pytest.fixture(scope="module")
def exported(lowrank, tmp_path_factory):
    return export_encoder(lowrank, tmp_path_factory.mktemp("export") / "encoder")


@pytest.fixture
def copy(exported, tmp_path):
    """A fresh copy of the exported lowrank encoder, free to damage."""
    return Path(shutil.copytree(exported, tmp_path / "encoder"))


def _rewrite(directory, tensors=None, **changes):
    """Rewrite an export consistently (sha and size updated), then apply JSON changes."""
    header = json.loads((directory / "encoder.json").read_text())
    weights = directory / "encoder.safetensors"
    if tensors is not None:
        save_file(tensors, str(weights))
        header["tensors"] = {
            name: {"shape": list(value.shape), "dtype": "float32"}
            for name, value in tensors.items()
        }
    header["weights_bytes"] = weights.stat().st_size
    header["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    for key, value in changes.items():
        if value is None:
            header.pop(key)
        else:
            header[key] = value
    (directory / "encoder.json").write_text(json.dumps(header))


@pytest.mark.parametrize(
    "build",
    [
        lambda: _perturbed(SentenceEncoder(head="mlp", hidden_dim=16, output_dim=24), seed=1),
        lambda: _perturbed(SentenceEncoder(head="linear"), seed=2),
        lambda: SentenceEncoder(),
        lambda: LexicalEncoder().fit(TEXTS + ["someone else"]),
        lambda: LengthEncoder(unit="words", max_length=7),
    ],
    ids=["mlp", "linear", "identity", "lexical", "length"],
)
def test_round_trip_small_encoders(build, tmp_path):
    encoder = build()
    path = export_encoder(encoder, tmp_path / "out")
    assert sorted(p.name for p in path.iterdir()) == ["encoder.json", "encoder.safetensors"]
    loaded = load_encoder(path)
    assert type(loaded) is type(encoder) and not loaded.training
    assert loaded.config() == encoder.config() and loaded.output_dim == encoder.output_dim
    assert torch.equal(loaded(TEXTS), encoder(TEXTS))


def test_round_trip_lowrank_stores_head_only(lowrank, exported):
    assert set(load_file(str(exported / "encoder.safetensors"))) == {"head.U", "head.V"}
    assert (exported / "encoder.safetensors").stat().st_size < 50_000
    header = json.loads((exported / "encoder.json").read_text())
    assert header["config"]["backbone"] is None and header["class_name"] == "SentenceEncoder"
    assert header["backbone"]["path"] == str(bundled_backbone_path().resolve())
    assert torch.equal(load_encoder(exported)(TEXTS), lowrank(TEXTS))


def test_round_trip_finetuned_stores_trained_backbone_layers(tmp_path):
    encoder = _perturbed(SentenceEncoder(head="lowrank", rank=4, finetune_layers=1), seed=3)
    path = export_encoder(encoder, tmp_path / "finetuned")
    stored = set(load_file(str(path / "encoder.safetensors")))
    assert any(".encoder.layer.5." in name for name in stored)
    assert not any(".encoder.layer.4." in name or "embeddings" in name for name in stored)
    loaded = load_encoder(path)
    with torch.no_grad():
        torch.testing.assert_close(loaded(TEXTS), encoder(TEXTS), atol=0, rtol=0)
        assert (loaded(TEXTS) - SentenceEncoder()(TEXTS)).abs().max() > 1e-3


def test_round_trip_random_init(tmp_path):
    encoder = RandomInitEncoder(seed=5)
    loaded = load_encoder(export_encoder(encoder, tmp_path / "random"))
    assert torch.equal(loaded(TEXTS), encoder(TEXTS))


def test_reexport_replaces_atomically_and_failed_write_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "enc"
    export_encoder(LengthEncoder(max_length=10), target)
    export_encoder(LengthEncoder(max_length=20), target)
    assert load_encoder(target).max_length == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc"]

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("deepalign.encoders.export.save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        export_encoder(LengthEncoder(max_length=30), tmp_path / "new")
    with pytest.raises(OSError, match="disk full"):
        export_encoder(LengthEncoder(max_length=30), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["enc"]
    assert load_encoder(target).max_length == 20


def test_export_refuses_foreign_directories_and_modules(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="notes.txt"):
        export_encoder(LengthEncoder(), tmp_path / "busy")
    with pytest.raises(ConfigError, match="LexicalEncoder"):
        export_encoder(LexicalEncoder(), tmp_path / "lexical")
    with pytest.raises(ConfigError, match="Linear"):
        export_encoder(torch.nn.Linear(2, 2), tmp_path / "linear")


def test_missing_directory_and_files(copy, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_encoder(tmp_path / "nowhere")
    (copy / "encoder.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"encoder\.safetensors is missing"):
        load_encoder(copy)
    (copy / "encoder.json").unlink()
    with pytest.raises(CheckpointError, match=r"encoder\.json is missing"):
        load_encoder(copy)


def test_tampered_weights(copy):
    weights = copy / "encoder.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"encoder\.safetensors: sha256 .* altered"):
        load_encoder(copy)


def test_truncated_weights(copy):
    weights = copy / "encoder.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"encoder\.safetensors has .* truncated"):
        load_encoder(copy)
    _rewrite(copy)  # the JSON now agrees with the truncated file: the reader must still refuse
    with pytest.raises(CheckpointError, match=r"encoder\.safetensors is not a readable"):
        load_encoder(copy)


def test_wrong_tensor_shapes(copy):
    tensors = load_file(str(copy / "encoder.safetensors"))
    tensors["head.U"] = torch.zeros(384, 5)
    _rewrite(copy, tensors=tensors)
    with pytest.raises(CheckpointError, match=r"encoder\.safetensors does not fit .*head\.U"):
        load_encoder(copy)


def test_tensor_list_disagreeing_with_json(copy):
    header = json.loads((copy / "encoder.json").read_text())
    header["tensors"]["head.U"]["shape"] = [384, 9]
    (copy / "encoder.json").write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match="different exports"):
        load_encoder(copy)


@pytest.mark.parametrize(
    "change, pattern",
    [
        ({"config": None}, r"encoder\.json: missing key\(s\) \['config'\]"),
        ({"class_name": "FancyEncoder"}, r"encoder\.json: 'class_name' .*FancyEncoder"),
        ({"format_version": 99}, r"encoder\.json: 'format_version' 99"),
        ({"config": {"head": "lowrank", "rank": 8, "colour": 1}}, r"encoder\.json: 'config'"),
    ],
    ids=["missing-key", "unknown-class", "future-version", "bad-config"],
)
def test_bad_json_fields(copy, change, pattern):
    _rewrite(copy, **change)
    with pytest.raises(CheckpointError, match=pattern):
        load_encoder(copy)


def test_invalid_json(copy):
    (copy / "encoder.json").write_text('{"format": "deepalign-encoder",')
    with pytest.raises(CheckpointError, match=r"encoder\.json: invalid JSON at line 1"):
        load_encoder(copy)


def test_missing_backbone_directory_and_override(copy, lowrank):
    header = json.loads((copy / "encoder.json").read_text())
    header["config"]["backbone"] = "/nonexistent/minilm"
    (copy / "encoder.json").write_text(json.dumps(header))
    with pytest.raises(CheckpointError, match=r"encoder\.json: backbone .*/nonexistent/minilm"):
        load_encoder(copy)
    loaded = load_encoder(copy, backbone=str(bundled_backbone_path()))
    assert torch.equal(loaded(TEXTS), lowrank(TEXTS))


def test_different_backbone_is_refused(copy, tmp_path):
    bundled = bundled_backbone_path()
    other = tmp_path / "other-backbone"
    for source in bundled.rglob("*"):
        if source.is_file():
            destination = other / source.relative_to(bundled)
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.symlink_to(source)
    tokenizer_config = other / "tokenizer_config.json"
    text = tokenizer_config.read_text()
    tokenizer_config.unlink()
    tokenizer_config.write_text(text + "\n")
    with pytest.raises(CheckpointError, match="differs from the one exported"):
        load_encoder(copy, backbone=str(other))
    assert load_encoder(copy, backbone=str(other), verify_backbone=False).output_dim == 384


@pytest.mark.parametrize("key, value", [("output_dim", 10_000_000_000), ("hidden_dim", 10**11),
                                        ("rank", 0), ("rank", 2.5)])
def test_sizes_in_encoder_json_are_bounded_before_allocating(copy, key, value):
    header = json.loads((copy / "encoder.json").read_text())
    _rewrite(copy, config={**header["config"], key: value})
    with pytest.raises(CheckpointError, match=rf"config\['{key}'\] is .*DEEPALIGN_MAX_DIM"):
        load_encoder(copy)


def test_an_over_large_encoder_json_is_refused_before_it_is_read(copy, monkeypatch):
    monkeypatch.setenv("DEEPALIGN_MAX_HEADER_MB", "1")
    _rewrite(copy, training={"padding": "x" * 2**21})
    with pytest.raises(CheckpointError, match=r"encoder\.json: 2 MiB, above the 1 MiB .*"
                                              "DEEPALIGN_MAX_HEADER_MB"):
        load_encoder(copy)
    monkeypatch.setenv("DEEPALIGN_MAX_HEADER_MB", "4")
    assert load_encoder(copy).output_dim == 384


def test_a_training_record_that_is_not_an_object_is_refused(copy):
    _rewrite(copy, training=5)
    with pytest.raises(CheckpointError, match="'training' should be a JSON object but is int"):
        load_encoder(copy)


def test_deeply_nested_encoder_json(copy):
    (copy / "encoder.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="nested too deeply"):
        load_encoder(copy)


def test_non_finite_weights_are_refused_naming_the_file(copy):
    tensors = load_file(str(copy / "encoder.safetensors"))
    name = next(iter(tensors))
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    _rewrite(copy, tensors=tensors)
    with pytest.raises(CheckpointError, match=rf"encoder\.safetensors: tensor '{name}' holds NaN"):
        load_encoder(copy)
