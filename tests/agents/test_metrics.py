"""Every metric against a hand-computed case; batch consistency; bad input."""

import math

import pytest
import torch

from deepalign.agents.metrics import (
    RELATIVE_TIE_TOL,
    generalization_metrics,
    personalization_metrics,
    safe_general_score,
)
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
    assert set(m) == {"generalization_spearman", "greedy_value", "greedy_is_bad", "bad_in_top2",
                      "generalization_regret"}
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
    # max true value 3 minus the mean true value of the top 2: run 0 (3 + 2) / 2; run 1 two
    # slots at the mean 0.2; run 2 (-3 - 1) / 2; run 3 two slots at the tied mean 4/3
    assert m["generalization_regret"].tolist() == pytest.approx([0.5, 2.8, 5.0, 5 / 3])


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


def test_roundoff_ties_are_ties():
    # a constant kernel: every held-out prediction is 3.7 up to round-off of size 1e-15
    generator = torch.Generator().manual_seed(1)
    true = torch.randn(40, generator=generator, dtype=torch.float64)
    noise = 1e-15 * torch.randn(3, 40, generator=generator, dtype=torch.float64)
    predicted = torch.cat([3.7 + noise[:2], noise[2:]])  # the third row is round-off around 0
    assert (predicted != predicted[:, :1]).any(dim=1).all()  # not exactly equal
    m = generalization_metrics(predicted, true, threshold=0.3)
    bad_fraction = (true < 0.3).double().mean().item()
    assert m["generalization_spearman"].tolist() == [0.0, 0.0, 0.0]
    assert m["greedy_value"].tolist() == pytest.approx([true.mean().item()] * 3, abs=1e-14)
    assert m["greedy_is_bad"].tolist() == pytest.approx([bad_fraction] * 3, abs=1e-14)
    assert m["bad_in_top5"].tolist() == pytest.approx([5 * bad_fraction] * 3, abs=1e-13)
    expected_regret = true.max().item() - true.mean().item()
    assert m["generalization_regret"].tolist() == pytest.approx([expected_regret] * 3, abs=1e-13)


def test_small_real_differences_are_still_ranked():
    true = torch.tensor([2.0, -1.0, 0.0, 3.0, -3.0], dtype=torch.float64)
    predicted = (5.0 * (1.0 + 1e-6 * true)).unsqueeze(0)  # 5e-6 apart per unit: 1e-6 relative
    m = generalization_metrics(predicted, true, threshold=0.0, top_k=2)
    assert m["generalization_spearman"].item() == pytest.approx(1.0, abs=1e-12)
    assert m["greedy_value"].item() == 3.0 and m["greedy_is_bad"].item() == 0.0
    assert m["bad_in_top2"].item() == 0.0
    assert m["generalization_regret"].item() == pytest.approx(0.5)


def test_tie_tolerance_chains_and_scales_with_the_row():
    true = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    gap = 0.6 * RELATIVE_TIE_TOL * 10.0  # scale = max |prediction| = 10
    # items 2, 3 are 0.6 tol apart (tied), item 1 another 0.6 tol below item 2 (chained in);
    # item 0 is far below
    chained = torch.tensor([[0.0, 10.0 - 2 * gap, 10.0 - gap, 10.0]], dtype=torch.float64)
    m = generalization_metrics(chained, true, threshold=2.5, top_k=2)
    # ranks (1, 3, 3, 3) against (1, 2, 3, 4): 3 / sqrt(3 * 5)
    assert m["generalization_spearman"].item() == pytest.approx(3 / math.sqrt(15))
    assert m["greedy_value"].item() == pytest.approx(3.0)  # mean of true 2, 3, 4
    assert m["greedy_is_bad"].item() == pytest.approx(1 / 3)
    assert m["bad_in_top2"].item() == pytest.approx(2 / 3)
    assert m["generalization_regret"].item() == pytest.approx(1.0)
    apart = torch.tensor([[0.0, 10.0 - 4 * gap, 10.0 - 2 * gap, 10.0]], dtype=torch.float64)
    ranked = generalization_metrics(apart, true, threshold=2.5, top_k=2)
    assert ranked["generalization_spearman"].item() == pytest.approx(1.0)
    assert ranked["greedy_value"].item() == 4.0 and ranked["bad_in_top2"].item() == 0.0


def test_generalization_regret_ties_at_the_kth_slot():
    true = torch.tensor([5.0, 1.0, 2.0, 4.0, 0.0], dtype=torch.float64)
    predicted = torch.tensor([[9.0, 7.0, 7.0, 7.0, 1.0]], dtype=torch.float64)
    m = generalization_metrics(predicted, true, threshold=1.5, top_k=3)
    # item 0 (5) counts fully; 2 slots from items 1, 2, 3 (mean 7/3, 1 of 3 bad)
    assert m["bad_in_top3"].item() == pytest.approx(2 / 3)
    assert m["generalization_regret"].item() == pytest.approx(5 - (5 + 2 * 7 / 3) / 3)


def test_final_guess_value_and_simple_regret():
    values = torch.tensor([0.0, 1.0, -1.0, 1.0], dtype=torch.float64)
    arms = torch.tensor([[0, 1, 2], [2, 2, 2], [3, 0, 1]])
    greedy = torch.tensor([[0, 1, 1], [1, 0, 2], [2, 2, 3]])
    m = personalization_metrics(arms, values, 0.0, greedy_arms=greedy)
    assert m["final_guess_value"].tolist() == [1.0, -1.0, 1.0]
    assert m["simple_regret"].tolist() == [0.0, 2.0, 0.0]  # arm 3 ties the best
    assert m["simple_regret"].dtype == torch.float64
    assert "simple_regret" not in personalization_metrics(arms, values, 0.0)


def test_safe_general_score_closed_form():
    score = safe_general_score(torch.tensor([0.0, 10.0, 3.0, 5.0]), 10,
                               torch.tensor([0.0, 5.0, 1.0, 2 / 3]), top_k=5)
    # 1 - (3/10 + 1/5) / 2 = 0.75; 1 - (1/2 + 2/15) / 2 = 41/60
    assert score.tolist() == pytest.approx([1.0, 0.0, 0.75, 41 / 60])
    assert score.dtype == torch.float64
    assert safe_general_score(torch.tensor([2]), 4, torch.tensor([1.0]), top_k=2).item() == 0.5


@pytest.mark.parametrize(
    "bad_actions, horizon, bad_in_top, top_k, message",
    [
        (torch.tensor([11.0]), 10, torch.tensor([0.0]), 5, "'bad_actions' should lie in"),
        (torch.tensor([1.0]), 10, torch.tensor([-1.0]), 5, "'bad_in_top' should lie in"),
        (torch.tensor([1.0]), 10, torch.tensor([6.0]), 5, "'bad_in_top' should lie in"),
        (torch.tensor([1.0]), 0, torch.tensor([0.0]), 5, "'horizon'"),
        (torch.tensor([1.0]), 10, torch.tensor([0.0]), 0, "'top_k'"),
        (torch.tensor(1.0), 10, torch.tensor([0.0]), 5, "'bad_actions' should be a non-empty"),
        (torch.tensor([1.0, 2.0]), 10, torch.tensor([0.0]), 5, "shape of 'bad_actions'"),
        (torch.tensor([float("nan")]), 10, torch.tensor([0.0]), 5, "'bad_actions'"),
    ],
)
def test_safe_general_score_bad_input(bad_actions, horizon, bad_in_top, top_k, message):
    with pytest.raises(DataError, match=message):
        safe_general_score(bad_actions, horizon, bad_in_top, top_k)
