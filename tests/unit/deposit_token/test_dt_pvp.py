"""Payment versus payment: hash-locked legs, honest and from the dishonest bank's side.

The trade of docs/token-model.md ("Payment versus payment"): a buyer at usbank pays USD to
the dealer's USD account at hkbank (leg 1); the dealer pays CNH from its CNH account at
hkbank to the exporter at cnbank (leg 2). cnbank holds the preimage; leg 2 is claimed first
and has the earlier deadline.

Each dishonest write is committed as a modified server's would be (endorsed by its own peer
alone): a claim without the preimage, a claim after the lock expired, a refund
before the deadline, a rewritten lock. Each is invalidated by Fabric (the pins) or counted by
nobody and reported, and the honest side's money is where the rules say.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from deposit_token import errors as e
from deposit_token.keys import decision_key, lock_key, refund_key, transfer_key
from deposit_token.operations import Caller
from deposit_token.operations import pvp as pvp_ops
from deposit_token.records import (
    Decision,
    LockRecord,
    LockState,
    Outcome,
    Refund,
    RefundCause,
    Transfer,
    decode,
    encode,
)
from deposit_token.storage import PairStorageChaincode
from dtoken_wire.errors import refusal_from_message
from dtoken_wire.namespaces import pair_namespace
from fabshim.errors import EndorsementPolicyFailureError, MVCCReadConflictError
from fabshim.statebased import all_of_policy
from fabshim.testing import MemoryStub, run_chaincode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit.deposit_token.dt_harness import BANKS, CURRENCIES, REGULATOR, Net, ids, msp_of
from unit.deposit_token.test_dt_dishonest import forge

US, HK, CN = "usbank", "hkbank", "cnbank"
PREIMAGE = "07" * 32
LOCK = hashlib.sha256(bytes.fromhex(PREIMAGE)).hexdigest()
PAY, RECEIVE = 100_000, 720_000  # USD 1,000.00 for CNH 7,200.00
TTL1, TTL2 = 7200, 3600  # leg 1 (claimed last) outlives leg 2 (claimed first)


#: ``expire_lock`` is endorsed by the payer's and the regulator's peers over one proposal, so
#: its top-level namespace must run on both peers. Under the namespace layout that is the pair
#: namespace, where both run the storage chaincode: :func:`expire` invokes it there (every test
#: here runs on both layouts).

def fx_payload() -> str:
    """The harness's banks, with hkbank issuing CNH as on the real network (the dealer's
    bank holds both of the dealer's accounts)."""
    banks = dict(BANKS)
    msp, currencies = banks[HK]
    banks[HK] = (msp, [*currencies, "CNH"])
    return json.dumps({
        "banks": [{"name": n, "msp_id": m, "currencies": c} for n, (m, c) in banks.items()],
        "regulator_msp_id": REGULATOR, "currencies": CURRENCIES})


@dataclass
class Trade:
    net: Net
    buyer: str
    dealer_usd: str
    dealer_cnh: str
    exporter: str
    leg1: str = ""
    leg2: str = ""

    async def balances(self) -> tuple[int, int, int, int]:
        n = self.net
        return (await n.balance(US, self.buyer), await n.balance(HK, self.dealer_usd),
                await n.balance(HK, self.dealer_cnh), await n.balance(CN, self.exporter))


@pytest.fixture
def clock() -> Iterator[list[datetime]]:
    """The servers' own wall clock (``expire_lock`` judges the deadline by it)."""
    now: list[datetime] = []
    saved = pvp_ops.wall_clock
    pvp_ops.wall_clock = lambda: now[0]
    yield now
    pvp_ops.wall_clock = saved


async def locked_trade(clock: list[datetime]) -> Trade:
    """Both legs locked under ``LOCK``; nothing claimed yet."""
    net = Net(agreed=fx_payload())
    clock.append(net.now)
    await net.init()
    (buyer,), (d_usd,), (d_cnh,), (exporter,) = (ids(p, 1) for p in
                                                 ("buyer", "dlusd", "dlcnh", "exprt"))
    await net.open(US, "USD", buyer)
    await net.mint(US, buyer, 5 * PAY, "dep-b")
    await net.open(HK, "USD", d_usd)
    await net.open(HK, "CNH", d_cnh)
    await net.mint(HK, d_cnh, 5 * RECEIVE, "dep-d")
    await net.open(CN, "CNH", exporter)
    trade = Trade(net, buyer, d_usd, d_cnh, exporter)
    trade.leg1 = await lock(net, US, buyer, HK, d_usd, PAY, TTL1, "po-1/leg1")
    trade.leg2 = await lock(net, HK, d_cnh, CN, exporter, RECEIVE, TTL2, "po-1/leg2")
    return trade


async def lock(net: Net, payer_bank: str, payer: str, payee_bank: str, payee: str,
               amount: int, ttl: int, ref: str, lock_: str = LOCK) -> str:
    await net.submit(payer_bank, "lock_transfer", {
        "reference": ref, "payer_account": payer, "payee_bank": payee_bank,
        "payee_account": payee, "amount": amount, "lock": lock_, "ttl_seconds": ttl})
    got = await net.evaluate(payer_bank, "get_reference", {"reference": ref})
    (tid,) = got["ids"]
    return str(tid)


async def claim(net: Net, payee_bank: str, payer_bank: str, tid: str,
                preimage: str = PREIMAGE) -> None:
    await net.submit(payee_bank, "claim_transfer", {"transfer_id": tid, "payer_bank": payer_bank,
                                                    "preimage": preimage})


def pair_ns(payer_bank: str, payee_bank: str) -> str:
    return pair_namespace("dtoken", list(BANKS), payer_bank, payee_bank)


async def expire(net: Net, payer_bank: str, payee_bank: str, tid: str,
                 cosigner: str = "regulator", *, commit: bool = True,
                 caller: Caller | None = None, servers: Sequence[str] | None = None,
                 endorsers: Sequence[str] | None = None) -> MemoryStub:
    """``expire_lock`` as the gateway sends it: simulated on the payer's and the co-signer's
    servers (the regulator's, as the SDK asks, or the payee's; the same transaction id and
    timestamp), identical write sets, committed with both endorsements (``commit=False``:
    simulated only; the caller commits the returned stub). ``servers`` and ``endorsers``
    change whose servers simulate it and whose peers' endorsements it commits with.

    On one namespace it runs in the contract; under the namespace layout at the top level of
    the pair namespace, in each organization's storage chaincode (as ``Bank.expire_lock``
    sends it there)."""
    request = {"transfer_id": tid, "payer_bank": payer_bank, "payee_bank": payee_bank}
    tx_id = net.ledger.new_tx_id()
    caller = caller or net.caller(payer_bank)
    signers = [msp_of(o) for o in (endorsers or (payer_bank, cosigner))]
    stubs = []
    for org in servers or (payer_bank, cosigner):
        stub = net.ledger.stub(
            "expire_lock" if net.layout else "",
            transient={"request": json.dumps(request).encode()}, tx_id=tx_id,
            timestamp=net.now, endorsers=signers,
            chaincode_name=pair_ns(payer_bank, payee_bank) if net.layout else "chaincode")
        if net.layout:
            await storage_call(org, caller, stub)
        else:
            await net.services[org].execute(stub, caller, "expire_lock")
        stubs.append(stub)
    assert all(s.writes == stubs[0].writes for s in stubs), (
        "the endorsing peers must write the same bytes")
    # no chaincode-to-chaincode call: on the regulator's peer the callee would be the same
    # package as the caller, which Fabric refuses
    assert not stubs[0]._all_children()
    if commit:
        stubs[0].commit()
    return stubs[0]


async def storage_call(org: str, caller: Caller, stub: MemoryStub) -> bytes:
    """Run a top-level proposal in ``org``'s storage chaincode; a refusal raises as the SDK
    maps it (and wrote nothing)."""
    response = await run_chaincode(PairStorageChaincode(msp_of(org), lambda _: caller), stub)
    if response.is_error:
        assert stub.writes == {}, "a refused expiry wrote something"
        refusal = refusal_from_message(response.message)
        assert refusal is not None, response.message
        raise refusal
    return response.payload


async def status(net: Net, org: str, payer: str, payee: str, tid: str) -> dict[str, Any]:
    got = await net.evaluate(org, "get_transfer", {"transfer_id": tid, "payer_bank": payer,
                                                   "payee_bank": payee})
    return got


async def owed(net: Net, debtor: str, creditor: str, org: str) -> tuple[int, dict[str, Any]]:
    page = await net.obligations(debtor, creditor, org=org)
    amounts = {(o["debtor"], o["creditor"]): o["owed"] for o in page["obligations"]}
    return amounts.get((debtor, creditor), 0), page


def later(net: Net, clock: list[datetime], seconds: int) -> None:
    """Both the transaction timestamps and the servers' clocks move on."""
    net.advance(seconds=seconds)
    clock[0] = net.now


# --------------------------------------------------------------------------- honest flows


async def test_both_legs_settle_in_order_and_the_audit_balances(clock: list[datetime]) -> None:
    t = await locked_trade(clock)
    net = t.net
    assert await t.balances() == (4 * PAY, 0, 4 * RECEIVE, 0)
    await claim(net, CN, HK, t.leg2)
    # the dealer's bank reads the preimage in cnbank's decision, and claims leg 1 with it
    seen = await status(net, HK, HK, CN, t.leg2)
    assert seen["status"] == "accepted"
    revealed = seen["decision"]["preimage"]
    assert revealed == PREIMAGE
    await claim(net, HK, US, t.leg1, revealed)
    assert await t.balances() == (4 * PAY, PAY, 4 * RECEIVE, RECEIVE)
    assert (await owed(net, US, HK, HK))[0] == PAY
    assert (await owed(net, HK, CN, CN))[0] == RECEIVE
    audit = await net.audit()
    assert audit["ok"], audit
    assert audit["anomalies"] == {}


async def test_a_locked_leg_is_taken_only_with_its_preimage_and_before_its_deadline(
    clock: list[datetime],
) -> None:
    t = await locked_trade(clock)
    net = t.net
    with pytest.raises(e.InvalidState, match="only a claim with its preimage"):
        await net.submit(CN, "accept_transfer", {"transfer_id": t.leg2, "payer_bank": HK})
    with pytest.raises(e.InvalidState):
        await net.submit(CN, "decide_transfers", {"payer_bank": HK, "decisions": [
            {"transfer_id": t.leg2, "accept": True}]})
    with pytest.raises(e.InvalidArgument, match="preimage does not open"):
        await claim(net, CN, HK, t.leg2, "08" * 32)
    later(net, clock, TTL2)
    with pytest.raises(e.Expired):
        await claim(net, CN, HK, t.leg2)
    assert await t.balances() == (4 * PAY, 0, 4 * RECEIVE, 0)


async def test_the_payee_may_reject_a_leg_and_the_payer_then_refunds_at_once(
    clock: list[datetime],
) -> None:
    t = await locked_trade(clock)
    await t.net.submit(CN, "reject_transfer", {"transfer_id": t.leg2, "payer_bank": HK})
    await t.net.submit(HK, "refund_transfer", {"transfer_id": t.leg2, "payee_bank": CN})
    assert (await t.balances())[2] == 5 * RECEIVE


async def test_a_preimage_never_revealed_refunds_both_legs_after_both_deadlines(
    clock: list[datetime],
) -> None:
    t = await locked_trade(clock)
    net = t.net
    for payer, payee, tid in ((US, HK, t.leg1), (HK, CN, t.leg2)):
        with pytest.raises(e.NotExpired):
            await net.submit(payer, "refund_transfer", {"transfer_id": tid, "payee_bank": payee})
        with pytest.raises(e.NotExpired):
            await expire(net, payer, payee, tid)
    later(net, clock, TTL2)
    # leg 2's deadline passed: still no refund without both banks' expiry
    with pytest.raises(e.NotExpired, match="expire_lock"):
        await net.submit(HK, "refund_transfer", {"transfer_id": t.leg2, "payee_bank": CN})
    await expire(net, HK, CN, t.leg2)
    await net.submit(HK, "refund_transfer", {"transfer_id": t.leg2, "payee_bank": CN})
    with pytest.raises(e.NotExpired):  # leg 1 outlives leg 2
        await expire(net, US, HK, t.leg1)
    later(net, clock, TTL1 - TTL2)
    await expire(net, US, HK, t.leg1)
    await net.submit(US, "refund_transfer", {"transfer_id": t.leg1, "payee_bank": HK})
    assert await t.balances() == (5 * PAY, 0, 5 * RECEIVE, 0)
    # an expired lock cannot be claimed any more, even with the preimage
    with pytest.raises(e.InvalidState):
        await claim(net, CN, HK, t.leg2)
    audit = await net.audit()
    assert audit["ok"], audit


@pytest.mark.parametrize("cosigner", ["regulator", CN])
async def test_the_cosigner_judges_the_deadline_on_its_own_clock(
    clock: list[datetime], cosigner: str,
) -> None:
    """The payer's client sets the transaction timestamp: one dated after the deadline does
    not get the co-signer's endorsement (the regulator's, or the payee's) while its own clock
    says the deadline has not passed."""
    t = await locked_trade(clock)
    net = t.net
    net.advance(seconds=TTL2 + 60)  # the payer's client's timestamp; the servers' clock stays
    with pytest.raises(e.NotExpired):
        await expire(net, HK, CN, t.leg2, cosigner)


@pytest.mark.parametrize("cosigner", ["regulator", CN])
async def test_a_claimed_leg_cannot_be_expired(clock: list[datetime], cosigner: str) -> None:
    t = await locked_trade(clock)
    await claim(t.net, CN, HK, t.leg2)
    later(t.net, clock, TTL2)
    with pytest.raises(e.InvalidState):
        await expire(t.net, HK, CN, t.leg2, cosigner)
    with pytest.raises(e.InvalidState):
        await t.net.submit(HK, "refund_transfer", {"transfer_id": t.leg2, "payee_bank": CN})


async def test_expire_lock_is_the_payer_banks_request_on_the_two_banks_servers(
    clock: list[datetime],
) -> None:
    t = await locked_trade(clock)
    net = t.net
    later(net, clock, TTL2)
    for org in (HK, "regulator"):
        with pytest.raises(e.NotAuthorized):  # the payee's client
            await expire(net, HK, CN, t.leg2, servers=[org], caller=net.caller(CN))
        with pytest.raises(e.NotAuthorized):  # the payer's client without the operator role
            await expire(net, HK, CN, t.leg2, servers=[org], caller=net.caller(HK, "minter"))
    with pytest.raises(e.WrongEndorser):  # a third bank's server
        await expire(net, HK, CN, t.leg2, servers=[US])
    with pytest.raises(e.NotFound if not net.layout else e.InvalidState):  # no such leg
        await expire(net, HK, CN, "z" * 22)
    if net.layout:
        # in a bank's own namespace the contract refuses it (only that bank's peer runs it)
        with pytest.raises(e.InvalidState, match="pair namespace"):
            await net.submit(HK, "expire_lock", {"transfer_id": t.leg2, "payer_bank": HK,
                                                 "payee_bank": CN})
    await expire(net, HK, CN, t.leg2)
    assert (await status(net, CN, HK, CN, t.leg2))["lock_state"] == "expired"


# --------------------------------------------------------------------------- dishonest banks


def _decision(tid: str, preimage: str, payer: str = HK, payee: str = CN,
              amount: int = RECEIVE, currency: str = "CNH") -> Decision:
    return Decision(transfer_id=tid, outcome=Outcome.ACCEPTED, payer_bank=payer,
                    payee_bank=payee, amount=amount, currency=currency,
                    decided_at="2025-01-06T09:00:00.000000Z", tx_id="forged",
                    preimage=preimage)


async def test_a_claim_without_the_preimage_counts_for_nobody_and_blocks_no_refund(
    clock: list[datetime],
) -> None:
    """cnbank's modified server writes an accept of leg 2 with no preimage (or a wrong one)
    and credits its customer: hkbank owes nothing for it, every scan reports it, and hkbank
    expires and refunds after the deadline."""
    t = await locked_trade(clock)
    net = t.net
    await forge(net, "pair-cnbank-hkbank", decision_key(t.leg2), _decision(t.leg2, "09" * 32))
    for org in (HK, CN):
        amount, page = await owed(net, HK, CN, org)
        assert amount == 0
        assert page["anomalies"] == {"cnbank/pair-cnbank-hkbank/claim_without_preimage": 1}
        assert page["anomaly_records"][0]["writers"] == ["cnbank"]
    audit = await net.audit()
    assert audit["anomalies"]["cnbank/pair-cnbank-hkbank/claim_without_preimage"] == 1
    later(net, clock, TTL2)
    await expire(net, HK, CN, t.leg2)
    await net.submit(HK, "refund_transfer", {"transfer_id": t.leg2, "payee_bank": CN})
    assert (await t.balances())[2] == 5 * RECEIVE


async def test_a_refund_before_the_deadline_counts_for_nobody_and_the_claim_stands(
    clock: list[datetime],
) -> None:
    """usbank's modified server refunds leg 1 alone before its deadline, once the preimage is
    out, to take the buyer's USD back while the dealer paid CNH. The refund counts for
    nobody; hkbank's claim goes through and counts."""
    t = await locked_trade(clock)
    net = t.net
    await claim(net, CN, HK, t.leg2)
    await forge(net, "pair-usbank-hkbank", refund_key(t.leg1), Refund(
        transfer_id=t.leg1, payer_bank=US, payee_bank=HK, amount=PAY, currency="USD",
        cause=RefundCause.EXPIRED, refunded_at="2025-01-06T09:00:00.000000Z", tx_id="forged"))
    await claim(net, HK, US, t.leg1)  # honest hkbank is not blocked
    assert (await t.balances())[1] == PAY
    for org in (US, HK):
        amount, page = await owed(net, US, HK, org)
        assert amount == PAY
        assert page["anomalies"] == {"usbank/pair-usbank-hkbank/refund_before_deadline": 1}
    audit = await net.audit()
    assert audit["anomalies"] == {"usbank/pair-usbank-hkbank/refund_before_deadline": 1}


async def test_a_claim_after_both_banks_expired_the_lock_counts_for_nobody(
    clock: list[datetime],
) -> None:
    """cnbank lets leg 2 expire, then (knowing the preimage) writes a claim alone: hkbank's
    refund stands, the late claim is reported, hkbank owes nothing."""
    t = await locked_trade(clock)
    net = t.net
    later(net, clock, TTL2)
    await expire(net, HK, CN, t.leg2)
    await net.submit(HK, "refund_transfer", {"transfer_id": t.leg2, "payee_bank": CN})
    await forge(net, "pair-cnbank-hkbank", decision_key(t.leg2), _decision(t.leg2, PREIMAGE))
    amount, page = await owed(net, HK, CN, HK)
    assert amount == 0
    assert page["anomalies"] == {"cnbank/pair-cnbank-hkbank/late_claim": 1}
    assert (await t.balances())[2] == 5 * RECEIVE


async def test_a_payee_that_never_cosigns_cannot_keep_its_leg_claimable(
    clock: list[datetime],
) -> None:
    """The reviewer's scenario (issue 17 item 2): cnbank, payee of the short leg 2, never
    co-signs its expiry; after leg 1's deadline usbank refunds the buyer; then cnbank's
    modified server claims leg 2 with the preimage. The regulator's peer co-signed leg 2's
    expiry instead of cnbank's, so the late claim counts for nobody and is reported: the
    dealer keeps its CNH, hkbank owes cnbank nothing."""
    t = await locked_trade(clock)
    net = t.net
    later(net, clock, TTL2)
    await expire(net, HK, CN, t.leg2, "regulator")  # cnbank's server is never asked
    await net.submit(HK, "refund_transfer", {"transfer_id": t.leg2, "payee_bank": CN})
    later(net, clock, TTL1 - TTL2)
    await expire(net, US, HK, t.leg1, "regulator")
    await net.submit(US, "refund_transfer", {"transfer_id": t.leg1, "payee_bank": HK})
    await forge(net, "pair-cnbank-hkbank", decision_key(t.leg2), _decision(t.leg2, PREIMAGE))
    assert await t.balances() == (5 * PAY, 0, 5 * RECEIVE, 0)  # the exporter: cnbank's books
    named = {"cnbank/pair-cnbank-hkbank/late_claim": 1}
    for org in (HK, CN):
        amount, page = await owed(net, HK, CN, org)
        assert amount == 0
        assert page["anomalies"] == named
        assert page["anomaly_records"][0]["writers"] == ["cnbank"]
    assert (await owed(net, US, HK, HK))[0] == 0
    audit = await net.audit()
    assert audit["anomalies"] == named


async def test_the_regulator_cannot_expire_before_the_deadline_or_once_claimed(
    clock: list[datetime],
) -> None:
    """The payer with the regulator's honest server cannot expire early (its own clock), nor
    once the payee claimed. A claim cnbank's modified server commits after the deadline but
    between the expiry's simulation and its commit makes the expiry's read of the decision
    stale (MVCC invalidates the expiry): the claim counts, and its preimage reaches hkbank
    while leg 1 still stands (the deadlines' margin), so the dealer claims leg 1."""
    t = await locked_trade(clock)
    net = t.net
    later(net, clock, TTL2 - 60)
    with pytest.raises(e.NotExpired):
        await expire(net, HK, CN, t.leg2, "regulator")
    later(net, clock, 60)
    pending = await expire(net, HK, CN, t.leg2, "regulator", commit=False)
    await forge(net, "pair-cnbank-hkbank", decision_key(t.leg2), _decision(t.leg2, PREIMAGE))
    with pytest.raises(MVCCReadConflictError):
        pending.commit()
    with pytest.raises(e.InvalidState):
        await expire(net, HK, CN, t.leg2, "regulator")
    revealed = (await status(net, HK, HK, CN, t.leg2))["decision"]["preimage"]
    await claim(net, HK, US, t.leg1, revealed)
    assert (await owed(net, HK, CN, HK))[0] == RECEIVE
    assert (await owed(net, US, HK, HK))[0] == PAY
    assert (await t.balances())[1] == PAY


async def test_a_back_dated_claim_is_shut_out_once_the_regulator_cosigned_the_expiry(
    clock: list[datetime],
) -> None:
    """A claim is judged by its timestamp, which the payee's client sets: cnbank can date a
    claim before the deadline at any time, and it counts while the lock stands. What bounds
    that is the expiry the dealer's bank no longer needs cnbank for: right after ``T2`` hkbank
    and the regulator expire leg 2, and the back-dated claim is refused (the lock does not
    stand), well within the margin before leg 1's deadline."""
    t = await locked_trade(clock)
    net = t.net
    start = net.now
    later(net, clock, TTL2)
    await expire(net, HK, CN, t.leg2, "regulator")
    with pytest.raises(e.InvalidState, match="lock is not standing"):
        await net.submit(CN, "claim_transfer", {
            "transfer_id": t.leg2, "payer_bank": HK, "preimage": PREIMAGE}, when=start)
    await net.submit(HK, "refund_transfer", {"transfer_id": t.leg2, "payee_bank": CN})
    assert (await owed(net, HK, CN, HK))[0] == 0
    assert (await t.balances())[2:] == (5 * RECEIVE, 0)


@pytest.mark.parametrize("who", ["payee+regulator", "regulator", "payee"])
async def test_without_the_payer_nobody_touches_the_lock(
    clock: list[datetime], who: str,
) -> None:
    """The lock is pinned to its payer AND its payee or the regulator: cnbank's and the
    regulator's peers together (or either alone) cannot expire or delete it, even after the
    deadline; Fabric invalidates the write. hkbank's refund stays refused until hkbank
    expires the lock itself."""
    t = await locked_trade(clock)
    net = t.net
    later(net, clock, TTL2)
    pair, key = "pair-hkbank-cnbank", lock_key(t.leg2)
    stored = net.ledger.get_private_data(pair, key)
    assert stored is not None
    orgs = {"payee+regulator": [CN, "regulator"], "regulator": ["regulator"],
            "payee": [CN]}[who]
    stub = net.ledger.stub(tx_id=net.ledger.new_tx_id(), timestamp=net.now,
                           endorsers=[msp_of(o) for o in orgs])
    await stub.put_private_data(pair, key, stored.replace(b'"locked"', b'"expired"'))
    with pytest.raises(EndorsementPolicyFailureError):
        stub.commit()
    assert net.ledger.get_private_data(pair, key) == stored
    with pytest.raises(e.NotExpired):
        await net.submit(HK, "refund_transfer", {"transfer_id": t.leg2, "payee_bank": CN})


async def test_a_lock_pinned_to_the_two_banks_only_stands_for_nothing(
    clock: list[datetime],
) -> None:
    """hkbank's modified server pins leg 2's lock to hkbank AND cnbank only (the shape that
    let a payee keep a leg claimable): every reader reads the lock as absent, so cnbank's
    honest server refuses to claim on it (the preimage is never revealed there)."""
    t = await locked_trade(clock)
    net = t.net
    forged_tid = "e" * 22
    pair = "pair-hkbank-cnbank"
    await forge(net, pair, transfer_key(forged_tid), Transfer(
        transfer_id=forged_tid, payer_bank=HK, payee_bank=CN, payee_account=t.exporter,
        amount=RECEIVE, currency="CNH", created_at="2025-01-06T09:00:00.000000Z",
        expires_at="2025-01-06T10:00:00.000000Z", tx_id="forged", lock=LOCK))
    stub = net.ledger.stub(tx_id=net.ledger.new_tx_id(), timestamp=net.now,
                           endorsers=[msp_of(HK)])
    await stub.put_private_data(pair, lock_key(forged_tid), encode(LockRecord(
        transfer_id=forged_tid, payer_bank=HK, payee_bank=CN, lock=LOCK,
        deadline="2025-01-06T10:00:00.000000Z", state=LockState.LOCKED,
        at="2025-01-06T09:00:00.000000Z", tx_id="forged"), "5" * 32))
    await stub.set_private_data_validation_parameter(
        pair, lock_key(forged_tid), all_of_policy([msp_of(HK), msp_of(CN)]))
    stub.commit()
    seen = await status(net, CN, HK, CN, forged_tid)
    assert seen["lock_state"] is None
    with pytest.raises(e.InvalidState, match="lock is not standing"):
        await claim(net, CN, HK, forged_tid)
    # nor does the regulator's peer co-sign an expiry of it (under the layout it finds the
    # parties in the pins, and these are not a hash lock's)
    later(net, clock, TTL1)
    with pytest.raises(e.InvalidState, match="lock is not standing"):
        await expire(net, HK, CN, forged_tid)


@pytest.mark.parametrize("rewrite", ["expired", "delete", "transfer_lock"])
async def test_the_payer_alone_cannot_rewrite_a_lock(
    clock: list[datetime], rewrite: str,
) -> None:
    """The lock record and the transfer (whose fields hold the lock and the deadline) are
    pinned to both banks: hkbank's peer alone can neither expire the lock early, delete it,
    nor change the transfer's lock. Fabric invalidates each; the honest claim goes through."""
    t = await locked_trade(clock)
    net = t.net
    pair = "pair-hkbank-cnbank"
    if rewrite == "transfer_lock":
        key = transfer_key(t.leg2)
        stored = net.ledger.get_private_data(pair, key)
        assert stored is not None
        value: bytes | None = stored.replace(LOCK.encode(), b"ab" * 32)
    else:
        key = lock_key(t.leg2)
        stored = net.ledger.get_private_data(pair, key)
        assert stored is not None
        assert decode(LockRecord, stored).state is LockState.LOCKED
        value = None if rewrite == "delete" else stored.replace(b'"locked"', b'"expired"')
    with pytest.raises(EndorsementPolicyFailureError):
        await forge(net, pair, key, value, pin=False)
    assert net.ledger.get_private_data(pair, key) == stored
    await claim(net, CN, HK, t.leg2)
    assert (await t.balances())[3] == RECEIVE


async def test_a_leg_created_with_its_lock_already_expired_is_shown_so_and_never_claimed(
    clock: list[datetime],
) -> None:
    """hkbank's modified server creates a leg (pinned, as honest ones are) whose lock record
    says ``expired`` from the start: it creates both keys alone, so Fabric cannot stop it.
    cnbank sees ``lock_state: expired`` (the SDK's ``check_leg`` refuses to act on such a
    leg), its claim is refused, so the preimage is never revealed on it."""
    t = await locked_trade(clock)
    net = t.net
    forged_tid = "f" * 22
    pair = "pair-hkbank-cnbank"
    await forge(net, pair, transfer_key(forged_tid), Transfer(
        transfer_id=forged_tid, payer_bank=HK, payee_bank=CN, payee_account=t.exporter,
        amount=RECEIVE, currency="CNH", created_at="2025-01-06T09:00:00.000000Z",
        expires_at="2025-01-06T10:00:00.000000Z", tx_id="forged", lock=LOCK))
    await forge(net, pair, lock_key(forged_tid), LockRecord(
        transfer_id=forged_tid, payer_bank=HK, payee_bank=CN, lock=LOCK,
        deadline="2025-01-06T10:00:00.000000Z", state=LockState.EXPIRED,
        at="2025-01-06T09:00:00.000000Z", tx_id="forged"))
    seen = await status(net, CN, HK, CN, forged_tid)
    assert seen["lock_state"] == "expired"
    honest = await status(net, CN, HK, CN, t.leg2)
    assert honest["lock_state"] == "locked"
    with pytest.raises(e.InvalidState, match="lock is not standing"):
        await claim(net, CN, HK, forged_tid)


async def test_the_payers_server_alone_cannot_expire_a_lock_before_its_deadline(
    clock: list[datetime],
) -> None:
    """hkbank's modified server (its clock set past leg 2's deadline, or a storage server that
    skips the rule under the layout) expires the lock with hkbank's peer alone: Fabric
    invalidates it (the lock's pin needs the payee's or the regulator's peer too). cnbank then
    claims with the preimage."""
    t = await locked_trade(clock)
    net = t.net
    start = net.now
    later(net, clock, TTL2 + 60)  # hkbank's lying clock and its client's timestamp
    pending = await expire(net, HK, CN, t.leg2, servers=[HK], endorsers=[HK], commit=False)
    with pytest.raises(EndorsementPolicyFailureError):
        pending.commit()
    net.now = clock[0] = start
    assert (await status(net, CN, HK, CN, t.leg2))["lock_state"] == "locked"
    await claim(net, CN, HK, t.leg2)
    assert (await t.balances())[3] == RECEIVE


@pytest.mark.parametrize("function", ["read", "hashes", "scan", "write", "expire"])
async def test_a_pair_namespace_serves_no_other_top_level_call(
    clock: list[datetime], function: str, namespace_layout: bool,
) -> None:
    """Under the layout a client may call the pair namespace at the top level for
    ``expire_lock`` only: the storage server refuses its other functions (a client that could
    call ``write`` there would write whatever the collection's writer endorses, without the
    contract's rules), and any other name."""
    if not namespace_layout:
        pytest.skip("the storage chaincode runs under the namespace layout only")
    t = await locked_trade(clock)
    net = t.net
    pair = "pair-hkbank-cnbank"
    body = {"keys": [[pair, lock_key(t.leg2)]], "collection": pair, "start": "", "end": "~",
            "limit": 10, "ops": [[pair, lock_key(t.leg2), None, None]]}
    stub = net.ledger.stub(function, [json.dumps(body)], tx_id=net.ledger.new_tx_id(),
                           timestamp=net.now, endorsers=[msp_of(HK)],
                           chaincode_name=pair_ns(HK, CN))
    with pytest.raises(e.NotAuthorized, match="top level"):
        await storage_call(HK, net.caller(HK), stub)


@pytest.mark.parametrize("what", ["lock", "transfer", "payee_decision", "new_in_payee_pair"])
async def test_what_a_dishonest_storage_server_writes_at_the_top_level_is_invalidated(
    clock: list[datetime], what: str, namespace_layout: bool,
) -> None:
    """hkbank's modified storage server accepts a top-level call in the pair namespace and
    writes (endorsed by hkbank's peer alone, as it may ask): the lock ``expired``, a
    rewritten transfer, or anything in cnbank's direction of the pair. Fabric validates each
    write against its key's pin or its collection's policy (the pair namespace's
    chaincode-level policy is not consulted for a private write with one: Fabric v3.1.1,
    ``statebased`` ``CheckCCEPIfNoEPChecked``), so each is invalidated, and cnbank's claim goes
    through."""
    if not namespace_layout:
        pytest.skip("the storage chaincode runs under the namespace layout only")
    t = await locked_trade(clock)
    net = t.net
    mine, theirs = "pair-hkbank-cnbank", "pair-cnbank-hkbank"
    collection, key = {
        "lock": (mine, lock_key(t.leg2)), "transfer": (mine, transfer_key(t.leg2)),
        "payee_decision": (theirs, decision_key(t.leg2)),
        "new_in_payee_pair": (theirs, "dec/" + "x" * 22)}[what]
    stub = net.ledger.stub(tx_id=net.ledger.new_tx_id(), timestamp=net.now,
                           endorsers=[msp_of(HK)], chaincode_name=pair_ns(HK, CN))
    stored = net.ledger.get_private_data(collection, key)
    value = (stored or b"{}").replace(b'"locked"', b'"expired"').replace(
        LOCK.encode(), b"ab" * 32)
    await stub.put_private_data(collection, key, value)
    with pytest.raises(EndorsementPolicyFailureError):
        stub.commit()
    assert net.ledger.get_private_data(collection, key) == stored
    await claim(net, CN, HK, t.leg2)
    assert (await t.balances())[3] == RECEIVE


# --------------------------------------------------------------------------- property


_ACTIONS = st.sampled_from([
    "claim2",  # cnbank claims leg 2 with the preimage (the dealer's listener then claims leg 1)
    "claim1_late",  # hkbank claims leg 1 only now (a slow dealer)
    "advance",  # time passes (by a quarter of the margin)
    "expire2", "expire1",  # the payer banks (with the regulator's peer) expire a lock
    "refund2", "refund1",  # the payer banks refund
    "forge_claim2",  # cnbank, dishonest: an accept of leg 2 without the preimage
    # cnbank, dishonest: its client dates a claim of leg 2 before the deadline whatever the
    # time (a claim is judged by its timestamp; it never co-signs an expiry: only the
    # regulator's peer is asked), so it goes through while the lock stands
    "claim2_backdated",
    "forge_refund1",  # usbank, dishonest: a refund of leg 1 before anything allows it
    "reject2",  # cnbank rejects leg 2 (its customer did not want it)
])


async def _attempt(coro: Any) -> bool:
    try:
        await coro
    except (e.DepositTokenError, EndorsementPolicyFailureError):
        return False
    return True


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(actions=st.lists(_ACTIONS, min_size=1, max_size=14), eager_dealer=st.booleans())
def test_no_customer_loses_in_any_interleaving_of_legs_and_deadlines(
    clock: list[datetime], actions: list[str], eager_dealer: bool,
) -> None:
    """Whatever order the claims, expiries, refunds, rejections, deadlines and a dishonest
    bank's forged claim, back-dated claim and early refund come in, once everything has
    settled (both deadlines past, every payer expired and refunded what it could): each leg is
    credited exactly once, to its payee or back to its payer; the buyer paid only if the
    exporter was paid; an eager dealer (its listener claims leg 1 as soon as leg 2's claim
    reveals the preimage, its sweeper expires leg 2 with the regulator as soon as leg 2's
    deadline passes) never pays CNH without getting USD; the audit's per-currency
    conservation holds, except where a dishonest bank robbed its own customer (and then the
    audit says so)."""

    async def run() -> None:
        clock.clear()
        t = await locked_trade(clock)
        net = t.net
        quarter = (TTL1 - TTL2) // 4
        start = net.now

        async def dealer_claims() -> None:
            seen = await status(net, HK, HK, CN, t.leg2)
            revealed = (seen.get("decision") or {}).get("preimage", "")
            if revealed:
                await _attempt(claim(net, HK, US, t.leg1, revealed))

        for action in actions:
            if action == "claim2":
                if await _attempt(claim(net, CN, HK, t.leg2)) and eager_dealer:
                    await dealer_claims()
            elif action == "claim1_late":
                await dealer_claims()
            elif action == "advance":
                later(net, clock, quarter)
                # an eager dealer's sweeper expires leg 2 (with the regulator) and refunds as
                # soon as its deadline passes: what the margin is for
                if eager_dealer and await _attempt(expire(net, HK, CN, t.leg2)):
                    await _attempt(net.submit(HK, "refund_transfer",
                                              {"transfer_id": t.leg2, "payee_bank": CN}))
            elif action in ("expire1", "expire2"):
                payer, payee, tid = (US, HK, t.leg1) if action == "expire1" else (HK, CN, t.leg2)
                await _attempt(expire(net, payer, payee, tid))
            elif action in ("refund1", "refund2"):
                payer, payee, tid = (US, HK, t.leg1) if action == "refund1" else (HK, CN, t.leg2)
                await _attempt(net.submit(payer, "refund_transfer",
                                          {"transfer_id": tid, "payee_bank": payee}))
            elif action == "forge_claim2":
                await _attempt(forge(net, "pair-cnbank-hkbank", decision_key(t.leg2),
                                     _decision(t.leg2, "09" * 32)))
            elif action == "claim2_backdated":
                if await _attempt(net.submit(CN, "claim_transfer", {
                        "transfer_id": t.leg2, "payer_bank": HK, "preimage": PREIMAGE},
                        when=start)) and eager_dealer:
                    await dealer_claims()
            elif action == "forge_refund1":
                await _attempt(forge(net, "pair-usbank-hkbank", refund_key(t.leg1), Refund(
                    transfer_id=t.leg1, payer_bank=US, payee_bank=HK, amount=PAY,
                    currency="USD", cause=RefundCause.EXPIRED,
                    refunded_at="2025-01-06T09:00:00.000000Z", tx_id="forged")))
            elif action == "reject2":
                await _attempt(net.submit(CN, "reject_transfer",
                                          {"transfer_id": t.leg2, "payer_bank": HK}))
        # everything settles: both deadlines pass, each payer expires and refunds what it may
        later(net, clock, TTL1 + 60)
        for payer, payee, tid in ((HK, CN, t.leg2), (US, HK, t.leg1)):
            await _attempt(expire(net, payer, payee, tid))
            await _attempt(net.submit(payer, "refund_transfer",
                                      {"transfer_id": tid, "payee_bank": payee}))
        owed1, _ = await owed(net, US, HK, HK)
        owed2, _ = await owed(net, HK, CN, CN)
        leg1_claimed, leg2_claimed = owed1 == PAY, owed2 == RECEIVE
        assert owed1 in (0, PAY)
        assert owed2 in (0, RECEIVE)
        buyer, dealer_usd, dealer_cnh, exporter = await t.balances()
        # each leg credited once: to its payee (claimed, counted) or back to its payer;
        # a forged claim credits the dishonest bank's own customer, counted by nobody
        # (usbank's own forged refund, which credits nobody, ripens once the lock is
        # expired: it robs usbank's own customer, which no rule between banks can prevent;
        # the audit names it as a USD supply gap)
        self_robbed = "forge_refund1" in actions and not leg1_claimed
        if not self_robbed:
            assert buyer == (4 * PAY if leg1_claimed else 5 * PAY)
        assert dealer_usd == (PAY if leg1_claimed else 0)
        assert dealer_cnh == (4 * RECEIVE if leg2_claimed else 5 * RECEIVE)
        # the buyer paid only if the exporter was paid (the preimage came from leg 2's claim)
        assert not leg1_claimed or leg2_claimed
        # an eager dealer never pays CNH without getting USD
        if eager_dealer:
            assert leg1_claimed == leg2_claimed
        audit = await net.audit()
        assert exporter == (RECEIVE if leg2_claimed else 0)
        # conservation per issuer and currency: minted less burned = supply plus in flight
        for currency in audit["currencies"]:
            assert currency["ok"] or (self_robbed and currency["currency"] == "USD"), currency
        assert all("usbank" in a["writers"] or "cnbank" in a["writers"]
                   for a in audit["anomaly_records"])

    asyncio.run(run())
