"""The network across hosts: each organization in its own network namespace.

The hosts are namespaces this test creates (veth pairs on a bridge, a private
/24 that exists only inside them) and removes. Payments cross hosts: the payer
bank's peer pushes the transfer to the payee bank's peer by gossip. Then one
bank's host is cut off and payments between the others carry on; when it comes
back, its peer catches up with the ledger.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator

import pytest
import yaml
from harness import TestNetwork, consortium_variant, hosts
from harness.network import DEFAULT_CONFIG

BASE_PORT = int(os.environ.get("DTOKEN_TEST_BASE_PORT", "7400")) + 200

why_not = hosts.available() if os.geteuid() == 0 else "needs root to create network namespaces"
pytestmark = pytest.mark.skipif(why_not is not None, reason=why_not or "")


@pytest.fixture(scope="module")
def spread(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestNetwork, hosts.TestHosts]]:
    root = tmp_path_factory.mktemp("multihost")
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    names = ["ordering", *(b["name"] for b in data["banks"]), "regulator"]
    test_hosts = hosts.TestHosts(names, tag=(BASE_PORT // 100) % 256)
    try:
        addr = {name: h.address for name, h in test_hosts.hosts.items()}
        banks = [{**b, "host": addr[b["name"]]} for b in data["banks"]]
        config = consortium_variant(
            root / "consortium.yaml", name="multihost", base_port=BASE_PORT, banks=banks,
            orderer_org={"host": addr["ordering"]}, regulator={"host": addr["regulator"]},
        )  # fmt: skip
        net = TestNetwork(
            config, root / "state", lambda m: print(m, file=sys.stderr), test_hosts.launcher
        )
        try:
            net.up()
            yield net, test_hosts
        finally:
            net.down(purge=True)
    finally:
        test_hosts.close()


def _transient(request: dict[str, object]) -> str:
    return json.dumps({"request": base64.b64encode(json.dumps(request).encode()).decode()})


def _submit(net: TestNetwork, org: str, identity: str, fn: str, request: dict[str, object]) -> None:
    c = net.consortium
    o = c.org(org)
    net.peer_cli(
        o,
        ["chaincode", "invoke", *net.orderer_args(), "-C", c.channel, "-n", c.chaincode.name,
         "-c", json.dumps({"Args": [fn]}), "--transient", _transient(request),
         *net.peer_targets([o]), "--waitForEvent"],
        env={"CORE_PEER_MSPCONFIGPATH": net.profile(o)["identities"][identity]["msp_dir"]},
    )  # fmt: skip


def _balance(net: TestNetwork, org: str, account_id: str) -> int:
    c = net.consortium
    o = c.org(org)
    out = net.peer_cli(
        o,
        ["chaincode", "query", "-C", c.channel, "-n", c.chaincode.name,
         "-c", '{"Args":["get_account"]}', "--transient", _transient({"account_id": account_id})],
        env={"CORE_PEER_MSPCONFIGPATH": net.profile(o)["identities"]["operator"]["msp_dir"]},
    )  # fmt: skip
    return int(json.loads(out.stdout)["balance"])


def _pay(net: TestNetwork, n: int, payer: str, payee: str) -> None:
    transfer_id = f"mh-transfer-{n:012d}"
    _submit(net, "hkbank", "operator", "initiate_transfer",
            {"reference": f"mh-pay-{n}", "payer_account": payer, "payee_bank": "usbank",
             "payee_account": payee, "amount": 250, "transfer_id": transfer_id,
             "originator": {"name": "Harbour Trading Ltd"}})  # fmt: skip
    # The payee bank's peer holds the transfer only if gossip pushed it across hosts.
    net.wait_for(lambda: _try_accept(net, transfer_id), "usbank to accept the transfer", timeout=30)


def _try_accept(net: TestNetwork, transfer_id: str) -> bool:
    try:
        _submit(net, "usbank", "operator", "accept_transfer",
                {"transfer_id": transfer_id, "payer_bank": "hkbank"})  # fmt: skip
    except AssertionError as exc:
        if "NOT_FOUND" in str(exc):
            return False
        raise
    return True


def test_payments_cross_hosts_and_survive_a_cut_host(
    spread: tuple[TestNetwork, hosts.TestHosts],
) -> None:
    net, test_hosts = spread
    c = net.consortium
    assert len({o.host for o in c.orgs}) == len(c.orgs), "each organization on its own host"
    assert all(n.healthy() for n in net.nodes())
    payer, payee = "mh-payer-acct-000000001", "mh-payee-acct-000000001"
    _submit(net, "hkbank", "operator", "open_account",
            {"reference": "mh-open-1", "currency": "USD", "owner_ref": "exp-1",
             "account_id": payer})  # fmt: skip
    _submit(net, "usbank", "operator", "open_account",
            {"reference": "mh-open-2", "currency": "USD", "owner_ref": "imp-1",
             "account_id": payee})  # fmt: skip
    _submit(net, "hkbank", "minter", "mint",
            {"reference": "mh-mint-1", "account_id": payer, "amount": 10_000})  # fmt: skip
    _pay(net, 1, payer, payee)
    assert _balance(net, "usbank", payee) == 250

    test_hosts.cut("cnbank")
    try:
        _pay(net, 2, payer, payee)
        assert _balance(net, "usbank", payee) == 500
        assert _balance(net, "hkbank", payer) == 10_000 - 500
    finally:
        test_hosts.restore("cnbank")
    cn = c.org("cnbank")
    net.wait_for(
        lambda: net.ledger_height(cn) == net.ledger_height(c.org("hkbank")),
        "cnbank's peer to catch up after the cut", timeout=60,
    )  # fmt: skip
