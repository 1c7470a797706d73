"""``act-behaviors``: every usmturk2015 ACT behaviour as an arm, recounted from the vendored
CSV with the plain csv module."""

import csv
from pathlib import Path

import pytest
import torch

import deepalign.data as data
from deepalign.data import list_datasets, load_dataset, render_verb_action
from deepalign.data.act_behaviors import act_behavior_text
from deepalign.data.act_epa import act_entry
from deepalign.errors import ConfigError

CSV = Path(data.__file__).parent / "bundled" / "act_epa_behaviors" / "usmturk2015_behaviors.csv"


def _rows():
    with open(CSV, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_all_853_behaviours_with_epa_values_and_no_similarity():
    rows = _rows()
    dataset = load_dataset("act-behaviors")
    assert "act-behaviors" in list_datasets()
    assert len(dataset) == len(rows) == 853
    assert dataset.similarity is None
    assert dataset.items.ids == tuple(r["term"].replace(" ", "_") for r in rows)
    values = dataset.values
    assert values.names == ("act_evaluation", "act_potency", "act_activity")
    expected = torch.tensor([[float(r[k]) for k in "EPA"] for r in rows], dtype=torch.float64)
    assert torch.equal(values.ratings, expected)
    assert values.scales == ((-4.3, 4.3),) * 3
    assert torch.equal(values.thresholds, torch.zeros(3, dtype=torch.float64))
    assert dataset.info["license"].startswith("CC0")
    # 853 distinct texts: the arms are distinguishable by text alone
    assert len(set(dataset.items.texts)) == 853


def test_texts_follow_the_render_rule():
    dataset = load_dataset("act-behaviors")
    position = dataset.items.index_of
    assert dataset.items.texts[position("abandon")] == "abandon someone"
    assert dataset.items.texts[position("argue_with")] == "argue with someone"
    assert act_behavior_text("break_up_with") == "break up with someone"
    assert dataset.values.column("act_evaluation")[position("abandon")] == -3.19
    bad = dataset.values.column("act_evaluation") < 0
    assert 0 < int(bad.sum()) < 853


def test_texts_agree_with_spa_verb_act_on_shared_terms():
    """A SpA-Verb verb whose ACT entry comes from usmturk2015 has one text in both sets."""
    texts = dict(zip(load_dataset("act-behaviors").items.ids,
                     load_dataset("act-behaviors").items.texts))
    verbs = load_dataset("spa-verb").items.ids
    shared = 0
    for verb in verbs:
        entry = act_entry(verb)
        if entry is not None and entry.dictionary == "usmturk2015":
            assert texts[entry.term] == render_verb_action(verb)
            shared += 1
    assert shared > 100


def test_no_options():
    with pytest.raises(ConfigError, match="no options"):
        load_dataset("act-behaviors", values=("act_evaluation",))


def test_subset_and_split_work_on_853_items():
    dataset = load_dataset("act-behaviors")
    heldout = data.split_items(dataset.items.ids, seed=0)
    assert heldout.shape == (853,) and 0.2 < float(heldout.float().mean()) < 0.4
    small = dataset.subset(list(range(10)))
    assert len(small) == 10 and small.values.ratings.shape == (10, 3)
