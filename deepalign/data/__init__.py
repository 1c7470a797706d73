"""deepalign.data: items, human similarity judgments and value ratings; the bundled public
datasets, your own files, and personalization/generalization item splits.

Shapes: ``n_items`` items, ``n_values`` value scales.
"""

from deepalign.data.act_epa import render_verb_action
from deepalign.data.cards import dataset_label, is_user_dataset, open_dataset, read_card
from deepalign.data.dataset import Dataset
from deepalign.data.items import ItemSet
from deepalign.data.registry import list_datasets, load_dataset
from deepalign.data.similarity import SimilarityJudgments
from deepalign.data.splits import split_items, split_pair_masks
from deepalign.data.user import load_user_dataset
from deepalign.data.values import ValueRatings

__all__ = [
    "Dataset",
    "ItemSet",
    "SimilarityJudgments",
    "ValueRatings",
    "dataset_label",
    "is_user_dataset",
    "list_datasets",
    "load_dataset",
    "load_user_dataset",
    "open_dataset",
    "read_card",
    "render_verb_action",
    "split_items",
    "split_pair_masks",
]
