"""The no-op chaincode on our shim: the network's ceiling (``dtbench.noop:chaincode``).

It answers every INIT and TRANSACTION with an empty success, touching no state: what is
left is the cost of the shim protocol, endorsement, ordering, validation and commit.
"""

from __future__ import annotations

from fabshim import Response, Stub, success

__all__ = ["NoOp", "chaincode"]

_OK = success()


class NoOp:
    """A chaincode that does nothing."""

    async def init(self, stub: Stub) -> Response:
        return _OK

    async def invoke(self, stub: Stub) -> Response:
        return _OK


chaincode = NoOp()
