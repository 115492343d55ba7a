"""The namespace layout's own surface: routing, the storage chaincode, and the dishonest bank
that calls it directly or through it writes a collection it does not own."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from deposit_token import errors as e
from deposit_token.records import Transfer, encode
from deposit_token.routing import Router, StorageError
from deposit_token.storage import PairStorageChaincode
from fabshim import Response
from fabshim.errors import EndorsementPolicyFailureError
from fabshim.testing import MemoryLedger
from unit.deposit_token.dt_harness import Net, all_writes, ids, msp_of, namespace_of

LAYOUT_ONLY = True
HK, US, CN = "hkbank", "usbank", "cnbank"
BANKS = [HK, US, CN]


@pytest.fixture
async def net() -> Net:
    n = Net(layout=True)
    await n.init()
    return n


async def funded(net: Net, bank: str, name: str, amount: int) -> str:
    (acc,) = ids(name, 1)
    await net.open(bank, "USD", acc)
    if amount:
        await net.mint(bank, acc, amount, f"dep-{name}")
    return acc


def test_router_places_every_collection_and_keeps_banks_apart() -> None:
    r = Router("dtoken-hkbank", lambda: BANKS)
    assert r.remote("acct-hkbank") is None
    assert r.remote("holds-hkbank") is None
    assert r.remote("pair-hkbank-usbank") == "dtoken-pairs-usbank-0"
    assert r.remote("pair-cnbank-hkbank") == "dtoken-pairs-cnbank-0"
    with pytest.raises(StorageError, match="out of reach"):
        r.remote("acct-usbank")
    with pytest.raises(StorageError, match="no place in the layout"):
        r.remote("pair-hkbank-nobank")
    regulator = Router("dtoken-regulator", lambda: BANKS)
    assert regulator.remote("acct-usbank") == "dtoken-usbank"
    assert regulator.remote("holds-cnbank") == "dtoken-cnbank"


async def test_intra_bank_work_never_touches_a_pair_namespace(net: Net) -> None:
    a = await funded(net, HK, "intra-a", 5_000)
    b = await funded(net, HK, "intra-b", 0)
    sub = await net.prepare(HK, "transfer", {"reference": "in-1", "from_account": a,
                                             "to_account": b, "amount": 700})
    assert sub.stub._all_children() == []
    assert {c for c, _ in sub.writes} == {"acct-hkbank"}


async def test_a_cross_bank_transfer_writes_its_pair_in_one_storage_call(net: Net) -> None:
    payer = await funded(net, HK, "xb-pay", 5_000)
    payee = await funded(net, US, "xb-rcv", 0)
    sub = await net.prepare(HK, "initiate_transfer", {
        "reference": "xb-1", "payer_account": payer, "payee_bank": US,
        "payee_account": payee, "amount": 900})
    writers = [c for c in sub.stub._all_children() if c.writes]
    assert len(writers) == 1  # every pair write of the transaction in one call
    assert {c for c, _ in writers[0].writes} == {"pair-hkbank-usbank"}
    assert {c for c, _ in sub.stub.writes} == {"acct-hkbank"}
    sub.commit()
    tid = str((await net.evaluate(HK, "get_reference", {"reference": "xb-1"}))["ids"][0])
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    assert await net.balance(US, payee) == 900


async def test_storage_refuses_a_top_level_call() -> None:
    ledger = MemoryLedger()
    response = await ledger.invoke(
        PairStorageChaincode(), "write",
        json.dumps({"ops": [["pair-hkbank-usbank", "xfer/x", "AA==", None]]}),
        chaincode_name="dtoken-pairs-usbank-0", endorsers=[msp_of(HK)])
    assert response.is_error
    assert response.message.startswith("NOT_AUTHORIZED:")
    assert ledger.keys("pair-hkbank-usbank") == []


@pytest.mark.parametrize("case", ["no_msp", "no_request", "bad_request", "no_identity",
                                  "extra_argument"])
async def test_the_top_level_expiry_refuses_bad_input_naming_it(case: str) -> None:
    """The one top-level function of a pair namespace (PvP's ``expire_lock``) refuses what
    it cannot run, with a stable code naming what is wrong, and writes nothing."""
    ledger = MemoryLedger()
    request = {"transfer_id": "t" * 22, "payer_bank": HK, "payee_bank": US}
    transient = {"request": json.dumps(request).encode()}
    storage = PairStorageChaincode(msp_of(HK), lambda _: Net.caller(HK))
    args: list[str] = []
    expected = "INVALID_STATE:"  # all present: the lock does not exist here
    if case == "no_msp":
        storage = PairStorageChaincode("", lambda _: Net.caller(HK))
        expected = "SERVER_MISCONFIGURED:"
    elif case == "no_request":
        transient, expected = {}, "INVALID_ARGUMENT: the transient map has no 'request'"
    elif case == "bad_request":
        request["payee_bank"] = "No Such Bank!"
        transient = {"request": json.dumps(request).encode()}
        expected = "INVALID_ARGUMENT:"
    elif case == "no_identity":
        storage, expected = PairStorageChaincode(msp_of(HK)), "NOT_AUTHORIZED: the client identity"
    elif case == "extra_argument":
        args, expected = ["{}"], "NOT_AUTHORIZED:"
    response = await ledger.invoke(storage, "expire_lock", *args, transient=transient,
                                   chaincode_name="dtoken-pairs-usbank-0",
                                   endorsers=[msp_of(HK)])
    assert response.is_error
    assert response.message.startswith(expected), response.message
    assert ledger.keys("pair-hkbank-usbank") == []


def _forged_op(collection: str) -> list[object]:
    t = Transfer(transfer_id="f" * 32, payer_bank=US, payee_bank=HK, payee_account="x" * 24,
                 amount=10**6, currency="USD", created_at="2025-01-06T09:00:00.000000Z",
                 expires_at="2025-01-07T09:00:00.000000Z", originator={}, remittance="",
                 tx_id="0" * 64)
    return [collection, "xfer/" + "f" * 32, base64.b64encode(encode(t, "5" * 32)).decode(),
            None]


async def _storage_write(net: Net, top_level: str, endorser: str, collection: str) -> None:
    """A modified server of ``endorser`` writes ``collection`` through the pair storage,
    its transaction starting in ``top_level``; the commit decides."""
    stub = net.ledger.stub(tx_id=net.ledger.new_tx_id(), timestamp=net.now,
                           endorsers=[msp_of(endorser)], chaincode_name=top_level)
    await stub.invoke_chaincode("dtoken-pairs-usbank-0",
                                ["write", json.dumps({"ops": [_forged_op(collection)]})])
    assert all_writes(stub)  # the storage wrote it: only validation can stop it
    stub.commit()


class _NoRefusal:
    """A modified storage server that answers a top-level call as if it were called."""

    def __init__(self) -> None:
        self.inner = PairStorageChaincode()

    async def init(self, stub: Any) -> Response:
        return await self.inner.init(stub)

    async def invoke(self, stub: Any) -> Response:
        class Renamed:
            chaincode_name = "dtoken-cnbank"

            def __getattr__(self, name: str) -> Any:
                return getattr(stub, name)

        return await self.inner.invoke(Renamed())  # type: ignore[arg-type]


async def test_a_bank_writing_another_banks_pair_through_storage_is_invalidated(
    net: Net,
) -> None:
    # hkbank's server asserts, in usbank's name, a transfer usbank never made
    with pytest.raises(EndorsementPolicyFailureError, match="collection's policy"):
        await _storage_write(net, namespace_of(HK), HK, "pair-usbank-hkbank")
    assert net.ledger.keys("pair-usbank-hkbank") == []


async def test_a_bank_writing_another_pair_at_the_top_level_is_invalidated(net: Net) -> None:
    # the same write, with the pair namespace called at the top level by cnbank's client and
    # served by cnbank's storage server, modified not to refuse it
    with pytest.raises(EndorsementPolicyFailureError, match="collection's policy"):
        await net.ledger.invoke(
            _NoRefusal(), "write", json.dumps({"ops": [_forged_op("pair-usbank-hkbank")]}),
            chaincode_name="dtoken-pairs-usbank-0", endorsers=[msp_of(CN)])
    assert net.ledger.keys("pair-usbank-hkbank") == []


async def test_a_storage_failure_fails_the_whole_transaction(net: Net) -> None:
    payer = await funded(net, HK, "sf-pay", 5_000)
    payee = await funded(net, US, "sf-rcv", 0)

    class Broken:
        async def init(self, stub: object) -> object:
            raise AssertionError

        async def invoke(self, stub: object) -> object:
            from fabshim.response import error
            return error("INTERNAL: disk full")

    net.ledger.register_chaincode("dtoken-pairs-usbank-0", Broken(), net.ledger)
    with pytest.raises(Exception, match="INTERNAL: the pair storage dtoken-pairs-usbank-0"):
        await net.prepare(HK, "initiate_transfer", {
            "reference": "sf-1", "payer_account": payer, "payee_bank": US,
            "payee_account": payee, "amount": 900})
    assert await net.balance(HK, payer) == 5_000


async def test_the_regulator_reaches_every_bank_from_its_own_namespace(net: Net) -> None:
    acc = await funded(net, US, "reg-acc", 3_000)
    sub = await net.prepare("regulator", "set_hold", {
        "bank": US, "account_id": acc, "held_amount": 1_000, "reason": "court order"})
    assert {c for c, _ in sub.writes} == {"holds-usbank"}
    assert sub.stub.chaincode_name == "dtoken-regulator"
    sub.commit()
    with pytest.raises(e.InsufficientFunds):
        await net.submit(US, "burn", {"reference": "burn-1", "account_id": acc,
                                      "amount": 2_500}, caller=Net.caller(US, "minter"))
    audit = await net.audit()
    assert audit["ok"], audit["failures"]
