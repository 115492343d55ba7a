"""What an organization's admin asks of each of its peers outside any transaction: join the
channel (``cscc``) and install chaincode packages (``_lifecycle``), every peer at once.

Each request is a proposal on no channel, signed by the organization's admin (the NodeOU
admin ``FabricAdmin.admin_env`` uses) and sent to the peer's ``Endorser`` service
(:func:`fabgateway.evaluate_on_peer`); nothing is ordered. It replaces two ``peer`` CLI
processes per peer and step (list, then act): a 20-bank layout bootstrap ran 84 installs and
42 joins that way, about 35 s of a 2-core machine.

Each step looks first and does only what is missing, so running it again changes nothing:
``GetChannels`` before ``JoinChain``, ``QueryInstalledChaincodes`` before
``InstallChaincode``. A peer that is not answering yet (it was just started) is asked again,
for up to ``attempts`` tries; anything else raises :class:`consortium.errors.PeerAdminError`
naming the peer and what Fabric said.

Must not: start nodes, order transactions, or decide which packages a peer runs (that is
:mod:`consortium.lifecycle` and :mod:`consortium.chaincodes`).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

import fabgateway
import grpc

from consortium.admin_sessions import AdminSessions, tls_channel_to
from consortium.config import Consortium, PeerNode
from consortium.errors import PeerAdminError
from consortium.layout import StateLayout

__all__ = ["PackageInstall", "PeerAdminClient"]

# hyperledger-fabric-protos has no stubs: typed as Any, used through this module only.
_lifecycle: Any = importlib.import_module("fabric_protos.peer.lifecycle.lifecycle_pb2")
_query: Any = importlib.import_module("fabric_protos.peer.query_pb2")

CSCC = "cscc"
LIFECYCLE = "_lifecycle"
CALL_TIMEOUT = 120.0
"""Deadline of one call, seconds: a join replays the genesis block, an install writes the
package, on a loaded machine."""
#: What a peer says while it is still starting (or briefly overloaded).
_TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "failed to connect", "connection refused")

T = TypeVar("T")


@dataclass(frozen=True)
class PackageInstall:
    """Install the package at ``path`` (whose id is ``package_id``) on ``peer``."""

    peer: PeerNode
    path: Path
    package_id: str


class PeerAdminClient:
    """Admin requests to the consortium's peers; an async context manager owning one gRPC
    channel per peer it talks to."""

    def __init__(
        self,
        consortium: Consortium,
        layout: StateLayout,
        *,
        attempts: int = 30,
        connect: Callable[[PeerNode], grpc.aio.Channel] | None = None,
    ) -> None:
        """``connect(peer)`` opens the channel to a peer (default: TLS with its
        organization's TLS CA); the client closes what it opened."""
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        self.consortium = consortium
        self.layout = layout
        self.attempts = attempts
        self._connect = connect or self._tls_connect
        self._sessions = AdminSessions(layout)

    def _tls_connect(self, peer: PeerNode) -> grpc.aio.Channel:
        return tls_channel_to(self.layout, peer.org, peer.endpoint)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._sessions.close()

    # ------------------------------------------------------------------ the steps

    async def join_all(self, peers: Sequence[PeerNode], channel: str, block: bytes) -> int:
        """Join every peer of ``peers`` that does not list ``channel`` to it with the
        channel's genesis ``block``; returns how many joined now."""
        joined = await asyncio.gather(*(self._join(p, channel, block) for p in peers))
        return sum(joined)

    async def install_all(self, installs: Sequence[PackageInstall]) -> int:
        """Install every package its peer does not have yet; returns how many were
        installed now."""
        by_peer: dict[str, list[PackageInstall]] = {}
        for job in installs:
            by_peer.setdefault(job.peer.name, []).append(job)
        counts = await asyncio.gather(*(self._install(jobs) for jobs in by_peer.values()))
        return sum(counts)

    # ------------------------------------------------------------------ one peer

    async def channels_of(self, peer: PeerNode) -> set[str]:
        """The channels ``peer`` has joined (``cscc GetChannels``)."""
        payload = await self._ask(peer, CSCC, "GetChannels", [])
        answer = _query.ChannelQueryResponse.FromString(payload)
        return {str(c.channel_id) for c in answer.channels}

    async def installed_on(self, peer: PeerNode) -> set[str]:
        """The package ids installed on ``peer`` (``_lifecycle QueryInstalledChaincodes``)."""
        args = _lifecycle.QueryInstalledChaincodesArgs().SerializeToString()
        payload = await self._ask(peer, LIFECYCLE, "QueryInstalledChaincodes", [args])
        answer = _lifecycle.QueryInstalledChaincodesResult.FromString(payload)
        return {str(c.package_id) for c in answer.installed_chaincodes}

    async def _join(self, peer: PeerNode, channel: str, block: bytes) -> bool:
        if channel in await self.channels_of(peer):
            return False
        await self._ask(peer, CSCC, "JoinChain", [block])
        return True

    async def _install(self, jobs: Sequence[PackageInstall]) -> int:
        peer = jobs[0].peer
        present = await self.installed_on(peer)
        count = 0
        for job in jobs:  # one at a time per peer: each writes the peer's package store
            if job.package_id in present:
                continue
            args = _lifecycle.InstallChaincodeArgs(
                chaincode_install_package=job.path.read_bytes()
            ).SerializeToString()
            payload = await self._ask(peer, LIFECYCLE, "InstallChaincode", [args])
            got = str(_lifecycle.InstallChaincodeResult.FromString(payload).package_id)
            if got != job.package_id:
                raise PeerAdminError(
                    peer.name,
                    f"{LIFECYCLE} InstallChaincode",
                    f"{job.path.name} installed as package id {got!r}, expected {job.package_id!r}",
                )
            count += 1
        return count

    async def _ask(
        self, peer: PeerNode, chaincode: str, function: str, args: Sequence[bytes]
    ) -> bytes:
        """One proposal on no channel, as ``peer``'s organization's admin; retried while
        the peer is not answering yet."""
        contract = self._gateway(peer).get_network("").get_contract(chaincode)
        endorser = fabgateway.Endorser(
            self._channel(peer), peer.endpoint, self.consortium.org(peer.org).msp_id
        )

        async def call() -> bytes:
            proposal = contract.new_proposal(function, arguments=list(args))
            return await fabgateway.evaluate_on_peer(proposal, endorser, timeout=CALL_TIMEOUT)

        return await self._retrying(peer, f"{chaincode} {function}", call)

    async def _retrying(self, peer: PeerNode, what: str, call: Callable[[], Awaitable[T]]) -> T:
        for attempt in range(self.attempts):
            try:
                return await call()
            except fabgateway.CallError as error:
                text = "; ".join([error.status_message, *(d.message for d in error.details)])
                if not any(t in text for t in _TRANSIENT) or attempt == self.attempts - 1:
                    raise PeerAdminError(peer.name, what, text) from error
                await asyncio.sleep(min(0.2 * (attempt + 1), 2.0))
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ connections

    def _channel(self, peer: PeerNode) -> grpc.aio.Channel:
        return self._sessions.channel(peer.name, lambda: self._connect(peer))

    def _gateway(self, peer: PeerNode) -> fabgateway.Gateway:
        """The peer's organization's admin, over the channel to ``peer``."""
        return self._sessions.gateway(peer.name, self.consortium.org(peer.org),
                                      self._channel(peer), call_timeout=CALL_TIMEOUT)
