"""The encodings both sides agree on: the transient key, canonical JSON, timestamps, bounds.

Owns: :data:`TRANSIENT_KEY` (where a request travels), :func:`canonical_json` (the bytes every
endorsing peer and every retry must reproduce), the timestamp format and :data:`MAX_AMOUNT`.
Must not: import anything outside the standard library.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

__all__ = [
    "MAX_AMOUNT",
    "TIMESTAMP_FORMAT",
    "TRANSIENT_KEY",
    "canonical_json",
    "format_timestamp",
    "parse_timestamp",
]

#: The transient map key the contract reads its request from (JSON, see :mod:`.requests`).
TRANSIENT_KEY = "request"

#: Largest amount or balance, in minor units: a signed 64-bit integer, so that Go, Java and
#: JavaScript clients (``BigInt``) read every value exactly.
MAX_AMOUNT = 2**63 - 1

#: The contract's timestamps (``created_at``, ``expires_at``, ...): UTC, fixed width, so they
#: sort as text.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def canonical_json(obj: object) -> bytes:
    """Serialize deterministically: sorted keys, no spaces, UTF-8.

    Every endorsing peer must produce byte-identical values, or their write sets differ; the
    same request must have the same bytes, or a retry would derive another transaction id.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def format_timestamp(moment: datetime) -> str:
    """``moment`` (timezone-aware) as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """Inverse of :func:`format_timestamp`; ``ValueError`` on another format."""
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
