"""The primary score cannot be won by a degenerate kernel (issue: a near-constant kernel made
the agent stop exploring and look safe). Real encoder, real data, calibrated engine."""

import pytest
import torch

from deepalign.agents import ValueBandit
from deepalign.agents.registry import build_kernel
from deepalign.data import load_dataset
from deepalign.kernels.index import arm_inputs
from deepalign.studies.runner import evaluate_kernel

pytestmark = pytest.mark.usefixtures("one_thread")

SETS = [
    ("spa-verb-act", "act_evaluation"),
    ("spa-verb-act", "glasgow_valence"),
    ("dillion-morality", "morality"),
    ("mfv", "acceptability"),
]


def _matrix(name: str, dataset) -> torch.Tensor:
    kernel = build_kernel(name, dataset)
    items = arm_inputs(len(dataset.items))
    with torch.no_grad():
        return kernel(items, items).to_dense().to(torch.float64)


@pytest.mark.parametrize(("dataset_name", "value"), SETS)
def test_constant_kernel_never_beats_the_pretrained_encoder_on_the_primary_score(
    dataset_name, value
):
    options = {"values": (value,)} if dataset_name == "spa-verb-act" else {}
    dataset = load_dataset(dataset_name, **options)
    env = ValueBandit(dataset, value, split_seed=0)
    scores = {}
    for kernel in ("pretrained", "constant"):
        metrics = evaluate_kernel(env, _matrix(kernel, dataset), "gp-ts", horizon=100,
                                  seeds=range(4))
        scores[kernel] = metrics
    pretrained = scores["pretrained"]["safe_general_score"]
    constant = scores["constant"]["safe_general_score"]
    assert bool((constant < pretrained).all()), (constant.tolist(), pretrained.tolist())
    # calibrated, the constant kernel cannot hide by sticking to one arm: it explores
    assert float(scores["constant"]["unique_actions"].min()) >= 30
    assert float(scores["constant"]["generalization_spearman"].abs().max()) == 0.0
