"""Study recipes: the shipped ones load; bad ones fail naming the file and key (exit 2)."""

from pathlib import Path

import pytest

from deepalign.errors import ConfigError
from deepalign.studies.config import level_list, load_study_config, seed_list
from deepalign.study import main as study_main

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "study"


@pytest.mark.parametrize(
    "name", ["quick", "synthetic", "synthetic_long", "real", "trained", "act853"]
)
def test_shipped_recipes_load(name):
    config = load_study_config(RECIPES / f"{name}.yaml")
    assert config.source.endswith(f"{name}.yaml")
    assert any(s is not None for s in (config.synthetic, config.real, config.trained))


def test_quick_recipe_has_all_three_studies():
    config = load_study_config(RECIPES / "quick.yaml")
    assert config.synthetic is not None and config.real is not None
    assert config.trained is not None and config.trained.transfer is not None
    assert len(level_list(config.synthetic.levels)) >= 11
    assert set(config.synthetic.agents) >= {"gp-ts", "kernel-regression", "svr",
                                            "independent-ts"}


def test_helpers():
    assert seed_list(3) == (0, 1, 2) and seed_list((5, 7)) == (5, 7)
    assert level_list(11)[0] == 0.0 and level_list(11)[-1] == 1.0 and len(level_list(11)) == 11
    assert level_list((0.5,)) == (0.5,)


BAD = [
    ("seeds: 2\nsynthetic: {levelz: 3}\n", "synthetic.levelz"),
    ("seedz: 2\nsynthetic: {}\n", "seedz"),
    ("horizon: ten\nsynthetic: {}\n", "horizon"),
    ("horizon: 1.5\nsynthetic: {}\n", "horizon"),
    ("synthetic: {agents: gp-ts}\n", "synthetic.agents"),
    ("synthetic: {agents: [gp-ts, thompson]}\n", "synthetic.agents[1]"),
    ("synthetic: {dataset: no-such-set}\n", "synthetic.dataset"),
    ("real: {kernels: [human, bert]}\n", "real.kernels[1]"),
    ("real: {aligned_encoder: null}\n", "real.aligned_encoder"),
    ("synthetic: {levels: [0.5, 1.5]}\n", "synthetic.levels"),
    ("heldout_fraction: 1.0\nsynthetic: {}\n", "heldout_fraction"),
    ("seeds: 2\n", "no study section"),
    ("trained: {transfer: {test_datasets: [mfv, nope]}}\n", "test_datasets[1]"),
    ("synthetic: [1, 2]\n", "synthetic"),
    ("- a\n- b\n", "top level"),
    ("synthetic: {levels: [0.5\n", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "key"), BAD)
def test_bad_recipes_name_file_and_key(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_study_config(path)
    assert str(path) in str(error.value)
    assert key in str(error.value)


def test_cli_exits_2_naming_file_and_key(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("synthetic: {agents: [gp-ts, thompson]}\n")
    assert study_main([str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    message = capsys.readouterr().err
    assert str(path) in message and "synthetic.agents[1]" in message and "thompson" in message
    assert not (tmp_path / "out").exists()  # no partial output
    assert study_main([str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_unknown_value_exits_2_before_writing(tmp_path, capsys):
    path = tmp_path / "value.yaml"
    path.write_text("real: {values: [act_evaluation, act_evalution], kernels: [human]}\n")
    assert study_main([str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    message = capsys.readouterr().err
    assert str(path) in message and "real.values[1]" in message and "act_evalution" in message
    assert not (tmp_path / "out").exists()
