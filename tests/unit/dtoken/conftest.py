"""Fixtures: a fake peer (SdkPeer) on 127.0.0.1, a connection profile on disk, a Bank on it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from dtoken.bank import Bank
from dtoken.profile import Profile
from dtoken.submitter import RetryPolicy
from unit.dtoken.sdk_fakes import SdkPeer
from unit.fabgateway.gw_fakes import Server, make_certificate, start_server

FAST = RetryPolicy(backoff=0.01, commit_timeout=0.5, outcome_timeout=2.0)


def write_profile(root: Path, *, org: str = "hkbank", kind: str = "bank") -> Path:
    """A connection profile like the bootstrap writes, with a fresh identity per role."""
    identities = {}
    for name, attrs in (("operator", {"operator": "true"}),
                        ("minter", {"minter": "true", "operator": "true"}),
                        ("auditor", {"auditor": "true"})):
        key = ec.generate_private_key(ec.SECP256R1())
        folder = root / name
        folder.mkdir(parents=True)
        (folder / "cert.pem").write_bytes(make_certificate(key, name))
        (folder / "key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        identities[name] = {"cert": str(folder / "cert.pem"), "key": str(folder / "key.pem"),
                            "msp_dir": str(folder), "attributes": attrs}
    (root / "ca.pem").write_text("unused by the tests: the channel is given")
    (root / "client.key").write_bytes(bytes(range(32)))
    msp_ids = {"hkbank": "HarbourBankMSP", "usbank": "LibertyTrustMSP",
               "regulator": "RegulatorMSP"}
    profile = {
        "network": "test", "org": org, "msp_id": msp_ids[org], "kind": kind,
        "channel": "mychannel", "chaincode": "dtoken",
        "gateway": {"endpoint": "127.0.0.1:1", "server_name": "peer0",
                    "tls_ca_cert": str(root / "ca.pem")},
        "peers": [], "identities": identities,
        "client_secret_file": str(root / "client.key"),
        "organizations": {
            "hkbank": {"msp_id": "HarbourBankMSP", "kind": "bank", "currencies": ["USD", "HKD"]},
            "usbank": {"msp_id": "LibertyTrustMSP", "kind": "bank", "currencies": ["USD"]},
            "regulator": {"msp_id": "RegulatorMSP", "kind": "regulator", "currencies": []},
        },
        "currencies": {"USD": 2, "HKD": 2, "JPY": 0},
    }
    path = root / "profiles" / f"{org}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(profile))
    return path


@pytest.fixture
def peer() -> SdkPeer:
    return SdkPeer()


@pytest.fixture
async def server(peer: SdkPeer) -> AsyncIterator[Server]:
    running = await start_server(peer)
    yield running
    await running.server.stop(0)
    assert peer.problems == [], f"the fake peer saw protocol violations: {peer.problems}"


@pytest.fixture
def profile(tmp_path: Path) -> Profile:
    return Profile.load(write_profile(tmp_path / "state"))


@pytest.fixture
async def bank(server: Server, profile: Profile) -> AsyncIterator[Bank]:
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield Bank(profile, channel, identity="minter", policy=FAST)


@pytest.fixture
async def connect(server: Server, profile: Profile) -> AsyncIterator[object]:
    """A factory of further Banks on new channels (another process, after a restart)."""
    channels: list[grpc.aio.Channel] = []

    def make(**kwargs: object) -> Bank:
        channel = grpc.aio.insecure_channel(server.address)
        channels.append(channel)
        return Bank(profile, channel, identity="minter", policy=kwargs.pop("policy", FAST))

    yield make
    for channel in channels:
        await channel.close()
