"""The namespace layout on the real network (issue 15): one namespace per organization,
pair collections in bounded pair namespaces reached by chaincode-to-chaincode calls to the
storage chaincode (docs/architecture.md, "Namespace layout").

Its own three-bank network (``chaincode.layout: namespaces``) on
``DTOKEN_TEST_BASE_PORT + 1000``. Through the bank SDK: intra-bank and cross-bank
payments, the payee's accept, the regulator's hold and audit from its own namespace; the
payee bank's listener deciding on the payer's event (in the payer's namespace) and the payer
bank's listener refunding on the payee's decision (in the payee's namespace), with rescans
off, so that only events can drive them. From the dishonest side: a client calling a pair
namespace at the top level is refused by the storage server, and one bank's peer cannot get
another bank's pair collection written through its own storage (the Gateway's endorsement or
the commit refuses it).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import time
from collections.abc import Callable, Iterator

import fabgateway
import pytest
from consortium import namespaces
from dtoken.bank import Bank
from dtoken.event_source import member_events
from dtoken.listener import Handled, IncomingListener, Sweeper, Verdict
from dtoken.models import Transfer
from dtoken_wire.events import EVENT_DECIDED
from harness import TestNetwork
from harness.faults import find_in_logs, own_network
from harness.gateway import OrgClient
from harness.sdk import bank, regulator

RUN = secrets.token_hex(3)


def ref(tag: str) -> str:
    return f"{tag}-{RUN}-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def layout_net(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TestNetwork]:
    with own_network(tmp_path_factory, request, "dtlayout", 1000,
                     chaincode={"layout": "namespaces"}) as net:
        yield net


def test_the_network_commits_every_definition_of_the_layout(layout_net: TestNetwork) -> None:
    lifecycle = layout_net.network.lifecycle
    names = {d.name for d in namespaces.definitions(layout_net.consortium)}
    assert names <= lifecycle.committed_names()
    assert "dtoken" not in lifecycle.committed_names()  # no namespace of every collection
    profile = json.loads(layout_net.network.profile_path(
        layout_net.consortium.org("hkbank")).read_text())
    assert profile["chaincode"] == "dtoken-hkbank"


async def test_payments_and_the_regulator_on_the_layout(layout_net: TestNetwork) -> None:
    async with bank(layout_net, "hkbank", "minter") as hk, bank(layout_net, "usbank") as us:
        usd = hk.money
        payer = (await hk.open_account("USD", "CIF-1", reference=ref("open"))).account_id
        await hk.mint(payer, usd("1,000.00 USD"), reference=ref("dep"))
        other = (await hk.open_account("USD", "CIF-2", reference=ref("open"))).account_id
        paid = await hk.transfer(payer, "hkbank", other, usd("100.00 USD"), reference=ref("in"))
        assert paid.kind == "internal"
        payee = (await us.open_account("USD", "EXP", reference=ref("open"))).account_id
        sent = await hk.transfer(payer, "usbank", payee, usd("120.00 USD"), reference=ref("x"))
        assert sent.kind == "cross_bank"
        assert sent.transfer_id is not None
        await us.wait_for_commit(sent.receipt.tx_id)
        await us.accept(sent.transfer_id, "hkbank")
        assert await us.balance(payee) == us.money("120.00 USD")
        assert await hk.balance(payer) == usd("780.00 USD")
        owed = await hk.obligations("usbank")
        assert owed.owed("hkbank", "USD") == usd("120.00 USD").minor
    async with regulator(layout_net) as reg:
        report = await reg.audit()
        assert report.ok


async def _decided_events(hk: Bank, seen: list[fabgateway.ChaincodeEvent]) -> None:
    """The payer bank's own view of the events: TransferDecided naming it, wherever emitted."""
    async with member_events(hk.network, hk.profile) as events:
        async for event in events:
            if (event.event_name == EVENT_DECIDED
                    and json.loads(event.payload).get("payer_bank") == "hkbank"):
                seen.append(event)


async def test_listeners_decide_on_events_across_namespaces_without_rescans(
    layout_net: TestNetwork,
) -> None:
    """usbank's listener accepts hkbank's payments from the TransferPending hkbank's own
    namespace carries; hkbank sees usbank's TransferDecided (in usbank's namespace), and its
    listener refunds a rejected payment on that event. Both listeners rescan every 600 s, so
    only the events can have driven them within the test. Prints call→accepted latency."""
    rounds = 5
    async with bank(layout_net, "hkbank", "minter") as hk, bank(layout_net, "usbank") as us:
        payer = (await hk.open_account("USD", "CIF-L", reference=ref("open"))).account_id
        await hk.mint(payer, hk.money("1,000.00 USD"), reference=ref("dep"))
        payee = (await us.open_account("USD", "EXP-L", reference=ref("open"))).account_id
        accepted: dict[str, float] = {}
        refunded: dict[str, float] = {}

        def rule(transfer: Transfer) -> Verdict:
            if transfer.amount == hk.money("99.00 USD"):
                return Verdict.rejected("refused by the test")
            return Verdict.accepted()

        failed: list[Handled] = []

        def on_accepted(handled: Handled) -> None:
            if handled.action == "accepted":
                accepted[handled.transfer.transfer_id] = time.monotonic()
            elif handled.action == "failed":  # retried after retry_delay, not at a rescan
                failed.append(handled)

        def on_refunded(handled: Handled) -> None:
            if handled.action == "refunded":
                refunded[handled.transfer.transfer_id] = time.monotonic()

        ready = [asyncio.Event(), asyncio.Event()]
        stop = asyncio.Event()
        us_listener = IncomingListener(
            us, checkpointer=fabgateway.InMemoryCheckpointer(), rule=rule, rescan_interval=600,
            on_handled=on_accepted, on_ready=ready[0].set)
        hk_listener = IncomingListener(
            hk, checkpointer=fabgateway.InMemoryCheckpointer(), rescan_interval=600,
            sweeper=Sweeper(hk, on_handled=on_refunded), on_ready=ready[1].set)
        decided: list[fabgateway.ChaincodeEvent] = []
        tasks = [asyncio.create_task(us_listener.run(stop=stop)),
                 asyncio.create_task(hk_listener.run(stop=stop)),
                 asyncio.create_task(_decided_events(hk, decided))]
        latencies: list[float] = []
        try:
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 30)
            await asyncio.sleep(0.5)  # the payer's own event stream is open too
            for n in range(rounds):
                started = time.monotonic()
                sent = await hk.transfer(payer, "usbank", payee, hk.money(f"{10 + n}.00 USD"),
                                         reference=ref("ev"))
                assert sent.transfer_id is not None
                # 90 s: generous under load; a storage call that hung (fixed in fabshim, see
                # docs/architecture.md) cost the peer's 30 s execute timeout and a retry
                await _until(lambda t=sent.transfer_id: t in accepted, 90)
                latencies.append(accepted[sent.transfer_id] - started)
            started = time.monotonic()
            refused = await hk.transfer(payer, "usbank", payee, hk.money("99.00 USD"),
                                        reference=ref("ev"))
            assert refused.transfer_id is not None
            await _until(lambda: refused.transfer_id in refunded, 90)
            refund_latency = refunded[refused.transfer_id] - started
            await _until(lambda: len(decided) >= rounds + 1, 30)
        finally:
            stop.set()
            tasks[2].cancel()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
        assert {e.chaincode_name for e in decided} == {"dtoken-usbank"}
        assert await us.balance(payee) == us.money(f"{sum(10 + n for n in range(rounds))}.00 USD")
        assert await hk.balance(payer) == hk.money(
            f"{1000 - sum(10 + n for n in range(rounds))}.00 USD")
        # A storage call whose answer a chaincode server dropped hangs until the peer's
        # 30 s execute timeout (docs/architecture.md, "The storage call that hung"): with
        # every call of a transaction on one stream under one txid, none may be dropped.
        assert find_in_logs(layout_net, ["for no waiting request"]) == []
        print(f"\nlayout, rescans off: call→accepted median {statistics.median(latencies):.2f} s, "
              f"max {max(latencies):.2f} s over {rounds} payments; call→refunded (rejected) "
              f"{refund_latency:.2f} s; decisions failed and retried: {len(failed)}")


async def _until(probe: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError("not reached within the time an event needs")
        await asyncio.sleep(0.02)


class _Raw(OrgClient):
    async def call(self, chaincode: str, args: list[str]) -> bytes:
        contract = self.network.get_contract(chaincode)
        return await contract.submit_transaction(
            args[0], *args[1:], endorsing_organizations=[self.msp_id])


async def test_a_pair_namespace_at_the_top_level_is_refused(layout_net: TestNetwork) -> None:
    op = ["pair-usbank-hkbank", "xfer/" + "f" * 32, "AAAA", None]
    async with _Raw(layout_net, "hkbank").connected() as hk:
        with pytest.raises(fabgateway.EndorseError, match="NOT_AUTHORIZED"):
            await hk.call("dtoken-pairs-usbank-0", ["write", json.dumps({"ops": [op]})])
