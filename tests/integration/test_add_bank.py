"""A bank joins a running network, and a bank is suspended and resumed, on real Fabric.

A 3-bank network (its own ports: ``DTOKEN_TEST_BASE_PORT + 300``) runs a payment load between
its banks while ``Network.add_bank`` adds a fourth from its block under ``joined_banks``:

* none of the load's payments fails (no refusal, nothing lost, the audit and every
  invariant hold afterwards): the join upgrades no chaincode definition;
* the channel's configuration lists the new organization with its anchor peer, signed by a
  majority of the application organizations' admins; its peer replayed the chain and
  gossips with every other peer; its profile is written; ``network.json`` records the file
  that lists it, so ``up`` on the same state folder changes nothing;
* the join is idempotent: running it again does nothing;
* a fifth bank joins from a founding peer's ledger snapshot (``--from-snapshot``), signed
  by three of the five organizations now in the channel (the fourth bank among them).

Then the regulator suspends usbank: hkbank's contract refuses payments to it and accepts of
its transfers, usbank's own contract refuses its clients' payments; usbank's peer running a
dishonest server cannot lift the suspension (its writes into the holds collections commit
invalid: ENDORSEMENT_POLICY_FAILURE); resumed, usbank pays and is paid again.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fabgateway
import pytest
import yaml
from consortium import channel_update as cu
from consortium import config as config_mod
from consortium.network import Network
from dtoken import errors
from dtoken.bank import Bank, Regulator
from harness.dishonest import chaincode_node, dishonest_server
from harness.faults import clients_for, own_network
from harness.network import TestNetwork
from harness.payments import (
    MIXED_ROUTES,
    Client,
    PaymentLoad,
    assert_invariants,
    audit_totals,
)
from harness.sdk import bank, regulator

DTOKEN = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "dtoken"
NEW_BANK = {
    "name": "sgbank",
    "display_name": "Lion City Bank (Singapore)",
    "msp_id": "LionCityMSP",
    "jurisdiction": "SG",
    "currencies": ["USD"],
}
FIFTH_BANK = {
    "name": "jpbank",
    "display_name": "Rising Sun Bank (Tokyo)",
    "msp_id": "RisingSunMSP",
    "jurisdiction": "JP",
    "currencies": ["USD"],
}


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


def _with_new_bank(net: TestNetwork, block: dict[str, Any] = NEW_BANK) -> Path:
    """The operator's edit: the consortium file with the new bank's block added."""
    source = net.consortium.source
    data = yaml.safe_load(source.read_text())
    data.setdefault("joined_banks", []).append(block)
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
    load = PaymentLoad(net, MIXED_ROUTES).start()
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


def test_a_fifth_bank_joins_from_a_snapshot(net: TestNetwork) -> None:
    _with_new_bank(net, FIFTH_BANK)
    joined = _joined_network(net)
    # As the operator runs it: the CLI finds the consortium file from the state folder.
    proc = subprocess.run(
        [str(DTOKEN), "network", "--state-dir", str(net.state_dir), "add-bank", "jpbank",
         "--from-snapshot", "--json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    print(f"\nadd-bank --from-snapshot: steps {json.dumps(report['steps'])}; "
          f"caught up with {report['chain_height']} blocks in {report['catch_up_seconds']:.2f} s")
    assert report["from_snapshot"]
    assert report["config_updated"]
    assert len(report["signed_by"]) == 3  # a majority of the five organizations in the channel
    assert "LionCityMSP" in report["signed_by"]  # the bank that joined before signs too
    assert "RisingSunMSP" in cu.application_orgs(_channel_config(joined))
    handed = list((joined.layout.channel_dir / "snapshots").iterdir())
    assert len(handed) == 1
    assert int(handed[0].name) + 1 <= report["chain_height"]
    jp = joined.consortium.org("jpbank")
    height = _height(joined, joined.consortium.founding_banks[0])
    net.wait_for(lambda: _height(joined, jp) >= height, "jpbank's peer at the founders' height")
    # Its peer has no block before the snapshot (why replay stays the default); sgbank's,
    # which replayed the chain, has them all.
    from_snapshot = _block_zero(joined, jp)
    assert from_snapshot.returncode != 0
    assert b"bootstrapped from a snapshot" in from_snapshot.stdout + from_snapshot.stderr
    replayed = _block_zero(joined, joined.consortium.org("sgbank"))
    assert replayed.returncode == 0, replayed.stderr
    assert len(replayed.stdout) > 1000  # the genesis block
    assert all(
        joined.gossip_peers_known(p) == len(joined.consortium.peers) - 1
        for p in joined.consortium.peers
    )
    again = joined.add_bank("jpbank", from_snapshot=True)
    assert not again.config_updated
    assert len(list((joined.layout.channel_dir / "snapshots").iterdir())) == 1


def test_the_cli_refuses_a_bank_that_is_not_listed(net: TestNetwork) -> None:
    proc = subprocess.run(
        [str(DTOKEN), "network",
         "--state-dir", str(net.state_dir), "add-bank", "nobank"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "joined_banks" in proc.stderr
    assert "'nobank' is not listed there" in proc.stderr


def _block_zero(net: Network, org: config_mod.Org) -> subprocess.CompletedProcess[bytes]:
    """Block 0 as ``org``'s peer serves it (``qscc GetBlockByNumber``, as its admin)."""
    ctor = json.dumps({"Args": ["GetBlockByNumber", net.consortium.channel, "0"]})
    return subprocess.run(
        [net.admin.tool("peer"), "chaincode", "query", "-C", net.consortium.channel,
         "-n", "qscc", "-c", ctor],
        env={**os.environ, **net.admin.admin_env(org)}, capture_output=True, check=False,
    )  # fmt: skip


def _height(net: Network, org: config_mod.Org) -> int:
    out = net.admin.run(
        [net.admin.tool("peer"), "channel", "getinfo", "-c", net.consortium.channel],
        env=net.admin.admin_env(org),
    )
    return int(json.loads(out.split("Blockchain info:", 1)[1])["height"])


# --------------------------------------------------------------------------- suspension


def _ref(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(4)}"


async def _submit_as(net: TestNetwork, org: str, name: str, request: dict[str, Any],
                     *, creator: str | None = None) -> str:  # fmt: skip
    """Submit ``name`` endorsed by ``org``'s peer alone, by a client of ``creator`` (default
    ``org``) through its own gateway; the transaction id. Raises ``fabgateway.CommitError``
    if it committed invalid."""
    endorser = net.profile(net.consortium.org(org))["msp_id"]
    profile = net.profile(net.consortium.org(creator or org))
    ident = profile["identities"]["operator"]
    identity = fabgateway.identity_from_pem_file(profile["msp_id"], ident["cert"])
    signer = fabgateway.signer_from_pem_file(ident["key"])
    gw = profile["gateway"]
    ca = await asyncio.to_thread(Path(gw["tls_ca_cert"]).read_bytes)
    async with fabgateway.tls_channel(gw["endpoint"], ca, gw["server_name"]) as channel:
        contract = fabgateway.connect(channel, identity, signer).get_network(
            profile["channel"]).get_contract(profile["chaincode"])
        result = await contract.submit_transaction(
            name, transient_data={"request": json.dumps(request).encode()},
            endorsing_organizations=[endorser])
    return str(json.loads(result)["tx_id"])


async def test_a_suspended_bank_is_refused_cannot_lift_it_and_works_again_resumed(
    net: TestNetwork,
) -> None:
    async with (
        bank(net, "hkbank", "minter") as hk,
        bank(net, "usbank", "minter") as us,
        regulator(net) as reg,
    ):
        hk_pay = (await hk.open_account("USD", "SUSP-HK-PAY", reference=_ref("o"))).account_id
        await hk.mint(hk_pay, 50_000, reference=_ref("m"))
        hk_rcv = (await hk.open_account("USD", "SUSP-HK-RCV", reference=_ref("o"))).account_id
        us_pay = (await us.open_account("USD", "SUSP-US-PAY", reference=_ref("o"))).account_id
        await us.mint(us_pay, 50_000, reference=_ref("m"))
        us_rcv = (await us.open_account("USD", "SUSP-US-RCV", reference=_ref("o"))).account_id
        pending = await us.transfer(us_pay, "hkbank", hk_rcv, 1_500, reference=_ref("p"))
        assert pending.transfer_id
        await hk.wait_for_commit(pending.receipt.tx_id)

        t0 = time.monotonic()
        suspended = await reg.suspend("usbank", reason="capital call missed")
        for client in (hk, us):
            await client.wait_for_commit(suspended.tx_id)
        print(f"\nsuspend: committed and seen by both banks in {time.monotonic() - t0:.2f} s")

        # hkbank's contract: no payment into usbank, no accept of usbank's transfer.
        with pytest.raises(errors.BankSuspended):
            await hk.transfer(hk_pay, "usbank", us_rcv, 100, reference=_ref("x"))
        with pytest.raises(errors.BankSuspended):
            await hk.accept(pending.transfer_id, "usbank")
        # usbank's own (honest) contract refuses its client too.
        with pytest.raises(errors.BankSuspended):
            await us.transfer(us_pay, "hkbank", hk_rcv, 100, reference=_ref("x"))
        # Its obligations stay visible to the regulator.
        assert (await reg.audit()).ok

        # usbank's peer runs a dishonest server: it cannot lift its suspension, in its own
        # holds collection or in hkbank's, by rewriting or deleting the flag. Into hkbank's,
        # usbank's own client cannot even have it endorsed (memberOnlyWrite); a proposal whose
        # creator is hkbank's client, endorsed by usbank's peer alone, is what usbank could
        # send if its peer skipped that check: the committers invalidate it.
        with dishonest_server(net, chaincode_node("usbank")):
            lift = {"bank": "hkbank", "suspended": "usbank"}
            with pytest.raises(fabgateway.EndorseError) as refused:
                await _submit_as(net, "usbank", "lift_own_suspension", lift)
            assert "does not have write access permission" in str(refused.value)
            for holds, creator in (("usbank", "usbank"), ("hkbank", "hkbank")):
                for delete in (False, True):
                    request = {"bank": holds, "suspended": "usbank", "delete": delete}
                    with pytest.raises(fabgateway.CommitError) as invalid:
                        await _submit_as(net, "usbank", "lift_own_suspension", request,
                                         creator=creator)
                    assert invalid.value.code_name == "ENDORSEMENT_POLICY_FAILURE", request
                    await hk.wait_for_commit(invalid.value.transaction_id)
        with pytest.raises(errors.BankSuspended):
            await hk.accept(pending.transfer_id, "usbank")

        t0 = time.monotonic()
        resumed = await reg.resume("usbank")
        for client in (hk, us):
            await client.wait_for_commit(resumed.tx_id)
        print(f"resume: committed and seen by both banks in {time.monotonic() - t0:.2f} s")
        await hk.accept(pending.transfer_id, "usbank")
        sent = await hk.transfer(hk_pay, "usbank", us_rcv, 100, reference=_ref("x"))
        assert sent.transfer_id
        await us.wait_for_commit(sent.receipt.tx_id)
        await us.accept(sent.transfer_id, "hkbank")
        assert (await us.balance(us_rcv)).minor == 100
        assert (await hk.balance(hk_rcv)).minor == 1_500
        assert (await reg.audit()).ok


# --------------------------------------------------------------------------- namespace layout


@pytest.fixture(scope="module")
def layout_net(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TestNetwork]:
    """A 3-bank network on the namespace layout (``DTOKEN_TEST_BASE_PORT + 400``)."""
    with own_network(tmp_path_factory, request, "addbanklayout", 400,
                     chaincode={"layout": "namespaces"}) as network:
        try:
            yield network
        finally:
            if config_mod.load(network.consortium.source).joined_banks:
                _joined_network(network).down()


async def test_on_the_layout_a_bank_adds_its_namespaces_and_nothing_else(
    layout_net: TestNetwork,
) -> None:
    from consortium import namespaces

    before = layout_net.network.lifecycle.committed_names()
    _with_new_bank(layout_net)
    joined = _joined_network(layout_net)
    report = joined.add_bank("sgbank")
    print(f"\nadd-bank (layout): steps {json.dumps(report.to_json()['steps'])}")
    added = [d.name for d in namespaces.added_by(joined.consortium, "sgbank")]
    assert report.namespaces == added
    assert "dtoken-sgbank" in added
    after = joined.lifecycle.committed_names()
    assert after == before | set(added)  # every new definition committed, nothing else
    # Every other organization's server now pins the registry that lists sgbank, and each
    # grew its own registry (admit_bank in its own namespace).
    assert report.admitted_by == ["hkbank", "usbank", "cnbank", "regulator"]
    assert report.repinned
    # Its own namespace runs: its client opens, mints and pays inside the bank.
    profile = json.loads(joined.profile_path(joined.consortium.org("sgbank")).read_text())
    assert profile["chaincode"] == "dtoken-sgbank"
    sg_profile = joined.profile_path(joined.consortium.org("sgbank"))
    async with Bank.connect(sg_profile, identity="minter") as sg:
        a = (await sg.open_account("USD", "SG-1", reference=_ref("o"))).account_id
        b = (await sg.open_account("USD", "SG-2", reference=_ref("o"))).account_id
        await sg.mint(a, 5_000, reference=_ref("m"))
        paid = await sg.transfer(a, "sgbank", b, 1_250, reference=_ref("t"))
        assert paid.kind == "internal"
        assert (await sg.balance(b)).minor == 1_250


async def test_on_the_layout_the_founders_pay_and_are_paid_by_the_joined_bank(
    layout_net: TestNetwork,
) -> None:
    """After the join (the test above), hkbank pays sgbank and sgbank pays back: both
    contracts know each other; cnbank's peer holds nothing of it; the audit is OK."""
    joined = _joined_network(layout_net)
    assert [b.name for b in joined.consortium.joined_banks] == ["sgbank"]
    tag = secrets.token_hex(4).upper()
    owners = {"hk": f"REG-HK-OWNER-{tag}", "sg": f"REG-SG-OWNER-{tag}"}
    originator = f"Registry Originator {tag}"
    amounts = (7_313_517, 2_864_229)
    profile = joined.profile_path
    org = joined.consortium.org
    async with (
        Bank.connect(profile(org("hkbank")), identity="minter") as hk,
        Bank.connect(profile(org("sgbank")), identity="minter") as sg,
        Regulator.connect(profile(org("regulator"))) as reg,
    ):
        hk_acct = (await hk.open_account("USD", owners["hk"], reference=_ref("o"))).account_id
        await hk.mint(hk_acct, 10_000_000, reference=_ref("m"))
        sg_acct = (await sg.open_account("USD", owners["sg"], reference=_ref("o"))).account_id
        sent = await hk.transfer(hk_acct, "sgbank", sg_acct, amounts[0], reference=_ref("t"),
                                 originator={"name": originator})
        assert sent.transfer_id
        await sg.wait_for_commit(sent.receipt.tx_id)
        await sg.accept(sent.transfer_id, "hkbank")
        back = await sg.transfer(sg_acct, "hkbank", hk_acct, amounts[1], reference=_ref("t"),
                                 originator={"name": originator})
        assert back.transfer_id
        await hk.wait_for_commit(back.receipt.tx_id)
        accepted = await hk.accept(back.transfer_id, "sgbank")
        assert (await sg.balance(sg_acct)).minor == amounts[0] - amounts[1]
        assert (await hk.balance(hk_acct)).minor == 10_000_000 - amounts[0] + amounts[1]
        audit = await reg.audit()
        assert audit.ok, audit

        # The third bank: cnbank's peer holds nothing of the pair's payments.
        needles = {v: v.encode() for v in (hk_acct, sg_acct, sent.transfer_id,
                                           back.transfer_id, *owners.values(), originator)}
        for amount in amounts:
            for text in (f'"amount": {amount}', f'"amount":{amount}'):
                needles[text] = text.encode()

        def found_in(peer: str) -> set[str]:
            files = [p for p in layout_net.node(peer).ledger_dir().rglob("*") if p.is_file()]
            assert files
            return {what for p in files for what, needle in needles.items()
                    if needle in p.read_bytes()}

        layout_net.wait_for(lambda: _height(joined, org("cnbank")) > accepted.block_number,
                            "cnbank's peer past the last payment")
        assert {owners["hk"], hk_acct} <= found_in("peer0.hkbank.dtoken.example")  # the scan sees
        assert found_in("peer0.cnbank.dtoken.example") == set()
