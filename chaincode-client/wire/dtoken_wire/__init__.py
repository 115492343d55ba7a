"""The wire contract between the bank SDK (``dtoken``) and the deposit-token chaincode.

Owns: what crosses the wire and is stored, written once for both sides: the transient key,
canonical JSON, the timestamp format and amount bound (:mod:`.codec`), the status enums
(:mod:`.enums`), the chaincode event names (:mod:`.events`), the refusal classes, one per
error code (:mod:`.errors`), the strict JSON reader and name formats (:mod:`.fields`), and one
frozen dataclass per request with ``to_json``/``from_json`` (:mod:`.requests`, including
:class:`~dtoken_wire.requests.Limits`), and the namespace layout's naming rule
(:mod:`.namespaces`: which chaincode name holds which collection).

Must not: import anything of the project (an import-linter contract keeps it so), or anything
outside the standard library.
"""

from .codec import (
    MAX_AMOUNT,
    TIMESTAMP_FORMAT,
    TRANSIENT_KEY,
    canonical_json,
    format_timestamp,
    parse_timestamp,
)
from .enums import AccountStatus, Direction, TransferStatus
from .errors import ERROR_CODES, ErrorCode, WireError
from .events import EVENT_DECIDED, EVENT_PENDING
from .requests import REQUESTS, Limits, Request

__all__ = [
    "ERROR_CODES",
    "EVENT_DECIDED",
    "EVENT_PENDING",
    "MAX_AMOUNT",
    "REQUESTS",
    "TIMESTAMP_FORMAT",
    "TRANSIENT_KEY",
    "AccountStatus",
    "Direction",
    "ErrorCode",
    "Limits",
    "Request",
    "TransferStatus",
    "WireError",
    "canonical_json",
    "format_timestamp",
    "parse_timestamp",
]
