"""gRPC channels to peers, and an organization admin's Gateway on each, opened on first use
and closed together: what :mod:`consortium.lifecycle_client` (one channel per organization's
first peer) and :mod:`consortium.peer_admin` (one per peer) both hold.

Must not: send anything, retry, or choose peers (its callers name the key and how to open
the channel).
"""

from __future__ import annotations

from collections.abc import Callable

import fabgateway
import grpc
from fabgateway.gateway import DEFAULT_COMMIT_STATUS_TIMEOUT

from consortium.config import Org
from consortium.layout import StateLayout

__all__ = ["AdminSessions", "tls_channel_to"]


def tls_channel_to(layout: StateLayout, org_name: str, endpoint: str) -> grpc.aio.Channel:
    """A TLS channel to a node of ``org_name`` at ``endpoint``, trusting its TLS CA."""
    return fabgateway.tls_channel(endpoint, layout.tlsca(org_name).read_bytes())


class AdminSessions:
    """Channels and admin Gateways by key (an organization's or a peer's name)."""

    def __init__(self, layout: StateLayout) -> None:
        self.layout = layout
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._gateways: dict[str, fabgateway.Gateway] = {}

    def channel(self, key: str, open_channel: Callable[[], grpc.aio.Channel]) -> grpc.aio.Channel:
        """The channel under ``key``, opened with ``open_channel()`` the first time."""
        if key not in self._channels:
            self._channels[key] = open_channel()
        return self._channels[key]

    def gateway(
        self,
        key: str,
        org: Org,
        channel: grpc.aio.Channel,
        *,
        call_timeout: float,
        commit_status_timeout: float | None = None,
    ) -> fabgateway.Gateway:
        """``org``'s admin (the NodeOU admin of its crypto folder) over ``channel``, made the
        first time: ``call_timeout`` seconds for each evaluate, endorse and submit call,
        ``commit_status_timeout`` for a commit-status wait (default: the Gateway's)."""
        if key not in self._gateways:
            msp_dir = self.layout.org_crypto(org).user("Admin").msp_dir
            identity, signer = fabgateway.load_msp_dir(org.msp_id, msp_dir)
            self._gateways[key] = fabgateway.connect(
                channel, identity, signer, evaluate_timeout=call_timeout,
                endorse_timeout=call_timeout, submit_timeout=call_timeout,
                commit_status_timeout=commit_status_timeout or DEFAULT_COMMIT_STATUS_TIMEOUT)
        return self._gateways[key]

    async def close(self) -> None:
        """Close every channel opened here (the Gateways own nothing)."""
        channels, self._channels = list(self._channels.values()), {}
        self._gateways = {}
        for channel in channels:
            await channel.close(None)
