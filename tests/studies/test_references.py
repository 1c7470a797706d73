"""Reference kernels in every study's grid, the uniformity control's closed form, recipe keys."""

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from deepalign.alignment import spearman_alignment
from deepalign.errors import ConfigError
from deepalign.studies.config import (
    RealStudyConfig,
    StudyConfig,
    SyntheticStudyConfig,
    TrainedStudyConfig,
    TransferConfig,
    load_study_config,
)
from deepalign.studies.encoders import EncoderRun
from deepalign.studies.real import RealPlan
from deepalign.studies.references import (
    REFERENCE_KERNELS,
    mean_off_diagonal,
    reference_matrix,
    uniformity_matched,
    uniformity_weight,
)
from deepalign.studies.sources import StudySources
from deepalign.studies.synthetic import SyntheticPlan
from deepalign.studies.trained import TrainedPlan, TransferPlan

BEFORE = torch.tensor([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]], dtype=torch.float64)


def _brute_mean_off_diagonal(matrix):
    n = matrix.shape[0]
    entries = [float(matrix[i, j]) for i in range(n) for j in range(n) if i != j]
    return sum(entries) / len(entries)


def test_uniformity_weight_closed_form():
    # m_before = (0.2 + 0.4 + 0.6) / 3 = 0.4; a trained kernel with m = 0.7 gives
    # a = (0.7 - 0.4) / (1 - 0.4) = 0.5, and 0.5 + 0.5 * 0.4 = 0.7
    trained = torch.tensor([[1.0, 0.5, 0.8], [0.5, 1.0, 0.8], [0.8, 0.8, 1.0]], dtype=torch.float64)
    assert mean_off_diagonal(BEFORE) == pytest.approx(_brute_mean_off_diagonal(BEFORE)) == 0.4
    assert mean_off_diagonal(trained) == pytest.approx(0.7)
    a = uniformity_weight(trained, BEFORE)
    assert a == pytest.approx(0.5, abs=1e-12)
    control = uniformity_matched(BEFORE, a)
    expected = torch.tensor([[1.0, 0.6, 0.7], [0.6, 1.0, 0.8], [0.7, 0.8, 1.0]],
                            dtype=torch.float64)
    torch.testing.assert_close(control, expected, atol=1e-12, rtol=0)
    assert _brute_mean_off_diagonal(control) == pytest.approx(0.7, abs=1e-12)
    assert torch.linalg.eigvalsh(control).min() > 0  # PSD, unit diagonal
    mask = ~torch.eye(3, dtype=torch.bool)
    reference = torch.tensor([[1.0, 0.1, 0.9], [0.1, 1.0, 0.5], [0.9, 0.5, 1.0]])
    assert spearman_alignment(control, reference, mask) == pytest.approx(
        spearman_alignment(BEFORE, reference, mask))  # same order of pairs


def test_uniformity_weight_edges():
    less_uniform = torch.eye(3, dtype=torch.float64)  # training spread the items apart
    assert uniformity_weight(less_uniform, BEFORE) == 0.0
    torch.testing.assert_close(uniformity_matched(BEFORE, 0.0), BEFORE)
    ones = torch.ones(3, 3, dtype=torch.float64)
    assert uniformity_weight(BEFORE, ones) == 0.0  # before already constant
    assert uniformity_weight(ones, BEFORE) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match="same items"):
        uniformity_weight(torch.eye(4, dtype=torch.float64), BEFORE)
    with pytest.raises(ConfigError, match="'a'"):
        uniformity_matched(BEFORE, 1.5)


def test_reference_matrices():
    ones = torch.ones(3, 3, dtype=torch.float64)
    torch.testing.assert_close(reference_matrix("constant", 3), ones)
    torch.testing.assert_close(reference_matrix("identity", 3), torch.eye(3, dtype=torch.float64))
    with pytest.raises(ConfigError, match="'kernel'"):
        reference_matrix("human", 3)


SOURCES = StudySources(0, 0.3, None)


def test_synthetic_cells_include_the_references():
    section = SyntheticStudyConfig(values=("act_evaluation",), levels=(0.2, 0.9),
                                   agents=("gp-ts", "greedy", "kernel-regression",
                                           "independent-ts"))
    config = StudyConfig(seeds=3, synthetic=section)
    cells = SyntheticPlan(config, SOURCES).cells()
    references = [c for c in cells if c.kernel in REFERENCE_KERNELS]
    assert {c.condition for c in cells} == {"ratings:all"}  # the default variant
    assert len(cells) == 2 * 3 * 3 + 3 + 2 * 3 * 3  # levels, kernel-free, references
    assert {c.kernel for c in references} == set(REFERENCE_KERNELS)
    assert len(references) == 2 * 3 * 3 and all(math.isnan(c.level) for c in references)
    assert {c.agent for c in references} == {"gp-ts", "greedy", "kernel-regression"}
    off = SyntheticPlan(dataclasses.replace(
        config, synthetic=dataclasses.replace(section, references=False)), SOURCES).cells()
    assert [c.cell_id for c in off] == [c.cell_id for c in cells
                                        if c.kernel not in REFERENCE_KERNELS]


def test_real_cells_include_the_references():
    section = RealStudyConfig(values=("act_evaluation",), agents=("gp-ts", "greedy"),
                              kernels=("human", "constant", "identity"), aligned_encoder=None)
    cells = RealPlan(StudyConfig(seeds=2, real=section), SOURCES).cells()
    # (human + length control) x 3 kernels x 2 agents x 2 seeds
    assert len(cells) == 2 * 3 * 2 * 2
    assert sum(c.kernel in REFERENCE_KERNELS for c in cells) == 2 * 2 * 2 * 2


def _run(name: str, seed: int, epochs: int = 6, split_seed: int = 0) -> EncoderRun:
    checkpoints = tuple((float(e), Path(f"/nowhere/{name}{seed}/e{e}.ckpt"))
                        for e in range(1, epochs + 1))
    summary = {"epochs": epochs, "split_seed": split_seed, "heldout_fraction": 0.3}
    return EncoderRun(name, seed, Path(f"/nowhere/{name}{seed}"), Path("/nowhere/encoder"),
                      summary, checkpoints)


def _trained_config(**keys) -> StudyConfig:
    transfer = TransferConfig(train_datasets=("activity-pairs",), test_datasets=("mfv",),
                              values={"mfv": ("acceptability",)})
    section = TrainedStudyConfig(values=("act_evaluation", "glasgow_valence"),
                                 agents=("gp-ts", "greedy"), encoder_seeds=2, dose_points=2,
                                 transfer=transfer, **keys)
    return StudyConfig(seeds=2, trained=section)


def _conditions(cells):
    out = {}
    for cell in cells:
        out[(cell.condition, cell.kernel)] = out.get((cell.condition, cell.kernel), 0) + 1
    return out


def test_trained_cells_include_references_and_uniformity_controls():
    runs = [_run("spa-verb", 0), _run("spa-verb", 1)]
    cells = TrainedPlan(_trained_config(), runs).cells()
    counts = _conditions(cells)
    per_kernel = 2 * 2 * 2  # values x agents x seeds
    assert counts[("paired", "before")] == counts[("paired", "after")] == 2 * per_kernel
    assert counts[("uniformity-control", "uniformity-matched")] == 2 * per_kernel  # final only
    assert counts[("reference", "constant")] == counts[("reference", "identity")] == per_kernel
    assert len(cells) == 2 * 4 * per_kernel + 2 * per_kernel + 2 * per_kernel  # 4 stages
    control = [c for c in cells if c.kernel == "uniformity-matched"]
    assert {c.epoch for c in control} == {6.0} and {c.encoder_seed for c in control} == {0, 1}
    assert all(math.isnan(c.encoder_seed) and math.isnan(c.epoch)
               for c in cells if c.condition == "reference")
    dose = TrainedPlan(_trained_config(uniformity_checkpoints=True), runs).cells()
    assert _conditions(dose)[("uniformity-control", "uniformity-matched")] == 2 * 3 * per_kernel
    off = TrainedPlan(_trained_config(references=False, uniformity_control=False), runs).cells()
    assert [c.cell_id for c in off] == [c.cell_id for c in cells if c.condition == "paired"]


def test_trained_references_follow_each_item_split():
    runs = [_run("spa-verb", 0), _run("spa-verb", 1, split_seed=5)]
    plan = TrainedPlan(_trained_config(), runs)
    assert plan.reference_seeds() == (0.0, 1.0)
    assert sum(c.condition == "reference" for c in plan.cells()) == 2 * 2 * 2 * 2 * 2


def test_transfer_cells_include_references_and_uniformity_controls():
    plan = TransferPlan(_trained_config(), SOURCES, [_run("activity-pairs", 0)])
    counts = _conditions(plan.cells())
    per_kernel = 1 * 2 * 2  # values x agents x seeds
    assert counts == {("activity-pairs", "before"): per_kernel,
                      ("activity-pairs", "after"): per_kernel,
                      ("activity-pairs", "uniformity-matched"): per_kernel,
                      ("reference", "constant"): per_kernel,
                      ("reference", "identity"): per_kernel}
    off = TransferPlan(_trained_config(references=False, uniformity_control=False), SOURCES,
                       [_run("activity-pairs", 0)])
    assert len(off.cells()) == 2 * per_kernel


def test_recipe_accepts_the_new_keys(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text(
        "synthetic: {references: false, agents: [gp-ts, greedy]}\n"
        "real: {kernels: [human, constant, identity], agents: [greedy], aligned_encoder: null}\n"
        "trained: {references: false, uniformity_control: true, uniformity_checkpoints: true,"
        " agents: [gp-ts, greedy]}\n"
    )
    config = load_study_config(path)
    assert config.synthetic.references is False and config.trained.references is False
    assert config.trained.uniformity_control and config.trained.uniformity_checkpoints
    assert config.real.kernels == ("human", "constant", "identity")
    defaults = TrainedStudyConfig()
    assert defaults.references and defaults.uniformity_control
    assert not defaults.uniformity_checkpoints and SyntheticStudyConfig().references


@pytest.mark.parametrize(("text", "key"), [
    ("synthetic: {references: maybe}\n", "synthetic.references"),
    ("trained: {uniformity_control: 1}\n", "trained.uniformity_control"),
    ("trained: {uniformity_checkpoint: true}\n", "trained.uniformity_checkpoint"),
])
def test_recipe_rejects_bad_new_keys(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_study_config(path)
    assert str(path) in str(error.value) and key in str(error.value)


def test_shipped_recipes_list_the_references():
    root = Path(__file__).resolve().parents[2] / "configs" / "study"
    quick = load_study_config(root / "quick.yaml")
    for name in ("quick", "real"):
        real = load_study_config(root / f"{name}.yaml").real
        assert {"constant", "identity"} <= set(real.kernels) and "greedy" in real.agents
    for name in ("quick", "synthetic", "synthetic_long"):
        synthetic = load_study_config(root / f"{name}.yaml").synthetic
        assert synthetic.references and "greedy" in synthetic.agents
    for config in (quick, load_study_config(root / "trained.yaml")):
        assert config.trained.references and config.trained.uniformity_control
        assert "greedy" in config.trained.agents
