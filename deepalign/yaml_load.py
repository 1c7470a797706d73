"""`load_yaml(text)`: safe YAML that refuses a mapping holding one key twice.

PyYAML keeps the last of two equal keys silently, so a recipe or dataset card could run
with a setting its author did not see. Both readers (`deepalign.studies.typed_yaml`,
`deepalign.data.cards`) load through this.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["DuplicateKeyError", "load_yaml"]


class DuplicateKeyError(ValueError):
    """A mapping holds one key twice; the message names the line of each."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` (no object is ever built) that refuses duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                hash(key)
            except TypeError:  # SafeLoader itself refuses an unhashable key
                continue
            if key in seen:
                raise DuplicateKeyError(
                    f"line {line}: key {key!r} appears twice in one mapping (first at line "
                    f"{seen[key]}); YAML would keep only the last. Fix: keep one.")
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """Parse `text` safely; `DuplicateKeyError` for a repeated key, `yaml.YAMLError` for
    bad syntax."""
    return yaml.load(text, Loader=_UniqueKeyLoader)
