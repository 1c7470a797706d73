"""Study 2 across language models: zoo kernels pretrained and aligned in the study (trained
by the real trainer), the cross-model analysis and its report section."""

import json
import math

import pytest

from deepalign.errors import ConfigError
from deepalign.reports.build import build_report
from deepalign.studies import load_study_config, read_table, run_study
from deepalign.studies.encoders import encoder_directory
from deepalign.studies.models_analysis import analyse_models

RECIPE = """
name: models-test
seeds: 2
horizon: 15
real:
  dataset: spa-verb-act
  values: [act_evaluation, act_potency]
  kernels: [minilm, glove, minilm-l3, aligned-glove, aligned-minilm-l3, constant]
  agents: [gp-ts]
  aligned_encoder: null
  length_control: false
  train_dataset: spa-verb
  train_args: [--trainer.max_epochs=5, --data.pool_size=100]
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    (root / "recipe.yaml").write_text(RECIPE)
    config = load_study_config(root / "recipe.yaml")
    logs: list[str] = []
    run = run_study(config, root / "out", progress=False, log=logs.append)
    return config, root / "out", run, logs


def test_aligned_zoo_encoders_are_trained_once_with_their_backbone(study):
    config, out, _, logs = study
    for name in ("glove", "minilm-l3"):
        directory = encoder_directory(out / "encoders" / "models" / name)
        export = json.loads((directory / "encoder.json").read_text())
        assert export["config"]["backbone"] == name
    records = json.loads((out / "encoder_runs.json").read_text())
    assert {r["study"] for r in records["runs"]} == {"models:glove", "models:minilm-l3"}
    again: list[str] = []
    run_study(config, out, progress=False, log=again.append)  # resumes: nothing retrained
    assert sum("training encoder" in line for line in logs) == 2
    assert not any("training encoder" in line for line in again)


def test_alignment_training_raises_the_personalization_alignment(study):
    table = read_table(study[2].table)
    # 5 epochs move minilm-l3 (GloVe's 50-dim head needs longer: not asserted)
    before = table.where(kernel="minilm-l3", value="act_evaluation").column("alignment_train")
    after = table.where(kernel="aligned-minilm-l3",
                        value="act_evaluation").column("alignment_train")
    assert after[0] > before[0] + 0.01


def test_cross_model_analysis_counts_points_and_encoders(study):
    analysis = analyse_models(read_table(study[2].table))
    assert analysis.kernels == ("minilm", "glove", "minilm-l3", "aligned-glove",
                                "aligned-minilm-l3")
    assert analysis.n_points == 10  # 5 zoo kernels x 2 values; constant is a reference row
    result = analysis.correlations[("gp-ts", "alignment_all")]["safe_general_score"]
    assert result.n == 10 and math.isfinite(result.rho)
    assert analysis.per_encoder["gp-ts"]["safe_general_score"].n == 5
    assert analysis.within[("gp-ts", "pretrained")]["safe_general_score"].n == 3
    assert analysis.within[("gp-ts", "aligned")]["safe_general_score"].n == 2
    gain = analysis.training["gp-ts"]["glove"]["safe_general_score"]
    assert gain == pytest.approx(analysis.scores[("gp-ts", "aligned-glove")]["safe_general_score"]
                                 - analysis.scores[("gp-ts", "glove")]["safe_general_score"])
    assert ("gp-ts", "constant") in analysis.references
    minilm = analysis.alignment["minilm"]["alignment_all"]
    assert minilm == pytest.approx(0.22, abs=0.03)  # all-MiniLM-L6-v2 on spa-verb-act


def test_report_has_the_cross_model_table_and_figure(study):
    out = study[1]
    report = build_report(out)
    text = report.markdown.read_text()
    assert "### Across language models" in text
    assert "| metric | phase | all pairs | personalization pairs | cross pairs |" in text
    assert "| gp-ts | pretrained encoders only |" in text  # the survival table
    assert (out / "figures" / "models_gp-ts.png").stat().st_size > 10_000


@pytest.mark.parametrize("kernels, extra, key", [
    ("[aligned-bogus]", "", "real.kernels[0]"),
    ("[glove]", "  aligned_runs: {glove: /nowhere}\n", "real.aligned_runs.glove"),
])
def test_bad_model_kernels_name_the_key(tmp_path, kernels, extra, key):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(f"real:\n  kernels: {kernels}\n  aligned_encoder: null\n{extra}")
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load_study_config(recipe)
