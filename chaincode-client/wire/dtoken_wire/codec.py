"""The encodings both sides agree on: the transient key, canonical JSON, timestamps, bounds.

Owns: :data:`TRANSIENT_KEY` (where a request travels), :func:`canonical_json` (the bytes every
endorsing peer and every retry must reproduce), the timestamp format and :data:`MAX_AMOUNT`.
Must not: import anything outside the standard library.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from functools import lru_cache

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


#: One encoder for every call: ``json.dumps`` with these options builds a new one each time
#: (the bytes are the same; the chaincode encodes every record it writes through here).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

#: The exact form :func:`format_timestamp` writes (ASCII digits, fixed width): parsed without
#: ``strptime``, which costs a chaincode server ~8 µs per timestamp of every record it reads.
_CANONICAL_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{6})Z",
    re.ASCII)


def canonical_json(obj: object) -> bytes:
    """Serialize deterministically: sorted keys, no spaces, UTF-8.

    Every endorsing peer must produce byte-identical values, or their write sets differ; the
    same request must have the same bytes, or a retry would derive another transaction id.
    """
    return _CANONICAL.encode(obj).encode()


def format_timestamp(moment: datetime) -> str:
    """``moment`` (timezone-aware) as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return _format_utc(moment)


@lru_cache(maxsize=256)
def _format_utc(moment: datetime) -> str:
    # Cached: a transaction formats its own timestamp once per record it writes. Equal aware
    # datetimes are the same instant, so they share one UTC text.
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """Inverse of :func:`format_timestamp`; ``ValueError`` on another format."""
    match = _CANONICAL_TIMESTAMP.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        # Anything else is judged by strptime, as it always was (it accepts a few more forms,
        # e.g. fewer fraction digits).
        return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    year, month, day, hour, minute, second, micro = map(int, match.groups())
    # out-of-range fields raise ValueError here, as strptime's datetime does
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
