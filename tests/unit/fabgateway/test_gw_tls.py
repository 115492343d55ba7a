"""tls_channel(): server name override and mutual TLS against the fake peer over TLS."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator

import fabgateway
import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from unit.fabgateway.gw_fakes import FakePeer, Invocation, Result, Server, start_server

pytestmark = pytest.mark.timeout(60)

PEER_NAME = "peer0.org1.example.com"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    common_name: str,
    usage: x509.ObjectIdentifier,
    dns: list[str],
) -> bytes:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if dns:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False
        )
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class Pki:
    def __init__(self) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tlsca")])
        now = datetime.datetime.now(datetime.UTC)
        self.ca_pem = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.ca_key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM)
        )
        server_key = ec.generate_private_key(ec.SECP256R1())
        self.server_key_pem = _pem_key(server_key)
        self.server_cert_pem = _issue(
            self.ca_key, name, server_key, PEER_NAME, ExtendedKeyUsageOID.SERVER_AUTH, [PEER_NAME]
        )
        client_key = ec.generate_private_key(ec.SECP256R1())
        self.client_key_pem = _pem_key(client_key)
        self.client_cert_pem = _issue(
            self.ca_key, name, client_key, "client", ExtendedKeyUsageOID.CLIENT_AUTH, []
        )


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


async def _tls_server(peer: FakePeer, pki: Pki, mutual: bool) -> Server:
    credentials = grpc.ssl_server_credentials(
        [(pki.server_key_pem, pki.server_cert_pem)],
        root_certificates=pki.ca_pem if mutual else None,
        require_client_auth=mutual,
    )
    return await start_server(peer, credentials)


@pytest.fixture
async def tls_server(peer: FakePeer, pki: Pki) -> AsyncIterator[Server]:
    running = await _tls_server(peer, pki, mutual=False)
    yield running
    await running.server.stop(0)


@pytest.fixture
async def mtls_server(peer: FakePeer, pki: Pki) -> AsyncIterator[Server]:
    running = await _tls_server(peer, pki, mutual=True)
    yield running
    await running.server.stop(0)


def _ping(peer: FakePeer) -> None:
    @peer.function("ping")
    def _pong(inv: Invocation) -> Result:
        return Result(payload=b"pong")


async def _evaluate(
    channel: grpc.aio.Channel, identity: fabgateway.Identity, key: ec.EllipticCurvePrivateKey
) -> bytes:
    gateway = fabgateway.connect(channel, identity, fabgateway.ecdsa_signer(key))
    contract = gateway.get_network("mychannel").get_contract("basic")
    return await contract.evaluate_transaction("ping", timeout=5)


async def test_server_name_override(
    peer: FakePeer,
    tls_server: Server,
    pki: Pki,
    identity: fabgateway.Identity,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    _ping(peer)
    async with fabgateway.tls_channel(
        tls_server.address, pki.ca_pem, server_name_override=PEER_NAME
    ) as channel:
        assert await _evaluate(channel, identity, ec_key) == b"pong"


async def test_wrong_server_name_fails(
    peer: FakePeer,
    tls_server: Server,
    pki: Pki,
    identity: fabgateway.Identity,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    _ping(peer)
    async with fabgateway.tls_channel(
        tls_server.address, pki.ca_pem, server_name_override="someone.else"
    ) as channel:
        with pytest.raises(fabgateway.EvaluateError) as caught:
            await _evaluate(channel, identity, ec_key)
    assert caught.value.code == grpc.StatusCode.UNAVAILABLE


async def test_mutual_tls(
    peer: FakePeer,
    mtls_server: Server,
    pki: Pki,
    identity: fabgateway.Identity,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    _ping(peer)
    async with fabgateway.tls_channel(
        mtls_server.address,
        pki.ca_pem,
        server_name_override=PEER_NAME,
        client_cert_pem=pki.client_cert_pem,
        client_key_pem=pki.client_key_pem,
    ) as channel:
        assert await _evaluate(channel, identity, ec_key) == b"pong"


def test_mutual_tls_needs_cert_and_key(pki: Pki) -> None:
    with pytest.raises(ValueError, match="both"):
        fabgateway.tls_channel("localhost:1", pki.ca_pem, client_cert_pem=pki.client_cert_pem)
