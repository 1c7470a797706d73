"""The data model (ItemSet, SimilarityJudgments, ValueRatings, Dataset), splits and the verb
rendering rule."""

import warnings

import pytest
import torch

from deepalign.data import (
    Dataset,
    ItemSet,
    SimilarityJudgments,
    ValueRatings,
    load_dataset,
    render_verb_action,
    split_items,
    split_pair_masks,
)
from deepalign.data.act_epa import act_entry
from deepalign.errors import ConfigError, DataError


def _items(n=4):
    return ItemSet(ids=tuple(f"i{k}" for k in range(n)), texts=tuple(f"do {k}" for k in range(n)))


def _judgments(n=4):
    matrix = torch.eye(n, dtype=torch.float64)
    mask = torch.eye(n, dtype=torch.bool)
    matrix[0, 1] = matrix[1, 0] = 0.25
    mask[0, 1] = mask[1, 0] = True
    matrix[2, 3] = matrix[3, 2] = 0.75
    mask[2, 3] = mask[3, 2] = True
    return SimilarityJudgments(_items(n), matrix, mask, "similarity", (0.0, 1.0))


def test_item_set_basics():
    items = _items()
    assert len(items) == 4 and items.index_of("i2") == 2
    sub = items.subset([3, 1])
    assert sub.ids == ("i3", "i1") and sub.texts == ("do 3", "do 1")
    assert items.subset(torch.tensor([True, False, True, False])).ids == ("i0", "i2")
    with pytest.raises(ConfigError, match="item_id"):
        items.index_of("zz")
    with pytest.raises(ConfigError, match="distinct"):
        items.subset([1, 1])
    with pytest.raises(ConfigError, match=r"\[0, 4\)"):
        items.subset([4])
    with pytest.raises(DataError, match="unique ids"):
        ItemSet(ids=("a", "a"), texts=("x", "y"))
    with pytest.raises(DataError, match="empty set"):
        ItemSet(ids=(), texts=())
    with pytest.raises(dataclasses_frozen_error()):
        items.ids = ("x",)


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_similarity_judgments_properties_and_subset():
    s = _judgments()
    assert s.n_pairs == 2 and s.n_items == 4
    sub = s.subset([3, 2, 0])
    assert sub.items.ids == ("i3", "i2", "i0")
    assert sub.matrix.tolist() == [[1.0, 0.75, 0.0], [0.75, 1.0, 0.0], [0.0, 0.0, 1.0]]
    assert sub.n_pairs == 1
    # batch consistency: the subset equals indexing the full matrix
    idx = torch.tensor([3, 2, 0])
    assert torch.equal(sub.matrix, s.matrix[idx][:, idx])
    assert torch.equal(sub.mask, s.mask[idx][:, idx])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m, k: m.__setitem__((0, 1), 0.3), "symmetric"),
        (lambda m, k: m.__setitem__((0, 2), 0.3) or m.__setitem__((2, 0), 0.3), "0 where mask"),
        (lambda m, k: m.fill_diagonal_(0.9), "diagonal"),
        (lambda m, k: m.__setitem__((0, 1), 1.5) or m.__setitem__((1, 0), 1.5), r"\[0, 1\]"),
        (lambda m, k: m.__setitem__((0, 1), float("nan")), "finite"),
    ],
)
def test_similarity_judgments_reject_bad_matrices(change, message):
    s = _judgments()
    matrix, mask = s.matrix.clone(), s.mask.clone()
    change(matrix, mask)
    with pytest.raises(DataError, match=message):
        SimilarityJudgments(s.items, matrix, mask, "similarity", (0.0, 1.0))


def test_similarity_kind_is_declared():
    s = _judgments()
    with pytest.raises(ConfigError, match="kind"):
        SimilarityJudgments(s.items, s.matrix, s.mask, "dissimilarity", (0.0, 1.0))


def test_value_ratings_threshold_default_is_midpoint():
    items = _items(3)
    v = ValueRatings(items, ("a", "b"), torch.tensor([[0.0, 10.0], [50.0, 20.0], [100.0, 90.0]]),
                     ((0, 100), (1, 9.5 * 10)))
    assert v.thresholds.tolist() == [50.0, 48.0]
    assert v.ratings.dtype == torch.float64
    assert v.column("b").tolist() == [10.0, 20.0, 90.0]
    sub = v.subset([2, 0])
    assert sub.ratings.tolist() == [[100.0, 90.0], [0.0, 10.0]]
    with pytest.raises(DataError, match=r"ratings\[1, 0\].*\[0, 10\]"):
        ValueRatings(items, ("a",), torch.tensor([[1.0], [11.0], [2.0]]), ((0, 10),))
    with pytest.raises(DataError, match="finite"):
        ValueRatings(items, ("a",), torch.tensor([[1.0], [float("nan")], [2.0]]), ((0, 10),))
    with pytest.raises(ConfigError, match="name"):
        v.column("c")


def test_dataset_subset_and_consistency():
    s = _judgments()
    v = ValueRatings(s.items, ("x",), torch.tensor([[1.0], [2.0], [3.0], [4.0]]), ((0, 4),))
    d = Dataset("toy", s.items, s, v, {"description": "toy"})
    sub = d.subset([1, 0])
    assert sub.values.ratings.flatten().tolist() == [2.0, 1.0]
    assert sub.similarity.matrix[0, 1] == 0.25
    assert d.info["notes"] == [] and sub.info["notes"] == ["subset of 2 of 4 items"]
    with pytest.raises(DataError, match="item set"):
        Dataset("toy", _items(3), s)


def test_split_items_deterministic_and_agrees_across_datasets():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = load_dataset("spa-verb")
        act = load_dataset("spa-verb-act")
    a = split_items(full.items.ids, seed=3)
    assert torch.equal(a, split_items(full.items.ids, seed=3))
    assert not torch.equal(a, split_items(full.items.ids, seed=4))
    b = split_items(act.items.ids, seed=3)
    for k, item_id in enumerate(act.items.ids):
        assert bool(b[k]) == bool(a[full.items.index_of(item_id)])
    assert abs(float(a.double().mean()) - 0.3) < 0.05   # 825 fair coin flips at p = 0.3
    assert not split_items(full.items.ids, heldout_fraction=0.0).any()
    assert split_items(full.items.ids, heldout_fraction=1.0).all()
    with pytest.raises(ConfigError, match="heldout_fraction"):
        split_items(full.items.ids, heldout_fraction=1.5)


def test_split_pair_masks_partition_observed_pairs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = load_dataset("spa-verb-act")
    heldout = split_items(d.items.ids)
    masks = split_pair_masks(d.similarity.mask, heldout)
    off = d.similarity.mask & ~torch.eye(len(d.items), dtype=torch.bool)
    total = masks["train"].long() + masks["heldout"].long() + masks["cross"].long()
    assert torch.equal(total, off.long())
    for m in masks.values():
        assert torch.equal(m, m.T) and not m.diagonal().any()
    # brute force on one cell of each kind
    n = len(d.items)
    for i in range(0, n, 17):
        for j in range(0, n, 13):
            if i != j and d.similarity.mask[i, j]:
                kind = ("heldout" if heldout[i] and heldout[j] else
                        "train" if not heldout[i] and not heldout[j] else "cross")
                assert masks[kind][i, j]
    with pytest.raises(ConfigError, match="heldout"):
        split_pair_masks(d.similarity.mask, heldout[:-1])


def test_render_verb_action_rule():
    assert render_verb_action("kill") == "kill someone"
    assert render_verb_action("argue") == "argue with someone"
    assert render_verb_action("make") == "make fun of someone"   # usmturk2015's first particle
    assert render_verb_action("bake") == "bake someone"          # no ACT entry at all
    entry = act_entry("argue")
    assert entry.term == "argue_with" and entry.dictionary == "usmturk2015"
    assert entry.evaluation == -1.31
    with pytest.raises(ConfigError, match="verb"):
        render_verb_action("two words")


def test_particle_count_over_spa_verb():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = load_dataset("spa-verb")
    particles = [v for v, t in zip(d.items.ids, d.items.texts) if t != f"{v} someone"]
    assert len(particles) == 85
