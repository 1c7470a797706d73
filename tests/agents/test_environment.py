"""ValueBandit: arms, held-out split, reward noise, bad actions, bad input."""

import warnings

import pytest
import torch

from deepalign.agents.environment import DEFAULT_NOISE_FRACTION, ValueBandit
from deepalign.data import Dataset, ItemSet, ValueRatings, load_dataset, split_items
from deepalign.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def spa_verb_act():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset("spa-verb-act", values=("act_evaluation",))


def toy(spread=None) -> Dataset:
    items = ItemSet(ids=("a", "b", "c", "d"), texts=("do a", "do b", "do c", "do d"))
    ratings = torch.tensor([[1.0, 5.0], [-2.0, 2.0], [3.0, 8.0], [0.0, 4.0]], dtype=torch.float64)
    values = ValueRatings(
        items=items,
        names=("goodness", "valence"),
        ratings=ratings,
        scales=((-4.0, 4.0), (1.0, 9.0)),
        spread=spread,
    )
    return Dataset(name="toy", items=items, values=values)


def test_arms_and_heldout_follow_the_shared_split(spa_verb_act):
    env = ValueBandit(spa_verb_act, "act_evaluation")
    expected = split_items(spa_verb_act.items.ids, seed=0)
    assert torch.equal(env.heldout, expected)
    assert env.arm_items.tolist() == torch.nonzero(~expected).flatten().tolist()
    assert env.heldout_items.tolist() == torch.nonzero(expected).flatten().tolist()
    assert env.n_arms + env.n_heldout == env.n_items == len(spa_verb_act.items)
    column = spa_verb_act.values.column("act_evaluation")
    assert torch.equal(env.arm_values, torch.as_tensor(column, dtype=torch.float64)[env.arm_items])
    assert env.threshold == 0.0 and env.scale == (-4.3, 4.3)
    # ACT publishes no rater SDs: the documented fallback, 10 % of the scale's range
    assert torch.allclose(env.noise_sd, torch.full((env.n_items,), 0.86, dtype=torch.float64))
    other = ValueBandit(spa_verb_act, "act_evaluation", split_seed=1)
    assert not torch.equal(other.heldout, env.heldout)


def test_rewards_are_true_value_plus_gaussian_noise():
    env = ValueBandit(toy(), "goodness", heldout=torch.tensor([False, False, True, False]))
    assert env.arm_items.tolist() == [0, 1, 3] and env.heldout_items.tolist() == [2]
    generator = torch.Generator().manual_seed(0)
    draws = torch.tensor([env.pull(1, generator) for _ in range(4000)])
    assert draws.mean().item() == pytest.approx(-2.0, abs=0.04)
    assert draws.std().item() == pytest.approx(DEFAULT_NOISE_FRACTION * 8.0, rel=0.05)
    assert env.reward(2, 1.5) == pytest.approx(0.0 + 0.8 * 1.5)
    assert env.is_bad(1) and not env.is_bad(2)  # 0.0 is not below the threshold 0
    z = env.noise_draws(5, torch.Generator().manual_seed(3))
    assert torch.equal(z, torch.randn(5, generator=torch.Generator().manual_seed(3),
                                      dtype=torch.float64))


def test_rater_spread_is_the_default_noise_where_known():
    spread = torch.tensor(
        [[0.5, 1.0], [float("nan"), 1.0], [1.5, 1.0], [0.2, 1.0]], dtype=torch.float64
    )
    env = ValueBandit(toy(spread), "goodness", heldout=torch.zeros(4, dtype=torch.bool))
    assert env.noise_sd.tolist() == pytest.approx([0.5, 0.8, 1.5, 0.2])  # nan -> 10 % of 8
    fixed = ValueBandit(toy(spread), "valence", heldout=torch.zeros(4, dtype=torch.bool),
                        noise_sd=0.3)
    assert fixed.noise_sd.tolist() == [0.3] * 4
    assert fixed.threshold == 5.0  # the valence scale's midpoint


def test_metrics_of_the_environment():
    env = ValueBandit(toy(), "goodness", heldout=torch.tensor([False, False, True, True]))
    personal = env.personalization_metrics(torch.tensor([[0, 1, 0]]))
    assert personal["bad_actions"].item() == 1.0
    assert personal["mean_reward"].item() == pytest.approx(0.0)
    general = env.generalization_metrics(torch.tensor([[0.1, 0.9]], dtype=torch.float64))
    assert general["greedy_value"].item() == 0.0  # item d (true 0.0) predicted highest
    assert general["generalization_spearman"].item() == pytest.approx(-1.0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"value": "honesty"}, ConfigError, "'value' should be one of"),
        ({"heldout": torch.ones(4, dtype=torch.bool)}, ConfigError, "no arm"),
        ({"heldout": torch.zeros(3, dtype=torch.bool)}, ConfigError, "shape"),
        ({"heldout": torch.zeros(4)}, ConfigError, "bool tensor"),
        ({"noise_sd": 0.0}, ConfigError, "'noise_sd'"),
        ({"noise_sd": float("nan")}, ConfigError, "'noise_sd'"),
    ],
)
def test_bad_input(kwargs, error, match):
    arguments = {"value": "goodness", **kwargs}
    with pytest.raises(error, match=match):
        ValueBandit(toy(), **arguments)


def test_dataset_without_values_and_bad_arm():
    items = ItemSet(ids=("a",), texts=("do a",))
    with pytest.raises(DataError, match="no value ratings"):
        ValueBandit(Dataset(name="bare", items=items), "goodness")
    env = ValueBandit(toy(), "goodness", heldout=torch.zeros(4, dtype=torch.bool))
    with pytest.raises(ConfigError, match="'arm'"):
        env.reward(4, 0.0)
    with pytest.raises(ConfigError, match="no held-out items"):
        env.generalization_metrics(torch.zeros(1, 0, dtype=torch.float64))
