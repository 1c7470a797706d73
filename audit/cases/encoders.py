"""Exported encoder directories (given to `python -m deepalign.bandit --kernel DIR`) and
training checkpoints (given to `python -m deepalign.train --ckpt_path FILE`)."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from pathlib import Path

from audit.fixtures import QUICK_TRAIN, Fixtures
from audit.harness import Case

NEEDS = ("encoder", "checkpoint")

BANDIT = ("deepalign.bandit", "--seeds", "1", "--horizon", "3", "--no-progress", "--kernel")


# ------------------------------------------------------------------ encoder directories


def _copy(source="encoder"):
    def write(path: Path, fx: Path) -> None:
        shutil.copytree(fx / source, path)
    return write


def _header(path: Path) -> dict:
    return json.loads((path / "encoder.json").read_text())


def _save_header(path: Path, header: dict) -> None:
    (path / "encoder.json").write_text(json.dumps(header))


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file
    return load_file(str(path / "encoder.safetensors"))


def _rewrite(path: Path, tensors: dict, **changes) -> None:
    """Rewrite the weights consistently (header shapes, size and digest follow)."""
    from safetensors.torch import save_file
    header = _header(path)
    weights = path / "encoder.safetensors"
    save_file(tensors, str(weights))
    header["tensors"] = {name: {"shape": list(v.shape), "dtype": str(v.dtype).split(".")[-1]}
                         for name, v in tensors.items()}
    header["weights_bytes"] = weights.stat().st_size
    header["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    header.update(changes)
    _save_header(path, header)


def _mutated(edit, source="encoder"):
    """A copy of the fixture export, then `edit(directory)`."""
    def write(path: Path, fx: Path) -> None:
        _copy(source)(path, fx)
        edit(path)
    return write


def _set(*keys, value):
    """Set header[keys[0]][keys[1]]... = value (a missing key is created)."""
    def edit(path):
        header = _header(path)
        node = header
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
        _save_header(path, header)
    return edit


def _drop(key):
    def edit(path):
        header = _header(path)
        header.pop(key, None)
        _save_header(path, header)
    return edit


def _raw_header(text: str | bytes):
    def edit(path):
        data = text.encode() if isinstance(text, str) else text
        (path / "encoder.json").write_bytes(data)
    return edit


def _weights_bytes(data: bytes):
    def edit(path):
        (path / "encoder.safetensors").write_bytes(data)
    return edit


def _truncate_weights(path):
    weights = path / "encoder.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])


def _tamper_weights(path):
    weights = path / "encoder.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))


def _tensor_edit(change):
    def edit(path):
        tensors = _tensors(path)
        change(tensors)
        _rewrite(path, tensors)
    return edit


def _first(tensors):
    return sorted(tensors)[0]


def _nan(tensors):
    tensors[_first(tensors)][0] = float("nan")


def _inf(tensors):
    tensors[_first(tensors)][0] = float("inf")


def _drop_tensor(tensors):
    tensors.pop(_first(tensors))


def _extra_tensor(tensors):
    import torch
    tensors["head.extra"] = torch.zeros(3)


def _reshape(tensors):
    name = _first(tensors)
    tensors[name] = tensors[name].flatten()[:-1].clone()


def _half(tensors):
    name = _first(tensors)
    tensors[name] = tensors[name].half()


def _pickle_weights(path):
    class Marker:
        def __reduce__(self):
            return (Path.touch, (path.parent / "PWNED",))
    (path / "encoder.safetensors").write_bytes(pickle.dumps({"w": Marker()}))


def _symlink_loop(path):
    (path / "encoder.json").unlink()
    (path / "encoder.json").symlink_to("encoder.json")


def _header_dir(path):
    (path / "encoder.json").unlink()
    (path / "encoder.json").mkdir()


def _weights_dir(path):
    (path / "encoder.safetensors").unlink()
    (path / "encoder.safetensors").mkdir()


def _nested(path):
    text = json.dumps(_header(path))[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (path / "encoder.json").write_text(text)


def _huge_header(path):
    header = _header(path)
    header["training"] = {"padding": "x" * 40 * 2**20}
    _save_header(path, header)


def _duplicate_key(path):
    text = (path / "encoder.json").read_text()
    (path / "encoder.json").write_text(text[:-1] + ', "class_name": "LexicalEncoder"}')


def _empty_dir(path, fx):
    path.mkdir()


def _a_file(path, fx):
    path.write_text("not a directory\n")


def _pwned(case_dir, output):
    return "the pickle ran" if (case_dir / "PWNED").exists() else None


def _enc(id, content, names=("enc",), expect="refuse", check=None, note="", extra=()):
    files = {} if content is None else {"enc": content}
    return Case(id, (*BANDIT, "enc", *extra), files=files, names=names, expect=expect,
                check=check, note=note)


ENCODER_CASES = [
    _enc("valid", _copy(), expect="accept"),
    _enc("valid-lexical", _copy("lexical"), expect="accept"),
    _enc("missing-dir", None),
    _enc("empty-dir", _empty_dir),
    _enc("a-file", _a_file),
    _enc("no-header", _mutated(lambda p: (p / "encoder.json").unlink())),
    _enc("no-weights", _mutated(lambda p: (p / "encoder.safetensors").unlink())),
    _enc("header-empty", _mutated(_raw_header(""))),
    _enc("header-not-json", _mutated(_raw_header("{'class': SentenceEncoder"))),
    _enc("header-a-list", _mutated(_raw_header("[1, 2, 3]"))),
    _enc("header-not-utf-8", _mutated(_raw_header(b'{"class": "caf\xe9"}'))),
    _enc("header-deeply-nested", _mutated(_nested)),
    _enc("header-40-mib", _mutated(_huge_header)),
    _enc("header-duplicate-key", _mutated(_duplicate_key)),
    _enc("header-nan-literal", _mutated(_set("weights_bytes", value=float("nan")))),
    _enc("header-symlink-loop", _mutated(_symlink_loop)),
    _enc("header-a-directory", _mutated(_header_dir)),
    _enc("format-wrong", _mutated(_set("format", value="pytorch"))),
    _enc("format-version-future", _mutated(_set("format_version", value=99))),
    _enc("class-unknown", _mutated(_set("class_name", value="BertEncoder"))),
    _enc("class-missing", _mutated(_drop("class_name"))),
    _enc("class-a-number", _mutated(_set("class_name", value=7))),
    _enc("output-dim-1e10", _mutated(_set("config", "output_dim", value=10_000_000_000))),
    _enc("hidden-dim-1e11", _mutated(_set("config", "hidden_dim", value=100_000_000_000))),
    _enc("output-dim-negative", _mutated(_set("config", "output_dim", value=-4))),
    _enc("output-dim-word", _mutated(_set("config", "output_dim", value="wide"))),
    _enc("rank-zero", _mutated(_set("config", "rank", value=0))),
    _enc("rank-1e10", _mutated(_set("config", "rank", value=10_000_000_000))),
    _enc("head-unknown", _mutated(_set("config", "head", value="transformer"))),
    _enc("config-not-a-dict", _mutated(_set("config", value=[1, 2]))),
    _enc("config-unknown-key", _mutated(_set("config", "layers", value=12))),
    _enc("weights-sha-mismatch", _mutated(_tamper_weights)),
    _enc("weights-bytes-mismatch", _mutated(_set("weights_bytes", value=12))),
    _enc("weights-truncated", _mutated(_truncate_weights)),
    _enc("weights-random-bytes", _mutated(_weights_bytes(bytes(range(256)) * 8))),
    _enc("weights-empty", _mutated(_weights_bytes(b""))),
    _enc("weights-a-pickle", _mutated(_pickle_weights), check=_pwned),
    _enc("weights-a-directory", _mutated(_weights_dir)),
    _enc("tensor-missing", _mutated(_tensor_edit(_drop_tensor))),
    _enc("tensor-extra", _mutated(_tensor_edit(_extra_tensor))),
    _enc("tensor-wrong-shape", _mutated(_tensor_edit(_reshape))),
    _enc("tensor-half-precision", _mutated(_tensor_edit(_half)), expect="accept",
         note="listed as float16 in the header too; loaded into the float32 encoder"),
    _enc("tensor-nan", _mutated(_tensor_edit(_nan))),
    _enc("tensor-inf", _mutated(_tensor_edit(_inf))),
    _enc("header-shapes-disagree", _mutated(_set("tensors", value={"x": {"shape": [1],
                                                                        "dtype": "float32"}}))),
    _enc("backbone-fingerprint-mismatch", _mutated(_set("backbone", "sha256", value="0" * 64))),
    _enc("training-not-a-dict", _mutated(_set("training", value=5))),
    _enc("lexical-vocabulary-broken", _mutated(_set("config", "vocabulary", value="abc"),
                                               source="lexical")),
]


# ------------------------------------------------------------------ training checkpoints

RESUME = ("deepalign.train", *QUICK_TRAIN, "--trainer.max_epochs", "2",
          "--trainer.default_root_dir", "runs", "--ckpt_path")


def _ckpt(edit=None, digest=False):
    """The fixture's last.ckpt (and, with digest, its .sha256 beside it), then `edit(dict)`
    on the loaded checkpoint, saved back with torch.save (no digest then)."""
    def write(path: Path, fx: Path) -> None:
        source = fx / Fixtures.CHECKPOINT
        if edit is None:
            shutil.copy(source, path)
            if digest:
                shutil.copy(source.with_name(source.name + ".sha256"),
                            path.with_name(path.name + ".sha256"))
            return
        import torch
        checkpoint = torch.load(source, map_location="cpu", weights_only=False)
        edit(checkpoint)
        torch.save(checkpoint, path)
    return write


def _state(change):
    def edit(checkpoint):
        change(checkpoint["state_dict"])
    return edit


def _first_weight(state):
    return next(k for k, v in state.items() if v.is_floating_point())


def _ckpt_nan(state):
    state[_first_weight(state)].view(-1)[0] = float("nan")


def _ckpt_rename(state):
    key = _first_weight(state)
    state[key.replace("encoder", "backbone_")] = state.pop(key)


def _ckpt_shape(state):
    key = _first_weight(state)
    state[key] = state[key].flatten()[:-1].clone()


def _optimizer_shapes(checkpoint):
    import torch
    states = checkpoint["optimizer_states"][0]["state"]
    for entry in states.values():
        for name in list(entry):
            if name != "step":
                entry[name] = torch.zeros(2, 2)


def _tampered_with_digest(path: Path, fx: Path) -> None:
    _ckpt(digest=True)(path, fx)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _ckpt_pickle(path: Path, fx: Path) -> None:
    class Marker:
        def __reduce__(self):
            return (Path.touch, (path.parent / "PWNED",))
    import torch
    torch.save({"state_dict": Marker()}, path)


def _ckpt_bytes(data: bytes):
    def write(path, fx):
        path.write_bytes(data)
    return write


def _ckpt_truncated(path, fx):
    source = fx / Fixtures.CHECKPOINT
    path.write_bytes(source.read_bytes()[: source.stat().st_size // 2])


def _ckpt_plain_state(path, fx):
    import torch
    checkpoint = torch.load(fx / Fixtures.CHECKPOINT, map_location="cpu", weights_only=False)
    torch.save(checkpoint["state_dict"], path)


def _ckpt_dir(path, fx):
    path.mkdir()


def _set_key(key, value):
    def edit(checkpoint):
        checkpoint[key] = value
    return edit


def _drop_key(key):
    def edit(checkpoint):
        checkpoint.pop(key)
    return edit


def _finished_run(case_dir, output):
    summaries = list((case_dir / "runs").glob("*/version_*/summary.json"))
    return None if summaries else "no summary.json: the resumed run did not finish"


def _ck(id, content, names=("run.ckpt",), expect="refuse", check=None, note="", extra=()):
    files = {} if content is None else {"run.ckpt": content}
    return Case(id, (*RESUME, "run.ckpt", *extra), files=files, names=names, expect=expect,
                check=check, note=note)


CHECKPOINT_CASES = [
    _ck("ckpt-valid-resume", _ckpt(digest=True), expect="accept", check=_finished_run),
    _ck("ckpt-missing", None),
    _ck("ckpt-empty", _ckpt_bytes(b"")),
    _ck("ckpt-random-bytes", _ckpt_bytes(bytes(range(256)) * 16)),
    _ck("ckpt-truncated", _ckpt_truncated),
    _ck("ckpt-a-directory", _ckpt_dir),
    _ck("ckpt-zip-not-torch", _ckpt_bytes(b"PK\x05\x06" + bytes(18))),
    _ck("ckpt-pickle-with-code", _ckpt_pickle, check=_pwned),
    _ck("ckpt-tampered-digest", _tampered_with_digest),
    _ck("ckpt-plain-state-dict", _ckpt_plain_state),
    _ck("ckpt-other-architecture", _ckpt(_state(_ckpt_rename))),
    _ck("ckpt-wrong-shape", _ckpt(_state(_ckpt_shape))),
    _ck("ckpt-nan-weights", _ckpt(_state(_ckpt_nan))),
    _ck("ckpt-optimizer-shapes", _ckpt(_optimizer_shapes)),
    _ck("ckpt-optimizer-empty", _ckpt(_set_key("optimizer_states", []))),
    _ck("ckpt-loops-bogus", _ckpt(_set_key("loops", "x"))),
    _ck("ckpt-loops-missing", _ckpt(_drop_key("loops"))),
    _ck("ckpt-state-dict-missing", _ckpt(_drop_key("state_dict"))),
    _ck("ckpt-epoch-negative", _ckpt(_set_key("epoch", -4))),
    _ck("ckpt-global-step-word", _ckpt(_set_key("global_step", "many"))),
    _ck("ckpt-other-head", _ckpt(digest=True), extra=("--model.encoder.init_args.head", "mlp"),
        note="resumed with other --model options than the run that wrote it"),
]

CASES = ENCODER_CASES + CHECKPOINT_CASES
