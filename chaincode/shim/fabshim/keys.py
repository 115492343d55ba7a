"""Composite keys and key validation, shared by the real stub and ``fabshim.testing``.

A composite key is ``"\\x00" + object_type + "\\x00" + attr1 + "\\x00" + ... + "\\x00"``, as
fabric-chaincode-go builds it, so keys written by Go, Node and Python chaincode agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import InvalidArgumentError

COMPOSITE_KEY_NAMESPACE = "\x00"
"""First character of every composite key."""

MIN_UNICODE_RUNE = "\x00"
MAX_UNICODE_RUNE = chr(0x10FFFF)
"""U+10FFFF: the end of a partial composite key range."""

EMPTY_KEY_SUBSTITUTE = "\x01"
"""Sent instead of an empty start key in range queries (an empty start key would include
composite keys)."""


def _validate_attribute(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(f"composite key part is not valid UTF-8: {exc.reason}") from exc
    for index, char in enumerate(value):
        if char in (MIN_UNICODE_RUNE, MAX_UNICODE_RUNE):
            raise InvalidArgumentError(
                f"composite key part contains U+{ord(char):04X} at position {index}; "
                "U+0000 and U+10FFFF are not allowed"
            )


def create_composite_key(object_type: str, attributes: Sequence[str]) -> str:
    """Build a composite key from an object type and its attributes."""
    _validate_attribute(object_type)
    parts = [COMPOSITE_KEY_NAMESPACE, object_type, MIN_UNICODE_RUNE]
    for attribute in attributes:
        _validate_attribute(attribute)
        parts.append(attribute)
        parts.append(MIN_UNICODE_RUNE)
    return "".join(parts)


def split_composite_key(composite_key: str) -> tuple[str, list[str]]:
    """Split a composite key into its object type and attributes."""
    if (
        not composite_key.startswith(COMPOSITE_KEY_NAMESPACE)
        or not composite_key.endswith(MIN_UNICODE_RUNE)
        or len(composite_key) < 2
    ):
        raise InvalidArgumentError("not a composite key")
    components = composite_key[1:-1].split(MIN_UNICODE_RUNE)
    return components[0], components[1:]


def partial_key_range(object_type: str, attributes: Sequence[str]) -> tuple[str, str]:
    """The [start, end) range holding every composite key that starts with these parts."""
    start = create_composite_key(object_type, attributes)
    return start, start + MAX_UNICODE_RUNE


def validate_key(key: str) -> None:
    """A key to read or write must be a non-empty string."""
    if not isinstance(key, str) or key == "":
        raise InvalidArgumentError("key must be a non-empty string")


def validate_collection(collection: str) -> None:
    """A private data collection name must be a non-empty string."""
    if not isinstance(collection, str) or collection == "":
        raise InvalidArgumentError("collection must be a non-empty string")


def range_keys(start_key: str, end_key: str) -> tuple[str, str]:
    """Validate simple range bounds; an empty start key becomes :data:`EMPTY_KEY_SUBSTITUTE`.

    Simple keys must not start with U+0000, which is reserved for composite keys.
    """
    if start_key == "":
        start_key = EMPTY_KEY_SUBSTITUTE
    for bound in (start_key, end_key):
        if bound.startswith(COMPOSITE_KEY_NAMESPACE):
            raise InvalidArgumentError(
                "a range bound must not start with U+0000 (reserved for composite keys)"
            )
    return start_key, end_key
