"""Exact counts and values of every bundled dataset, recounted here from the vendored files
with the plain csv module (independently of deepalign's readers)."""

import csv
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import deepalign.data as data
from deepalign.data import list_datasets, load_dataset, render_verb_action
from deepalign.errors import ConfigError

BUNDLED = Path(data.__file__).parent / "bundled"
NAMES = ("spa-verb", "spa-verb-act", "dillion-morality", "mfv", "activity-pairs", "sts-captions",
         "ethics-justice", "ethics-commonsense-short", "act-behaviors")


def _rows(*parts, delimiter=","):
    with open(BUNDLED.joinpath(*parts), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter=delimiter))


def _classes():
    out = {}
    for line in (BUNDLED / "spa_verb" / "17verb-classes.txt").read_text().splitlines():
        cells = [c for c in line.split("\t") if c]
        out[int(cells[0])] = cells[1:]
    return out


def _load(name, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset(name, **options)


def test_list_datasets_names():
    assert list_datasets() == NAMES


@pytest.mark.parametrize(
    "name, n_items, n_pairs, values",
    [
        ("spa-verb", 825, 29721, None),
        ("spa-verb-act", 175, 4647, ("act_evaluation",)),
        ("dillion-morality", 480, None, ("morality",)),
        ("mfv", 132, None, ("acceptability", "pct_care", "pct_fairness", "pct_loyalty",
                            "pct_authority", "pct_sanctity", "pct_liberty", "pct_not_wrong")),
        ("activity-pairs", 1420, 996, None),
        ("sts-captions", 3025, 1748, None),
        ("ethics-justice", 2704, None, ("reasonable",)),
        ("ethics-commonsense-short", 2109, None, ("acceptable",)),
    ],
)
def test_exact_counts(name, n_items, n_pairs, values):
    dataset = _load(name)
    assert len(dataset.items) == n_items
    assert dataset.similarity is None if n_pairs is None else dataset.similarity.n_pairs == n_pairs
    assert dataset.values is None if values is None else dataset.values.names == values
    if dataset.similarity is not None:
        assert dataset.similarity.matrix.dtype == torch.float64
    if dataset.values is not None:
        assert dataset.values.ratings.shape == (n_items, len(values))
        assert dataset.values.ratings.dtype == torch.float64
        assert not torch.isnan(dataset.values.ratings).any()
    for key in ("description", "license", "citation", "notes"):
        assert dataset.info[key] or key == "notes"


def test_spa_verb_matches_source_file():
    classes = _classes()
    verbs = {v for members in classes.values() for v in members}
    rows = _rows("spa_verb", "SpA-Verb.txt", delimiter="\t")
    assert len(verbs) == 825 and len(rows) == 29721
    dataset = _load("spa-verb")
    assert set(dataset.items.ids) == verbs
    s = dataset.similarity
    max_d = max(float(r["Score"]) for r in rows)
    assert s.kind == "distance" and s.scale == (0.0, max_d)
    for r in rows[::997]:
        i, j = dataset.items.index_of(r["Word1"]), dataset.items.index_of(r["Word2"])
        assert s.matrix[i, j] == pytest.approx(1 - float(r["Score"]) / max_d, abs=1e-15)
        assert s.mask[i, j] and s.mask[j, i]
    # observed = judged pairs + diagonal; cross-class pairs unobserved
    assert int(s.mask.sum()) == 2 * 29721 + 825
    i, j = dataset.items.index_of("kill"), dataset.items.index_of("bake")
    assert not s.mask[i, j] and s.matrix[i, j] == 0
    assert all(t == render_verb_action(v) for v, t in zip(dataset.items.ids, dataset.items.texts))


def test_spa_verb_act_counts_from_class_files():
    classes = _classes()
    dataset = _load("spa-verb-act")
    kept = set(dataset.items.ids)
    selected = {v for k in (1, 2, 6, 7) for v in classes[k]}
    assert len(selected) == 241 and kept <= selected and len(kept) == 175
    pairs = {}
    for k in (1, 2, 6, 7):
        for r in _rows("spa_verb", "phase2_classes", f"class{k}.txt", delimiter="\t"):
            if r["Word1"] in kept and r["Word2"] in kept:
                pairs.setdefault(frozenset((r["Word1"], r["Word2"])), []).append(float(r["Score"]))
    assert len(pairs) == dataset.similarity.n_pairs == 4647
    assert sum(len(v) == 2 for v in pairs.values()) == 18
    # a pair judged in two selected classes: the mean of the two distances
    max_d = max(float(r["Score"]) for k in range(1, 18)
                for r in _rows("spa_verb", "phase2_classes", f"class{k}.txt", delimiter="\t"))
    s = dataset.similarity
    for key, scores in pairs.items():
        if len(scores) == 2:
            a, b = sorted(key)
            i, j = dataset.items.index_of(a), dataset.items.index_of(b)
            assert s.matrix[i, j] == pytest.approx(1 - np.mean(scores) / max_d, abs=1e-15)
            break
    # block-wise: a class-1-only verb and a class-7-only verb were never compared
    i, j = dataset.items.index_of("kiss"), dataset.items.index_of("comfort")
    assert not s.mask[i, j]


def test_spa_verb_act_values_from_act_and_glasgow():
    mturk = {r["term"]: r for r in _rows("act_epa_behaviors", "usmturk2015_behaviors.csv")}
    dataset = _load("spa-verb-act", classes=(1,), values=("act_evaluation", "glasgow_valence"))
    v = dataset.values
    assert v.scales == ((-4.3, 4.3), (1.0, 9.0))
    assert v.thresholds.tolist() == [0.0, 5.0]
    i = dataset.items.index_of("kill")
    assert v.ratings[i, 0] == float(mturk["kill"]["E"])
    glasgow = {r[0]: r for r in csv.reader(open(BUNDLED / "glasgow2019_norms" /
                                                "glasgow_norms.csv", encoding="utf-8"))}
    assert v.ratings[i, 1] == float(glasgow["kill"][5])
    assert v.spread[i, 1] == float(glasgow["kill"][6]) and torch.isnan(v.spread[i, 0])
    # .dat fallback: indiana2003 'squeeze' male/female averaged
    d = _load("spa-verb-act", classes=(1,), values=("act_potency",))
    line = next(ln for ln in (BUNDLED / "act_epa_behaviors" / "indiana2003_behaviors.dat")
                .read_text().splitlines() if ln.startswith("squeeze,"))
    cells = [float(c) for c in line.split(",")[1:7]]
    assert "squeeze" not in mturk
    assert d.values.ratings[d.items.index_of("squeeze"), 0] == pytest.approx(
        (cells[1] + cells[4]) / 2, abs=1e-12)


def test_spa_verb_act_drops_items_and_warns():
    with pytest.warns(UserWarning, match=r"dropped 66 of 241"):
        dataset = load_dataset("spa-verb-act")
    assert any("dropped 66 of 241" in note for note in dataset.info["notes"])
    all_values = _load("spa-verb-act", values=("act_evaluation", "act_potency", "act_activity",
                                                "glasgow_valence", "glasgow_arousal",
                                                "glasgow_dominance"))
    assert len(all_values.items) == 113 and all_values.values.n_values == 6


def test_spa_verb_act_all_classes_equals_spa_verb():
    full = _load("spa-verb")
    act = _load("spa-verb-act", classes=tuple(range(1, 18)), values=())
    assert act.items == full.items and act.values is None
    assert torch.equal(act.similarity.mask, full.similarity.mask)
    # SpA-Verb.txt has 9 decimals; the class files full precision
    assert torch.allclose(act.similarity.matrix, full.similarity.matrix, atol=1e-8, rtol=0)


def test_same_verb_same_text_everywhere():
    full = _load("spa-verb")
    act = _load("spa-verb-act", classes=(2, 7))
    for item_id, text in zip(act.items.ids, act.items.texts):
        assert full.items.texts[full.items.index_of(item_id)] == text


def test_activity_pairs_measures():
    rows = _rows("wilson2017_activity_pairs", "pairs.csv")
    phrases = {r["act1"] for r in rows} | {r["act2"] for r in rows}
    assert len(rows) == 1000 and len(phrases) == 1420
    for measure, scale in (("sim", (0, 4)), ("rel", (0, 4)), ("ma", (0, 4)), ("pac", (-2, 2))):
        d = _load("activity-pairs", measure=measure)
        assert d.similarity.scale == scale and d.similarity.n_pairs == 996
        r = rows[5]
        i, j = d.items.index_of(r["act1"]), d.items.index_of(r["act2"])
        expected = (float(r[measure]) - scale[0]) / (scale[1] - scale[0])
        assert d.similarity.matrix[i, j] == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ConfigError, match="measure"):
        load_dataset("activity-pairs", measure="bogus")


def test_sts_captions_unique_sentences():
    rows = [r for split in ("train", "dev", "test") for r in _rows("stsb_captions", f"{split}.csv")]
    assert len(rows) == 1750
    sentences = {r["sentence1"] for r in rows} | {r["sentence2"] for r in rows}
    d = _load("sts-captions")
    assert set(d.items.texts) == sentences and len(sentences) == 3025
    assert d.similarity.scale == (0.0, 5.0)
    assert _load("sts-captions", splits=("dev",)).similarity.n_pairs == 375


def test_value_sets_follow_bad_below_threshold():
    dillion = _rows("dillion2023_morality", "ratings.csv")
    d = _load("dillion-morality")
    assert d.values.ratings[:, 0].tolist() == [float(r["morality_mean"]) for r in dillion]
    assert d.values.thresholds.tolist() == [0.0]
    mfv = _rows("clifford2015_mfv", "vignettes.csv")
    m = _load("mfv")
    assert m.items.ids == tuple(r["id"] for r in mfv)
    assert m.values.column("acceptability").tolist() == [
        4 - float(r["wrongness_mean_0to4"]) for r in mfv]
    assert m.values.thresholds.tolist() == [2.0] + [50.0] * 7
    cm = [r for r in _rows("ethics", "cm_test.csv") if r["is_short"] == "True"]
    c = _load("ethics-commonsense-short")
    assert c.values.column("acceptable").tolist() == [1.0 - float(r["label"]) for r in cm]
    assert int((c.values.column("acceptable") < 0.5).sum()) == 983
    justice = _rows("ethics", "justice_test.csv")
    j = _load("ethics-justice")
    assert j.values.column("reasonable").tolist() == [float(r["label"]) for r in justice]
    assert len(_load("ethics-justice", split="all").items) == 2704 + 2052


def test_loads_are_fresh_and_fast():
    _load("spa-verb")
    start = time.perf_counter()
    a = _load("spa-verb")
    elapsed = time.perf_counter() - start
    before = a.similarity.matrix.clone()
    a.similarity.matrix.fill_(0.5)
    a.info["notes"].append("changed")
    b = _load("spa-verb")
    assert torch.equal(b.similarity.matrix, before)
    assert "changed" not in b.info["notes"]
    assert elapsed < 1.0


def test_unknown_name_and_option():
    with pytest.raises(ConfigError, match="spa-verb"):
        load_dataset("nope")
    with pytest.raises(ConfigError, match="classes"):
        load_dataset("spa-verb", classes=(1,))
    with pytest.raises(ConfigError, match="classes"):
        load_dataset("spa-verb-act", classes=(0,))
    with pytest.raises(ConfigError, match="values"):
        load_dataset("spa-verb-act", values=("valence",))
