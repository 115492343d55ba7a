"""A bank joins a running network, and a bank is suspended and resumed, on real Fabric.

A 3-bank network (its own ports: ``DTOKEN_TEST_BASE_PORT + 300``) runs a payment load between
its banks while ``Network.add_bank`` adds a fourth from its block under ``joined_banks``:

* none of the load's payments fails (no refusal, nothing lost, the audit and every
  invariant hold afterwards): the join upgrades no chaincode definition;
* the channel's configuration lists the new organization with its anchor peer, signed by a
  majority of the application organizations' admins; its peer replayed the chain and
  gossips with every other peer; its profile is written; ``network.json`` records the file
  that lists it, so ``up`` on the same state folder changes nothing;
* the join is idempotent: running it again does nothing.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from consortium import channel_update as cu
from consortium import config as config_mod
from consortium.network import Network
from harness.faults import clients_for, own_network
from harness.network import TestNetwork
from harness.payments import Client, PaymentLoad, Route, assert_invariants, audit_totals

NEW_BANK = {
    "name": "sgbank",
    "display_name": "Lion City Bank (Singapore)",
    "msp_id": "LionCityMSP",
    "jurisdiction": "SG",
    "currencies": ["USD"],
}
ROUTES = [
    Route("hkbank", "usbank"),
    Route("usbank", "cnbank"),
    Route("cnbank", "hkbank"),
    Route("hkbank", "hkbank"),
]


@pytest.fixture(scope="module")
def net(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TestNetwork]:
    with own_network(tmp_path_factory, request, "addbank", 300) as network:
        try:
            yield network
        finally:  # the harness knows the founding banks' nodes only: stop the new bank's too
            if config_mod.load(network.consortium.source).joined_banks:
                _joined_network(network).down()


def _with_new_bank(net: TestNetwork) -> Path:
    """The operator's edit: the consortium file with the new bank's block added."""
    source = net.consortium.source
    data = yaml.safe_load(source.read_text())
    data.setdefault("joined_banks", []).append(NEW_BANK)
    source.write_text(yaml.safe_dump(data, sort_keys=False))
    return source


def _joined_network(net: TestNetwork) -> Network:
    """The network of the edited file on the same state folder (as the CLI loads it)."""
    consortium = config_mod.load(net.consortium.source)
    return Network(consortium, net.state_dir, progress=net.network.say,
                   extra_pythonpath=net.network.extra_pythonpath)  # fmt: skip


def _channel_config(net: Network) -> Any:
    out = net.state_dir / "check-config.block"
    org = net.consortium.founding_banks[0]
    net.admin.run_retrying(
        [net.admin.tool("peer"), "channel", "fetch", "config", str(out),
         "-c", net.consortium.channel, *net.admin.orderer_args()],
        env=net.admin.admin_env(org),
    )  # fmt: skip
    return cu.config_from_block(out.read_bytes())


def test_a_fourth_bank_joins_while_payments_run(net: TestNetwork) -> None:
    clients: dict[str, Client] = clients_for(net)
    baseline = audit_totals(clients["regulator"])
    load = PaymentLoad(net, ROUTES).start()
    try:
        load.wait_payments(8)  # the load is running before the join starts
        _with_new_bank(net)
        joined = _joined_network(net)
        started = time.monotonic()
        report = joined.add_bank("sgbank")
        took = time.monotonic() - started
        print(f"\nadd-bank: {took:.1f} s in all; steps "
              f"{json.dumps(report.to_json()['steps'])}; replayed {report.chain_height} blocks "
              f"in {report.catch_up_seconds:.2f} s")  # fmt: skip
        load.wait_payments(8)  # and still running after it
        book = load.stop()
    finally:
        load.close()
    # 0 of the load's payments failed: nothing refused, lost or in doubt, the audit adds up.
    assert not load.errors, load.errors
    counts = book.counts
    assert counts.committed > 0
    assert (counts.refused, counts.lost, counts.in_doubt) == (0, 0, 0), counts.line()
    assert_invariants(net, book, clients, baseline=baseline)
    for c in clients.values():
        c.close()

    # The channel lists the bank, with its anchor peer, by a majority's signatures.
    assert report.config_updated
    members = sorted(o.msp_id for o in net.consortium.application_orgs)
    assert len(report.signed_by) == len(members) // 2 + 1
    assert set(report.signed_by) <= set(members)
    cfg = _channel_config(joined)
    assert "LionCityMSP" in cu.application_orgs(cfg)
    sg = joined.consortium.org("sgbank")
    ours = cu.application_org_group(
        sg.msp_id, joined.layout.org_crypto(sg).msp_dir, [(sg.peers[0].host, sg.peers[0].port)]
    )
    assert cfg.channel_group.groups["Application"].groups["LionCityMSP"] == ours
    # Its peer has the whole chain and every peer knows every other (gossip).
    assert report.chain_height > 1
    height = _height(joined, joined.consortium.founding_banks[0])
    joined.monitor.wait_gossip(timeout=30)
    assert all(
        joined.gossip_peers_known(p) == len(joined.consortium.peers) - 1
        for p in joined.consortium.peers
    )
    net.wait_for(lambda: _height(joined, sg) >= height, "sgbank's peer at the founders' height")
    # Its profile is written and names it; the state folder records the file listing it.
    profile = json.loads(joined.profile_path(sg).read_text())
    assert profile["msp_id"] == "LionCityMSP"
    assert "sgbank" in profile["organizations"]
    fingerprint = json.loads(joined.layout.fingerprint_file.read_text())
    assert fingerprint["joined_banks"] == ["sgbank"]
    assert fingerprint == {**fingerprint, **joined.fingerprint()}
    # Status knows it.
    status = joined.status()
    sg_status = next(o for o in status["orgs"] if o["name"] == "sgbank")
    assert all(p["healthy"] for p in sg_status["peers"])


def test_joining_again_changes_nothing(net: TestNetwork) -> None:
    joined = _joined_network(net)
    before = _channel_config(joined)
    report = joined.add_bank("sgbank")
    assert not report.config_updated
    after = _channel_config(joined)
    assert after.sequence == before.sequence
    joined.up()  # the state folder accepts the file that lists the bank: up is a no-op
    assert _channel_config(joined).sequence == before.sequence


def test_the_cli_refuses_a_bank_that_is_not_listed(net: TestNetwork) -> None:
    proc = subprocess.run(
        [str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "dtoken"), "network",
         "--state-dir", str(net.state_dir), "add-bank", "nobank"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "joined_banks" in proc.stderr
    assert "'nobank' is not listed there" in proc.stderr


def _height(net: Network, org: config_mod.Org) -> int:
    out = net.admin.run(
        [net.admin.tool("peer"), "channel", "getinfo", "-c", net.consortium.channel],
        env=net.admin.admin_env(org),
    )
    return int(json.loads(out.split("Blockchain info:", 1)[1])["height"])
