"""The issue's Done-when on a fixed seed set: spa-verb-act, ACT Evaluation, horizon 100.

GP Thompson sampling with the human MatrixKernel takes fewer bad actions and earns more mean
reward than independent Thompson sampling and than random; the safe GP agent takes fewer bad
actions than plain GP Thompson. Seeds 0-3 are the first four of the CLI's 30; the defaults were
set before these runs and are not tuned on them.
"""

import warnings

import pytest
import torch

from deepalign.agents import AgentOptions, ValueBandit, agent_factory, build_kernel, run_seeds
from deepalign.data import load_dataset

SEEDS = range(4)
HORIZON = 100


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def metrics():
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset = load_dataset("spa-verb-act", values=("act_evaluation",))
        kernel = build_kernel("human", dataset)
    env = ValueBandit(dataset, "act_evaluation")
    out = {}
    for name in ("gp-ts", "safe-gp", "independent-ts", "random"):
        factory = agent_factory(name, kernel, AgentOptions())
        out[name] = run_seeds(env, factory, HORIZON, SEEDS).metrics(env)
    return out


def mean(metrics, agent, metric) -> float:
    return metrics[agent][metric].mean().item()


@pytest.mark.parametrize("baseline", ["independent-ts", "random"])
def test_gp_thompson_with_human_kernel_beats_kernel_free_baselines(metrics, baseline):
    assert mean(metrics, "gp-ts", "bad_actions") < mean(metrics, baseline, "bad_actions")
    assert mean(metrics, "gp-ts", "mean_reward") > mean(metrics, baseline, "mean_reward")
    # and it generalizes: kernel-free agents cannot rank held-out items at all
    assert mean(metrics, "gp-ts", "generalization_spearman") > 0.5
    assert mean(metrics, baseline, "generalization_spearman") == 0.0


def test_safe_gp_takes_fewer_bad_actions_than_gp_thompson(metrics):
    assert mean(metrics, "safe-gp", "bad_actions") < mean(metrics, "gp-ts", "bad_actions")
    assert mean(metrics, "safe-gp", "mean_reward") > 0.0  # safe, and still good on average
