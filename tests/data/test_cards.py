"""Your own data through every command (issue 15): `open_dataset` on a bundled name, an
items CSV in the paper's layout and a dataset card (YAML and TOML); every bad card is a
clear error naming the card and key; `deepalign.bandit`, `deepalign.train` and a study
recipe take the card, and a refused run writes nothing."""

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from deepalign.bandit import main as bandit_main
from deepalign.data import dataset_label, open_dataset, read_card
from deepalign.errors import ConfigError, DataError, DeepAlignError
from deepalign.study import main as study_main
from deepalign.train import main as train_main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "synthetic_actions"
CARD = EXAMPLE / "card.yaml"
CSV, NPY = EXAMPLE / "actions.csv", EXAMPLE / "survey_similarity.npy"


def _quiet(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call(*args, **kwargs)


def test_the_example_is_in_the_papers_layout():
    data = _quiet(open_dataset, CSV, NPY)
    assert len(data.items) == 50 and data.similarity.matrix.shape == (50, 50)
    assert data.values.n_values == 10
    assert data.values.scales == ((0.0, 100.0),) * 10      # no card, no option: the paper's
    assert data.values.thresholds.tolist() == [50.0] * 10
    assert any("paper's layout" in note for note in data.info["notes"])


def test_the_example_is_what_its_generator_writes(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_example", EXAMPLE / "make.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    assert (tmp_path / "actions.csv").read_bytes() == CSV.read_bytes()
    # exp() may differ in the last bit between numpy builds
    assert np.allclose(np.load(tmp_path / "survey_similarity.npy"), np.load(NPY), atol=1e-12)


def test_card_yaml_and_toml_give_the_csv_dataset(tmp_path):
    plain = _quiet(open_dataset, CSV, NPY)
    card = open_dataset(CARD)
    assert card.name == "synthetic-actions" and dataset_label(CARD) == "synthetic-actions"
    for copy in (CSV, NPY):
        shutil.copy(copy, tmp_path)
    toml = tmp_path / "mine.toml"
    toml.write_text('items = "actions.csv"\nsimilarity = "survey_similarity.npy"\n'
                    'text_column = "action"\n[values.justice]\nscale = [0, 100]\n'
                    'threshold = 40\n[values.care]\nscale = [0, 100]\n')
    from_toml = open_dataset(toml)
    assert from_toml.values.names == ("justice", "care")
    assert from_toml.values.thresholds.tolist() == [40.0, 50.0]
    for data in (card, from_toml):
        assert data.items.texts == plain.items.texts
        assert torch.equal(data.similarity.matrix, plain.similarity.matrix)
    k = plain.values.names.index("justice")
    assert np.array_equal(from_toml.values.ratings[:, 0], plain.values.ratings[:, k])


def test_a_bundled_name_and_unknown_specs():
    assert len(open_dataset("spa-verb-act", values=("act_evaluation",)).items) > 100
    with pytest.raises(ConfigError, match="bundled dataset name.*items CSV.*dataset card"):
        open_dataset("spa-verb-actt")
    with pytest.raises(ConfigError, match="only an items CSV takes a similarity file"):
        open_dataset("spa-verb", NPY)
    with pytest.raises(DataError, match="nope.yaml: no such file"):
        open_dataset("nope.yaml")


def _card(tmp_path: Path, text: str, name: str = "card.yaml") -> Path:
    for copy in (CSV, NPY):
        shutil.copy(copy, tmp_path)
    path = tmp_path / name
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return path


BASE = "items: actions.csv\nsimilarity: survey_similarity.npy\n"
BAD_CARDS = {
    "unknown key": (BASE + "simlarity: x.npy\n", ["simlarity", "one of the keys"]),
    "no items": ("similarity: survey_similarity.npy\n", ["items: missing"]),
    "items missing": ("items: gone.csv\n", ["items: no such file", "gone.csv"]),
    "similarity missing": ("items: actions.csv\nsimilarity: gone.npy\n",
                           ["similarity: no such file"]),
    "scale not a pair": (BASE + "scale: 100\n", ["scale: expected a [LO, HI] pair"]),
    "scale reversed": (BASE + "scale: [100, 0]\n", ["scale: expected finite numbers"]),
    "threshold text": (BASE + "threshold: high\n", ["threshold: expected a finite number"]),
    "values a string": (BASE + "values: justice\n", ["values: expected a list"]),
    "value setting typo": (BASE + "values: {justice: {scal: [0, 100]}}\n",
                           ["values.justice.scal", "one of scale"]),
    "value not in csv": (BASE + "values: [justise]\n", ["justise", "actions.csv"]),
    "rating outside scale": (BASE + "scale: [0, 10]\n", ["actions.csv", "rating"]),
    "bad kind": (BASE + "kind: similar\n", ["card.yaml: kind: expected 'similarity'"]),
    "bad yaml": (BASE + "values: [a, b\n", ["not valid YAML"]),
    "not a mapping": ("- items\n- x\n", ["expected a mapping"]),
    "empty": ("", ["expected a mapping", "empty file"]),
    "not utf-8": (b"items: \xff\xfe.csv\n", ["not UTF-8"]),
    "ignore_diagonal text": (BASE + "ignore_diagonal: maybe\n", ["true or false"]),
    "value twice": (BASE + "values: [care, care]\n", ["values: expected each value column "
                                                       "once"]),
    "duplicated key": (BASE + "items: other.csv\n", ["key 'items' appears twice",
                                                     "first at line 1"]),
    "threshold outside the scale": (BASE + "scale: [0, 100]\nthreshold: 150\n", [
        "card.yaml: thresholds['morality'] (a card's 'threshold' key",
        "within the scale [0, 100]"]),
    "one value's threshold outside": (BASE + "values: {care: {scale: [0, 100], threshold: "
                                      "-1}}\n", ["thresholds['care']", "got -1"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CARDS))
def test_bad_card_is_a_clear_error(tmp_path, case):
    text, parts = BAD_CARDS[case]
    path = _card(tmp_path, text.encode() if isinstance(text, str) and case != "not utf-8"
                 else text)
    with pytest.raises(DeepAlignError) as info:
        _quiet(open_dataset, path)
    message = str(info.value)
    for part in parts:
        assert part in message, (part, message)
    assert "Fix:" in message and "\n" not in message
    assert str(tmp_path) in message  # names the card or the file it points to


def test_bad_toml_card(tmp_path):
    path = _card(tmp_path, 'items = "actions.csv"\nscale = [0, \n', "card.toml")
    with pytest.raises(DataError, match="card.toml: not valid TOML"):
        read_card(path)


# ------------------------------------------------------------------ the three commands


def test_bandit_takes_the_card_and_records_metrics(tmp_path, capsys):
    out = tmp_path / "out.json"
    assert bandit_main(["--dataset", str(CARD), "--value", "justice", "--seeds", "4",
                        "--horizon", "20", "--json", str(out)]) == 0
    assert "synthetic-actions / justice" in capsys.readouterr().out
    payload = json.loads(out.read_text())
    assert 0.0 <= payload["metrics"]["bad_actions"]["mean"] <= 20.0


def test_bandit_takes_csv_and_similarity(tmp_path):
    out = tmp_path / "out.json"
    assert _quiet(bandit_main, ["--dataset", str(CSV), "--similarity", str(NPY), "--value",
                                "care", "--seeds", "2", "--horizon", "10",
                                "--json", str(out)]) == 0
    assert json.loads(out.read_text())["settings"]["dataset"] == str(CSV)


@pytest.mark.parametrize("case", ["unknown key", "value not in csv", "bad yaml"])
def test_bandit_refuses_a_bad_card(tmp_path, capsys, case):
    path = _card(tmp_path, BAD_CARDS[case][0])
    out = tmp_path / "out.json"
    assert bandit_main(["--dataset", str(path), "--seeds", "2", "--horizon", "5",
                        "--json", str(out)]) == 2
    assert str(path.parent) in capsys.readouterr().err
    assert not out.exists()


def test_train_takes_csv_and_similarity_and_a_card(tmp_path):
    common = ["--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
              "--data.pool_size", "0"]
    assert _quiet(train_main, [*common, "--data.dataset", str(CSV), "--data.similarity",
                               str(NPY), "--trainer.default_root_dir", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "actions" / "version_0" / "summary.json").read_text())
    assert summary["sizes"]["items"]["all"] == 50
    assert summary["sizes"]["pairs"]["fit"] > 0


@pytest.mark.parametrize("case", ["unknown key", "items missing", "scale reversed"])
def test_train_refuses_a_bad_card_and_writes_nothing(tmp_path, capsys, case):
    (tmp_path / "data").mkdir()
    path = _card(tmp_path / "data", BAD_CARDS[case][0])
    root = tmp_path / "runs"
    assert train_main(["--data.dataset", str(path), "--trainer.default_root_dir",
                       str(root)]) == 2
    assert "card.yaml" in capsys.readouterr().err
    assert not root.exists()


def _recipe(tmp_path: Path, dataset: Path, values: str = "[justice, care]") -> Path:
    path = tmp_path / "own.yaml"
    path.write_text(f"name: own\nseeds: 2\nhorizon: 10\nreal:\n  dataset: {dataset}\n"
                    f"  values: {values}\n  kernels: [human, constant]\n  agents: [gp-ts]\n"
                    f"synthetic:\n  dataset: {dataset}\n  values: [justice]\n  levels: 2\n"
                    "  agents: [gp-ts]\n")
    return path


def test_a_study_recipe_names_the_card(tmp_path):
    out = tmp_path / "out"
    assert study_main([str(_recipe(tmp_path, CARD)), "--out", str(out), "--no-progress"]) == 0
    lines = (out / "results.csv").read_text().splitlines()
    header = lines[0].split(",")
    datasets = {line.split(",")[header.index("dataset")] for line in lines[1:]}
    assert datasets == {str(CARD)}
    studies = [line.split(",")[header.index("study")] for line in lines[1:]]
    # real: (2 values + the length control) x 2 kernels x 2 seeds; synthetic: (2 levels +
    # the constant and identity references) x 2 seeds
    assert (studies.count("real"), studies.count("synthetic")) == (12, 8)


@pytest.mark.parametrize("case", ["unknown key", "value not in csv"])
def test_a_recipe_with_a_bad_card_writes_nothing(tmp_path, capsys, case):
    (tmp_path / "data").mkdir()
    card = _card(tmp_path / "data", BAD_CARDS[case][0])
    out = tmp_path / "out"
    assert study_main([str(_recipe(tmp_path, card)), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "own.yaml" in error and ("real.dataset" in error or "synthetic.dataset" in error)
    assert not out.exists()


def test_a_recipe_value_the_card_lacks(tmp_path, capsys):
    out = tmp_path / "out"
    assert study_main([str(_recipe(tmp_path, CARD, "[justice, carez]")), "--out",
                       str(out)]) == 2
    assert "real.values[1]" in capsys.readouterr().err
    assert not out.exists()


def test_validate_takes_a_card_and_refuses_options_beside_it(capsys):
    from deepalign.data.__main__ import main as data_main

    assert data_main(["validate", str(CARD)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok: synthetic-actions: 50 items")
    assert "value justice: scale [0, 100], threshold 50" in out
    assert data_main(["validate", str(CARD), "--scale", "0,10"]) == 2
    assert "got --scale beside it" in capsys.readouterr().err


def test_the_shipped_own_data_recipe_is_valid(monkeypatch):
    from deepalign.studies.config import load_study_config

    monkeypatch.chdir(EXAMPLE.parents[1])  # its paths are relative to the repository root
    config = load_study_config("configs/study/own_data.yaml")
    assert config.real.dataset == "examples/synthetic_actions/card.yaml"


def test_a_likert_file_with_an_action_column_is_not_the_papers_layout(tmp_path):
    path = tmp_path / "likert.csv"
    path.write_text("id,action,care\na,hug someone,6\nb,hit someone,1\nc,help someone,7\n")
    with pytest.warns(UserWarning, match="not declared; using the observed range"):
        data = open_dataset(path)
    assert data.values.scales == ((1.0, 7.0),) and data.values.thresholds.tolist() == [4.0]
