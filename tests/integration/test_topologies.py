"""Other shapes of consortium than the default: two peers per bank, one orderer, no regulator."""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from harness import TestNetwork, consortium_variant
from harness.network import DEFAULT_CONFIG

BASE_PORT = int(os.environ.get("DTOKEN_TEST_BASE_PORT", "7400")) + 300


@pytest.fixture(scope="module")
def two_peer_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestNetwork]:
    root = tmp_path_factory.mktemp("twopeers")
    banks = yaml.safe_load(DEFAULT_CONFIG.read_text())["banks"][:2]
    banks[0]["peers"] = 2
    config = consortium_variant(
        root / "consortium.yaml", name="twopeers", base_port=BASE_PORT, banks=banks,
        ordering={"orderers": 1}, regulator={"enabled": False},
    )  # fmt: skip
    net = TestNetwork(config, root / "state", lambda msg: print(msg, file=sys.stderr))
    try:
        net.up()
        yield net
    finally:
        net.down(purge=True)


def _transient(request: dict[str, object]) -> str:
    return json.dumps({"request": base64.b64encode(json.dumps(request).encode()).decode()})


def test_two_peers_per_bank_one_orderer_no_regulator(two_peer_network: TestNetwork) -> None:
    net = two_peer_network
    c = net.consortium
    assert c.regulator is None
    assert len(c.ordering.orderers) == 1
    hk = c.org("hkbank")
    assert len(hk.peers) == 2
    assert all(n.healthy() for n in net.nodes())
    # Each peer dials its own chaincode server (one package per org, address per peer).
    assert len(net.nodes("chaincode")) == 3
    operator = net.profile(hk)["identities"]["operator"]["msp_dir"]
    account = {"reference": "two-peers-1", "currency": "HKD", "owner_ref": "cust-2p",
               "account_id": "acct-twopeers-000000001"}  # fmt: skip
    # Endorsed by peer0 only ...
    net.peer_cli(
        hk,
        ["chaincode", "invoke", *net.orderer_args(), "-C", c.channel, "-n", c.chaincode.name,
         "-c", '{"Args":["open_account"]}', "--transient", _transient(account),
         "--peerAddresses", hk.peers[0].endpoint,
         "--tlsRootCertFiles", str(net.network.tlsca(hk.name)), "--waitForEvent"],
        env={"CORE_PEER_MSPCONFIGPATH": operator},
    )  # fmt: skip
    # ... read on peer1 through its own chaincode server: the private data reached it.
    def read_on_peer1() -> bool:
        out = net.peer_cli(
            hk,
            ["chaincode", "query", "-C", c.channel, "-n", c.chaincode.name,
             "-c", '{"Args":["get_account"]}',
             "--transient", _transient({"account_id": account["account_id"]})],
            env={"CORE_PEER_MSPCONFIGPATH": operator, "CORE_PEER_ADDRESS": hk.peers[1].endpoint},
            check=False,
        )  # fmt: skip
        return out.returncode == 0 and json.loads(out.stdout)["currency"] == "HKD"

    net.wait_for(read_on_peer1, "the account to be readable on peer1", timeout=30)
    assert Path(net.network.profile_path(hk)).is_file()
