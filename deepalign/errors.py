"""Exception types. Every error deepalign raises on user input derives from `DeepAlignError`.

Messages name the file (where there is one), the field, line or cell, what was expected,
what came, and the fix.
"""


class DeepAlignError(Exception):
    """Base class of every deepalign error."""


class DataError(DeepAlignError, ValueError):
    """A data file or in-memory judgment/rating array is malformed."""


class ConfigError(DeepAlignError, ValueError):
    """A configuration (YAML recipe, CLI option, constructor argument) is invalid."""


class CheckpointError(DeepAlignError, ValueError):
    """A checkpoint or exported encoder is missing, truncated, tampered or of the wrong shape."""
