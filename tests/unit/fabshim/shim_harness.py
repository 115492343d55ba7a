"""Run a chaincode server and a fake peer connected to it, in-process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fabshim import ChaincodeServer, HandlerState, ServerConfig
from fabshim.interfaces import Chaincode
from unit.fabshim.shim_fakepeer import FakePeer


@asynccontextmanager
async def connected(
    chaincode: Chaincode,
    peer: FakePeer | None = None,
    *,
    chaincode_id: str = "probe:0123",
    write_batching: bool = True,
    multi_key_reads: bool = True,
    grace: float = 2.0,
) -> AsyncIterator[tuple[ChaincodeServer, FakePeer]]:
    """A started server (plaintext, ephemeral port) and a peer past the READY handshake."""
    peer = peer or FakePeer()
    config = ServerConfig(
        chaincode_id=chaincode_id,
        address="127.0.0.1:0",
        tls=None,
        write_batching=write_batching,
        multi_key_reads=multi_key_reads,
    )
    server = ChaincodeServer(chaincode, config, grace=grace)
    port = await server.start()
    try:
        await peer.connect(f"127.0.0.1:{port}")
        await wait_for(lambda: any(h.state is HandlerState.READY for h in server.handlers))
        yield server, peer
    finally:
        await peer.close()
        await server.stop(0)


async def wait_for(condition: Any, seconds: float = 5.0) -> None:
    """Poll ``condition()`` until it is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)
