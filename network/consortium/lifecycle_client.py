"""``_lifecycle`` approvals and commits sent by our own client, many in flight.

Fabric's ``peer lifecycle chaincode approveformyorg|commit --waitForEvent`` is one process
per call, each waiting for its own block; a 20-bank layout needs 836 approvals and 76
commits. Here each one is a proposal to the ``_lifecycle`` system chaincode signed by the
organization's admin (the NodeOU admin ``admin_env`` uses), endorsed on chosen peers through
their ``Endorser`` service (:func:`fabgateway.endorse_on_peers`: no dependence on gossip
discovery, which converges later in ``up``), submitted and awaited through the organization's
own peer's Gateway. All approvals are endorsed first, at most ``concurrency`` in flight, then
submitted together, so they fill blocks; then all commits.

* An approval is endorsed by the approving organization's own peer and submitted by its
  admin; one already made (a re-run: Fabric answers ``attempted to redefine uncommitted
  sequence ... with unchanged content``) counts as done.
* Before the commits, every peer that endorses one has committed the block of the last
  approval (commit status of that transaction, asked of each of them): a commit's endorsers
  then read the same approvals and agree.
* A commit is endorsed by a peer of each organization it names (the approvers: enough for the
  channel's ``LifecycleEndorsement``, MAJORITY) and submitted by the first one's admin; one
  already committed (``new definition must be sequence 2``) counts as done.
* An invocation (:class:`Invocation`: a chaincode's one-time ``init_network`` in a
  namespace) is signed by the organization's admin and endorsed by the peers it names; one
  the chaincode refuses as done before (its ``done_before`` text, e.g.
  ``ALREADY_INITIALIZED``) counts as done.
* Retried: what heals by itself (a node unavailable, no Raft leader yet, a peer a block
  behind: ``ProposalResponsePayloads do not match``, ``not agreed to by this org``, a
  transaction invalidated by a concurrent one). Anything else raises
  :class:`consortium.errors.LifecycleError` naming the organization, the definition and
  Fabric's message.

Must not: decide what is approved or by whom (:mod:`consortium.lifecycle`,
:mod:`consortium.namespaces`), build the ``_lifecycle`` arguments (that is
:mod:`consortium.lifecycle_args`), or run Fabric's CLI.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import fabgateway
import grpc

from consortium import lifecycle_args
from consortium.admin_sessions import AdminSessions, tls_channel_to
from consortium.config import Consortium, Org
from consortium.errors import LifecycleError
from consortium.layout import StateLayout
from consortium.lifecycle_args import ChaincodeDefinition

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Approval",
    "CommitJob",
    "Invocation",
    "LifecycleClient",
    "LifecycleReport",
]

LIFECYCLE = "_lifecycle"
DEFAULT_CONCURRENCY = 500
"""Transactions in flight at once: all of a 20-bank bootstrap's 836 approvals fit in a few
batches, and no single peer's Gateway is ever asked more than its default limit (500
concurrent requests, ``peer.limits.concurrency.gatewayService``)."""

CALL_TIMEOUT = 60.0
"""Deadline of an endorsement or a submission, seconds: a bootstrap loads the machine."""
COMMIT_TIMEOUT = 300.0
"""Deadline of the wait for one commit, seconds."""

#: What a peer or the orderer says when trying again shortly helps.
_TRANSIENT = (
    "SERVICE_UNAVAILABLE", "no Raft leader", "failed to connect", "connection refused",
    "UNAVAILABLE", "DEADLINE_EXCEEDED", "ProposalResponsePayloads do not match",
    "not agreed to by this org", "chaincode registration failed", "could not launch chaincode",
    "error sending",
    # a peer that has not committed the definition's block yet (init_network right after
    # the commits, on a loaded machine): "make sure the chaincode dtoken has been
    # successfully defined on channel payments and try again: chaincode dtoken not found"
    "has been successfully defined",
)  # fmt: skip
#: Validation codes of a transaction that a new attempt may get committed.
_RETRY_CODES = {"MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT", "DUPLICATE_TXID"}
_ALREADY_APPROVED = "with unchanged content"
_ALREADY_COMMITTED = "new definition must be sequence"


@dataclass(frozen=True)
class Approval:
    """``org`` approves ``definition``, running ``package_id`` for it (``None``: without)."""

    definition: ChaincodeDefinition
    org: Org
    package_id: str | None


@dataclass(frozen=True)
class CommitJob:
    """``definition`` committed by ``endorsers[0]``'s admin, endorsed by a peer of each."""

    definition: ChaincodeDefinition
    endorsers: tuple[Org, ...]

    def __post_init__(self) -> None:
        if not self.endorsers:
            raise ValueError(f"commit of {self.definition.name!r}: no endorsing organization")


@dataclass(frozen=True)
class Invocation:
    """``org``'s admin invokes ``chaincode`` with ``arguments`` (the function first),
    endorsed by a peer of each of ``endorsers``; a refusal containing ``done_before`` means
    it was done before."""

    chaincode: str
    org: Org
    arguments: tuple[str, ...]
    endorsers: tuple[Org, ...]
    done_before: str

    def __post_init__(self) -> None:
        if not self.arguments:
            raise ValueError(f"invocation of {self.chaincode!r}: no function")
        if not self.endorsers:
            raise ValueError(f"invocation of {self.chaincode!r}: no endorsing organization")
        if not self.done_before:
            raise ValueError(f"invocation of {self.chaincode!r}: say what 'done before' is")


@dataclass
class LifecycleReport:
    """What one batch of approvals or commits did."""

    sent: int = 0
    """Transactions committed VALID."""
    present: int = 0
    """Approvals already made, or definitions already committed (nothing sent)."""
    retries: int = 0
    retried_for: dict[str, int] = field(default_factory=dict)
    """Why attempts were retried: the transient answer matched, or the validation code."""
    seconds: float = 0.0
    waited: float = 0.0
    """Of ``seconds``, how long the commits waited for their endorsing peers to hold the
    last approval."""
    blocks: set[int] = field(default_factory=set)
    """The blocks the transactions committed in."""
    last_endorsed: float = 0.0
    last_submitted: float = 0.0
    """Seconds from the start to the last endorsement and to the last submission."""


class LifecycleClient:
    """Sends ``_lifecycle`` transactions as the organizations' admins; an async context
    manager that owns one gRPC channel per organization's first peer."""

    def __init__(
        self,
        consortium: Consortium,
        layout: StateLayout,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        attempts: int = 40,
        connect: Callable[[Org], grpc.aio.Channel] | None = None,
    ) -> None:
        """``connect(org)`` opens the channel to ``org``'s peer (default: TLS to its first
        peer with the organization's TLS CA); the client closes what it opened."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        self.consortium = consortium
        self.layout = layout
        self.concurrency = concurrency
        self.attempts = attempts
        self._connect = connect or self._tls_connect
        self._sessions = AdminSessions(layout)
        self._limit: asyncio.Semaphore | None = None
        self._last_approval: tuple[int, str] | None = None  # (block, tx id)
        self._started = time.monotonic()  # of the current batch

    def _tls_connect(self, org: Org) -> grpc.aio.Channel:
        return tls_channel_to(self.layout, org.name, org.peers[0].endpoint)

    async def __aenter__(self) -> Self:
        self._limit = asyncio.Semaphore(self.concurrency)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._sessions.close()

    # ------------------------------------------------------------------ connections

    def _channel(self, org: Org) -> grpc.aio.Channel:
        if not org.peers:
            raise ValueError(f"organization {org.name} has no peer to endorse with")
        return self._sessions.channel(org.name, lambda: self._connect(org))

    def _gateway(self, org: Org) -> fabgateway.Gateway:
        """``org``'s admin on ``org``'s own peer."""
        return self._sessions.gateway(
            org.name, org, self._channel(org), call_timeout=CALL_TIMEOUT,
            commit_status_timeout=COMMIT_TIMEOUT)

    def _endorser(self, org: Org) -> fabgateway.Endorser:
        return fabgateway.Endorser(self._channel(org), org.peers[0].endpoint, org.msp_id)

    # ------------------------------------------------------------------ the batches

    async def approve_all(self, approvals: Sequence[Approval]) -> LifecycleReport:
        """Every approval, at most ``concurrency`` in flight; raises the first failure (as
        :class:`LifecycleError`) once the others have finished.

        Every approval is endorsed first and then all are submitted together: approvals of
        different organizations or definitions write different keys, and submitted at once
        they fill blocks (``MaxMessageCount``) instead of trickling into one small block per
        ``BatchTimeout`` while the others are still being endorsed; every peer pays a fixed
        cost per block. One whose first endorsement failed goes the usual way (endorse,
        submit, retry)."""
        report = LifecycleReport()
        started = self._started = time.monotonic()
        endorsed = await asyncio.gather(*(self._endorse_approval(a) for a in approvals))
        await self._all([self._approve(a, report, first)
                         for a, first in zip(approvals, endorsed, strict=True)])
        report.seconds = time.monotonic() - started
        return report

    async def commit_all(self, commits: Sequence[CommitJob]) -> LifecycleReport:
        """Every commit, at most ``concurrency`` in flight, once each of their endorsing
        peers has committed the last approval this client sent."""
        report = LifecycleReport()
        started = time.monotonic()
        endorsers = {o.name: o for c in commits for o in c.endorsers}
        await self._all([self._caught_up(o) for o in endorsers.values()])
        report.waited = time.monotonic() - started
        self._started = started
        await self._all([self._commit(c, report) for c in commits])
        report.seconds = time.monotonic() - started
        return report

    async def invoke_all(self, invocations: Sequence[Invocation]) -> LifecycleReport:
        """Every invocation, at most ``concurrency`` in flight."""
        report = LifecycleReport()
        started = self._started = time.monotonic()
        await self._all([
            self._transact("invoke", i.org, i.chaincode, i.chaincode, i.arguments[0],
                           [a.encode() for a in i.arguments[1:]], i.endorsers, report,
                           done_before=i.done_before)
            for i in invocations
        ])
        report.seconds = time.monotonic() - started
        return report

    @staticmethod
    async def _all(jobs: Sequence[Awaitable[object]]) -> None:
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _caught_up(self, org: Org) -> None:
        if self._last_approval is None:
            return
        _, tx_id = self._last_approval
        network = self._gateway(org).get_network(self.consortium.channel)
        await self._retrying("commit", org, "(the last approval)",
                             lambda: network.new_commit(tx_id).get_status())

    # ------------------------------------------------------------------ one transaction

    async def _endorse_approval(self, a: Approval) -> fabgateway.Transaction | None:
        """``a`` endorsed by its organization's peer, not submitted; ``None`` if that fails
        for any reason (the retrying path tries again and reports what Fabric says)."""
        assert self._limit is not None, "use LifecycleClient as an async context manager"
        args = lifecycle_args.approve_args(a.definition, a.package_id)
        contract = self._gateway(a.org).get_network(self.consortium.channel).get_contract(LIFECYCLE)
        async with self._limit:
            proposal = contract.new_proposal(lifecycle_args.APPROVE, arguments=[args])
            try:
                return await fabgateway.endorse_on_peers(proposal, [self._endorser(a.org)])
            except fabgateway.CallError:
                return None

    async def _approve(self, a: Approval, report: LifecycleReport,
                       first: fabgateway.Transaction | None = None) -> None:
        args = lifecycle_args.approve_args(a.definition, a.package_id)
        status = await self._transact("approve", a.org, a.definition.name, LIFECYCLE,
                                      lifecycle_args.APPROVE, [args], (a.org,), report,
                                      done_before=_ALREADY_APPROVED, first=first)
        if status is not None and (self._last_approval is None
                                   or status.block_number > self._last_approval[0]):
            self._last_approval = (status.block_number, status.transaction_id)

    async def _commit(self, c: CommitJob, report: LifecycleReport) -> None:
        args = lifecycle_args.commit_args(c.definition)
        await self._transact("commit", c.endorsers[0], c.definition.name, LIFECYCLE,
                             lifecycle_args.COMMIT, [args], c.endorsers, report,
                             done_before=_ALREADY_COMMITTED)

    async def _transact(
        self,
        step: str,
        org: Org,
        name: str,
        chaincode: str,
        function: str,
        args: Sequence[bytes],
        endorsers: Sequence[Org],
        report: LifecycleReport,
        *,
        done_before: str,
        first: fabgateway.Transaction | None = None,
    ) -> fabgateway.Status | None:
        """Endorse, submit and await one transaction; ``None`` if Fabric says it was done
        before (``done_before`` is in its answer). ``first``: the first attempt's
        transaction, already endorsed."""
        assert self._limit is not None, "use LifecycleClient as an async context manager"
        contract = self._gateway(org).get_network(self.consortium.channel).get_contract(chaincode)
        async with self._limit:
            for attempt in range(self.attempts):
                if attempt:
                    report.retries += 1
                    await asyncio.sleep(min(0.2 * attempt, 2.0))
                try:
                    if attempt == 0 and first is not None:
                        endorsed = first
                    else:
                        proposal = contract.new_proposal(function, arguments=args)
                        endorsed = await fabgateway.endorse_on_peers(
                            proposal, [self._endorser(o) for o in endorsers])
                    report.last_endorsed = time.monotonic() - self._started
                    submitted = await endorsed.submit()
                    report.last_submitted = time.monotonic() - self._started
                    status = await submitted.get_status()
                except fabgateway.CallError as error:
                    text = _message(error)
                    if done_before in text:
                        report.present += 1
                        return None
                    if _transient(text) and attempt < self.attempts - 1:
                        reason = next(t for t in _TRANSIENT if t in text)
                        report.retried_for[reason] = report.retried_for.get(reason, 0) + 1
                        continue
                    raise LifecycleError(step, org.name, name, text) from error
                if status.successful:
                    report.sent += 1
                    report.blocks.add(status.block_number)
                    return status
                if status.code_name in _RETRY_CODES and attempt < self.attempts - 1:
                    reason = status.code_name
                    report.retried_for[reason] = report.retried_for.get(reason, 0) + 1
                    continue
                raise LifecycleError(step, org.name, name,
                                     f"transaction {status.transaction_id} committed invalid "
                                     f"({status.code_name}) in block {status.block_number}")
        raise AssertionError("unreachable")

    async def _retrying(
        self, step: str, org: Org, name: str, call: Callable[[], Awaitable[object]]
    ) -> None:
        for attempt in range(self.attempts):
            try:
                await call()
                return
            except fabgateway.CallError as error:
                text = _message(error)
                if not _transient(text) or attempt == self.attempts - 1:
                    raise LifecycleError(step, org.name, name, text) from error
                await asyncio.sleep(min(0.2 * (attempt + 1), 2.0))


def _message(error: fabgateway.CallError) -> str:
    """What Fabric said: the status and each peer's (or orderer's) own message."""
    parts = [f"{error.code.name}: {error.status_message}"]
    parts += [f"{d.address} ({d.msp_id}): {d.message}" for d in error.details]
    return "; ".join(parts)


def _transient(text: str) -> bool:
    return any(t in text for t in _TRANSIENT)
