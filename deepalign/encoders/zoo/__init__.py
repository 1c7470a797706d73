"""deepalign.encoders.zoo: offline language-model encoders by name (`ZOO`).

    from deepalign.encoders import SentenceEncoder
    encoder = SentenceEncoder(backbone="mpnet")      # any zoo name, or a local directory
"""

from deepalign.encoders.zoo.fixed import FixedBackbone
from deepalign.encoders.zoo.materialize import cache_root
from deepalign.encoders.zoo.registry import (
    ZOO,
    ZooEntry,
    zoo_entry,
    zoo_fixed_backbone,
)

__all__ = [
    "ZOO",
    "FixedBackbone",
    "ZooEntry",
    "cache_root",
    "zoo_entry",
    "zoo_fixed_backbone",
]
