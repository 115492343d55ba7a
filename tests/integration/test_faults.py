"""Faults while payments flow (issue 6, item 2), on a network of this module's own.

Each test starts a fresh payment load (fresh references and accounts) from several client
threads, injects one fault, lets payments go on, repairs the fault, and then checks DESIGN §7
against the client-side book: no acknowledged payment lost, none applied twice (balances,
history records and references match exactly), the regulator's audit holds and its per-bank
sums grew by exactly what the clients were told, every bank's balances agree with the book.

The network runs on ``DTOKEN_TEST_BASE_PORT + 500``; nothing else uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import fabgateway
import pytest
from consortium import processes
from harness import TestNetwork
from harness.faults import clients_for, orderer_height, own_network, raft_leader
from harness.payments import (
    MIXED_ROUTES,
    Client,
    PaymentLoad,
    Refused,
    Route,
    assert_invariants,
    audit_totals,
    refusal_code,
)


@pytest.fixture(scope="module")
def net(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TestNetwork]:
    with own_network(tmp_path_factory, request, "faults", 500) as network:
        yield network


@pytest.fixture
def clients(net: TestNetwork) -> Iterator[dict[str, Client]]:
    made = clients_for(net)
    yield made
    for c in made.values():
        c.close()


@pytest.fixture
def load(net: TestNetwork) -> Iterator[PaymentLoad]:
    """A payment load over every route; a test starts it (after taking its baseline)."""
    payments = PaymentLoad(net, MIXED_ROUTES)
    yield payments
    payments.stop()
    payments.close()


def _catch_up(net: TestNetwork, org_name: str, timeout: float = 120.0) -> None:
    """Wait until ``org_name``'s peer reaches the height the other peers have now."""
    c = net.consortium
    target = max(net.ledger_height(o) for o in c.application_orgs if o.name != org_name)
    net.wait_for(
        lambda: net.ledger_height(c.org(org_name)) >= target,
        f"{org_name}'s peer to reach height {target}", timeout,
    )  # fmt: skip


def test_a_started_process_is_recognised_as_running_at_once(tmp_path: Path) -> None:
    """Restarting a node is start() then a wait that fails if the process is gone: start()
    must not return before the process is recognisable as running (its exec done)."""
    spec = processes.ProcessSpec(name="sleeper", argv=["/bin/sleep", "60"], home=tmp_path)
    try:
        misses = 0
        for _ in range(50):
            processes.start(spec)
            misses += processes.running_pid(spec) is None
            processes.stop(spec, kill=True)
        assert misses == 0, f"{misses} of 50 fresh processes looked gone"
    finally:
        processes.stop(spec, kill=True)


def test_a_bank_peer_killed_and_restarted_catches_up_private_data_included(
    net: TestNetwork, clients: dict[str, Client], load: PaymentLoad
) -> None:
    baseline = audit_totals(clients["regulator"])
    load.start()
    load.wait_payments(8)
    us = net.node(net.consortium.org("usbank").peers[0].name)
    # Accounts for transfers initiated while usbank's peer is down.
    payer = load.open(90, "hkbank", "USD", "outage-payer")
    payee = load.open(90, "usbank", "USD", "outage-payee")
    load.mint(90, "hkbank", payer, 10_000, "outage-mint")
    net.kill(us)
    assert us.pid() is None
    # Payments that do not need usbank go on; hkbank initiates transfers to usbank whose
    # private data cannot reach usbank's peer now.
    route = Route("hkbank", "usbank")
    during = [load.initiate(90, route, payer, payee, 100 + i, f"outage-{i}") for i in range(3)]
    load.wait_payments(6, avoiding=["usbank"])
    net.restart(us)
    _catch_up(net, "usbank")
    # The transfers made while it was down: usbank's peer pulled their private data.
    for i, transfer_id in enumerate(during):
        load.accept(90, route, transfer_id, payee, 100 + i)
    assert clients["usbank"].evaluate("get_account", {"account_id": payee})["balance"] == sum(
        100 + i for i in range(3)
    )
    load.wait_payments(6)  # every route again, usbank's included
    book = load.stop()
    assert_invariants(net, book, clients, baseline=baseline)
    assert book.counts.committed > 0
    assert book.counts.lost == 0


def test_one_of_three_orderers_killed_payments_continue_and_it_rejoins(
    net: TestNetwork, clients: dict[str, Client], load: PaymentLoad
) -> None:
    baseline = audit_totals(clients["regulator"])
    load.start()
    load.wait_payments(8)
    # The Raft leader: the others must elect a new one.
    victim = net.node(raft_leader(net) or net.consortium.ordering.orderers[0].name)
    net.kill(victim)
    assert victim.pid() is None
    load.wait_payments(15)
    net.restart(victim)
    load.wait_payments(8)
    book = load.stop()
    others = [o.name for o in net.consortium.ordering.orderers if o.name != victim.name]

    def rejoined() -> bool:
        heights = {orderer_height(net, name) for name in [victim.name, *others]}
        return len(heights) == 1 and None not in heights

    net.wait_for(rejoined, f"{victim.name} to catch up with the other orderers", 120)
    assert_invariants(net, book, clients, baseline=baseline)
    assert book.counts.lost == 0


def test_a_killed_chaincode_server_fails_its_banks_transactions_clearly_until_restarted(
    net: TestNetwork, clients: dict[str, Client], load: PaymentLoad
) -> None:
    baseline = audit_totals(clients["regulator"])
    load.start()
    load.wait_payments(8)
    server = net.node(f"chaincode.{net.consortium.org('cnbank').peers[0].name}")
    net.kill(server)
    assert server.pid() is None
    cn = clients["cnbank"]
    with pytest.raises(fabgateway.EndorseError) as failed:
        cn.try_submit("open_account", {"reference": f"{load.tag}-while-cc-down",
                                       "currency": "USD", "owner_ref": "cc-down"})  # fmt: skip
    # A clear error: the peer could not reach the bank's chaincode server; no contract code.
    # Until the peer notices the dead stream it says so; then it fails to re-dial.
    assert refusal_code(failed.value) is None
    message = str(failed.value)
    assert ("could not launch chaincode" in message and "connection refused" in message) or (
        "chaincode stream terminated" in message
    ), message
    with pytest.raises(
        fabgateway.EvaluateError, match=r"could not launch chaincode|chaincode stream terminated"
    ):
        cn.evaluate("get_registry")
    # Payments that do not need cnbank go on meanwhile.
    load.wait_payments(6, avoiding=["cnbank"])
    net.restart(server)
    # The refused open wrote nothing: the reference is still free and succeeds now.
    with pytest.raises(Refused) as missing:
        cn.evaluate("get_reference", {"reference": f"{load.tag}-while-cc-down"})
    assert missing.value.code == "NOT_FOUND"
    account_id = f"acct-{load.tag}-ccdown".ljust(22, "_")
    cn.try_submit("open_account", {"reference": f"{load.tag}-while-cc-down",
                                   "currency": "USD", "owner_ref": "cc-down",
                                   "account_id": account_id})  # fmt: skip
    load.wait_payments(8)  # cnbank's routes too
    book = load.stop()
    # The account opened above is outside the book: its zero balance changes no sum.
    assert_invariants(net, book, clients, baseline=baseline)
    assert book.counts.lost == 0


def test_the_regulator_peer_killed_payments_go_on_and_it_catches_up(
    net: TestNetwork, clients: dict[str, Client], load: PaymentLoad
) -> None:
    baseline = audit_totals(clients["regulator"])
    load.start()
    load.wait_payments(8)
    reg = net.node(net.consortium.org("regulator").peers[0].name)
    net.kill(reg)
    assert reg.pid() is None
    load.wait_payments(15)  # every route: no bank needs the regulator
    net.restart(reg)
    book = load.stop()
    _catch_up(net, "regulator")
    # The regulator reads every account and its audit sums match: the private data written
    # while it was down reached it (pulled by reconciliation).
    assert_invariants(net, book, clients, baseline=baseline, timeout=180)
    assert book.counts.lost == 0


def test_the_whole_network_killed_at_once_comes_back_with_every_payment(
    net: TestNetwork, clients: dict[str, Client], load: PaymentLoad
) -> None:
    baseline = audit_totals(clients["regulator"])
    load.start()
    load.wait_payments(10)
    # A power cut: every process SIGKILLed while payments are in flight.
    for node in net.nodes():
        net.kill(node)
    assert all(n.pid() is None for n in net.nodes())
    net.up()
    assert not net.unhealthy()
    load.wait_payments(10)
    book = load.stop()
    assert_invariants(net, book, clients, baseline=baseline)
    assert book.counts.lost == 0
