"""Every metric against a hand-computed case; batch consistency; bad input."""

import math

import pytest
import torch

from deepalign.agents.metrics import generalization_metrics, personalization_metrics
from deepalign.agents.runs import summarize
from deepalign.errors import DataError

VALUES = torch.tensor([1.0, 3.0, -2.0, 0.5], dtype=torch.float64)
ARMS = torch.tensor([[0, 1, 1, 1], [2, 2, 3, 0], [1, 1, 1, 1]])


def test_personalization_hand_computed():
    m = personalization_metrics(ARMS, VALUES, threshold=0.0)
    # run 0 pulls values 1, 3, 3, 3; run 1 pulls -2, -2, 0.5, 1; run 2 pulls 3 four times
    assert m["mean_reward"].tolist() == pytest.approx([2.5, -0.625, 3.0])
    assert m["cumulative_regret"].tolist() == pytest.approx([2.0, 14.5, 0.0])
    assert m["unique_actions"].tolist() == [2.0, 3.0, 1.0]
    assert m["non_optimal_actions"].tolist() == [1.0, 4.0, 0.0]
    assert m["bad_actions"].tolist() == [0.0, 2.0, 0.0]
    # run 0 settles at step 2; run 1 changes at the last step (T = 4); run 2 never changes
    assert m["iterations_to_convergence"].tolist() == [2.0, 4.0, 1.0]
    assert all(v.dtype == torch.float64 and v.shape == (3,) for v in m.values())


def test_personalization_ties_and_threshold_edges():
    values = torch.tensor([3.0, 3.0, 0.0], dtype=torch.float64)
    m = personalization_metrics(torch.tensor([[0, 1, 2]]), values, threshold=0.0)
    assert m["non_optimal_actions"].item() == 1.0  # arm 1 ties the best: optimal
    assert m["bad_actions"].item() == 0.0  # 0.0 is not strictly below the threshold
    assert m["iterations_to_convergence"].item() == 3.0
    one_step = personalization_metrics(torch.tensor([[2]]), values, threshold=1.0)
    assert one_step["iterations_to_convergence"].item() == 1.0
    assert one_step["bad_actions"].item() == 1.0
    assert one_step["cumulative_regret"].item() == 3.0


def test_personalization_batch_consistency():
    generator = torch.Generator().manual_seed(3)
    arms = torch.randint(4, (6, 9), generator=generator)
    batched = personalization_metrics(arms, VALUES, 0.7)
    for row in range(6):
        single = personalization_metrics(arms[row : row + 1], VALUES, 0.7)
        for name, value in single.items():
            assert value.item() == batched[name][row].item()


TRUE = torch.tensor([2.0, -1.0, 0.0, 3.0, -3.0], dtype=torch.float64)
PREDICTED = torch.stack(
    [
        torch.tensor([0.5, -0.2, 0.1, 0.9, -1.0], dtype=torch.float64),  # same order as TRUE
        torch.zeros(5, dtype=torch.float64),  # constant: a kernel-free agent
        -TRUE,  # reversed
        torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0], dtype=torch.float64),  # ties at the top
    ]
)


def test_generalization_hand_computed():
    m = generalization_metrics(PREDICTED, TRUE, threshold=0.0, top_k=2)
    assert set(m) == {"generalization_spearman", "greedy_value", "greedy_is_bad", "bad_in_top2"}
    # run 3: ranks (4, 4, 1.5, 4, 1.5) vs (4, 2, 3, 5, 1): 5 / sqrt(7.5 * 10)
    expected_rho = [1.0, 0.0, -1.0, 5 / math.sqrt(75)]
    assert m["generalization_spearman"].tolist() == pytest.approx(expected_rho)
    # constant predictions tie all five items: mean true value 0.2, 2 of 5 bad
    # run 3 ties items 0, 1, 3 (true 2, -1, 3) for the top
    assert m["greedy_value"].tolist() == pytest.approx([3.0, 0.2, -3.0, 4 / 3])
    assert m["greedy_is_bad"].tolist() == pytest.approx([0.0, 0.4, 1.0, 1 / 3])
    # top-2: run 0 picks items 3, 0 (none bad); run 1: 2 slots x 2/5; run 2 picks -3, -1;
    # run 3: 2 slots among the 3 tied items, 1 of them bad
    assert m["bad_in_top2"].tolist() == pytest.approx([0.0, 0.8, 2.0, 2 / 3])


def test_generalization_default_top5_and_cap():
    m = generalization_metrics(PREDICTED[:1], TRUE, threshold=0.0)
    assert m["bad_in_top5"].item() == 2.0  # all five items: -1 and -3 are bad
    capped = generalization_metrics(PREDICTED[:1, :2], TRUE[:2], threshold=0.0, top_k=5)
    assert capped["bad_in_top5"].item() == 1.0


def test_generalization_batch_consistency():
    batched = generalization_metrics(PREDICTED, TRUE, 0.0)
    for row in range(PREDICTED.shape[0]):
        single = generalization_metrics(PREDICTED[row : row + 1], TRUE, 0.0)
        for name, value in single.items():
            assert value.item() == pytest.approx(batched[name][row].item(), abs=1e-12)


def test_spearman_matches_scipy_on_random_rows():
    from scipy.stats import spearmanr

    generator = torch.Generator().manual_seed(0)
    predicted = torch.randn(4, 12, generator=generator, dtype=torch.float64).round(decimals=1)
    true = torch.randn(12, generator=generator, dtype=torch.float64)
    rho = generalization_metrics(predicted, true, 0.0)["generalization_spearman"]
    for row in range(4):
        expected = spearmanr(predicted[row].numpy(), true.numpy()).statistic
        assert rho[row].item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "arms, values",
    [
        (torch.tensor([0, 1]), VALUES),  # 1-d arms
        (torch.tensor([[0, 4]]), VALUES),  # out of range
        (torch.tensor([[0.0, 1.0]]), VALUES),  # float arms
        (torch.tensor([[0, 1]]), torch.tensor([1.0, float("nan")])),  # NaN value
        (torch.zeros(2, 0, dtype=torch.long), VALUES),  # T = 0
    ],
)
def test_personalization_bad_input(arms, values):
    with pytest.raises(DataError, match="'arms'|'true_values'"):
        personalization_metrics(arms, values, 0.0)


def test_generalization_bad_input():
    with pytest.raises(DataError, match="'predicted' has 4 columns"):
        generalization_metrics(PREDICTED[:, :4], TRUE, 0.0)
    with pytest.raises(DataError, match="'predicted'"):
        generalization_metrics(PREDICTED[0], TRUE, 0.0)
    with pytest.raises(DataError, match="'top_k'"):
        generalization_metrics(PREDICTED, TRUE, 0.0, top_k=0)
    with pytest.raises(DataError, match="'threshold'"):
        generalization_metrics(PREDICTED, TRUE, float("nan"))


def test_summarize_mean_and_sem():
    summary = summarize({"x": torch.tensor([1.0, 2.0, 3.0, 6.0])})
    assert summary["x"]["mean"] == pytest.approx(3.0)
    assert summary["x"]["sem"] == pytest.approx(math.sqrt(14 / 3) / 2)
    assert summarize({"x": torch.tensor([5.0])})["x"] == {"mean": 5.0, "sem": None}


def test_greedy_convergence_counts_the_best_guess_not_the_pulls():
    # a sampling agent that settles its best guess (arm 1) at step 2 but still explores
    arms = torch.tensor([[0, 1, 2, 1, 0, 1], [1, 1, 1, 1, 1, 1]])
    greedy = torch.tensor([[0, 1, 1, 1, 1, 1], [2, 0, 1, 1, 1, 1]])
    values = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)
    m = personalization_metrics(arms, values, 0.0, greedy_arms=greedy)
    assert m["iterations_to_convergence"].tolist() == [6.0, 1.0]
    assert m["greedy_convergence"].tolist() == [2.0, 3.0]
    # a greedy agent (pulls = best guesses) gets the same number both ways
    both = personalization_metrics(greedy, values, 0.0, greedy_arms=greedy)
    assert torch.equal(both["greedy_convergence"], both["iterations_to_convergence"])
    assert "greedy_convergence" not in personalization_metrics(arms, values, 0.0)
    with pytest.raises(DataError, match="greedy_arms"):
        personalization_metrics(arms, values, 0.0, greedy_arms=greedy[:, :3])
    with pytest.raises(DataError, match="greedy_arms"):
        personalization_metrics(arms, values, 0.0, greedy_arms=greedy + 5)
