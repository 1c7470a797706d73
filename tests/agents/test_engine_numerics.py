"""The engine's posterior refresh never raises on a system that is positive definite only
in exact arithmetic (issue 16): reward noise variance 1e-14 on a rank-1 kernel over 1,000
steps falls back to a jittered factorisation and says so."""

import warnings

import pytest
import torch

from deepalign.agents.engine.exact import JITTERS, robust_cholesky
from deepalign.agents.engine.runs import run_engine_seeds
from deepalign.agents.environment import ValueBandit
from deepalign.agents.registry import AgentOptions
from deepalign.data import load_dataset


def test_robust_cholesky_keeps_good_matrices_and_jitters_singular_ones():
    good = torch.tensor([[[2.0, 0.5], [0.5, 1.0]]], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for a matrix that factorises
        assert torch.allclose(robust_cholesky(good.clone()), torch.linalg.cholesky(good))
    v = torch.tensor([1.0, -1.0, 1.0, 1.0], dtype=torch.float64)
    singular = torch.stack([good[0].new_zeros(4, 4) + torch.outer(v, v) * 1e3,
                            torch.eye(4, dtype=torch.float64)])
    singular[0].diagonal().add_(1e-14)
    with pytest.warns(RuntimeWarning, match="not numerically positive definite"):
        chol = robust_cholesky(singular.clone())
    rebuilt = chol @ chol.transpose(-2, -1)
    assert torch.isfinite(chol).all()
    assert torch.allclose(rebuilt[1], singular[1])                 # the good one untouched
    scale = singular[0].diagonal().mean()
    assert (rebuilt[0] - singular[0]).abs().max() <= JITTERS[-1] * scale * 1.01


@pytest.mark.parametrize("agent", ["gp-ucb", "gp-ts"])
def test_noise_1e_14_on_a_rank_1_kernel_over_1000_steps(agent):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dropped unrated verbs
        dataset = load_dataset("spa-verb-act", classes=(1,), values=("act_evaluation",))
    env = ValueBandit(dataset, "act_evaluation", noise_sd=1e-7)   # noise variance 1e-14
    signs = torch.tensor([1.0 if i % 3 else -1.0 for i in range(env.n_items)],
                         dtype=torch.float64)
    kernel = torch.outer(signs, signs)                              # rank 1, unit diagonal
    runs = []
    for _ in range(2):
        with pytest.warns(RuntimeWarning, match="GP posterior refresh"):
            results, _ = run_engine_seeds(env, kernel, agent, 1000, [0, 1],
                                          AgentOptions(calibration=None))
        runs.append(results.metrics(env))
    metrics = runs[0]
    for name in ("mean_reward", "bad_actions", "unique_actions"):
        values = torch.as_tensor(metrics[name], dtype=torch.float64)
        assert torch.isfinite(values).all(), name
        assert torch.equal(values, torch.as_tensor(runs[1][name], dtype=torch.float64))
    reward = torch.as_tensor(metrics["mean_reward"])
    arms = env.arm_values  # a mean reward lies within the arms' values
    assert float(arms.min()) - 1e-3 <= float(reward.min()) <= float(reward.max()) \
        <= float(arms.max()) + 1e-3
