"""What the Bank and Regulator send: the transaction, the request (transient only), the
endorsing organization, and the ids they derive; what they refuse before sending."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from dtoken.bank import Bank, Regulator
from dtoken.errors import ExposureCapExceeded, ProfileError, UsageError
from dtoken.models import Payee
from dtoken.profile import Profile
from fabric_protos.common import ledger_pb2
from unit.dtoken.conftest import FAST, write_profile
from unit.dtoken.sdk_fakes import ACCOUNT, SdkPeer
from unit.fabgateway.block_builder import PrivateOp, Tx, block
from unit.fabgateway.gw_fakes import ChaincodeFailure, Invocation, Result, Server

ID_RE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")
WRITES = ["open_account", "transfer", "initiate_transfer", "batch_payout", "coalesced_payout",
          "accept_transfer",
          "reject_transfer", "refund_transfer", "confirm_settlement", "set_account_status",
          "set_account_limits", "set_hold", "release_hold", "set_exposure_cap"]


@pytest.fixture
def recorded(peer: SdkPeer) -> list[Invocation]:
    calls: list[Invocation] = []

    def record(invocation: Invocation) -> Result:
        assert invocation.args[1:] == [], "no argument may carry a private input"
        calls.append(invocation)
        answer: dict[str, object] = {"tx_id": invocation.transaction_id}
        if invocation.args[0] == b"coalesced_payout":
            items = json.loads(invocation.transient["request"])["items"]
            answer["results"] = ["OK"] * len(items)
        return Result(payload=json.dumps(answer).encode())

    for name in WRITES:
        peer.function(name)(record)
    return calls


def sent(call: Invocation) -> tuple[str, dict[str, Any], list[str]]:
    return (call.args[0].decode(), json.loads(call.transient["request"]),
            call.endorsing_organizations)


async def test_open_account_derives_a_stable_opaque_id_from_the_reference(
    bank: Bank, recorded: list[Invocation]
) -> None:
    opened = await bank.open_account("USD", "CIF-1", reference="open-1",
                                     daily_outflow_limit=bank.money("1,000.00 USD"))
    name, request, endorsers = sent(recorded[0])
    assert (name, endorsers) == ("open_account", ["HarbourBankMSP"])
    assert request == {"reference": "open-1", "currency": "USD", "owner_ref": "CIF-1",
                       "account_id": opened.account_id,
                       "limits": {"single_payment": None, "daily_outflow": 100_000}}
    assert ID_RE.fullmatch(opened.account_id)
    again = await bank.open_account("USD", "CIF-1", reference="open-1",
                                    daily_outflow_limit=100_000)
    assert again.account_id == opened.account_id
    assert again.receipt.replayed
    other = await bank.open_account("USD", "CIF-1", reference="open-2")
    assert other.account_id != opened.account_id
    with pytest.raises(UsageError):
        await bank.open_account("USD", "CIF-1", reference="open-3",
                                single_payment_limit=bank.money("5 HKD"))
    with pytest.raises(UsageError):
        await bank.open_account("EUR", "CIF-1", reference="open-4")
    assert len(recorded) == 2


async def test_transfer_picks_the_transaction_from_the_payees_bank(
    bank: Bank, recorded: list[Invocation]
) -> None:
    local = await bank.transfer(ACCOUNT, "hkbank", "acct-0002-xxxxxxxxxxxxxxxx", 250,
                                reference="pay-1")
    assert (local.kind, local.transfer_id) == ("internal", None)
    assert sent(recorded[0]) == ("transfer", {
        "reference": "pay-1", "from_account": ACCOUNT,
        "to_account": "acct-0002-xxxxxxxxxxxxxxxx", "amount": 250}, ["HarbourBankMSP"])
    cross = await bank.transfer(ACCOUNT, "usbank", "acct-us01-xxxxxxxxxxxxxxxx",
                                bank.money("12.50 USD"), reference="pay-2",
                                originator={"name": "ACME Ltd"}, ttl_seconds=600)
    assert cross.kind == "cross_bank"
    assert cross.transfer_id
    assert ID_RE.fullmatch(cross.transfer_id)
    name, request, endorsers = sent(recorded[1])
    assert (name, endorsers) == ("coalesced_payout", ["HarbourBankMSP"])  # the payer alone
    item = {"reference": "pay-2", "payee_bank": "usbank",
            "payee_account": "acct-us01-xxxxxxxxxxxxxxxx", "amount": 1250,
            "transfer_id": cross.transfer_id, "originator": {"name": "ACME Ltd"},
            "ttl_seconds": 600}
    assert request == {"payer_account": ACCOUNT, "items": [item]}
    assert (cross.receipt.reference, cross.receipt.transaction) == ("pay-2", "coalesced_payout")
    bank.coalesce = False  # one payment per transaction: the same payment, initiate_transfer
    single = await bank.transfer(ACCOUNT, "usbank", "acct-us01-xxxxxxxxxxxxxxxx",
                                 bank.money("12.50 USD"), reference="pay-3",
                                 originator={"name": "ACME Ltd"}, ttl_seconds=600)
    name, request, endorsers = sent(recorded[2])
    assert (name, endorsers) == ("initiate_transfer", ["HarbourBankMSP"])
    assert request == {"reference": "pay-3", "payer_account": ACCOUNT, "payee_bank": "usbank",
                       "payee_account": "acct-us01-xxxxxxxxxxxxxxxx", "amount": 1250,
                       "transfer_id": single.transfer_id, "originator": {"name": "ACME Ltd"},
                       "ttl_seconds": 600}
    with pytest.raises(UsageError):
        await bank.transfer(ACCOUNT, "nobank", "acct-us01-xxxxxxxxxxxxxxxx", 1, reference="p3")
    with pytest.raises(UsageError):  # the account is in USD
        await bank.transfer(ACCOUNT, "usbank", "acct-us01-xxxxxxxxxxxxxxxx",
                            bank.money("1 HKD"), reference="p4")
    for bad in (0, -5, True):
        with pytest.raises(UsageError):
            await bank.transfer(ACCOUNT, "usbank", "x" * 22, bad, reference="p5")
    assert len(recorded) == 3


async def test_batch_payout_is_one_debit_with_a_transfer_id_per_foreign_payee(
    bank: Bank, recorded: list[Invocation]
) -> None:
    payees = [Payee("usbank", "u" * 22, 100, "inv-1"), Payee("hkbank", "h" * 22, 200),
              Payee("usbank", "v" * 22, bank.money("3.00 USD"))]
    payout = await bank.batch_payout(ACCOUNT, payees, reference="batch-1")
    ids = payout.transfer_ids
    assert ids[1] is None
    assert ids[0]
    assert ids[2]
    assert ids[0] != ids[2]
    name, request, endorsers = sent(recorded[0])
    assert (name, endorsers) == ("batch_payout", ["HarbourBankMSP"])
    assert request["payments"] == [
        {"payee_bank": "usbank", "payee_account": "u" * 22, "amount": 100,
         "remittance": "inv-1", "transfer_id": ids[0]},
        {"payee_bank": "hkbank", "payee_account": "h" * 22, "amount": 200},
        {"payee_bank": "usbank", "payee_account": "v" * 22, "amount": 300,
         "transfer_id": ids[2]},
    ]
    with pytest.raises(UsageError):
        await bank.batch_payout(ACCOUNT, [], reference="batch-2")


async def test_decisions_and_refunds_derive_their_reference_from_the_transfer(
    bank: Bank, recorded: list[Invocation]
) -> None:
    tid = "t" * 32
    accept = await bank.accept(tid, "usbank", force=True)
    assert accept.reference == f"usbank/{tid}"
    # a second accept is the first one
    assert (await bank.accept(tid, "usbank", force=True)).replayed
    await bank.reject(tid, "usbank")
    await bank.reject("r" * 32, "usbank", "unknown beneficiary")
    refund = await bank.refund(tid, "usbank")
    assert refund.reference == f"usbank/{tid}"
    assert [sent(c) for c in recorded] == [
        ("accept_transfer", {"transfer_id": tid, "payer_bank": "usbank"}, ["HarbourBankMSP"]),
        ("reject_transfer", {"transfer_id": tid, "payer_bank": "usbank"}, ["HarbourBankMSP"]),
        ("reject_transfer", {"transfer_id": "r" * 32, "payer_bank": "usbank",
                             "reason": "unknown beneficiary"}, ["HarbourBankMSP"]),
        ("refund_transfer", {"transfer_id": tid, "payee_bank": "usbank"}, ["HarbourBankMSP"]),
    ]


async def test_settlement_status_and_limits_requests(
    bank: Bank, recorded: list[Invocation]
) -> None:
    await bank.record_settlement("usbank", bank.money("500.00 USD"), rtgs_reference="RTGS-9")
    await bank.freeze(ACCOUNT)
    await bank.freeze(ACCOUNT)  # not a money movement: a fresh reference each time
    await bank.set_limits(ACCOUNT, single_payment=bank.money("10.00 USD"))
    assert [sent(c)[:2] for c in recorded] == [
        ("confirm_settlement", {"rtgs_reference": "RTGS-9", "debtor_bank": "usbank",
                                "currency": "USD", "amount": 50_000}),
        ("set_account_status", {"account_id": ACCOUNT, "status": "frozen"}),
        ("set_account_status", {"account_id": ACCOUNT, "status": "frozen"}),
        ("set_account_limits", {"account_id": ACCOUNT, "single_payment": 1000}),
    ]
    with pytest.raises(UsageError):
        await bank.record_settlement("usbank", 500, rtgs_reference="RTGS-10")  # type: ignore[arg-type]


@pytest.fixture
async def regulator(server: Server, tmp_path: Path) -> AsyncIterator[Regulator]:
    profile = Profile.load(write_profile(tmp_path / "reg", org="regulator", kind="regulator"))
    async with grpc.aio.insecure_channel(server.address) as channel:
        yield Regulator(profile, channel, policy=FAST)


async def test_holds_are_endorsed_by_the_regulator_alone(
    regulator: Regulator, recorded: list[Invocation]
) -> None:
    await regulator.freeze("hkbank", ACCOUNT, reason="sanctions screening")
    await regulator.freeze("hkbank", ACCOUNT, held_amount=regulator.money("9.99 USD"),
                           frozen=False)
    await regulator.release("hkbank", ACCOUNT)
    assert [sent(c) for c in recorded] == [
        ("set_hold", {"bank": "hkbank", "account_id": ACCOUNT, "frozen": True,
                      "reason": "sanctions screening"}, ["RegulatorMSP"]),
        ("set_hold", {"bank": "hkbank", "account_id": ACCOUNT, "held_amount": 999},
         ["RegulatorMSP"]),
        ("release_hold", {"bank": "hkbank", "account_id": ACCOUNT}, ["RegulatorMSP"]),
    ]
    with pytest.raises(UsageError):
        await regulator.freeze("regulator", ACCOUNT)


async def test_reads_go_to_the_own_peer_with_the_request_in_transient_data(
    bank: Bank, peer: SdkPeer
) -> None:
    account = await bank.account(ACCOUNT)
    assert account.balance == bank.money("0.00 USD")
    request = peer.evaluate_requests[-1]
    assert list(request.target_organizations) == ["HarbourBankMSP"]


def test_a_profile_of_another_kind_or_without_the_identity_is_refused(
    profile: Profile, tmp_path: Path
) -> None:
    reg = Profile.load(write_profile(tmp_path / "r", org="regulator", kind="regulator"))
    with pytest.raises(ProfileError, match="is a regulator, not a bank"):
        Bank.connect(reg)
    with pytest.raises(ProfileError, match=r"no identity 'teller'.*auditor, minter, operator"):
        Bank.connect(profile, identity="teller")


async def test_disputes_are_decided_by_proven_ledger_positions_never_by_claims(
    bank: Bank, peer: SdkPeer
) -> None:
    """The contract lists a transfer both accepted and refunded with where each record lives,
    the hash of its bytes and the transaction its writer claims. The SDK asks the ledger
    (qscc) for the block of each claimed transaction and counts a position only if that
    transaction is VALID and its hashed write set holds exactly that key and value; a claim
    that does not verify (a made-up id, or the id of a transaction that wrote something else)
    is an anomaly naming the writer, and the transfer stays disputed."""
    accept_bytes, refund_bytes = b'{"decision":1}', b'{"refund":1}'
    dec_coll, ref_coll = "pair-usbank-hkbank", "pair-hkbank-usbank"
    real = block(7, [
        Tx("tx-refund", chaincode="dtoken",
           private={ref_coll: [PrivateOp("refund/" + "t" * 24, refund_bytes)]}),
        Tx("tx-accept", chaincode="dtoken",
           private={dec_coll: [PrivateOp("dec/" + "t" * 24, accept_bytes)]}),
        Tx("tx-other", chaincode="dtoken", private={ref_coll: [PrivateOp("x", b"y")]}),
    ])

    @peer.function("GetBlockByTxID")
    def _block_by_tx(inv: Invocation) -> Result:
        tx_id = inv.args[2].decode()
        if tx_id in ("tx-refund", "tx-accept", "tx-other"):
            return Result(payload=real.SerializeToString())
        raise ChaincodeFailure(500, f"Failed to get block for txID {tx_id}, error no such "
                                    f"transaction ID [{tx_id}] in index")

    @peer.function("GetChainInfo")
    def _chain_info(inv: Invocation) -> Result:  # no block to read: the scan finds nothing
        return Result(payload=ledger_pb2.BlockchainInfo(height=0).SerializeToString())

    def side(coll: str, key: str, value: bytes, writer: str, claim: str) -> dict[str, object]:
        return {"collection": coll, "key": key, "value_hash": hashlib.sha256(value).hexdigest(),
                "writer": writer, "claimed_tx_id": claim}

    claims = {"accept": "tx-accept", "refund": "tx-refund"}
    asked: list[object] = []

    def obligations(invocation: Invocation) -> Result:
        request = json.loads(invocation.transient["request"])
        asked.append(request.get("ledger_order"))
        disputes = [] if "ledger_order" in request else [{
            "transfer_id": "t" * 24,
            "accept": side(dec_coll, "dec/" + "t" * 24, accept_bytes, "usbank", claims["accept"]),
            "refund": side(ref_coll, "refund/" + "t" * 24, refund_bytes, "hkbank",
                           claims["refund"])}]
        return Result(payload=json.dumps({"done": True, "cursor": None, "banks": [],
                                          "obligations": [], "net": {}, "anomalies": {},
                                          "disputes": disputes}).encode())

    peer.function("get_obligations")(obligations)
    result = await bank.obligations("usbank")
    assert result.disputes == ()
    assert result.anomaly_records == ()
    assert asked == [None, {hashlib.sha256(accept_bytes).hexdigest(): [7, 1],
                            hashlib.sha256(refund_bytes).hexdigest(): [7, 0]}]
    # The payer claims an earlier transaction for its refund, then a made-up one: neither
    # verifies; only the accept's position is sent, and the refund is named.
    for claim in ("tx-other", "not-a-transaction"):
        claims["refund"] = claim
        asked.clear()
        result = await bank.obligations("usbank")
        assert asked == [None, {hashlib.sha256(accept_bytes).hexdigest(): [7, 1]}]
        (anomaly,) = result.anomaly_records
        assert (anomaly.writers, anomaly.collection, anomaly.what) == (
            ("hkbank",), ref_coll, "unverified_position")
        assert result.anomalies == {f"hkbank/{ref_coll}/unverified_position": 1}


async def test_accept_keeps_the_exposure_cap_unless_forced(
    bank: Bank, peer: SdkPeer, recorded: list[Invocation]
) -> None:
    tid = "t" * 32

    def get_transfer(invocation: Invocation) -> Result:
        return Result(payload=json.dumps({"status": "pending", "transfer": {
            "transfer_id": tid, "payer_bank": "usbank", "payee_bank": "hkbank",
            "payee_account": ACCOUNT, "amount": 5_000, "currency": "USD"}}).encode())

    def obligations(invocation: Invocation) -> Result:
        return Result(payload=json.dumps({"done": True, "cursor": None, "obligations": [{
            "debtor": "usbank", "creditor": "hkbank", "currency": "USD", "accepted": 7_000,
            "settled": 0, "disputed": 0, "owed": 7_000, "cap": 10_000, "headroom": 3_000}],
            "net": {"USD": -7_000}, "anomalies": {}, "disputes": []}).encode())

    peer.function("get_transfer")(get_transfer)
    peer.function("get_obligations")(obligations)
    with pytest.raises(ExposureCapExceeded) as refused:
        await bank.accept(tid, "usbank")
    assert recorded == []  # nothing sent
    assert (refused.value.payer_bank, refused.value.headroom) == ("usbank",
                                                                  bank.money("30.00 USD"))
    await bank.accept(tid, "usbank", force=True)
    assert [sent(c)[0] for c in recorded] == ["accept_transfer"]
    # hkbank's own view as a payer toward usbank: usbank set no cap on it
    assert await bank.headroom("usbank", "USD") is None
    assert (await bank.obligations("usbank")).headroom("usbank", "USD") == bank.money(
        "30.00 USD")
    await bank.set_exposure_cap("usbank", bank.money("100.00 USD"))
    assert sent(recorded[-1]) == ("set_exposure_cap", {"debtor_bank": "usbank",
                                                       "currency": "USD", "cap": 10_000},
                                  ["HarbourBankMSP"])
    with pytest.raises(UsageError):
        await bank.set_exposure_cap("usbank", 10_000)  # type: ignore[arg-type]


async def test_a_quote_is_offered_at_an_exact_ratio_and_paid_with_by_its_id(
    bank: Bank, peer: SdkPeer,
) -> None:
    """``offer_quote`` sends the rate as an exact ratio of integers (never a float) and reads
    the quote back; ``pay_with_quote`` sends the quote's id and amount, nothing else of it."""
    calls: list[Invocation] = []

    def record(invocation: Invocation) -> Result:
        calls.append(invocation)
        return Result(payload=json.dumps({"tx_id": invocation.transaction_id}).encode())

    def get_quote(invocation: Invocation) -> Result:
        asked = json.loads(invocation.transient["request"])
        quote = {"quote_id": asked["quote_id"], "payee_bank": asked["payee_bank"],
                 "payer_bank": asked["payer_bank"], "from_currency": "USD",
                 "to_currency": "HKD", "amount": 1250, "payee_amount": 9744,
                 "rate_numerator": 15591, "rate_denominator": 2000, "rounding": "payee",
                 "valid_from": "2025-01-06T09:00:00.000000Z",
                 "valid_until": "2025-01-06T09:10:00.000000Z",
                 "accept_until": "2025-01-06T10:10:00.000000Z", "tx_id": "t"}
        return Result(payload=json.dumps({"quote": quote}).encode())

    peer.function("offer_quote")(record)
    peer.function("pay_with_quote")(record)
    peer.function("get_quote")(get_quote)
    with pytest.raises(UsageError, match="exact"):
        await bank.offer_quote("usbank", bank.money("12.50 USD"), "HKD", 7.7955,  # type: ignore[arg-type]
                               reference="fx-0")
    with pytest.raises(UsageError, match="positive"):
        await bank.offer_quote("usbank", bank.money("12.50 USD"), "HKD", "-1",
                               reference="fx-0")
    assert calls == []
    quote = await bank.offer_quote("usbank", bank.money("12.50 USD"), "HKD", "7.7955",
                                   reference="fx-1", rounding="payee")
    name, request, endorsers = sent(calls[0])
    assert (name, endorsers) == ("offer_quote", ["HarbourBankMSP"])
    assert request == {"quote_id": quote.quote_id, "payer_bank": "usbank",
                       "from_currency": "USD", "to_currency": "HKD", "amount": 1250,
                       "rate_numerator": 15591, "rate_denominator": 2000, "rounding": "payee"}
    assert ID_RE.fullmatch(quote.quote_id)
    assert str(quote.rate) == "15591/2000"
    assert quote.payee_amount == bank.money("97.44 HKD")
    with pytest.raises(UsageError, match="another payer bank"):  # hkbank is not its payer
        await bank.pay_with_quote(ACCOUNT, "x" * 22, quote, reference="po-1")
    mine = replace(quote, payer_bank="hkbank", payee_bank="usbank")
    payment = await bank.pay_with_quote(ACCOUNT, "x" * 22, mine, reference="po-1")
    name, request, _ = sent(calls[1])
    assert name == "pay_with_quote"
    assert request == {"reference": "po-1", "payer_account": ACCOUNT, "payee_bank": "usbank",
                       "payee_account": "x" * 22, "amount": 1250, "quote_id": quote.quote_id,
                       "transfer_id": payment.transfer_id}


@pytest.mark.parametrize("layout", ["single", "namespaces"])
async def test_expire_lock_goes_to_the_pair_namespace_under_the_layout(
    server: Server, peer: SdkPeer, tmp_path: Path, layout: str,
) -> None:
    """expire_lock is endorsed by the payer's and the regulator's peers over one proposal:
    on one namespace it goes to the contract; under the layout to the pair namespace holding
    ``pair-hkbank-usbank`` (both peers run the storage chaincode there), never to the bank's
    own namespace, which only the bank's peer runs."""
    path = write_profile(tmp_path / "state")
    data = json.loads(path.read_text())
    if layout == "namespaces":
        data.update(namespace_layout="namespaces", chaincode="dtoken-hkbank")
    path.write_text(json.dumps(data))
    calls: list[Invocation] = []

    @peer.function("expire_lock")
    def record(invocation: Invocation) -> Result:
        calls.append(invocation)
        return Result(payload=json.dumps({"tx_id": invocation.transaction_id}).encode())

    async with grpc.aio.insecure_channel(server.address) as channel:
        bank = Bank(Profile.load(path), channel, identity="minter", policy=FAST)
        await bank.expire_lock("t" * 22, "usbank")
    (call,) = calls
    name, request, endorsers = sent(call)
    assert (name, endorsers) == ("expire_lock", ["HarbourBankMSP", "RegulatorMSP"])
    assert request == {"transfer_id": "t" * 22, "payer_bank": "hkbank", "payee_bank": "usbank"}
    assert call.chaincode == ("dtoken" if layout == "single" else "dtoken-pairs-usbank-0")
