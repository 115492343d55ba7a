"""Payment versus payment on the real network (issue 17, item 2): a US buyer's USD becomes a
mainland exporter's CNH through a dealer at hkbank, both legs hash-locked; and the failure
paths: a wrong preimage, a refund before the deadline, a preimage never revealed (the
deadline passes, the payer's and the regulator's peers expire the lock, the payer refunds), a
claim after that, and a payee that refuses to co-sign any expiry.

``expire_lock`` is the one transaction two organizations' peers endorse with private writes:
this is where the identical write sets (the salt both derive) are proven on Fabric, and where
the lock's nested pin (payer AND (payee OR regulator)) is proven to let the regulator's peer
stand in for the payee's.

Every test runs on one namespace (the session network, or a network of its own) and under
the namespace layout (one network for the module, ``chaincode.layout: namespaces``, on
``DTOKEN_TEST_BASE_PORT + 1100``), where ``expire_lock`` starts in the pair namespace and
is served there by the payer's and the regulator's storage chaincode. On the layout the
dishonest payer is its storage server accepting a top-level call it should refuse.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import fabgateway
import pytest
from dtoken import errors
from dtoken.bank import Bank
from dtoken.listener import IncomingListener
from dtoken.models import TransferStatus
from dtoken.pvp import LegRefused, PreimageBook, check_leg, leg_ttls, lock_of, new_secret, pvp
from harness import TestNetwork
from harness.dishonest import chaincode_node, dishonest_server
from harness.faults import own_network
from harness.sdk import bank, regulator

RUN = secrets.token_hex(3)
LAYOUTS = ["single", "layout"]


@pytest.fixture(scope="module")
def layout_net(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TestNetwork]:
    """The module's namespace-layout network (the one extra network of this module)."""
    with own_network(tmp_path_factory, request, "pvplayout", 1100,
                     chaincode={"layout": "namespaces"}, ordering={"orderers": 1}) as net:
        yield net


@pytest.fixture(params=LAYOUTS)
def net(request: pytest.FixtureRequest) -> TestNetwork:
    """The session network (one namespace), then the module's layout network."""
    name = "network" if request.param == "single" else "layout_net"
    found: TestNetwork = request.getfixturevalue(name)
    return found


def expiry_contract(client: Bank, payee_bank: str) -> fabgateway.Contract:
    """Where ``expire_lock`` is invoked: the contract, or under the layout the pair namespace
    (what ``Bank.expire_lock`` does)."""
    name = client.profile.chaincode
    if client.profile.has_namespaces:
        name = client.profile.namespace_of(f"pair-{client.name}-{payee_bank}")
    return client.network.get_contract(name)


def storage_node(org: str) -> str:
    """The name of ``org``'s storage chaincode server (the layout's slot 1)."""
    return f"chaincode-dtoken-storage.peer0.{org}.dtoken.example"


def grew(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    """The anomaly counts that grew (a shared network keeps earlier tests' anomalies)."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


def ref(tag: str) -> str:
    return f"{tag}-{RUN}-{secrets.token_hex(3)}"


async def funded(client: Bank, currency: str, amount: str, owner: str) -> str:
    account = (await client.open_account(currency, owner, reference=ref("open"))).account_id
    if amount:
        await client.mint(account, client.money(amount, currency), reference=ref("dep"))
    return account


@dataclass(frozen=True)
class CnhLeg:
    """A hash-locked CNH leg from an hkbank dealer to a new cnbank exporter."""

    dealer: str
    exporter: str
    preimage: str
    lock: str
    transfer_id: str


async def cnh_leg(hk: Bank, cn: Bank, amount: str, tag: str, *, ttl_seconds: int,
                  funds: str = "", seen_by: tuple[Bank, ...] = ()) -> CnhLeg:
    """hkbank's dealer ``FX-DEALER-<tag>`` (funded with ``funds``, default ``amount``) locks
    ``amount`` CNH to cnbank's new exporter ``CN-EXPORTER-<tag>`` under a fresh secret; each
    client of ``seen_by`` has committed the leg on return."""
    dealer = await funded(hk, "CNH", funds or amount, f"FX-DEALER-{tag}")
    exporter = await funded(cn, "CNH", "", f"CN-EXPORTER-{tag}")
    preimage, lock = new_secret()
    leg = await hk.lock(dealer, "cnbank", exporter, hk.money(amount, "CNH"), lock=lock,
                        ttl_seconds=ttl_seconds, reference=ref("leg"))
    assert leg.transfer_id is not None
    for client in seen_by:
        await client.wait_for_commit(leg.receipt.tx_id)
    return CnhLeg(dealer, exporter, preimage, lock, leg.transfer_id)


def forged_lock_request(leg: CnhLeg, what: str) -> dict[str, bytes]:
    """The transient request of the modified servers' ``rewrite_lock_alone`` for ``leg``."""
    return {"request": json.dumps({
        "payer_bank": "hkbank", "payee_bank": "cnbank", "what": what,
        "transfer_id": leg.transfer_id, "lock": leg.lock}).encode()}


async def test_a_us_buyers_usd_becomes_a_mainland_exporters_cnh(net: TestNetwork) -> None:
    async with (
        bank(net, "usbank", "minter") as us,
        bank(net, "hkbank", "minter") as hk,
        bank(net, "cnbank", "minter") as cn,
        regulator(net) as reg,
    ):
        buyer = await funded(us, "USD", "5000.00", "US-BUYER")
        dealer_usd = await funded(hk, "USD", "", "FX-DEALER")
        dealer_cnh = await funded(hk, "CNH", "100000.00", "FX-DEALER")
        exporter = await funded(cn, "CNH", "", "CN-EXPORTER")
        owed_us_hk = (await hk.obligations("usbank")).owed("usbank", "USD")
        owed_hk_cn = (await cn.obligations("hkbank")).owed("hkbank", "CNH")
        result = await pvp(us, buyer, hk, dealer_usd, dealer_cnh, cn, exporter,
                           us.money("1000.00", "USD"), cn.money("7200.00", "CNH"),
                           reference=ref("trade"), ttl_seconds=600, margin=600)
        await hk.wait_for_commit(result.claim1.tx_id)
        assert (await us.balance(buyer)).minor == 400_000
        assert (await hk.balance(dealer_usd)).minor == 100_000
        assert (await hk.balance(dealer_cnh)).minor == 9_280_000
        assert (await cn.balance(exporter)).minor == 720_000
        assert result.leg1.expires_at > result.leg2.expires_at
        leg1 = await us.get_transfer(result.leg1.transfer_id, "usbank", "hkbank")
        assert leg1.status is TransferStatus.ACCEPTED
        assert lock_of(leg1.preimage) == leg1.lock
        assert (await hk.obligations("usbank")).owed("usbank", "USD") - owed_us_hk == 100_000
        assert (await cn.obligations("hkbank")).owed("hkbank", "CNH") - owed_hk_cn == 720_000
        await reg.wait_for_commit(result.claim1.tx_id)
        report = await reg.audit()
        assert not any("preimage" in k or "deadline" in k or "late_claim" in k
                       for k in report.anomalies), report.anomalies


async def test_a_preimage_never_revealed_refunds_after_the_lock_expires(
    net: TestNetwork,
) -> None:
    async with (
        bank(net, "hkbank", "minter") as hk,
        bank(net, "cnbank", "minter") as cn,
    ):
        leg = await cnh_leg(hk, cn, "720.00", "2", funds="1000.00", ttl_seconds=60,
                            seen_by=(cn,))
        dealer_cnh, exporter, preimage, lock = leg.dealer, leg.exporter, leg.preimage, leg.lock
        seen = await cn.get_transfer(leg.transfer_id, "hkbank", "cnbank")
        check_leg(seen, lock=lock, amount=cn.money("720.00", "CNH"), payee_account=exporter)
        with pytest.raises(LegRefused):
            check_leg(seen, lock=lock_of("00" * 32), amount=seen.amount,
                      payee_account=exporter)
        with pytest.raises(errors.InvalidState):  # a plain accept cannot take a locked leg
            await cn.accept(leg.transfer_id, "hkbank", force=True)
        with pytest.raises(errors.InvalidArgument):
            await cn.claim(leg.transfer_id, "hkbank", "11" * 32)
        with pytest.raises(errors.NotExpired):
            await hk.refund(leg.transfer_id, "cnbank")
        with pytest.raises(errors.NotExpired):  # the regulator's refuses before the deadline
            await hk.expire_lock(leg.transfer_id, "cnbank")
        await asyncio.sleep(62)
        with pytest.raises(errors.Expired):  # the exporter's bank is too late to claim
            await cn.claim(leg.transfer_id, "hkbank", preimage)
        with pytest.raises(errors.NotExpired):  # still no refund before the lock expires
            await hk.refund(leg.transfer_id, "cnbank")
        expired = await hk.expire_lock(leg.transfer_id, "cnbank")
        await hk.wait_for_commit(expired.tx_id)
        await hk.refund(leg.transfer_id, "cnbank")
        assert (await hk.balance(dealer_cnh)).minor == 100_000
        await cn.wait_for_commit(expired.tx_id)
        final = await cn.get_transfer(leg.transfer_id, "hkbank", "cnbank")
        assert final.status in (TransferStatus.REFUNDED, TransferStatus.EXPIRED)
        assert (await cn.balance(exporter)).minor == 0


async def test_the_exporters_and_the_dealers_listeners_claim_both_legs(
    net: TestNetwork,
) -> None:
    """cnbank's listener knows the preimage it drew; hkbank's learns it from cnbank's claim of
    the leg it watches. Neither accepts a locked leg by rule; each claims when it can."""
    async with (
        bank(net, "usbank", "minter") as us,
        bank(net, "hkbank", "minter") as hk,
        bank(net, "cnbank", "minter") as cn,
    ):
        buyer = await funded(us, "USD", "300.00", "US-BUYER-3")
        dealer_usd = await funded(hk, "USD", "", "FX-DEALER-3")
        dealer_cnh = await funded(hk, "CNH", "3000.00", "FX-DEALER-3")
        exporter = await funded(cn, "CNH", "", "CN-EXPORTER-3")
        cn_book, hk_book = PreimageBook(cn), PreimageBook(hk)
        preimage, lock = new_secret()
        cn_book.remember(preimage)
        ttl1, ttl2 = leg_ttls(600, margin=600)
        p1 = await us.lock(buyer, "hkbank", dealer_usd, us.money("300.00", "USD"), lock=lock,
                           ttl_seconds=ttl1, reference=ref("leg1"))
        p2 = await hk.lock(dealer_cnh, "cnbank", exporter, hk.money("2160.00", "CNH"),
                           lock=lock, ttl_seconds=ttl2, reference=ref("leg2"))
        assert p1.transfer_id is not None
        assert p2.transfer_id is not None
        hk_book.watch(p2.transfer_id, "cnbank", lock)
        hk_listener = IncomingListener(hk, checkpointer=fabgateway.InMemoryCheckpointer(),
                                       preimages=hk_book)
        cn_listener = IncomingListener(cn, checkpointer=fabgateway.InMemoryCheckpointer(),
                                       preimages=cn_book)
        await hk.wait_for_commit(p1.receipt.tx_id)
        handled = await hk_listener.process_pending(full=True)
        assert [h.action for h in handled if h.transfer.transfer_id == p1.transfer_id] == [
            "skipped"]  # no preimage yet: leg 1 stays pending
        await cn.wait_for_commit(p2.receipt.tx_id)
        handled = await cn_listener.process_pending(full=True)
        (h2,) = [h for h in handled if h.transfer.transfer_id == p2.transfer_id]
        assert h2.action == "accepted"
        assert h2.receipt is not None
        await hk.wait_for_commit(h2.receipt.tx_id)
        handled = await hk_listener.process_pending(full=True)
        (h1,) = [h for h in handled if h.transfer.transfer_id == p1.transfer_id]
        assert h1.action == "accepted"
        assert (await hk.balance(dealer_usd)).minor == 30_000
        assert (await cn.balance(exporter)).minor == 216_000
        assert (await us.balance(buyer)).minor == 0


@pytest.mark.parametrize("what", ["state", "transfer"])
async def test_a_dishonest_payer_cannot_expire_or_rewrite_a_lock_alone(
    net: TestNetwork, what: str,
) -> None:
    """hkbank's modified server turns leg 2's lock ``expired`` (or rewrites the transfer's
    lock) before the deadline, endorsed by its own peer: Fabric invalidates it (the pins),
    and cnbank's claim with the preimage still goes through. Under the layout the modified
    server is hkbank's storage chaincode, taking a top-level call in the pair namespace that
    the honest one refuses (only ``expire_lock`` is served there): what it writes is validated
    against the keys' pins, not the pair namespace's chaincode-level policy."""
    async with (
        bank(net, "hkbank", "minter") as hk,
        bank(net, "cnbank", "minter") as cn,
    ):
        leg = await cnh_leg(hk, cn, "100.00", "4", ttl_seconds=600)
        exporter, preimage = leg.exporter, leg.preimage
        contract = expiry_contract(hk, "cnbank")
        transient = forged_lock_request(leg, what)
        node = chaincode_node("hkbank")
        if hk.profile.has_namespaces:
            node = storage_node("hkbank")
            with pytest.raises(fabgateway.EndorseError, match="NOT_AUTHORIZED"):
                # the honest storage server refuses the call
                await contract.submit_transaction("rewrite_lock_alone", transient_data=transient,
                                                  endorsing_organizations=[hk.msp_id])
        with (dishonest_server(net, node),
              pytest.raises(fabgateway.CommitError) as invalid):
            await contract.submit_transaction("rewrite_lock_alone", transient_data=transient,
                                              endorsing_organizations=[hk.msp_id])
        assert invalid.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
        await cn.wait_for_commit(invalid.value.transaction_id)
        with pytest.raises(errors.NotExpired):
            await hk.refund(leg.transfer_id, "cnbank")
        with pytest.raises(errors.NotExpired):  # the regulator's server: not before the deadline
            await hk.expire_lock(leg.transfer_id, "cnbank")
        await cn.claim(leg.transfer_id, "hkbank", preimage)
        assert (await cn.balance(exporter)).minor == 10_000
        with pytest.raises(errors.InvalidState):  # claimed: no expiry, even after the deadline
            await hk.expire_lock(leg.transfer_id, "cnbank")


@pytest.mark.parametrize("who", ["payee", "regulator", "payee+regulator"])
async def test_without_the_payers_peer_the_lock_cannot_be_expired_in_the_pair_namespace(
    layout_net: TestNetwork, who: str,
) -> None:
    """Under the layout, the payee's and the regulator's storage servers (each modified to
    take a top-level call) rewrite a leg's lock ``expired`` in the pair namespace, endorsed
    by the payee's peer, the regulator's, or both, never the payer's: the lock's pin
    AND(payer, OR(payee, regulator)) invalidates each (the pair namespace's chaincode-level
    policy is not what Fabric checks here). The lock stands: no refund, and the payee's claim
    with the preimage goes through."""
    async with (
        bank(layout_net, "hkbank", "minter") as hk,
        bank(layout_net, "cnbank", "minter") as cn,
        regulator(layout_net) as reg,
    ):
        leg = await cnh_leg(hk, cn, "30.00", "7", ttl_seconds=600, seen_by=(cn, reg))
        exporter, preimage = leg.exporter, leg.preimage
        orgs = {"payee": ["cnbank"], "regulator": ["regulator"],
                "payee+regulator": ["cnbank", "regulator"]}[who]
        msp = {"cnbank": cn.msp_id, "regulator": reg.msp_id}
        contract = cn.network.get_contract(expiry_contract(hk, "cnbank").chaincode_name)
        with contextlib.ExitStack() as servers:
            for org in orgs:
                servers.enter_context(dishonest_server(layout_net, storage_node(org)))
            with pytest.raises(fabgateway.CommitError) as invalid:
                await contract.submit_transaction(
                    "rewrite_lock_alone", transient_data=forged_lock_request(leg, "state"),
                    endorsing_organizations=[msp[o] for o in orgs])
        assert invalid.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
        await hk.wait_for_commit(invalid.value.transaction_id)
        with pytest.raises(errors.NotExpired):  # the lock still stands
            await hk.refund(leg.transfer_id, "cnbank")
        await cn.wait_for_commit(invalid.value.transaction_id)
        await cn.claim(leg.transfer_id, "hkbank", preimage)
        assert (await cn.balance(exporter)).minor == 3_000


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_a_claim_without_the_preimage_commits_and_counts_for_nobody(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, layout: str,
) -> None:
    """cnbank's modified server claims hkbank's locked leg with a wrong preimage, crediting
    its customer, pinned like an honest claim: it commits (cnbank's own collections). On a
    network of its own (the record can never be undone; under the layout the module's layout
    network, where only what grew is compared). hkbank owes nothing for it, every bank and
    the regulator report it naming cnbank, and after the deadline hkbank (with the
    regulator's peer) expires the lock and refunds its customer."""
    if layout == "layout":
        await _claim_without_preimage(request.getfixturevalue("layout_net"))
        return
    with own_network(tmp_path_factory, request, "pvpliar", 700,
                     ordering={"orderers": 1}) as net:
        await _claim_without_preimage(net)


async def _claim_without_preimage(net: TestNetwork) -> None:
    async with (
        bank(net, "hkbank", "minter") as hk,
        bank(net, "cnbank", "minter") as cn,
        regulator(net) as reg,
    ):
        leg = await cnh_leg(hk, cn, "500.00", "5", ttl_seconds=60, seen_by=(cn, hk, reg))
        dealer_cnh, exporter = leg.dealer, leg.exporter
        before = [await hk.obligations("cnbank"), await cn.obligations("hkbank"),
                  await reg.obligations("hkbank", "cnbank")]
        audit_before = (await reg.audit()).anomalies
        contract = cn.network.get_contract(cn.profile.chaincode)
        with dishonest_server(net, chaincode_node("cnbank")):
            raw = await contract.submit_transaction(
                "claim_without_preimage", transient_data={"request": json.dumps({
                    "payer_bank": "hkbank", "transfer_id": leg.transfer_id}).encode()},
                endorsing_organizations=[cn.msp_id])
        forged_tx = str(json.loads(raw)["tx_id"])
        for client in (hk, reg):
            await client.wait_for_commit(forged_tx)
        assert (await cn.balance(exporter)).minor == 50_000  # cnbank's own books
        named = {"cnbank/pair-cnbank-hkbank/claim_without_preimage": 1}
        after = [await hk.obligations("cnbank"), await cn.obligations("hkbank"),
                 await reg.obligations("hkbank", "cnbank")]
        for owed, was in zip(after, before, strict=True):
            assert owed.owed("hkbank", "CNH") == was.owed("hkbank", "CNH")
            assert grew(owed.anomalies, was.anomalies) == named
            assert {a.writers for a in owed.anomaly_records} == {("cnbank",)}
        assert (await hk.get_transfer(leg.transfer_id, "hkbank", "cnbank")).status in (
            TransferStatus.PENDING, TransferStatus.EXPIRED)
        await asyncio.sleep(62)
        expired = await hk.expire_lock(leg.transfer_id, "cnbank")
        await hk.wait_for_commit(expired.tx_id)
        await hk.refund(leg.transfer_id, "cnbank")
        assert (await hk.balance(dealer_cnh)).minor == 50_000
        report = await reg.audit()
        assert grew(report.anomalies, audit_before) == named


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_a_payee_that_refuses_to_cosign_cannot_keep_its_leg_claimable(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest, layout: str,
) -> None:
    """The review's scenario on Fabric (issue 17 item 2): cnbank, payee of the short leg 2,
    answers no endorsement at all (its chaincode servers are down: no co-signature of any
    expiry); hkbank and the regulator's peer expire leg 2 after its deadline and hkbank
    refunds the dealer; usbank does the same for leg 1. Then cnbank's modified server claims
    leg 2 with the right preimage: it commits (cnbank's own collections) and counts for nobody
    (``late_claim``), named by hkbank and the regulator. On a network of its own (the late
    claim can never be undone; under the layout the module's layout network, where only what
    grew is compared)."""
    if layout == "layout":
        await _payee_refuses_to_cosign(request.getfixturevalue("layout_net"))
        return
    with own_network(tmp_path_factory, request, "pvprefuse", 800,
                     ordering={"orderers": 1}) as net:
        await _payee_refuses_to_cosign(net)


async def _payee_refuses_to_cosign(net: TestNetwork) -> None:
    async with (
        bank(net, "usbank", "minter") as us,
        bank(net, "hkbank", "minter") as hk,
        bank(net, "cnbank", "minter") as cn,
        regulator(net) as reg,
    ):
        buyer = await funded(us, "USD", "100.00", "US-BUYER-6")
        dealer_usd = await funded(hk, "USD", "", "FX-DEALER-6")
        dealer_cnh = await funded(hk, "CNH", "720.00", "FX-DEALER-6")
        exporter = await funded(cn, "CNH", "", "CN-EXPORTER-6")
        preimage, lock = new_secret()
        leg1 = await us.lock(buyer, "hkbank", dealer_usd, us.money("100.00", "USD"),
                             lock=lock, ttl_seconds=90, reference=ref("leg1"))
        leg2 = await hk.lock(dealer_cnh, "cnbank", exporter, hk.money("720.00", "CNH"),
                             lock=lock, ttl_seconds=60, reference=ref("leg2"))
        assert leg1.transfer_id is not None
        assert leg2.transfer_id is not None
        await cn.wait_for_commit(leg2.receipt.tx_id)
        for client in (hk, reg):
            await client.wait_for_commit(leg2.receipt.tx_id)
        before = [await hk.obligations("cnbank"), await reg.obligations("hkbank", "cnbank")]
        owed_us_hk = (await hk.obligations("usbank")).owed("usbank", "USD")
        nodes = [chaincode_node("cnbank")]
        if cn.profile.has_namespaces:
            nodes.append(storage_node("cnbank"))  # its peer serves the pair namespace too
        payee_servers = [net.node(n) for n in nodes]
        for server in payee_servers:
            server.stop()  # cnbank's peer endorses nothing from now on
        try:
            contract = expiry_contract(hk, "cnbank")
            with pytest.raises(fabgateway.EndorseError):  # the old co-signer is gone
                await contract.submit_transaction(
                    "expire_lock", transient_data={"request": json.dumps({
                        "transfer_id": leg2.transfer_id, "payer_bank": "hkbank",
                        "payee_bank": "cnbank"}).encode()},
                    endorsing_organizations=[hk.msp_id, cn.msp_id])
            await asyncio.sleep(62)
            expired = await hk.expire_lock(leg2.transfer_id, "cnbank")  # hkbank + regulator
            await hk.wait_for_commit(expired.tx_id)
            await hk.refund(leg2.transfer_id, "cnbank")
            assert (await hk.balance(dealer_cnh)).minor == 72_000
            await asyncio.sleep(30)
            expired = await us.expire_lock(leg1.transfer_id, "hkbank")
            await us.wait_for_commit(expired.tx_id)
            await us.refund(leg1.transfer_id, "hkbank")
            assert (await us.balance(buyer)).minor == 10_000
        finally:
            for server in payee_servers:
                server.start()
                server.wait_ready(timeout=30)
        await cn.wait_for_commit(expired.tx_id)
        cn_contract = cn.network.get_contract(cn.profile.chaincode)
        with dishonest_server(net, chaincode_node("cnbank")):
            raw = await cn_contract.submit_transaction(
                "claim_without_preimage", transient_data={"request": json.dumps({
                    "payer_bank": "hkbank", "transfer_id": leg2.transfer_id,
                    "preimage": preimage}).encode()},
                endorsing_organizations=[cn.msp_id])
        late_tx = str(json.loads(raw)["tx_id"])
        for client in (hk, reg):
            await client.wait_for_commit(late_tx)
        assert (await cn.balance(exporter)).minor == 72_000  # cnbank's own books
        named = {"cnbank/pair-cnbank-hkbank/late_claim": 1}
        after = [await hk.obligations("cnbank"), await reg.obligations("hkbank", "cnbank")]
        for owed, was in zip(after, before, strict=True):
            assert owed.owed("hkbank", "CNH") == was.owed("hkbank", "CNH")
            assert grew(owed.anomalies, was.anomalies) == named
            assert {a.writers for a in owed.anomaly_records} == {("cnbank",)}
        assert (await hk.balance(dealer_cnh)).minor == 72_000
        assert (await hk.balance(dealer_usd)).minor == 0
        assert (await hk.obligations("usbank")).owed("usbank", "USD") == owed_us_hk
