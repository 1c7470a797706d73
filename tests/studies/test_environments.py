"""Study 1's environments and arm sets (issue 14): the gp-sample draw, the complete block,
the environment kernel against the agents' kernel at alignment 1, and a two-variant study."""

import math
import warnings

import pytest
import torch

from deepalign.agents.regression import DECAY_STEPS, KernelRegressionAgent
from deepalign.data import load_dataset
from deepalign.errors import ConfigError
from deepalign.kernels import synthetic_aligned_matrix
from deepalign.studies.config import StudyConfig, SyntheticStudyConfig
from deepalign.studies.environments import (
    complete_block,
    environment_kernel,
    gp_sample_values,
)
from deepalign.studies.measure import unit_diagonal
from deepalign.studies.recipe_checks import validate_study_config
from deepalign.studies.runner import simulate_batch
from deepalign.studies.sources import StudySources
from deepalign.studies.synthetic import SyntheticPlan


@pytest.fixture(scope="module")
def act():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return load_dataset("spa-verb-act", values=("act_evaluation",))


def test_complete_block_is_complete_and_the_largest_spa_verb_class(act):
    block = complete_block(act.similarity.mask)
    sub = act.similarity.mask[block][:, block] | torch.eye(len(block), dtype=torch.bool)
    assert bool(sub.all())
    assert len(block) == 69  # the largest SpA-Verb class with ACT evaluation ratings
    toy = torch.zeros(6, 6, dtype=torch.bool)
    toy[:4, :4] = True
    toy[3:, 3:] = True
    assert complete_block(toy).tolist() == [0, 1, 2, 3]


def test_gp_sample_is_reproducible_by_seed_and_scaled_to_the_ratings(act):
    kernel = environment_kernel(act.similarity.matrix, act.similarity.mask)
    ratings = torch.as_tensor(act.values.ratings[:, 0], dtype=torch.float64)
    a = gp_sample_values(kernel, ratings, 3, "spa-verb-act", "act_evaluation", "all")
    b = gp_sample_values(kernel, ratings, 3, "spa-verb-act", "act_evaluation", "all")
    c = gp_sample_values(kernel, ratings, 4, "spa-verb-act", "act_evaluation", "all")
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert float(a.mean()) == pytest.approx(float(ratings.mean()), abs=1e-9)
    assert float(a.std()) == pytest.approx(float(ratings.std()), abs=1e-9)


def test_gp_sample_values_follow_the_kernel():
    # two independent pairs of near-identical items: draws agree within a pair
    kernel = torch.tensor([[1, .99, 0, 0], [.99, 1, 0, 0], [0, 0, 1, .99], [0, 0, .99, 1]],
                          dtype=torch.float64)
    gaps = []
    for seed in range(50):
        v = gp_sample_values(kernel, torch.tensor([0., 1., 2., 3.]), seed, "toy")
        gaps.append((abs(v[0] - v[1]) / (abs(v[0] - v[2]) + abs(v[1] - v[3]) + 1e-12)).item())
    assert sorted(gaps)[25] < 0.2


def test_at_alignment_one_the_agents_kernel_is_the_environments(act):
    kernel = environment_kernel(act.similarity.matrix, act.similarity.mask)
    for seed in (0, 7):
        agent = synthetic_aligned_matrix(act.similarity.matrix, 1.0, seed=seed,
                                         mask=act.similarity.mask)
        assert torch.allclose(unit_diagonal(agent.matrix), kernel, atol=1e-12)
    # and the plan's level-1 kernel of a gp-sample cell is that matrix
    config = StudyConfig(synthetic=SyntheticStudyConfig(
        levels=(1.0,), agents=("gp-ucb",), environment="gp-sample", arms="block"), seeds=2)
    plan = SyntheticPlan(config, StudySources(0, 0.3, None))
    cells = [c for c in plan.cells() if c.kernel == "synthetic"]
    batch = plan.kernels(cells)
    block = complete_block(act.similarity.mask)
    sub = act.subset(block.tolist())
    expected = environment_kernel(sub.similarity.matrix, sub.similarity.mask)
    assert torch.allclose(batch.matrix[0], expected, atol=1e-12)


def test_gp_sample_bandits_differ_by_seed_and_rows_score_their_own(act):
    config = StudyConfig(synthetic=SyntheticStudyConfig(
        levels=(1.0,), agents=("gp-ucb", "svr"), environment=("ratings", "gp-sample"),
        arms="block"), seeds=3, horizon=20)
    plan = SyntheticPlan(config, StudySources(0, 0.3, None))
    cells = plan.cells()
    assert {c.condition for c in cells} == {"ratings:block", "gp-sample:block"}
    gp = [c for c in cells if c.condition == "gp-sample:block" and c.kernel == "synthetic"
          and c.agent == "gp-ucb"]
    envs = [plan.bandit(c) for c in gp]
    assert envs[0].n_arms == 49
    assert not torch.equal(envs[0].true_values, envs[1].true_values)
    assert plan.bandit(gp[0]) is envs[0]
    rows = simulate_batch(plan, gp)
    best = [float(e.arm_values.max()) for e in envs]
    # each run's optimal value is its own environment's: mean reward never above it
    for row, top in zip(rows, best):
        assert row["mean_reward"] <= top + 3 * float(envs[0].arm_noise_sd.max())
        assert row["n_arms"] == 49
    assert len({round(r["mean_reward"], 9) for r in rows}) == 3


def test_recipe_variants_are_checked():
    good = StudyConfig(synthetic=SyntheticStudyConfig(environment=("ratings", "gp-sample"),
                                                      arms=("all", "block")))
    assert good.synthetic.variants() == ("ratings:all", "ratings:block", "gp-sample:all",
                                         "gp-sample:block")
    for bad in ({"environment": "gp"}, {"arms": ("all", "all")}, {"arms": ()}):
        with pytest.raises(ConfigError, match="synthetic"):
            validate_study_config(StudyConfig(synthetic=SyntheticStudyConfig(**bad)))


def test_decaying_epsilon_schedule():
    agent = KernelRegressionAgent(torch.eye(4, dtype=torch.float64), torch.arange(4), 4, 0.0,
                                  epsilon=0.1, epsilon_schedule="decay")
    assert agent.current_epsilon() == 1.0
    for step in range(DECAY_STEPS - 1):
        agent.observe(step % 4, 1.0)
    assert agent.current_epsilon() == pytest.approx(0.1)
    for _ in range(90):
        agent.observe(0, 1.0)
    assert agent.current_epsilon() == pytest.approx(1.0 / 100)
    assert math.isclose(KernelRegressionAgent(torch.eye(4), torch.arange(4), 4, 0.0)
                        .current_epsilon(), 0.1)
    with pytest.raises(ConfigError, match="epsilon_schedule"):
        KernelRegressionAgent(torch.eye(4), torch.arange(4), 4, 0.0, epsilon_schedule="fast")
