"""Hash functions: a message in, the digest that a signer signs out.

The default everywhere is :func:`sha256`, what Fabric's ECDSA MSPs expect. Ed25519 signs the whole
message, so a gateway used with :func:`fabgateway.ed25519_signer` must be connected with
``hash=none``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

__all__ = ["Hash", "none", "sha3_256", "sha3_384", "sha256", "sha384"]

Hash = Callable[[bytes], bytes]
"""A hash function: message bytes to digest bytes."""


def sha256(message: bytes) -> bytes:
    """SHA-256 digest of ``message`` (the default)."""
    return hashlib.sha256(message).digest()


def sha384(message: bytes) -> bytes:
    """SHA-384 digest of ``message``."""
    return hashlib.sha384(message).digest()


def sha3_256(message: bytes) -> bytes:
    """SHA3-256 digest of ``message``."""
    return hashlib.sha3_256(message).digest()


def sha3_384(message: bytes) -> bytes:
    """SHA3-384 digest of ``message``."""
    return hashlib.sha3_384(message).digest()


def none(message: bytes) -> bytes:
    """No hashing: the signer receives the message itself (for Ed25519)."""
    return bytes(message)
