"""deepalign: train text encoders toward human similarity judgments, then use them as
Gaussian-process kernels in bandit agents that learn human values.

Dimension names used in every docstring:
    n_items: items (actions) in an item set
    n_values: value scales rated per item
    d: embedding dimension
    n_pairs: judged pairs
    n_runs: independent bandit runs in a batch
    n_arms: arms of a bandit (items it may choose)
"""

from deepalign.errors import CheckpointError, ConfigError, DataError, DeepAlignError

__version__ = "0.1.0"

__all__ = ["CheckpointError", "ConfigError", "DataError", "DeepAlignError", "__version__"]
