"""A bank suspended by the regulator, and resumed, on the in-memory network (issue 15).

The regulator writes ``suspension/<bank>`` into every bank's ``holds-<bank>`` (only its peers
endorse there). While usbank is suspended every honest contract refuses new payments to or
from it and accepts of its transfers; rejects, refunds, settlements, the obligations scan and
the audit go on. From the dishonest bank's side: a "resumed" record usbank writes where its
own peer can endorse (its accounts collection, its pair collections) is read by nobody, and
the holds collections are the regulator's alone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from deposit_token import errors as e
from deposit_token.keys import holds_collection, suspension_key
from deposit_token.records import Suspension
from dtoken_wire.codec import format_timestamp
from unit.deposit_token.dt_harness import Net, ids, policy_org
from unit.deposit_token.test_dt_dishonest import forge

HK, US, CN = "hkbank", "usbank", "cnbank"


def item(ref: str, bank: str, payee: str, amount: int, tid: str) -> dict[str, Any]:
    return {"reference": ref, "payee_bank": bank, "payee_account": payee, "amount": amount,
            "transfer_id": tid, "originator": {"name": "Marketplace Ltd"}}


@pytest.fixture
async def suspended() -> tuple[Net, str]:
    """Funded USD accounts at each bank; hkbank owes usbank 300 (accepted); usbank has a
    transfer of 200 to hkbank pending; then the regulator suspends usbank."""
    n = Net()
    await n.init()
    for bank in (HK, US, CN):
        await n.open(bank, "USD", f"{bank}-pay".ljust(22, "_"))
        await n.mint(bank, f"{bank}-pay".ljust(22, "_"), 100_000, f"dep-{bank}")
        await n.open(bank, "USD", f"{bank}-rcv".ljust(22, "_"))
    tid = await n.initiate(HK, acct(HK), US, rcv(US), 300, "hk-us-1")
    await n.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    pending = await n.initiate(US, acct(US), HK, rcv(HK), 200, "us-hk-1")
    await n.submit("regulator", "suspend_bank", {"bank": US, "reason": "capital call missed"})
    return n, pending


def acct(bank: str) -> str:
    return f"{bank}-pay".ljust(22, "_")


def rcv(bank: str) -> str:
    return f"{bank}-rcv".ljust(22, "_")


async def test_every_bank_is_told_and_only_the_regulator_wrote_it(
    suspended: tuple[Net, str],
) -> None:
    net, _ = suspended
    for bank in (HK, US, CN):
        coll = holds_collection(bank)
        assert policy_org(coll) == "RegulatorMSP"  # the collection's endorsement policy
        assert net.ledger.get_private_data(coll, suspension_key(US)) is not None
        told = await net.evaluate(bank, "get_suspensions")
        assert [(s["bank"], s["reason"]) for s in told["suspended"]] == [
            (US, "capital call missed")]


async def test_no_new_payment_to_or_from_a_suspended_bank(suspended: tuple[Net, str]) -> None:
    net, pending = suspended
    # hkbank's honest contract refuses to pay into usbank ...
    with pytest.raises(e.BankSuspended, match="usbank is suspended"):
        await net.initiate(HK, acct(HK), US, rcv(US), 10, "hk-us-2")
    with pytest.raises(e.BankSuspended):
        await net.submit(HK, "batch_payout", {
            "reference": "hk-batch", "payer_account": acct(HK),
            "payments": [{"payee_bank": CN, "payee_account": rcv(CN), "amount": 5},
                         {"payee_bank": US, "payee_account": rcv(US), "amount": 5}]})
    sub = await net.prepare(HK, "coalesced_payout", {"payer_account": acct(HK), "items": [
        item("c1", US, rcv(US), 5, "coal-us-0000000000000001"),
        item("c2", CN, rcv(CN), 5, "coal-cn-0000000000000001")]})
    assert sub.result["results"] == ["SUSPENDED", "OK"]
    sub.commit()
    # ... usbank's own honest contract refuses its clients' new payments ...
    with pytest.raises(e.BankSuspended):
        await net.initiate(US, acct(US), CN, rcv(CN), 10, "us-cn-1")
    # ... and a transfer usbank made before (or a dishonest usbank made anyway) is refused
    # at acceptance: an accept would make usbank owe hkbank.
    with pytest.raises(e.BankSuspended, match="no accept"):
        await net.submit(HK, "accept_transfer", {"transfer_id": pending,
                                                 "payer_bank": US})
    with pytest.raises(e.InvalidState, match="none of the transfers"):
        await net.submit(HK, "decide_transfers", {"payer_bank": US, "decisions": [
            {"transfer_id": pending, "accept": True}]})
    # Payments that do not involve usbank go on.
    await net.initiate(HK, acct(HK), CN, rcv(CN), 10, "hk-cn-1")
    await net.submit(HK, "transfer", {"reference": "hk-int", "from_account": acct(HK),
                                      "to_account": rcv(HK), "amount": 7})


async def test_its_obligations_stay_visible_and_settle(suspended: tuple[Net, str]) -> None:
    net, pending = suspended
    # The payee bank may reject usbank's pending transfer; usbank's customer is refunded.
    await net.submit(HK, "reject_transfer", {"transfer_id": pending, "payer_bank": US})
    await net.submit(US, "refund_transfer", {"transfer_id": pending, "payee_bank": HK})
    assert await net.balance(US, acct(US)) == 100_000
    # What hkbank owes usbank is still visible to both, and settles.
    for org in (HK, US):
        page = await net.obligations(HK, US, org=org)
        owed = {(o["debtor"], o["creditor"]): o["owed"] for o in page["obligations"]}
        assert owed[(HK, US)] == 300
    await net.submit(US, "confirm_settlement", {"debtor_bank": HK, "currency": "USD",
                                                "amount": 300, "rtgs_reference": "RTGS-7"})
    page = await net.obligations(HK, US)
    assert {(o["debtor"], o["creditor"]): o["owed"] for o in page["obligations"]}.get(
        (HK, US), 0) == 0
    audit = await net.audit()
    assert audit["ok"], audit["failures"]


async def test_resumed_it_pays_and_is_paid_again(suspended: tuple[Net, str]) -> None:
    net, pending = suspended
    await net.submit("regulator", "resume_bank", {"bank": US})
    for bank in (HK, US, CN):
        assert (await net.evaluate(bank, "get_suspensions"))["suspended"] == []
    await net.submit(HK, "accept_transfer", {"transfer_id": pending,
                                             "payer_bank": US})
    tid = await net.initiate(HK, acct(HK), US, rcv(US), 10, "hk-us-3")
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    with pytest.raises(e.InvalidState, match="not suspended"):
        await net.submit("regulator", "resume_bank", {"bank": US})


async def test_only_the_regulator_suspends_or_resumes(suspended: tuple[Net, str]) -> None:
    net, _ = suspended
    for org in (HK, US):
        for name, req in (("resume_bank", {"bank": US}), ("suspend_bank", {"bank": CN})):
            with pytest.raises(e.NotAuthorized):
                await net.submit(org, name, req)
    with pytest.raises(e.NotFound):
        await net.submit("regulator", "suspend_bank", {"bank": "xxbank"})
    with pytest.raises(e.InvalidArgument):
        await net.submit("regulator", "suspend_bank", {"bank": "Not A Bank"})


async def test_a_resumption_usbank_writes_where_it_can_counts_for_nobody(
    suspended: tuple[Net, str],
) -> None:
    """The dishonest bank's side: its peer endorses whatever its server writes into its own
    collections, so it writes "resumed" there under every key a reader might look up; the
    honest banks read only their own holds collections (the regulator's) and still refuse."""
    net, pending = suspended
    lifted = Suspension(bank=US, suspended=False, set_at="2025-01-06T10:00:00.000000Z",
                        tx_id="f" * 64)
    for coll in ("acct-usbank", "pair-usbank-hkbank", "pair-usbank-cnbank"):
        assert policy_org(coll) == "LibertyBankMSP"  # usbank's peer alone endorses these
        await forge(net, coll, suspension_key(US), lifted, pin=False)
    with pytest.raises(e.BankSuspended):
        await net.submit(HK, "accept_transfer", {"transfer_id": pending,
                                                 "payer_bank": US})
    with pytest.raises(e.BankSuspended):
        await net.initiate(CN, acct(CN), US, rcv(US), 10, "cn-us-1")


async def test_without_a_regulator_nothing_is_suspended() -> None:
    n = Net(regulator=False)
    await n.init()
    (a, b) = ids("noreg", 2)
    await n.open(HK, "USD", a)
    await n.mint(HK, a, 1_000, "dep-nr")
    await n.open(US, "USD", b)
    tid = await n.initiate(HK, a, US, b, 10, "nr-1")
    await n.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    assert (await n.evaluate(HK, "get_suspensions"))["suspended"] == []


async def test_no_escrow_or_payment_request_with_a_suspended_bank(
    suspended: tuple[Net, str],
) -> None:
    """Escrows and payment requests are payments too: none opened toward, requested from,
    or paid to a suspended bank; within a bank and between the others they go on."""
    net, _ = suspended
    deadline = format_timestamp(net.now + timedelta(days=7))
    escrow = {"reference": "esc-us", "payer_account": acct(HK), "payee_bank": US,
              "payee_account": rcv(US), "amount": 50, "deadline": deadline}
    with pytest.raises(e.BankSuspended, match="usbank is suspended"):
        await net.submit(HK, "open_escrow", escrow)
    await net.submit(HK, "open_escrow", {**escrow, "reference": "esc-cn", "payee_bank": CN,
                                         "payee_account": rcv(CN)})
    await net.submit(HK, "open_escrow", {**escrow, "reference": "esc-hk", "payee_bank": HK,
                                         "payee_account": rcv(HK)})
    request = {"reference": "req-us", "payer_bank": US, "payer_account": acct(US),
               "payee_account": rcv(HK), "amount": 50, "currency": "USD",
               "invoice_ref": "INV-1", "due": deadline}
    with pytest.raises(e.BankSuspended, match="no payment request"):
        await net.submit(HK, "request_payment", request)
    # a request usbank sent before its suspension is not paid while it lasts
    await net.submit("regulator", "resume_bank", {"bank": US})
    await net.submit(US, "request_payment", {
        **request, "reference": "req-to-hk", "payer_bank": HK, "payer_account": acct(HK),
        "payee_account": rcv(US)})
    (rid,) = (await net.evaluate(US, "get_reference", {"reference": "req-to-hk"}))["ids"]
    await net.submit("regulator", "suspend_bank", {"bank": US, "reason": "again"})
    with pytest.raises(e.BankSuspended, match="no new payment"):
        await net.submit(HK, "approve_request", {"reference": "pay-us", "payee_bank": US,
                                                 "request_id": rid})
