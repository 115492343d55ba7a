"""An organization's client on its own peer's Gateway, for tests that speak ``fabgateway``
directly (below the bank SDK): connection set-up from the organization's connection
profile, several clients at once, and waiting for a block on the client's own peer.
Test modules subclass :class:`OrgClient` with the calls they need.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Self, TypeVar

import fabgateway

from harness.network import TestNetwork

__all__ = ["OrgClient", "connected_clients", "until_committed"]

_C = TypeVar("_C", bound="OrgClient")


class OrgClient:
    """One organization's identity (``operator`` unless told), connected to its own peer's
    Gateway by :meth:`connected`, which sets :attr:`network`."""

    network: fabgateway.Network

    def __init__(self, network: TestNetwork, org_name: str, identity: str = "operator") -> None:
        profile = network.profile(network.consortium.org(org_name))
        self.msp_id: str = profile["msp_id"]
        self.profile_identity: dict[str, Any] = profile["identities"][identity]
        self._identity, self._signer = fabgateway.load_msp_dir(
            self.msp_id, self.profile_identity["msp_dir"]
        )
        gateway = profile["gateway"]
        self._endpoint: str = gateway["endpoint"]
        self._server_name: str = gateway["server_name"]
        self._tls_ca = Path(gateway["tls_ca_cert"]).read_bytes()
        self._channel_name: str = profile["channel"]

    @asynccontextmanager
    async def connected(self) -> AsyncIterator[Self]:
        channel = fabgateway.tls_channel(self._endpoint, self._tls_ca, self._server_name)
        try:
            gateway = fabgateway.connect(channel, self._identity, self._signer)
            self.network = gateway.get_network(self._channel_name)
            yield self
        finally:
            await channel.close(None)


@asynccontextmanager
async def connected_clients(
    cls: type[_C], network: TestNetwork, *org_names: str
) -> AsyncIterator[list[_C]]:
    """One connected ``cls`` per organization, closed together."""
    async with AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(cls(network, name).connected()) for name in org_names
        ]


async def until_committed(client: OrgClient, block_number: int) -> None:
    """Wait until the client's own peer has committed block ``block_number`` (its Deliver
    service serves committed blocks only): a commit status comes from another peer."""
    async with client.network.filtered_block_events(start_block=block_number) as blocks:
        async with asyncio.timeout(60):
            await anext(blocks)
