"""A recipe's `benchmark` section: run after the grid into OUT/benchmark, once; shown in the
report; bad sections refused naming the key."""

import json

import pytest

from deepalign.errors import ConfigError
from deepalign.reports.build import build_report
from deepalign.studies import load_study_config, run_study

RECIPE = """
name: bench-test
seeds: 1
horizon: 10
real:
  dataset: spa-verb-act
  values: [act_evaluation]
  kernels: [glove]
  agents: [gp-ts]
  aligned_encoder: null
  length_control: false
benchmark:
  encoders: [glove, minilm]
  values: [act_evaluation]
  seeds: 2
  horizon: 20
"""


def test_benchmark_section_runs_once_and_reaches_the_report(tmp_path):
    (tmp_path / "recipe.yaml").write_text(RECIPE)
    config = load_study_config(tmp_path / "recipe.yaml")
    out = tmp_path / "out"
    logs: list[str] = []
    run_study(config, out, progress=False, log=logs.append)
    data = json.loads((out / "benchmark" / "benchmark.json").read_text())
    rows = {row["encoder"]: row for row in data["rows"]}
    assert rows["glove"]["alignment"]["sts-captions"] == pytest.approx(0.502, abs=0.005)
    assert rows["minilm"]["alignment"]["spa-verb"] == pytest.approx(0.233, abs=0.005)
    assert rows["minilm"]["safe_general_score"]["n_runs"] == 2
    again: list[str] = []
    run_study(config, out, progress=False, log=again.append)
    assert any("benchmark: already written" in line for line in again)
    text = build_report(out).markdown.read_text()
    assert "## Encoder benchmark" in text
    assert "| glove | 0.160 |" in text


@pytest.mark.parametrize("section, key", [
    ("{encoders: [nope]}", "benchmark.encoders[0]"),
    ("{encoders: [trained]}", "benchmark.encoders[0]"),
    ("{encoders: [glove], values: [taste]}", "benchmark.values[0]"),
    ("{encoders: [glove], seeds: 0}", "benchmark.seeds"),
    ("{encoders: []}", "benchmark.encoders"),
])
def test_bad_benchmark_sections_name_the_key(tmp_path, section, key):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(f"real: {{kernels: [glove], aligned_encoder: null}}\nbenchmark: {section}\n")
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_study_config(recipe)
