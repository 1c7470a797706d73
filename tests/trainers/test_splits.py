"""Item splits of alignment training and per-split measures, on synthetic and real data."""

import math

import pytest
import torch

from deepalign.alignment import alignment_measures, cosine_similarity_matrix
from deepalign.data import Dataset, ItemSet, SimilarityJudgments, split_items, split_pair_masks
from deepalign.errors import ConfigError
from trainers import SPLITS, build_alignment_data, measure_splits


def _dataset(n_items: int = 120, density: float = 0.5, seed: int = 0) -> Dataset:
    """A random symmetric human matrix with a random symmetric observed mask."""
    generator = torch.Generator().manual_seed(seed)
    ids = tuple(f"item{i:03d}" for i in range(n_items))
    items = ItemSet(ids=ids, texts=tuple(f"do thing {i}" for i in range(n_items)))
    upper = torch.triu(torch.rand(n_items, n_items, generator=generator, dtype=torch.float64), 1)
    matrix = upper + upper.T
    observed = torch.triu(torch.rand(n_items, n_items, generator=generator) < density, 1)
    mask = observed | observed.T | torch.eye(n_items, dtype=torch.bool)
    matrix = torch.where(mask, matrix, torch.zeros_like(matrix))
    matrix.fill_diagonal_(1.0)
    similarity = SimilarityJudgments(items=items, matrix=matrix, mask=mask, kind="similarity",
                                     scale=(0.0, 1.0))
    return Dataset(name="synthetic", items=items, similarity=similarity)


@pytest.mark.parametrize("split_seed", [0, 1, 7])
def test_split_partitions_items_and_pairs(split_seed):
    dataset = _dataset()
    data = build_alignment_data(dataset, split_seed=split_seed, heldout_fraction=0.3,
                                val_fraction=0.25)
    items = data.item_masks
    # held-out items are exactly the shared split; fit and val partition the train items
    assert torch.equal(items["heldout"], split_items(dataset.items.ids, seed=split_seed))
    assert torch.equal(items["train"], ~items["heldout"])
    assert not (items["fit"] & items["val"]).any()
    assert torch.equal(items["fit"] | items["val"], items["train"])
    # val items: the shared rule applied to train ids with seed -(split_seed + 1)
    train_ids = [dataset.items.ids[i] for i in data.indices("train").tolist()]
    expected_val = split_items(train_ids, seed=-(split_seed + 1), heldout_fraction=0.25)
    assert torch.equal(items["val"][data.indices("train")], expected_val)

    mask = dataset.similarity.mask
    reference = split_pair_masks(mask, items["heldout"])
    for name in ("train", "heldout", "cross"):
        assert torch.equal(data.masks[name], reference[name])
    fit, val, heldout = items["fit"], items["val"], items["heldout"]
    off = (mask & ~torch.eye(len(fit), dtype=torch.bool)).tolist()
    is_fit, is_val, is_heldout = fit.tolist(), val.tolist(), heldout.tolist()
    got_fit, got_val = data.masks["fit"].tolist(), data.masks["val"].tolist()
    # brute force over every pair
    for i in range(len(is_fit)):
        for j in range(len(is_fit)):
            both_train = off[i][j] and not is_heldout[i] and not is_heldout[j]
            assert got_fit[i][j] == (both_train and is_fit[i] and is_fit[j])
            assert got_val[i][j] == (both_train and (is_val[i] or is_val[j]))
    # the loss never sees a pair with a held-out or validation item
    assert not (data.masks["fit"] & (heldout[:, None] | val[:, None])).any()
    assert not (data.masks["val"] & (heldout[:, None] | heldout[None, :])).any()
    for name in SPLITS:
        assert torch.equal(data.masks[name], data.masks[name].T)
        assert not data.masks[name].diagonal().any()
    sizes = data.sizes()
    assert sizes["items"]["fit"] + sizes["items"]["val"] + sizes["items"]["heldout"] == 120
    assert sizes["pairs"]["fit"] + (sizes["pairs"]["val"]) == sizes["pairs"]["train"]


def test_split_seed_changes_split_and_val_differs_from_heldout_rule():
    dataset = _dataset()
    a = build_alignment_data(dataset, split_seed=0)
    b = build_alignment_data(dataset, split_seed=1)
    assert not torch.equal(a.item_masks["heldout"], b.item_masks["heldout"])
    # val items are not simply the next items held out by the same rule
    assert a.item_masks["val"].sum() > 0
    again = build_alignment_data(dataset, split_seed=0)
    for name in SPLITS:
        assert torch.equal(a.masks[name], again.masks[name])


def test_bad_split_options_raise_config_error():
    dataset = _dataset(n_items=40)
    with pytest.raises(ConfigError, match="data.val_fraction"):
        build_alignment_data(dataset, split_seed=0, val_fraction=1.5)
    values_only = Dataset(name="values-only", items=dataset.items)
    with pytest.raises(ConfigError, match="data.dataset"):
        build_alignment_data(values_only, split_seed=0)
    tiny = _dataset(n_items=6, density=0.2)
    with pytest.raises(ConfigError, match="observed pairs"):
        build_alignment_data(tiny, split_seed=0)


def test_measure_splits_equals_full_matrix_measures():
    """Restricting to the items a split touches must not change any measure."""
    dataset = _dataset(n_items=90)
    data = build_alignment_data(dataset, split_seed=3)
    embeddings = torch.randn(90, 16, generator=torch.Generator().manual_seed(1))
    model_sim = cosine_similarity_matrix(embeddings)
    measured = measure_splits(model_sim, data)
    cheap = measure_splits(model_sim, data, spearman_only=True)
    for split in SPLITS:
        reference = alignment_measures(model_sim, data.human_sim, data.masks[split])
        for name, value in reference.items():
            assert math.isclose(measured[split][name], value, rel_tol=1e-9, abs_tol=1e-12)
        assert cheap[split] == {"spearman": measured[split]["spearman"]}
