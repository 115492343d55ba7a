"""Fixtures: a fake peer on 127.0.0.1 and a gateway connected to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fabgateway
import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from unit.fabgateway.gw_fakes import FakePeer, Server, make_certificate, start_server


@pytest.fixture
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def identity(ec_key: ec.EllipticCurvePrivateKey) -> fabgateway.Identity:
    return fabgateway.Identity("Org1MSP", make_certificate(ec_key))


@pytest.fixture
def peer() -> FakePeer:
    return FakePeer()


@pytest.fixture
async def server(peer: FakePeer) -> AsyncIterator[Server]:
    running = await start_server(peer)
    yield running
    await running.server.stop(0)
    assert peer.problems == [], f"the fake peer saw protocol violations: {peer.problems}"


@pytest.fixture
async def channel(server: Server) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield channel


@pytest.fixture
def gateway(
    channel: grpc.aio.Channel, identity: fabgateway.Identity, ec_key: ec.EllipticCurvePrivateKey
) -> fabgateway.Gateway:
    return fabgateway.connect(channel, identity, fabgateway.ecdsa_signer(ec_key))


@pytest.fixture
def contract(gateway: fabgateway.Gateway) -> fabgateway.Contract:
    return gateway.get_network("mychannel").get_contract("basic")
