"""fabshim.testing: run chaincode without a peer, for fast unit tests.

Owns ``MemoryLedger`` / ``MemoryStub`` (the ``Stub`` API over dicts, keeping Fabric's
rules), test identities (``make_identity``: a certificate with Fabric CA attributes), and
the proposal builder a test peer needs. Must not be imported by production chaincode.

Writes of a ``MemoryStub`` apply only on ``stub.commit()``; ``MemoryLedger.invoke`` runs a
transaction and commits it exactly when the response succeeds (status < 400), so
consecutive ``invoke`` calls see each other's commits; ``MemoryLedger.evaluate`` never
commits. ``invoke(..., endorsers=[msp_id, ...])`` also checks key-level policies (only
those) against the endorsing organizations' peers.
"""

from ._identities import TestIdentity, make_identity, serialize_identity
from ._memory import ChaincodeEventRecord, MemoryLedger, MemoryStub, run_chaincode
from ._proposal import build_signed_proposal
from ._query import (
    LEVELDB_RICH_QUERY_ERROR,
    LEVELDB_RICH_QUERY_PAGED_ERROR,
    in_range,
    range_page,
    rich_query_page,
)

__all__ = [
    "LEVELDB_RICH_QUERY_ERROR",
    "LEVELDB_RICH_QUERY_PAGED_ERROR",
    "ChaincodeEventRecord",
    "MemoryLedger",
    "MemoryStub",
    "TestIdentity",
    "build_signed_proposal",
    "in_range",
    "make_identity",
    "range_page",
    "rich_query_page",
    "run_chaincode",
    "serialize_identity",
]
