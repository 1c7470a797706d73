"""The preservation suite never holds a set the run trained on; the pool never holds a
training text; the measures are the Spearman of the set's own pairs (real bundled data)."""

import pytest
import torch

from deepalign.alignment import cosine_similarity_matrix, spearman_alignment
from deepalign.alignment.preservation import (
    PreservationSet,
    judgment_source,
    preservation_pool,
    preservation_suite,
)
from deepalign.data import load_dataset
from deepalign.errors import ConfigError


@pytest.fixture(scope="module")
def spa_verb():
    return load_dataset("spa-verb")


def test_default_suite_of_spa_verb_is_the_other_similarity_sets(spa_verb) -> None:
    suite = preservation_suite([spa_verb])
    assert suite.names == ("activity-pairs", "sts-captions")
    assert "spa-verb" in suite.excluded
    # spa-verb-act holds a subset of the same judgments: it is not a candidate of its own
    assert "spa-verb-act" not in suite.names
    assert [s.n_pairs for s in suite.sets] == [996, 1748]


@pytest.mark.parametrize("trained", [["spa-verb-act"], ["activity-pairs"], ["sts-captions"],
                                     ["spa-verb", "activity-pairs"]])
def test_a_training_set_or_its_source_is_never_in_the_suite(trained) -> None:
    datasets = [load_dataset(name) for name in trained]
    everything = ["spa-verb", "spa-verb-act", "activity-pairs", "sts-captions"]
    suite = preservation_suite(datasets, names=everything)
    sources = {judgment_source(d) for d in datasets}
    for s in suite.sets:
        assert s.name not in trained
        assert judgment_source(load_dataset(s.name)) not in sources
    for name in trained:
        assert name in suite.excluded
    if "spa-verb-act" in trained:  # its judgments are spa-verb's
        assert "spa-verb" in suite.excluded and "spa-verb" not in suite.names


def test_a_set_sharing_most_texts_with_the_training_data_is_left_out(spa_verb) -> None:
    # a user's copy of the spa-verb items under another name shares every text
    copy = load_dataset("spa-verb")
    renamed = type(copy)(name="my-verbs", items=copy.items, similarity=copy.similarity)
    suite = preservation_suite([renamed], names=["spa-verb", "activity-pairs"])
    assert suite.names == ("activity-pairs",)
    assert "training texts" in suite.excluded["spa-verb"]


def test_suite_measure_is_the_spearman_of_the_observed_pairs() -> None:
    dataset = load_dataset("activity-pairs")
    subset = PreservationSet.from_dataset(dataset)
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(len(subset.texts), 8, generator=generator)
    mask = dataset.similarity.mask.bool()
    items = mask.any(dim=0).nonzero().squeeze(1)
    expected = spearman_alignment(cosine_similarity_matrix(embeddings.double()),
                                  dataset.similarity.matrix[items][:, items].double(),
                                  mask[items][:, items])
    assert subset.alignment(embeddings) == pytest.approx(expected, abs=1e-12)
    assert len(subset.texts) == len(items)


def test_pool_holds_no_training_text_and_by_request_no_suite_text(spa_verb) -> None:
    suite = preservation_suite([spa_verb])
    pool = preservation_pool([spa_verb], 5000, exclude=suite.texts())
    training = set(spa_verb.items.texts)  # held-out items included
    assert len(pool) == 5000 and len(set(pool)) == 5000
    assert not training & set(pool)
    assert not set(suite.texts()) & set(pool)
    # deterministic, and a smaller pool is a prefix of a larger one
    assert preservation_pool([spa_verb], 300, exclude=suite.texts()) == pool[:300]
    with_suite = preservation_pool([spa_verb], 20000)
    assert set(suite.texts()) & set(with_suite)


def test_unknown_names_are_refused_naming_the_option(spa_verb) -> None:
    with pytest.raises(ConfigError, match="data.preservation_sets"):
        preservation_suite([spa_verb], names=["no-such-set"])
    with pytest.raises(ConfigError, match="data.pool_datasets"):
        preservation_pool([spa_verb], 10, sources=["no-such-set"])
