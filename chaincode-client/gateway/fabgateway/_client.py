"""The gRPC calls, their default timeouts and the mapping of gRPC failures to stage errors.

Internal: one instance per Gateway, shared by every Network, Contract and Proposal made from it.
No lock is taken anywhere: each call is an independent grpc.aio call on the caller's channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from fabgateway._protos import events_pb2_grpc, gateway_pb2, gateway_pb2_grpc
from fabgateway.errors import (
    CallError,
    CommitStatusError,
    EndorseError,
    EvaluateError,
    SigningError,
    SubmitError,
    error_details,
)
from fabgateway.hashing import Hash
from fabgateway.identity import Identity, Signer

_E = TypeVar("_E", bound=CallError)


@dataclass(frozen=True)
class Timeouts:
    """Default deadline of each call, in seconds (``None``: no deadline)."""

    evaluate: float | None
    endorse: float | None
    submit: float | None
    commit_status: float | None


class SigningIdentity:
    """An identity with the hash and (optional) signer that go with it."""

    def __init__(self, identity: Identity, signer: Signer | None, hash: Hash) -> None:
        self.identity = identity
        self._signer = signer
        self._hash = hash
        self.creator = identity.serialize()

    def hash(self, message: bytes) -> bytes:
        return self._hash(message)

    def sign(self, digest: bytes) -> bytes:
        if self._signer is None:
            raise SigningError(
                "no signer was supplied to connect(): sign the digest off-line and use the "
                "gateway's new_signed_* methods"
            )
        try:
            signature = self._signer(digest)
        except Exception as error:
            raise SigningError(f"signer failed: {error}") from error
        if not signature:
            raise SigningError("signer returned an empty signature")
        return bytes(signature)


def rpc_error(cls: type[_E], error: grpc.aio.AioRpcError, **fields: Any) -> _E:
    """Build a stage error from a failed grpc.aio call."""
    return cls(error.details() or "", code=error.code(), details=error_details(error), **fields)


def effective_timeout(timeout: float | None, default: float | None) -> float | None:
    return default if timeout is None else timeout


class GatewayClient:
    """The Gateway and Deliver stubs on the caller's channel, with default timeouts."""

    def __init__(self, channel: grpc.aio.Channel, timeouts: Timeouts) -> None:
        self.channel = channel
        self.timeouts = timeouts
        self._gateway = gateway_pb2_grpc.GatewayStub(channel)
        self._deliver = events_pb2_grpc.DeliverStub(channel)

    async def evaluate(self, request: Any, timeout: float | None) -> Any:  # noqa: ASYNC109 - a gRPC deadline
        try:
            return await self._gateway.Evaluate(
                request, timeout=effective_timeout(timeout, self.timeouts.evaluate)
            )
        except grpc.aio.AioRpcError as error:
            raise rpc_error(
                EvaluateError, error, transaction_id=str(request.transaction_id)
            ) from error

    async def endorse(self, request: Any, timeout: float | None) -> Any:  # noqa: ASYNC109 - a gRPC deadline
        try:
            return await self._gateway.Endorse(
                request, timeout=effective_timeout(timeout, self.timeouts.endorse)
            )
        except grpc.aio.AioRpcError as error:
            raise rpc_error(
                EndorseError, error, transaction_id=str(request.transaction_id)
            ) from error

    async def submit(self, request: Any, timeout: float | None) -> Any:  # noqa: ASYNC109 - a gRPC deadline
        try:
            return await self._gateway.Submit(
                request, timeout=effective_timeout(timeout, self.timeouts.submit)
            )
        except grpc.aio.AioRpcError as error:
            raise rpc_error(
                SubmitError, error, transaction_id=str(request.transaction_id)
            ) from error

    async def commit_status(self, signed_request: Any, timeout: float | None) -> Any:  # noqa: ASYNC109 - a gRPC deadline
        try:
            return await self._gateway.CommitStatus(
                signed_request, timeout=effective_timeout(timeout, self.timeouts.commit_status)
            )
        except grpc.aio.AioRpcError as error:
            request = gateway_pb2.CommitStatusRequest()
            try:
                request.ParseFromString(signed_request.request)
                transaction_id = str(request.transaction_id)
            except Exception:
                transaction_id = "?"
            raise rpc_error(CommitStatusError, error, transaction_id=transaction_id) from error

    def chaincode_events(self, signed_request: Any, timeout: float | None) -> Any:
        """Start the server-streaming ChaincodeEvents call (a grpc.aio UnaryStreamCall)."""
        return self._gateway.ChaincodeEvents(signed_request, timeout=timeout)

    async def deliver(self, kind: str, envelope: Any, timeout: float | None) -> Any:  # noqa: ASYNC109 - a gRPC deadline
        """Open a Deliver, DeliverFiltered or DeliverWithPrivateData stream and send the request.

        The request side stays open, as fabric-gateway leaves it: the peer ends the stream.
        """
        call = getattr(self._deliver, kind)(timeout=timeout)
        await call.write(envelope)
        return call
