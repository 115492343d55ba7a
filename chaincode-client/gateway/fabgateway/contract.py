"""A chaincode (and optionally one named contract in it) on one channel."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from fabgateway._client import GatewayClient, SigningIdentity
from fabgateway.proposal import Argument, Proposal, build_proposal
from fabgateway.transaction import SubmittedTransaction

__all__ = ["Contract"]


class _Deadline:
    """One overall timeout shared by the steps of a composed call."""

    def __init__(self, timeout: float | None) -> None:
        self._end = None if timeout is None else time.monotonic() + timeout

    def remaining(self) -> float | None:
        """Seconds left (at least a millisecond, so that gRPC reports the expiry), or None."""
        if self._end is None:
            return None
        return max(self._end - time.monotonic(), 0.001)


class Contract:
    """Evaluate and submit transactions of one chaincode.

    With ``contract_name``, transaction names are sent qualified as ``contract_name:name``.
    """

    def __init__(
        self,
        client: GatewayClient,
        signing_id: SigningIdentity,
        channel_name: str,
        chaincode_name: str,
        contract_name: str | None = None,
    ) -> None:
        self._client = client
        self._signing_id = signing_id
        self._channel_name = channel_name
        self._chaincode_name = chaincode_name
        self._contract_name = contract_name or None

    @property
    def chaincode_name(self) -> str:
        return self._chaincode_name

    @property
    def contract_name(self) -> str | None:
        return self._contract_name

    @property
    def channel_name(self) -> str:
        return self._channel_name

    def _qualified(self, name: str) -> str:
        return f"{self._contract_name}:{name}" if self._contract_name else name

    def new_proposal(
        self,
        name: str,
        *,
        arguments: Iterable[Argument] = (),
        transient_data: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] | None = None,
        nonce: bytes | None = None,
    ) -> Proposal:
        """A proposal to invoke transaction ``name``; nothing is sent yet.

        ``nonce`` (default: 24 random bytes) fixes the transaction id,
        ``hex(sha256(nonce || creator))``: a retry with the same nonce is the same transaction.
        ``endorsing_organizations`` are MSP ids (the target organizations for an evaluate).
        """
        return build_proposal(
            self._client,
            self._signing_id,
            self._channel_name,
            self._chaincode_name,
            self._qualified(name),
            arguments=arguments,
            transient_data=transient_data,
            endorsing_organizations=endorsing_organizations,
            nonce=nonce,
        )

    async def evaluate_transaction(
        self,
        name: str,
        *args: Argument,
        transient_data: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline
    ) -> bytes:
        """Evaluate (query) transaction ``name`` with ``args``; return its result.

        Raises :class:`EvaluateError`.
        """
        return await self.evaluate(
            name,
            arguments=args,
            transient_data=transient_data,
            endorsing_organizations=endorsing_organizations,
            timeout=timeout,
        )

    async def evaluate(
        self,
        name: str,
        *,
        arguments: Iterable[Argument] = (),
        transient_data: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline
    ) -> bytes:
        """Like :meth:`evaluate_transaction`, with the arguments as a keyword."""
        proposal = self.new_proposal(
            name,
            arguments=arguments,
            transient_data=transient_data,
            endorsing_organizations=endorsing_organizations,
        )
        return await proposal.evaluate(timeout=timeout)

    async def submit_transaction(
        self,
        name: str,
        *args: Argument,
        transient_data: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] | None = None,
        nonce: bytes | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline
    ) -> bytes:
        """Endorse, submit and wait for the commit of transaction ``name``; return its result.

        Raises :class:`EndorseError`, :class:`SubmitError`, :class:`CommitStatusError`, or
        :class:`CommitError` when the transaction committed invalid. ``timeout`` bounds the
        whole call; without it each step has the gateway's default timeout.
        """
        return await self.submit(
            name,
            arguments=args,
            transient_data=transient_data,
            endorsing_organizations=endorsing_organizations,
            nonce=nonce,
            timeout=timeout,
        )

    async def submit(
        self,
        name: str,
        *,
        arguments: Iterable[Argument] = (),
        transient_data: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] | None = None,
        nonce: bytes | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline
    ) -> bytes:
        """Like :meth:`submit_transaction`, with the arguments as a keyword."""
        deadline = _Deadline(timeout)
        submitted = await self._submit_async(
            name,
            arguments=arguments,
            transient_data=transient_data,
            endorsing_organizations=endorsing_organizations,
            nonce=nonce,
            deadline=deadline,
        )
        status = await submitted.get_status(timeout=deadline.remaining())
        status.raise_for_status()
        return submitted.result

    async def submit_async(
        self,
        name: str,
        *,
        arguments: Iterable[Argument] = (),
        transient_data: Mapping[str, Argument] | None = None,
        endorsing_organizations: Iterable[str] | None = None,
        nonce: bytes | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - a gRPC deadline
    ) -> SubmittedTransaction:
        """Endorse and submit; return at once with the result and a pending commit.

        ``await submitted.get_status()`` later waits for the commit.
        """
        return await self._submit_async(
            name,
            arguments=arguments,
            transient_data=transient_data,
            endorsing_organizations=endorsing_organizations,
            nonce=nonce,
            deadline=_Deadline(timeout),
        )

    async def _submit_async(
        self,
        name: str,
        *,
        arguments: Iterable[Argument],
        transient_data: Mapping[str, Argument] | None,
        endorsing_organizations: Iterable[str] | None,
        nonce: bytes | None,
        deadline: _Deadline,
    ) -> SubmittedTransaction:
        proposal = self.new_proposal(
            name,
            arguments=arguments,
            transient_data=transient_data,
            endorsing_organizations=endorsing_organizations,
            nonce=nonce,
        )
        transaction = await proposal.endorse(timeout=deadline.remaining())
        return await transaction.submit(timeout=deadline.remaining())
