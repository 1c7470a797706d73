"""deepalign.encoders: text -> embeddings (`n_items x d` float32).

Every encoder is an `nn.Module` with `forward(texts) -> n_items x d`, `.output_dim` and
`.config()` (JSON-serialisable constructor arguments).
"""

from deepalign.encoders.export import export_encoder
from deepalign.encoders.length import LengthEncoder
from deepalign.encoders.lexical import LexicalEncoder
from deepalign.encoders.load import export_info, load_encoder
from deepalign.encoders.random_init import RandomInitEncoder
from deepalign.encoders.sentence import SentenceEncoder

__all__ = [
    "LengthEncoder",
    "LexicalEncoder",
    "RandomInitEncoder",
    "SentenceEncoder",
    "export_encoder",
    "export_info",
    "load_encoder",
]
