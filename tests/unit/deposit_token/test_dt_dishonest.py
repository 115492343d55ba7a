"""A dishonest bank's own writes, and what each honest bank then sees (issue 13).

A bank runs its own chaincode server, so its peer endorses whatever that server writes into
the bank's own collections: any fields, any key, any bytes. Each test here commits such a
write directly (as that bank's modified server would: a write in a collection whose policy
its peer satisfies alone) and checks what honest banks and the regulator compute afterwards:
the record counts for nobody, the honest figures are unchanged, the anomaly names the bank
whose peer alone could have written it, and no honest operation is blocked.

Rewrites and deletes of records another bank relies on are the job of key-level endorsement
policies (Fabric invalidates them: ``tests/integration/test_key_policies.py``); here they are
shown reported and counted by nobody.
"""

from __future__ import annotations

from typing import Any

import pytest
from deposit_token import errors as e
from deposit_token.errors import CorruptState
from deposit_token.keys import (
    ACCOUNT_KEYS_KEY,
    decision_key,
    opened_key,
    outgoing_key,
    refund_key,
    settlement_key,
    transfer_key,
)
from deposit_token.records import (
    Account,
    AccountKeysRecord,
    Decision,
    Opened,
    Outcome,
    OutgoingRecord,
    Record,
    Refund,
    RefundCause,
    Settlement,
    Transfer,
    encode,
)
from fabshim.errors import EndorsementPolicyFailureError
from fabshim.statebased import all_and_one_of_policy, all_of_policy
from unit.deposit_token.dt_harness import (
    Net,
    account_keys,
    ids,
    msp_of,
    pending_payment,
    policy_org,
)

HK, US, CN = "hkbank", "usbank", "cnbank"
SALT = "5" * 32
DEBT = 50_000


async def forge(
    net: Net, collection: str, key: str, value: bytes | Record | None, *, pin: bool = True
) -> None:
    """Commit one write of a modified server straight into the ledger (``None``: delete),
    endorsed by the one bank whose peer satisfies the collection's policy. A dishonest bank
    can pin what it creates as honest banks do (``pin``): then only the record's place and
    content can give it away."""
    writer = policy_org(collection)
    stub = net.ledger.stub(tx_id=net.ledger.new_tx_id(), timestamp=net.now,
                           endorsers=[writer])
    if value is None:
        await stub.del_private_data(collection, key)
    else:
        raw = value if isinstance(value, bytes) else encode(value, SALT)
        await stub.put_private_data(collection, key, raw)
        if pin and collection.startswith("pair-"):
            _, a, b = collection.split("-")
            policy = all_of_policy([msp_of(a), msp_of(b)])
            if key.startswith("lock/"):  # a hash lock: its payer AND its payee or the regulator
                policy = all_and_one_of_policy([msp_of(a)], [msp_of(b), msp_of("regulator")])
            await stub.set_private_data_validation_parameter(collection, key, policy)
    stub.commit()


async def owed(net: Net, debtor: str, creditor: str, org: str) -> tuple[int, dict[str, Any]]:
    page = await net.obligations(debtor, creditor, org=org)
    amounts = {(o["debtor"], o["creditor"]): o["owed"] for o in page["obligations"]}
    return amounts.get((debtor, creditor), 0), page


@pytest.fixture
async def debt() -> tuple[Net, str]:
    """hkbank's customer paid usbank's customer ``DEBT``; usbank accepted: hkbank owes it."""
    net = Net()
    await net.init()
    (payer,) = ids("hkpay", 1)
    (payee,) = ids("usrcv", 1)
    await net.open(HK, "USD", payer)
    await net.mint(HK, payer, 10 * DEBT, "dep-1")
    await net.open(US, "USD", payee)
    tid = await net.initiate(HK, payer, US, payee, DEBT, "inv-1")
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    return net, tid


async def test_the_debtor_cannot_cancel_its_debt_with_a_settlement_in_its_own_collection(
    debt: tuple[Net, str],
) -> None:
    net, _ = debt
    await forge(net, "pair-hkbank-usbank", settlement_key("f" * 32), Settlement(
        debtor_bank=HK, creditor_bank=US, currency="USD", amount=DEBT,
        rtgs_reference="RTGS-FAKE", settled_at="2025-01-06T09:00:00.000000Z", tx_id="x"))
    for org in (US, HK):  # the creditor, and the debtor's own honest read, agree
        amount, page = await owed(net, HK, US, org)
        assert amount == DEBT
        assert page["anomalies"] == {"hkbank/pair-hkbank-usbank/wrong_parties": 1}
        (detail,) = page["anomaly_records"]
        assert detail["writers"] == ["hkbank"]
    audit = await net.audit()
    assert not audit["ok"]
    assert audit["anomalies"] == {"hkbank/pair-hkbank-usbank/wrong_parties": 1}
    (pair,) = [p for p in audit["pairs"] if (p["payer"], p["payee"]) == (HK, US)]
    assert (pair["owed"], pair["settled"]) == (DEBT, 0)


async def test_a_real_settlement_still_counts(debt: tuple[Net, str]) -> None:
    net, _ = debt
    await net.submit(US, "confirm_settlement", {"debtor_bank": HK, "currency": "USD",
                                                "amount": DEBT, "rtgs_reference": "RTGS-1"})
    amount, page = await owed(net, HK, US, US)
    assert amount == 0
    assert page["anomalies"] == {}
    assert (await net.audit())["ok"]


async def test_garbage_decision_blocks_neither_the_refund_nor_any_scan() -> None:
    net, payer, _payee, tid = await pending_payment(ttl_seconds=600)
    await forge(net, "pair-usbank-hkbank", decision_key(tid), b"\x00not a record")
    # every scan goes on, and names usbank
    for org, direction in ((US, "incoming"), (HK, "outgoing")):
        pending = await net.evaluate(org, "get_pending", {"direction": direction})
        assert [t["status"] for t in pending["transfers"]] == ["pending"]
        assert pending["anomaly_records"][0]["writers"] == ["usbank"]
    _, page = await owed(net, HK, US, HK)
    assert page["anomalies"] == {"usbank/pair-usbank-hkbank/undecodable": 1}
    net.advance(seconds=601)
    await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": US})
    assert await net.balance(HK, payer) == 1_000
    audit = await net.audit()
    assert audit["anomalies"] == {"usbank/pair-usbank-hkbank/undecodable": 1}
    assert all(row["ok"] for row in audit["banks"])
    assert all(c["ok"] for c in audit["currencies"])


async def test_garbage_refund_does_not_block_the_payees_accept() -> None:
    net, _payer, payee, tid = await pending_payment()
    await forge(net, "pair-hkbank-usbank", refund_key(tid), b"{}")
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    assert await net.balance(US, payee) == 400
    assert (await owed(net, HK, US, US))[0] == 400


async def test_a_refund_in_another_banks_name_counts_for_nobody() -> None:
    """hkbank writes, in its own pair collection, a refund whose fields say cnbank paid."""
    net, _payer, _payee, tid = await pending_payment()
    await forge(net, "pair-hkbank-usbank", refund_key(tid), Refund(
        transfer_id=tid, payer_bank=CN, payee_bank=US, amount=400, currency="USD",
        cause=RefundCause.REJECTED, refunded_at="2025-01-06T09:00:00.000000Z", tx_id="x"))
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    amount, page = await owed(net, HK, US, US)
    assert amount == 400
    assert page["anomalies"] == {"hkbank/pair-hkbank-usbank/wrong_parties": 1}


@pytest.mark.parametrize("rewrite", ["amount", "delete", "garbage", "repin"])
async def test_the_payer_cannot_rewrite_an_accepted_transfer(
    debt: tuple[Net, str], rewrite: str
) -> None:
    """The transfer was pinned to both banks at creation: its writer alone can no longer
    change, delete or re-pin it; Fabric invalidates the attempt and nothing changes."""
    net, tid = debt
    key = transfer_key(tid)
    before = await owed(net, HK, US, US)
    stored = net.ledger.get_private_data("pair-hkbank-usbank", key)
    assert stored is not None
    if rewrite == "repin":
        stub = net.ledger.stub(endorsers=[msp_of(HK)])
        await stub.set_private_data_validation_parameter(
            "pair-hkbank-usbank", key, all_of_policy([msp_of(HK)]))
        with pytest.raises(EndorsementPolicyFailureError):
            stub.commit()
    else:
        value = {"delete": None, "garbage": b"[1, 2, 3]",
                 "amount": stored.replace(b'"amount":50000', b'"amount":1')}[rewrite]
        with pytest.raises(EndorsementPolicyFailureError):
            await forge(net, "pair-hkbank-usbank", key, value, pin=rewrite == "amount")
    assert net.ledger.get_private_data("pair-hkbank-usbank", key) == stored
    assert await owed(net, HK, US, US) == before
    assert (await net.audit())["ok"]


async def test_a_record_its_writer_left_unpinned_counts_for_nobody() -> None:
    """hkbank's modified server initiates without pinning: the payee's server refuses to
    accept what hkbank could rewrite alone, and every scan reports it."""
    net = Net()
    await net.init()
    (tid,) = ids("hkxfer", 1)
    (payee,) = ids("usrcv", 1)
    await net.open(US, "USD", payee)
    await forge(net, "pair-hkbank-usbank", transfer_key(tid), Transfer(
        transfer_id=tid, payer_bank=HK, payee_bank=US, payee_account=payee,
        amount=400, currency="USD", created_at="2025-01-06T09:00:00.000000Z",
        expires_at="2099-01-01T00:00:00.000000Z", tx_id="x"), pin=False)
    with pytest.raises(CorruptState, match="unpinned"):
        await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    pending = await net.evaluate(US, "get_pending", {"direction": "incoming"})
    assert pending["transfers"] == []
    assert [a["what"] for a in pending["anomaly_records"]] == ["unpinned"]
    assert (await net.audit())["anomalies"] == {"hkbank/pair-hkbank-usbank/unpinned": 1}


async def test_an_unpinned_accept_cannot_be_relied_on() -> None:
    """usbank's modified server accepts without pinning its decision (so it could later
    delete it alone): the payer's figures do not count it, and the audit names usbank."""
    net, _payer, _payee, tid = await pending_payment()
    await forge(net, "pair-usbank-hkbank", decision_key(tid), Decision(
        transfer_id=tid, outcome=Outcome.ACCEPTED, payer_bank=HK, payee_bank=US,
        amount=400, currency="USD", decided_at="2025-01-06T09:00:00.000000Z", tx_id="x"),
        pin=False)
    amount, page = await owed(net, HK, US, HK)
    assert amount == 0
    assert page["anomalies"] == {"usbank/pair-usbank-hkbank/unpinned": 1}


async def test_fields_claiming_another_place_count_for_nobody(debt: tuple[Net, str]) -> None:
    """An account in hkbank's collection that says it is usbank's; a transfer in hkbank's
    pair collection toward usbank that says cnbank pays; an accept by usbank, in its own
    collection, of a transfer that does not exist; an index entry to nowhere."""
    net, _ = debt
    (fake_acc, fake_tid, ghost) = ids("fake", 3)
    await forge(net, "acct-hkbank", account_keys(HK).account(fake_acc), Account(
        account_id=fake_acc, bank=US, currency="USD", owner_ref="x", balance=10**9,
        opened_at="2025-01-06T09:00:00.000000Z"))
    await forge(net, "pair-hkbank-usbank", transfer_key(fake_tid), Transfer(
        transfer_id=fake_tid, payer_bank=CN, payee_bank=US, payee_account=fake_acc,
        amount=10**9, currency="USD", created_at="2025-01-06T09:00:00.000000Z",
        expires_at="2099-01-01T00:00:00.000000Z", tx_id="x"))
    await forge(net, "pair-usbank-hkbank", decision_key(ghost), Decision(
        transfer_id=ghost, outcome=Outcome.ACCEPTED, payer_bank=HK, payee_bank=US,
        amount=10**9, currency="USD", decided_at="2025-01-06T09:00:00.000000Z", tx_id="x"))
    await forge(net, "pair-hkbank-usbank", opened_key("2025-01-06T09:00:00.000000Z", ghost),
          b'{"salt":"' + SALT.encode() + b'","transfer_ids":["' + ghost.encode()
          + b'"],"tx_id":"x","type":"opened","v":1}')
    amount, page = await owed(net, HK, US, US)
    assert amount == DEBT  # the forged accept of a ghost transfer charges hkbank nothing
    assert page["anomalies"] == {
        "usbank+hkbank/pair-usbank-hkbank/accept_without_transfer": 1}
    window = await net.evaluate(US, "get_pending", {
        "direction": "incoming", "since": "2025-01-01T00:00:00.000000Z"})
    full = await net.evaluate(US, "get_pending", {"direction": "incoming"})
    assert window["transfers"] == full["transfers"] == []
    assert [a["what"] for a in window["anomaly_records"]] == ["index_without_transfer"]
    assert [a["what"] for a in full["anomaly_records"]] == ["wrong_parties"]
    audit = await net.audit()
    assert audit["anomalies"] == {
        "hkbank/acct-hkbank/wrong_parties": 1,
        "hkbank/pair-hkbank-usbank/wrong_parties": 1,
        "usbank+hkbank/pair-usbank-hkbank/accept_without_transfer": 1,
    }
    (us_row,) = [r for r in audit["banks"] if (r["bank"], r["currency"]) == (US, "USD")]
    assert us_row["balances"] == DEBT  # the forged account is nobody's money
    assert us_row["ok"]
    assert all(c["ok"] for c in audit["currencies"])


async def test_a_bank_cannot_change_the_account_key_it_shared_with_the_regulator() -> None:
    """Once shared (pinned to hkbank's and the regulator's peers), hkbank alone can neither
    rewrite its account key (garbage or another key) nor delete it; holds keep working."""
    net = Net()
    await net.init()
    (acc,) = ids("keep", 1)
    await net.open(HK, "USD", acc)
    await net.mint(HK, acc, 500, "keep-dep")
    reg = Net.caller("regulator", "auditor")
    for forged in (b"not a record", AccountKeysRecord(key="0" * 32), None):
        with pytest.raises(EndorsementPolicyFailureError):
            await forge(net, "acct-hkbank", ACCOUNT_KEYS_KEY, forged)
    await net.submit("regulator", "set_hold", {"bank": HK, "account_id": acc, "frozen": True},
                     caller=reg)
    with pytest.raises(e.AccountFrozen):
        await net.submit(HK, "burn", {"reference": "keep-burn", "account_id": acc, "amount": 1},
                         caller=Net.caller(HK, "minter"))


@pytest.mark.parametrize("shared", [b"not a record", AccountKeysRecord(key="0" * 32)],
                         ids=["garbage", "another key"])
async def test_a_bank_that_hides_its_account_key_from_the_regulator_is_seen(
    shared: bytes | AccountKeysRecord,
) -> None:
    """A modified hkbank server shares no usable account key before its first account
    (unpinned, or not one): the regulator's server cannot place a hold (NOT_FOUND, which the
    regulator sees), its reads of hkbank's accounts and its audit go on."""
    net = Net()
    await net.init()
    await forge(net, "acct-hkbank", ACCOUNT_KEYS_KEY, shared)
    (acc,) = ids("hide", 1)
    if isinstance(shared, bytes):
        # the bank's own honest code refuses to work over garbage it wrote itself
        with pytest.raises(e.CorruptState):
            await net.open(HK, "USD", acc)
        return
    await net.open(HK, "USD", acc)
    await net.mint(HK, acc, 500, "hide-dep")
    reg = Net.caller("regulator", "auditor")
    with pytest.raises(e.NotFound):
        await net.submit("regulator", "set_hold", {"bank": HK, "account_id": acc,
                                                   "frozen": True}, caller=reg)
    listed = await net.evaluate("regulator", "list_accounts", {"bank": HK}, caller=reg)
    assert [(a["account_id"], a["hold"]) for a in listed["accounts"]] == [(acc, None)]
    report = await net.audit()
    assert report["ok"] is True  # the money adds up; the hold is what the regulator lacks


@pytest.mark.parametrize("moment", ["not-a-time", "2025-13-45T99:99:99.000000Z"])
async def test_a_garbled_expiry_in_a_pinned_transfer_blocks_no_scan(moment: str) -> None:
    """hkbank's modified server writes, pinned and in its own pair collection, a copy of an
    honest transfer under a new id whose ``expires_at`` is not a timestamp. Every rule that
    compares the expiry with the time would have raised in the middle of usbank's pending
    list and the regulator's audit: the record is undecodable, counts for nobody, and is
    reported; the honest transfer beside it is listed and accepted."""
    net, _payer, payee, tid = await pending_payment()
    stored = net.ledger.get_private_data("pair-hkbank-usbank", transfer_key(tid))
    assert stored is not None
    assert b'"expires_at":"' in stored
    head, tail = stored.split(b'"expires_at":"', 1)
    forged_id = tid[::-1]
    garbled = (head + b'"expires_at":"' + moment.encode() + tail[tail.index(b'"'):]).replace(
        tid.encode(), forged_id.encode())
    await forge(net, "pair-hkbank-usbank", transfer_key(forged_id), garbled)
    pending = await net.evaluate(US, "get_pending", {"direction": "incoming"})
    assert [t["transfer"]["transfer_id"] for t in pending["transfers"]] == [tid]
    assert [(a["writers"], a["what"]) for a in pending["anomaly_records"]] == [
        (["hkbank"], "undecodable")]
    audit = await net.audit()
    assert audit["anomalies"] == {"hkbank/pair-hkbank-usbank/undecodable": 1}
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    assert await net.balance(US, payee) == 400
    assert (await owed(net, HK, US, US))[0] == 400


async def test_index_entries_a_payer_bank_forges_name_nothing_twice_and_nothing_else(
        debt: tuple[Net, str]) -> None:
    """hkbank's own ``open/`` index toward usbank (it alone writes it): an entry naming a real
    pending transfer three times, a transfer that does not exist, and an entry of more ids
    than any batch: the window lists the real one once and reports the rest."""
    net, _ = debt
    (payer,) = ids("hkpay", 1)
    (payee,) = ids("usrcv", 1)
    real = await net.initiate(HK, payer, US, payee, 5, "inv-2")
    (ghost,) = ids("ghost", 1)
    at = "2025-01-06T09:00:01.000000Z"
    await forge(net, "pair-hkbank-usbank", opened_key(at, real),
                Opened(transfer_ids=(real, ghost, real, real), tx_id="x"))
    await forge(net, "pair-hkbank-usbank", opened_key(at, ghost),
                Opened(transfer_ids=(ghost,) * 501, tx_id="x"))
    listed, reported, cursor = [], [], None
    while True:  # every page to the end (the anomalies are carried in the cursor)
        window = await net.evaluate(US, "get_pending", {
            "direction": "incoming", "since": "2025-01-06T09:00:00.000000Z",
            **({"cursor": cursor} if cursor else {})})
        listed += [t["transfer"]["transfer_id"] for t in window["transfers"]]
        reported = [a["what"] for a in window["anomaly_records"]]  # carried between pages
        if window["done"]:
            break
        cursor = window["cursor"]
    assert listed == [real]
    assert sorted(reported) == [
        *["index_repeats_transfer"] * 3, "index_without_transfer", "undecodable"]
    # usbank accepts it once; nothing in the index makes it payable twice
    await net.submit(US, "decide_transfers", {"payer_bank": HK, "decisions": [
        {"transfer_id": real, "accept": True}]})
    assert await net.balance(US, payee) == DEBT + 5
    audit = await net.audit()
    assert audit["ok"], audit


async def test_a_transfer_an_earlier_contract_wrote_is_refunded_through_its_out_note(
        debt: tuple[Net, str]) -> None:
    """Not dishonest: the shape a contract before ``payer_ref`` wrote (a transfer without it,
    and the payer bank's ``out/`` note of the account to refund), as a network upgraded with
    transfers in flight holds it. And a payer bank's note naming another pair counts not."""
    net, _ = debt
    (payer,) = ids("hkpay", 1)
    (payee,) = ids("usrcv", 1)
    (old, stray) = ids("oldtid", 2)
    for tid in (old, stray):
        await forge(net, "pair-hkbank-usbank", transfer_key(tid), Transfer(
            transfer_id=tid, payer_bank=HK, payee_bank=US, payee_account=payee, amount=5,
            currency="USD", created_at="2025-01-06T09:00:00.000000Z",
            expires_at="2099-01-01T00:00:00.000000Z", tx_id="x"))
    await forge(net, "acct-hkbank", outgoing_key(old), OutgoingRecord(
        transfer_id=old, payer_account=payer, payee_bank=US, amount=5, currency="USD",
        tx_id="x"))
    await forge(net, "acct-hkbank", outgoing_key(stray), OutgoingRecord(
        transfer_id=stray, payer_account=payer, payee_bank=CN, amount=5, currency="USD",
        tx_id="x"))
    before = await net.balance(HK, payer)
    for tid in (old, stray):
        await net.submit(US, "reject_transfer", {"transfer_id": tid, "payer_bank": HK})
    await net.submit(HK, "refund_transfer", {"transfer_id": old, "payee_bank": US})
    assert await net.balance(HK, payer) == before + 5
    with pytest.raises(e.NotFound, match="initiated no such transfer"):
        await net.submit(HK, "refund_transfer", {"transfer_id": stray, "payee_bank": US})


async def test_bytes_already_read_count_only_where_they_live_and_pinned() -> None:
    """Issue 14's decode cache: each server keeps the records it decoded by their stored bytes.
    hkbank's modified server copies the exact bytes of a transfer usbank's server has read
    (and cached) to another key of the pair, unpinned, and to its pair with cnbank, pinned:
    a cached parse skips none of the checks of where the bytes live (nor the pin check, made
    at each read after them), so usbank and cnbank count neither copy, the scans report both
    as hkbank's, and the real transfer is still decided."""
    net, _payer, payee, tid = await pending_payment()
    first = await net.evaluate(US, "get_pending", {"direction": "incoming"})  # decoded, cached
    assert [t["transfer"]["transfer_id"] for t in first["transfers"]] == [tid]
    stored = net.ledger.get_private_data("pair-hkbank-usbank", transfer_key(tid))
    assert stored is not None
    (other,) = ids("hkcopy", 1)
    await forge(net, "pair-hkbank-usbank", transfer_key(other), stored, pin=False)
    await forge(net, "pair-hkbank-cnbank", transfer_key(tid), stored)
    pending = await net.evaluate(US, "get_pending", {"direction": "incoming"})
    assert [t["transfer"]["transfer_id"] for t in pending["transfers"]] == [tid]
    assert [a["what"] for a in pending["anomaly_records"]] == ["wrong_key"]
    with pytest.raises(e.DepositTokenError):
        await net.submit(US, "accept_transfer", {"transfer_id": other, "payer_bank": HK})
    seen_by_cn = await net.evaluate(CN, "get_pending", {"direction": "incoming"})
    assert seen_by_cn["transfers"] == []
    assert [a["what"] for a in seen_by_cn["anomaly_records"]] == ["wrong_parties"]
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    assert await net.balance(US, payee) == 400
    audit = await net.audit()
    assert not audit["ok"]
    assert audit["anomalies"] == {"hkbank/pair-hkbank-usbank/wrong_key": 1,
                                  "hkbank/pair-hkbank-cnbank/wrong_parties": 1}


async def test_an_index_entry_on_a_later_page_cannot_list_a_transfer_again(
        debt: tuple[Net, str]) -> None:
    """A page remembers what it listed, the next page does not: hkbank names its real pending
    transfer again in an entry of another moment, so that it falls on a later page. Only the
    entry its own transaction wrote counts; the other is reported."""
    net, _ = debt
    (payer,) = ids("hkpay", 1)
    (payee,) = ids("usrcv", 1)
    real = await net.initiate(HK, payer, US, payee, 5, "inv-3")
    await forge(net, "pair-hkbank-usbank", opened_key("2099-01-01T00:00:00.000000Z", real),
                Opened(transfer_ids=(real,), tx_id="x"))
    listed, reported, cursor = [], [], None
    while True:
        page = await net.evaluate(US, "get_pending", {
            "direction": "incoming", "since": "2025-01-06T09:00:00.000000Z", "page_size": 1,
            **({"cursor": cursor} if cursor else {})})
        listed += [t["transfer"]["transfer_id"] for t in page["transfers"]]
        reported = [a["what"] for a in page["anomaly_records"]]
        if page["done"]:
            break
        cursor = page["cursor"]
    assert listed == [real]
    assert reported == ["index_names_other_transaction"]
