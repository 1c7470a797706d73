"""Bad input to `python -m deepalign.study`: recipes and results tables.

Every case exits with code 2, names the file (or option) and says how to fix it, and leaves
the output directory exactly as it was: not created for a bad recipe, untouched for a bad
table in an existing study directory.
"""

import shutil
import sys
import time
from pathlib import Path

import pytest
import torch

from deepalign.errors import ConfigError, DataError
from deepalign.studies import load_study_config, read_table, run_study
from deepalign.studies.distributed import check_address
from deepalign.study import main as study_main

GOOD = """
name: tiny
seeds: 2
horizon: 5
real:
  values: [act_evaluation]
  kernels: [length]
  agents: [gp-ts]
  length_control: false
"""

# (id, recipe text or bytes, what the message must hold besides the file name)
BAD_RECIPES = [
    ("unknown-key", "seedz: 2\nreal: {kernels: [length]}\n", ["'seedz'", "Fix the spelling"]),
    ("unknown-nested-key", "real: {kernelz: [length]}\n", ["'real.kernelz'", "expected one of"]),
    ("wrong-type", "horizon: ten\nreal: {kernels: [length]}\n", ["'horizon'", "should be int"]),
    ("wrong-type-list", "real: {agents: gp-ts}\n", ["'real.agents'", "a list of str"]),
    ("wrong-type-float", "seeds: 2.5\nreal: {kernels: [length]}\n", ["'seeds'", "fix the value"]),
    ("unknown-dataset", "real: {dataset: spa-verbs, kernels: [length]}\n",
     ["'real.dataset'", "'spa-verbs'", "act-behaviors"]),
    ("unknown-agent", "real: {agents: [gp-thompson], kernels: [length]}\n",
     ["'real.agents[0]'", "'gp-thompson'", "gp-ts"]),
    ("unknown-kernel", "real: {kernels: [length, bert]}\n", ["'real.kernels[1]'", "'bert'"]),
    ("unknown-value", "real: {dataset: act-behaviors, values: [morality], kernels: [length]}\n",
     ["'real.values[0]'", "'morality'", "act_evaluation"]),
    ("no-similarity", "real: {dataset: act-behaviors, values: [act_potency], kernels: [human]}\n",
     ["'real.dataset'", "no human similarity", "drop 'human'"]),
    ("bad-range", "memory_budget_mb: 0\nreal: {kernels: [length]}\n",
     ["'memory_budget_mb'", "at least 1"]),
    ("yaml-syntax", "real: {kernels: [length\n", ["not valid YAML", "fix the syntax"]),
    ("empty-file", "", ["empty", "study section"]),
    ("only-comments", "# a recipe\n", ["only comments", "study section"]),
    ("top-level-list", "- real\n- synthetic\n", ["top level", "key: value"]),
    ("not-utf8", b"real: {kernels: [\xff\xfe]}\n", ["not UTF-8", "save the recipe as UTF-8"]),
    ("no-section", "seeds: 3\n", ["no study section", "add at least one"]),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BAD_RECIPES],
                         ids=[c[0] for c in BAD_RECIPES])
def test_bad_recipe_exits_2_names_file_and_fix_and_writes_nothing(tmp_path, capsys, text,
                                                                  expected):
    recipe = tmp_path / "bad.yaml"
    if isinstance(text, bytes):
        recipe.write_bytes(text)
    else:
        recipe.write_text(text)
    out = tmp_path / "out"
    assert study_main([str(recipe), "--out", str(out), "--no-progress"]) == 2
    message = capsys.readouterr().err
    assert message.startswith("error: ") and str(recipe) in message
    for part in expected:
        assert part in message
    assert "Traceback" not in message
    assert not out.exists()


@pytest.mark.parametrize(("make", "expected"), [
    (lambda root: root / "missing.yaml", ["no such config file", "configs/study"]),
    (lambda root: root, ["is a directory", "pass the path of a YAML recipe"]),
], ids=["missing-file", "directory"])
def test_missing_recipe_exits_2(tmp_path, capsys, make, expected):
    path = make(tmp_path)
    assert study_main([str(path), "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err
    assert str(path) in message and all(part in message for part in expected)
    assert not (tmp_path / "out").exists()


def test_ray_options_without_ray_backend_exit_2(tmp_path, capsys):
    recipe = tmp_path / "good.yaml"
    recipe.write_text(GOOD)
    assert study_main([str(recipe), "--out", str(tmp_path / "out"), "--address", "auto"]) == 2
    assert "--backend ray" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_ray_backend_without_ray_installed_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    recipe = tmp_path / "good.yaml"
    recipe.write_text(GOOD)
    assert study_main([str(recipe), "--out", str(tmp_path / "out"), "--backend", "ray"]) == 2
    message = capsys.readouterr().err
    assert "pip install 'deepalign[distributed]'" in message and "--backend local" in message
    assert not (tmp_path / "out").exists()


def test_unreachable_cluster_address_exits_2_fast(tmp_path, capsys):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray session of another test is running in this process")
    recipe = tmp_path / "good.yaml"
    recipe.write_text(GOOD)
    start = time.monotonic()
    code = study_main([str(recipe), "--out", str(tmp_path / "out"), "--backend", "ray",
                       "--address", "127.0.0.1:1"])
    assert code == 2 and time.monotonic() - start < 30
    assert "--address 127.0.0.1:1: nothing answers there" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("address", "expected"), [
    ("my-cluster", "expected HOST:PORT"),
    ("ray://head:port", "expected HOST:PORT"),
    ("127.0.0.1:1", "nothing answers there"),
])
def test_check_address(address, expected):
    with pytest.raises(ConfigError, match=expected):
        check_address(address, timeout=2.0)
    check_address("auto")  # left to Ray


def _first_part(out: Path) -> Path:
    return sorted((out / "parts").glob("*.csv"))[0]


def _other_schema(out):
    path = _first_part(out)
    path.write_text("run,score\n1,0.5\n")
    return path, ["not a deepalign results table", "missing columns", "move this file"]


def _truncated(out):
    path = _first_part(out)
    text = path.read_text()
    path.write_text(text[: len(text) - 12])  # a crash mid-row (not how deepalign writes)
    return path, ["truncated", "delete it (its cells are re-run)"]


def _non_numeric(out):
    path = _first_part(out)
    header, row, *rest = path.read_text().splitlines(keepends=True)
    cells = row.split(",")
    cells[header.split(",").index("mean_reward")] = "high"
    path.write_text("".join([header, ",".join(cells), *rest]))
    return path, ["line 2, column 'mean_reward'", "expected a number", "'high'"]


def _missing_fields(out):
    path = _first_part(out)
    header, row, *rest = path.read_text().splitlines(keepends=True)
    path.write_text("".join([header, ",".join(row.split(",")[:-3]) + "\n", *rest]))
    return path, ["line 2", "fields", "delete it"]


def _empty_part(out):
    path = _first_part(out)
    path.write_text("")
    return path, ["empty", "delete it"]


def _reordered(out):
    path = _first_part(out)
    lines = path.read_text().splitlines(keepends=True)
    names = lines[0].rstrip("\n").split(",")
    names[0], names[1] = names[1], names[0]
    path.write_text(",".join(names) + "\n" + "".join(lines[1:]))
    return path, ["same columns in another order"]


def _foreign_results(out):
    path = out / "results.csv"
    path.write_text("subject,rt\n1,523\n")
    return path, ["not a deepalign results table", "move this file"]


def _damaged_record(out):
    path = out / "study.json"
    path.write_text("{\"settings\": ")
    return path, ["damaged", "delete"]


def _not_a_study(out):
    shutil.rmtree(out)
    out.mkdir()
    (out / "notes.txt").write_text("my thesis\n")
    return out, ["not a study directory", "new or empty --out"]


BAD_TABLES = [
    ("part-other-schema", _other_schema),
    ("part-truncated", _truncated),
    ("part-non-numeric-metric", _non_numeric),
    ("part-missing-fields", _missing_fields),
    ("part-empty", _empty_part),
    ("part-reordered-columns", _reordered),
    ("results-other-schema", _foreign_results),
    ("study-json-damaged", _damaged_record),
    ("not-a-study-directory", _not_a_study),
]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    recipe = root / "good.yaml"
    recipe.write_text(GOOD)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_study(load_study_config(recipe), root / "out", progress=False)
    finally:
        torch.set_num_threads(threads)
    return recipe, root / "out"


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", [c[1] for c in BAD_TABLES], ids=[c[0] for c in BAD_TABLES])
def test_bad_table_exits_2_names_file_and_touches_nothing(finished, tmp_path, capsys, damage):
    recipe, good = finished
    out = shutil.copytree(good, tmp_path / "out")
    path, expected = damage(out)
    before = _snapshot(out)
    assert study_main([str(recipe), "--out", str(out), "--no-progress"]) == 2
    message = capsys.readouterr().err
    assert message.startswith("error: ") and str(path) in message
    for part in expected:
        assert part in message
    assert _snapshot(out) == before  # nothing written, nothing overwritten


def test_read_table_refuses_the_same_damage(finished, tmp_path):
    _, good = finished
    for _, damage in BAD_TABLES[:6]:
        out = shutil.copytree(good, tmp_path / damage.__name__)
        path, expected = damage(out)
        with pytest.raises(DataError) as error:
            read_table(path)
        assert str(path) in str(error.value) and expected[0] in str(error.value)


def test_deleting_the_damaged_part_as_told_resumes_to_the_same_table(finished, tmp_path):
    recipe, good = finished
    out = shutil.copytree(good, tmp_path / "out")
    path, _ = _truncated(out)
    path.unlink()
    assert study_main([str(recipe), "--out", str(out), "--no-progress"]) == 0
    assert (out / "results.csv").read_text() == (good / "results.csv").read_text()
