"""deepalign.alignment: differentiable alignment losses and the measures that report
alignment between a model's similarity matrix and human similarity judgments.

Dimension names: ``n_items`` items, ``d`` embedding dimension, ``n_pairs`` observed
off-diagonal pairs of the upper triangle (the only pairs any loss or measure uses).
"""

from deepalign.alignment.base import AlignmentLoss
from deepalign.alignment.cka import CKALoss
from deepalign.alignment.measures import (
    alignment_measures,
    kendall_tau_a,
    linear_cka,
    pearson_alignment,
    spearman_alignment,
)
from deepalign.alignment.mse import SimilarityMSELoss
from deepalign.alignment.pearson import PearsonLoss
from deepalign.alignment.regularizer import LocalSimilarityRegularizer
from deepalign.alignment.similarity import cosine_similarity_matrix
from deepalign.alignment.soft_rank import soft_rank
from deepalign.alignment.soft_spearman import SoftSpearmanLoss
from deepalign.alignment.triplet import TripletOddOneOutLoss

__all__ = [
    "AlignmentLoss",
    "CKALoss",
    "LocalSimilarityRegularizer",
    "PearsonLoss",
    "SimilarityMSELoss",
    "SoftSpearmanLoss",
    "TripletOddOneOutLoss",
    "alignment_measures",
    "cosine_similarity_matrix",
    "kendall_tau_a",
    "linear_cka",
    "pearson_alignment",
    "soft_rank",
    "spearman_alignment",
]
