"""Every transaction of the deposit-token contract, and every refusal code, over MemoryLedger.

The harness (``dt_harness``) checks on every submit: identical write sets on two endorsers,
collection policies satisfied by the serving organization alone, nothing written by a
refusal, no private value in what reaches the block.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from deposit_token import errors as e
from deposit_token.config import ServerSettings
from deposit_token.keys import ACCOUNT_ID_RE, TAG_RE
from deposit_token.operations import EVENT_DECIDED, EVENT_PENDING, Caller
from deposit_token.service import Service
from fabshim.statebased import all_of_policy
from fabshim.stub import VALIDATION_PARAMETER
from unit.deposit_token.dt_harness import (
    BANKS,
    REGULATOR,
    Net,
    account_keys,
    ids,
    init_payload,
    registry_pin,
    secret_of,
)

HK, US, CN = "hkbank", "usbank", "cnbank"


@pytest.fixture
async def net() -> Net:
    n = Net()
    await n.init()
    return n


async def funded(net: Net, bank: str = HK, cur: str = "USD", amount: int = 10_000,
                 tag: str = "pay") -> str:
    (acc,) = ids(f"{bank[:2]}{tag}", 1)
    await net.open(bank, cur, acc)
    if amount:
        await net.mint(bank, acc, amount, f"dep-{acc}")
    return acc


# --------------------------------------------------------------------------- init / registry


async def test_init_network_writes_registry_and_tokens_once() -> None:
    net = Net()
    with pytest.raises(e.NotInitialized):
        await net.evaluate(HK, "get_registry")
    await net.init()
    reg = await net.evaluate(US, "get_registry")
    assert [b["name"] for b in reg["banks"]] == sorted(BANKS)
    assert reg["regulator_msp_id"] == REGULATOR
    assert {(t["issuer"], t["currency"]) for t in reg["tokens"]} == {
        (HK, "HKD"), (HK, "USD"), (US, "USD"), (CN, "CNH"), (CN, "USD")}
    assert net.ledger.get_state("token/hkbank/HKD") is not None
    with pytest.raises(e.AlreadyInitialized):
        await net.submit(HK, "init_network", argument=net.agreed)
    # Who may not initialize learns nothing more afterwards: refused as before.
    with pytest.raises(e.NotAuthorized):
        await net.submit(HK, "init_network", argument="{}")
    with pytest.raises(e.NotAuthorized):
        await net.submit(US, "init_network", argument=net.agreed, caller=net.caller(US))


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[]",
        json.dumps({"banks": [], "currencies": {"USD": 2}}),
        json.dumps({"banks": [{"name": "Bad-Name", "msp_id": "X", "currencies": ["USD"]}],
                    "currencies": {"USD": 2}}),
        json.dumps({"banks": [{"name": "hkbank", "msp_id": "HarbourBankMSP",
                               "currencies": ["EUR"]}], "currencies": {"USD": 2}}),
        json.dumps({"banks": [{"name": "hkbank", "msp_id": "HarbourBankMSP",
                               "currencies": ["USD"]}], "currencies": {"USD": 2.5}}),
        json.dumps({"banks": [{"name": "hkbank", "msp_id": "HarbourBankMSP",
                               "currencies": ["USD"]}], "currencies": {"USD": 2},
                    "regulator_msp_id": "HarbourBankMSP"}),
        json.dumps({"banks": [{"name": "hkbank", "msp_id": "HarbourBankMSP",
                               "currencies": ["USD"]}], "currencies": {"USD": 2}, "x": 1}),
    ],
)
async def test_init_network_refuses_a_bad_registry(payload: str) -> None:
    # Even one every operator pinned: the hash says it was agreed, not that it is sound.
    net = Net(agreed=payload)
    with pytest.raises(e.InvalidArgument):
        await net.submit(HK, "init_network", argument=payload)


async def test_init_network_refused_by_a_server_or_client_outside_the_registry() -> None:
    only_us = json.dumps({"banks": [{"name": "usbank", "msp_id": "LibertyBankMSP",
                                     "currencies": ["USD"]}], "currencies": {"USD": 2}})
    net = Net(agreed=only_us)
    with pytest.raises(e.WrongEndorser):
        await net.submit(HK, "init_network", argument=only_us)
    with pytest.raises(e.NotAuthorized):
        await net.submit(US, "init_network", argument=only_us,
                         caller=Caller("OtherMSP", admin=True))


async def test_init_network_racing_client_without_a_role_is_refused() -> None:
    # A client of another organization (no role, not an admin) races the bootstrap with a
    # registry of its own, one without a regulator: every bank's server refuses it.
    net = Net()
    rogue = init_payload(regulator=False)
    for bank in BANKS:
        with pytest.raises(e.NotAuthorized, match=r"^NOT_AUTHORIZED: .*administrator"):
            await net.submit(bank, "init_network", argument=rogue, caller=Caller("OtherMSP"))
        with pytest.raises(e.NotAuthorized, match="administrator"):
            await net.submit(bank, "init_network", argument=rogue, caller=Caller(BANKS[bank][0]))
    assert net.ledger.get_state("registry") is None


async def test_init_network_needs_an_admin_not_a_role() -> None:
    net = Net()
    # A bank's operator with every role, but no admin NodeOU, even with the agreed registry.
    with pytest.raises(e.NotAuthorized, match="administrator"):
        await net.submit(HK, "init_network", argument=net.agreed, caller=net.caller(HK))
    assert net.ledger.get_state("registry") is None
    await net.submit(HK, "init_network", argument=net.agreed, caller=Net.admin(HK))
    assert net.ledger.get_state("registry") is not None


async def test_init_network_refuses_a_registry_other_than_the_pinned_one() -> None:
    net = Net()
    for other in (init_payload(regulator=False),
                  # the agreed registry, but other bytes (re-serialized): the pin is of bytes
                  json.dumps(json.loads(init_payload()), indent=1)):
        for bank in BANKS:
            with pytest.raises(e.NotAuthorized, match="agreed") as info:
                await net.submit(bank, "init_network", argument=other, caller=Net.admin(bank))
            assert registry_pin(other) not in str(info.value)
    assert net.ledger.get_state("registry") is None


async def test_init_network_refused_by_a_server_without_a_pin() -> None:
    net = Net()
    net.services[HK] = Service(ServerSettings(BANKS[HK][0], secret_of(BANKS[HK][0])))
    with pytest.raises(e.ServerMisconfigured, match="pin"):
        await net.submit(HK, "init_network", argument=net.agreed, caller=Net.admin(HK))
    assert net.ledger.get_state("registry") is None
    # The other servers serve every other transaction as before.
    with pytest.raises(e.NotInitialized):
        await net.evaluate(US, "get_registry")


# --------------------------------------------------------------------------- accounts


async def test_open_account_and_read_it(net: Net) -> None:
    (acc,) = ids("open", 1)
    await net.open(HK, "HKD", acc, limits={"single_payment": 500, "daily_outflow": 900})
    got = await net.evaluate(HK, "get_account", {"account_id": acc})
    assert got["balance"] == 0
    assert got["status"] == "active"
    assert got["currency"] == "HKD"
    assert got["limits"] == {"single_payment": 500, "daily_outflow": 900}
    assert got["owner_ref"].startswith("CIF-")
    # the regulator reads it too, naming the bank
    reg = await net.evaluate("regulator", "get_account", {"account_id": acc, "bank": HK},
                             caller=Net.caller("regulator", "auditor"))
    assert reg["balance"] == 0
    ref = await net.evaluate(HK, "get_reference", {"reference": f"open-{acc}"})
    assert ref["kind"] == "open_account"
    assert ref["ids"] == [acc]


async def test_open_account_derives_an_id_when_the_client_gives_none(net: Net) -> None:
    await net.submit(HK, "open_account", {"reference": "r-derived", "currency": "USD",
                                          "owner_ref": "CIF-9"})
    ref = await net.evaluate(HK, "get_reference", {"reference": "r-derived"})
    (acc,) = ref["ids"]
    assert TAG_RE.fullmatch(acc)
    assert ACCOUNT_ID_RE.fullmatch(acc)
    assert (await net.evaluate(HK, "get_account", {"account_id": acc}))["currency"] == "USD"


async def test_open_account_refusals(net: Net) -> None:
    (acc,) = ids("dup", 1)
    await net.open(HK, "USD", acc)
    with pytest.raises(e.DuplicateReference):
        await net.open(HK, "USD", acc)
    with pytest.raises(e.AlreadyExists):
        await net.submit(HK, "open_account", {"reference": "fresh", "account_id": acc,
                                              "currency": "USD", "owner_ref": "x"})
    with pytest.raises(e.CurrencyMismatch):  # usbank issues no HKD
        await net.submit(US, "open_account", {"reference": "r", "currency": "HKD",
                                              "owner_ref": "x"})
    with pytest.raises(e.InvalidArgument):  # guessable account id
        await net.submit(HK, "open_account", {"reference": "r2", "account_id": "EXP-0001",
                                              "currency": "USD", "owner_ref": "x"})
    with pytest.raises(e.InvalidArgument):  # missing transient request
        await net.submit(HK, "open_account", None)
    with pytest.raises(e.InvalidArgument):  # unknown field
        await net.submit(HK, "open_account", {"reference": "r3", "currency": "USD",
                                              "owner_ref": "x", "balance": 5})


async def test_roles_and_organizations_are_checked(net: Net) -> None:
    req = {"reference": "r", "currency": "USD", "owner_ref": "x"}
    with pytest.raises(e.NotAuthorized, match="operator"):
        await net.submit(HK, "open_account", req, caller=Net.caller(HK, "minter"))
    with pytest.raises(e.WrongEndorser):  # a usbank client on hkbank's server
        await net.submit(HK, "open_account", req, caller=Net.caller(US))
    with pytest.raises(e.NotAuthorized):  # a stranger
        await net.submit(HK, "open_account", req, caller=Caller("StrangerMSP",
                                                                 frozenset({"operator"})))
    with pytest.raises(e.WrongEndorser):  # the regulator's server does not serve a bank
        await net.submit("regulator", "open_account", req, caller=Net.caller("regulator"))
    acc = await funded(net)
    with pytest.raises(e.NotAuthorized, match="minter"):
        await net.submit(HK, "mint", {"reference": "m", "account_id": acc, "amount": 1},
                         caller=Net.caller(HK, "operator"))
    with pytest.raises(e.NotAuthorized):  # reads need a role
        await net.evaluate(HK, "get_account", {"account_id": acc}, caller=Caller(BANKS[HK][0]))
    with pytest.raises(e.NotAuthorized):  # another bank cannot read it
        await net.evaluate(HK, "get_account", {"account_id": acc, "bank": HK},
                           caller=Net.caller(US))
    with pytest.raises(e.WrongEndorser):  # usbank's peer is no member of acct-hkbank
        await net.evaluate(US, "get_account", {"account_id": acc, "bank": HK},
                           caller=Net.caller("regulator", "auditor"))
    with pytest.raises(e.NotAuthorized):  # the regulator needs the auditor role
        await net.evaluate("regulator", "get_account", {"account_id": acc, "bank": HK},
                           caller=Net.caller("regulator", "operator"))


async def test_status_transitions(net: Net) -> None:
    acc = await funded(net, amount=100)
    (other,) = ids("stat2", 1)
    await net.open(HK, "USD", other)
    st = {"account_id": acc}
    await net.submit(HK, "set_account_status", {**st, "status": "frozen"})
    with pytest.raises(e.AccountFrozen):
        await net.submit(HK, "transfer", {"reference": "t1", "from_account": acc,
                                          "to_account": other, "amount": 1})
    with pytest.raises(e.AccountFrozen):  # nor can it be credited
        await net.mint(HK, acc, 5, "m-frozen")
    with pytest.raises(e.InvalidState):
        await net.submit(HK, "set_account_status", {**st, "status": "frozen"})
    await net.submit(HK, "set_account_status", {**st, "status": "active"})
    with pytest.raises(e.InvalidState, match="zero balance"):
        await net.submit(HK, "set_account_status", {**st, "status": "closed"})
    await net.submit(HK, "burn", {"reference": "b", "account_id": acc, "amount": 100},
                     caller=Net.caller(HK, "minter"))
    await net.submit(HK, "set_account_status", {**st, "status": "closed"})
    with pytest.raises(e.InvalidState):
        await net.submit(HK, "set_account_status", {**st, "status": "active"})
    with pytest.raises(e.AccountClosed):
        await net.mint(HK, acc, 5, "m-closed")
    with pytest.raises(e.AccountClosed):
        await net.submit(HK, "set_account_limits", {**st, "single_payment": 5})
    with pytest.raises(e.NotFound):
        await net.submit(HK, "set_account_status", {"account_id": ids("nope", 1)[0],
                                                    "status": "frozen"})
    hist = await net.evaluate(HK, "get_history", st)
    kinds = [r["kind"] for r in hist["records"]]
    assert kinds == ["opened", "mint", "status", "status", "burn", "status"]
    assert [r["seq"] for r in hist["records"]] == list(range(6))


async def test_limits_single_payment_and_daily_outflow_by_transaction_date(net: Net) -> None:
    acc = await funded(net, amount=10_000)
    (to,) = ids("lim2", 1)
    await net.open(HK, "USD", to)
    await net.submit(HK, "set_account_limits", {"account_id": acc, "single_payment": 300,
                                                "daily_outflow": 500})

    def pay(ref: str, amount: int) -> dict[str, Any]:
        return {"reference": ref, "from_account": acc, "to_account": to, "amount": amount}

    with pytest.raises(e.LimitExceeded, match="single-payment"):
        await net.submit(HK, "transfer", pay("l0", 301))
    await net.submit(HK, "transfer", pay("l1", 300))
    await net.submit(HK, "transfer", pay("l2", 200))
    with pytest.raises(e.LimitExceeded, match="daily"):
        await net.submit(HK, "transfer", pay("l3", 1))
    got = await net.evaluate(HK, "get_account", {"account_id": acc})
    assert got["outflow_today"] == 500
    net.advance(hours=15)  # 2025-01-07 00:00 UTC: a new day by the transaction timestamp
    await net.submit(HK, "transfer", pay("l4", 300))
    # a burn (redemption) is not a payment: no limits
    await net.submit(HK, "burn", {"reference": "b", "account_id": acc, "amount": 1000},
                     caller=Net.caller(HK, "minter"))
    assert await net.balance(HK, acc) == 10_000 - 800 - 1000


# --------------------------------------------------------------------------- money in a bank


async def test_mint_burn_transfer_and_supply(net: Net) -> None:
    acc = await funded(net, amount=10_000)
    (to,) = ids("mbt2", 1)
    await net.open(HK, "USD", to)
    await net.submit(HK, "transfer", {"reference": "t", "from_account": acc, "to_account": to,
                                      "amount": 2_500})
    await net.submit(HK, "burn", {"reference": "b", "account_id": to, "amount": 500},
                     caller=Net.caller(HK, "minter"))
    assert await net.balance(HK, acc) == 7_500
    assert await net.balance(HK, to) == 2_000
    sup = await net.evaluate(HK, "get_supply", {"currency": "USD", "page_size": 2})
    while not sup["done"]:
        sup = await net.evaluate(HK, "get_supply", {"currency": "USD", "page_size": 2,
                                                    "cursor": sup["cursor"]})
    assert sup["supply"] == 9_500
    # A transfer within the bank changes no supply and writes no supply record.
    assert sup["by_kind"] == {"mint": 10_000, "burn": 500}
    reg = await net.evaluate("regulator", "get_supply", {"currency": "USD", "bank": HK},
                             caller=Net.caller("regulator", "auditor"))
    assert reg["supply"] == 9_500
    with pytest.raises(e.NotFound):
        await net.evaluate(US, "get_supply", {"currency": "HKD"})


async def test_money_refusals(net: Net) -> None:
    acc = await funded(net, amount=100)
    (to,) = ids("mr2", 1)
    (hkd,) = ids("mrhkd", 1)
    await net.open(HK, "USD", to)
    await net.open(HK, "HKD", hkd)
    with pytest.raises(e.InsufficientFunds):
        await net.submit(HK, "transfer", {"reference": "x1", "from_account": acc,
                                          "to_account": to, "amount": 101})
    with pytest.raises(e.InsufficientFunds):
        await net.submit(HK, "burn", {"reference": "x2", "account_id": acc, "amount": 101},
                         caller=Net.caller(HK, "minter"))
    with pytest.raises(e.CurrencyMismatch):
        await net.submit(HK, "transfer", {"reference": "x3", "from_account": acc,
                                          "to_account": hkd, "amount": 1})
    for bad in (0, -5, 1.5, "10", True, 2**63):
        with pytest.raises(e.InvalidAmount):
            await net.submit(HK, "mint", {"reference": "x4", "account_id": acc, "amount": bad},
                             caller=Net.caller(HK, "minter"))
    with pytest.raises(e.InvalidArgument):
        await net.submit(HK, "transfer", {"reference": "x5", "from_account": acc,
                                          "to_account": acc, "amount": 1})
    with pytest.raises(e.NotFound):
        await net.submit(HK, "transfer", {"reference": "x6", "from_account": acc,
                                          "to_account": ids("ghost", 1)[0], "amount": 1})
    await net.mint(HK, acc, 1, "once")
    with pytest.raises(e.DuplicateReference):
        await net.mint(HK, acc, 1, "once")
    with pytest.raises(e.InvalidAmount):  # a balance above 2**63-1
        await net.mint(HK, acc, 2**63 - 1, "huge")
    assert await net.balance(HK, acc) == 101


# --------------------------------------------------------------------------- across banks


async def test_cross_bank_accept(net: Net) -> None:
    payer = await funded(net, HK, "USD", 10_000)
    payee = await funded(net, US, "USD", 0, tag="rcv")
    sub = await net.prepare(HK, "initiate_transfer", {
        "reference": "inv-1", "payer_account": payer, "payee_bank": US, "payee_account": payee,
        "amount": 2_500, "originator": {"name": "Kowloon Exporters"}})
    assert sub.result == {"tx_id": sub.stub.tx_id}
    # the banks it waits on, and the time its transfers' ``open/`` entry carries (the
    # block's header shows it anyway): no id, amount or account
    at = sub.stub.event[1].split(b'"at":"')[1].split(b'"')[0].decode()
    assert sub.stub.event == (
        EVENT_PENDING, b'{"at":"' + at.encode() + b'","payee_banks":["usbank"]}')
    assert [k for c, k in sub.writes if k.startswith("open/")] == [
        f"open/{at}/{k.split('/')[1]}" for c, k in sub.writes if k.startswith("xfer/")]
    assert {c for c, _ in sub.writes} == {"acct-hkbank", "pair-hkbank-usbank"}
    sub.commit()
    (tid,) = (await net.evaluate(HK, "get_reference", {"reference": "inv-1"}))["ids"]
    assert await net.balance(HK, payer) == 7_500
    incoming = await net.evaluate(US, "get_pending", {"direction": "incoming"})
    assert [t["transfer"]["transfer_id"] for t in incoming["transfers"]] == [tid]
    assert incoming["transfers"][0]["transfer"]["originator"] == {"name": "Kowloon Exporters"}
    assert "payer_account" not in incoming["transfers"][0]["transfer"]
    outgoing = await net.evaluate(HK, "get_pending", {"direction": "outgoing"})
    assert [t["status"] for t in outgoing["transfers"]] == ["pending"]
    # cnbank's server cannot read or act on it
    with pytest.raises(e.NotAuthorized):
        await net.evaluate(HK, "get_transfer", {"transfer_id": tid, "payer_bank": HK,
                                                "payee_bank": US}, caller=Net.caller(CN))
    acc = await net.prepare(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    assert acc.stub.event == (EVENT_DECIDED, b'{"payer_bank":"hkbank"}')
    assert {c for c, _ in acc.writes} == {"acct-usbank", "pair-usbank-hkbank"}
    acc.commit()
    assert await net.balance(US, payee) == 2_500
    got = await net.evaluate(US, "get_transfer", {"transfer_id": tid, "payer_bank": HK,
                                                  "payee_bank": US})
    assert got["status"] == "accepted"
    assert got["refund"] is None
    with pytest.raises(e.InvalidState):
        await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    with pytest.raises(e.InvalidState):
        await net.submit(US, "reject_transfer", {"transfer_id": tid, "payer_bank": HK})
    net.advance(days=2)
    with pytest.raises(e.InvalidState, match="accepted"):
        await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": US})
    hist = await net.evaluate(US, "get_history", {"account_id": payee})
    assert hist["records"][-1]["kind"] == "payment_in"
    assert hist["records"][-1]["transfer_id"] == tid
    assert (await net.evaluate(US, "get_pending", {"direction": "incoming"}))["transfers"] == []


async def test_cross_bank_reject_then_refund(net: Net) -> None:
    payer = await funded(net, HK, "USD", 1_000)
    payee = await funded(net, US, "USD", 0, tag="rcv")
    tid = await net.initiate(HK, payer, US, payee, 400, "inv-2")
    with pytest.raises(e.NotExpired):
        await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": US})
    await net.submit(US, "reject_transfer", {"transfer_id": tid, "payer_bank": HK,
                                             "reason": "account closed"})
    with pytest.raises(e.InvalidState):
        await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    outgoing = await net.evaluate(HK, "get_pending", {"direction": "outgoing"})
    assert [t["status"] for t in outgoing["transfers"]] == ["rejected"]
    await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": US})
    assert await net.balance(HK, payer) == 1_000
    with pytest.raises(e.InvalidState):
        await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": US})
    got = await net.evaluate(HK, "get_transfer", {"transfer_id": tid, "payer_bank": HK,
                                                  "payee_bank": US})
    assert got["status"] == "refunded"
    assert got["refund"]["cause"] == "rejected"
    audit = await net.audit()
    assert audit["ok"], audit["failures"]


async def test_cross_bank_expiry_by_transaction_timestamp(net: Net) -> None:
    payer = await funded(net, HK, "USD", 1_000)
    payee = await funded(net, US, "USD", 0, tag="rcv")
    tid = await net.initiate(HK, payer, US, payee, 400, "inv-3", ttl_seconds=3600)
    net.advance(seconds=3599)
    with pytest.raises(e.NotExpired):
        await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": US})
    net.advance(seconds=1)
    with pytest.raises(e.Expired):
        await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    incoming = await net.evaluate(US, "get_pending", {"direction": "incoming"})
    assert [t["status"] for t in incoming["transfers"]] == ["expired"]
    await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": US})
    got = await net.evaluate(HK, "get_transfer", {"transfer_id": tid, "payer_bank": HK,
                                                  "payee_bank": US})
    assert got["refund"]["cause"] == "expired"
    with pytest.raises(e.InvalidState):  # too late to reject
        await net.submit(US, "reject_transfer", {"transfer_id": tid, "payer_bank": HK})


async def test_cross_bank_refusals(net: Net) -> None:
    payer = await funded(net, HK, "HKD", 1_000)
    usd = await funded(net, HK, "USD", 1_000, tag="usd")
    payee = await funded(net, US, "USD", 0, tag="rcv")
    base = {"reference": "r", "payer_account": usd, "payee_account": payee, "amount": 10}
    with pytest.raises(e.CurrencyMismatch):  # usbank issues no HKD
        await net.submit(HK, "initiate_transfer", {**base, "payer_account": payer,
                                                   "payee_bank": US})
    with pytest.raises(e.InvalidArgument):  # to the own bank: use transfer
        await net.submit(HK, "initiate_transfer", {**base, "payee_bank": HK})
    with pytest.raises(e.NotFound):
        await net.submit(HK, "initiate_transfer", {**base, "payee_bank": "zzbank"})
    with pytest.raises(e.InvalidArgument):
        await net.submit(HK, "initiate_transfer", {**base, "payee_bank": US,
                                                   "ttl_seconds": 10})
    tid = await net.initiate(HK, usd, US, payee, 10, "r-ok")
    with pytest.raises(e.AlreadyExists):  # a client-drawn transfer id used twice
        await net.submit(HK, "initiate_transfer", {**base, "reference": "r-again",
                                                   "payee_bank": US, "transfer_id": tid})
    with pytest.raises(e.NotFound):
        await net.submit(US, "accept_transfer", {"transfer_id": ids("nope", 1)[0],
                                                 "payer_bank": HK})
    with pytest.raises(e.NotFound):  # wrong direction: usbank did not send it
        await net.submit(HK, "accept_transfer", {"transfer_id": tid, "payer_bank": US})
    with pytest.raises(e.InvalidArgument):
        await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": US})
    with pytest.raises(e.NotFound):  # cnbank initiated no such transfer
        await net.submit(CN, "refund_transfer", {"transfer_id": tid, "payee_bank": US})
    await net.submit(US, "set_account_status", {"account_id": payee, "status": "frozen"})
    with pytest.raises(e.AccountFrozen):
        await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    await net.submit(US, "set_account_status", {"account_id": payee, "status": "active"})
    await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})


async def test_refund_lands_even_on_a_frozen_or_closed_account(net: Net) -> None:
    payer = await funded(net, HK, "USD", 400)
    payee = await funded(net, US, "USD", 0, tag="rcv")
    tid = await net.initiate(HK, payer, US, payee, 400, "inv-c")
    await net.submit(HK, "set_account_status", {"account_id": payer, "status": "closed"})
    await net.submit(US, "reject_transfer", {"transfer_id": tid, "payer_bank": HK})
    await net.submit(HK, "refund_transfer", {"transfer_id": tid, "payee_bank": US})
    assert await net.balance(HK, payer) == 400
    # a closed account's residue is redeemed by a burn
    await net.submit(HK, "burn", {"reference": "out", "account_id": payer, "amount": 400},
                     caller=Net.caller(HK, "minter"))
    assert (await net.audit())["ok"]


async def test_batch_payout_one_debit_many_payees_several_banks(net: Net) -> None:
    payer = await funded(net, HK, "USD", 100_000)
    us1, us2 = ids("bus", 2)
    cn1, hk1 = ids("bcn", 1)[0], ids("bhk", 1)[0]
    for bank, acc in ((US, us1), (US, us2), (CN, cn1), (HK, hk1)):
        await net.open(bank, "USD", acc)
    payments = [
        {"payee_bank": US, "payee_account": us1, "amount": 1_000, "remittance": "inv 1"},
        {"payee_bank": US, "payee_account": us2, "amount": 2_000},
        {"payee_bank": CN, "payee_account": cn1, "amount": 3_000},
        {"payee_bank": HK, "payee_account": hk1, "amount": 4_000},
    ]
    sub = await net.prepare(HK, "batch_payout", {"reference": "payroll-1",
                                                 "payer_account": payer, "payments": payments})
    assert json.loads(sub.stub.event[1])["payee_banks"] == ["cnbank", "usbank"]
    assert sub.stub.event[0] == EVENT_PENDING
    # one write of the payer's balance key for the whole batch
    assert sum(1 for c, k in sub.writes if k == account_keys(HK).account(payer)) == 1
    sub.commit()
    assert await net.balance(HK, payer) == 90_000
    assert await net.balance(HK, hk1) == 4_000
    transfer_ids = (await net.evaluate(HK, "get_reference", {"reference": "payroll-1"}))["ids"]
    assert len(transfer_ids) == 3
    for bank in (US, CN):
        pending = await net.evaluate(bank, "get_pending", {"direction": "incoming"})
        for t in pending["transfers"]:
            await net.submit(bank, "accept_transfer", {
                "transfer_id": t["transfer"]["transfer_id"], "payer_bank": HK})
    assert await net.balance(US, us1) == 1_000
    assert await net.balance(CN, cn1) == 3_000
    hist = await net.evaluate(HK, "get_history", {"account_id": payer})
    assert [r["balance_after"] for r in hist["records"][-4:]] == [99_000, 97_000, 94_000, 90_000]
    audit = await net.audit()
    assert audit["ok"], audit["failures"]
    await net.submit(HK, "set_account_limits", {"account_id": payer, "daily_outflow": 12_000})
    with pytest.raises(e.LimitExceeded):  # 10,000 out today already, 10,000 more
        await net.submit(HK, "batch_payout", {"reference": "p2", "payer_account": payer,
                                              "payments": payments})
    with pytest.raises(e.InvalidArgument):
        await net.submit(HK, "batch_payout", {"reference": "p3", "payer_account": payer,
                                              "payments": []})
    with pytest.raises(e.InvalidArgument):
        await net.submit(HK, "batch_payout", {"reference": "p4", "payer_account": payer,
                                              "payments": [{**payments[3],
                                                            "payee_account": payer}]})


# --------------------------------------------------------------------------- settlement


async def test_obligations_and_settlement(net: Net) -> None:
    hk = await funded(net, HK, "USD", 10_000)
    us = await funded(net, US, "USD", 10_000, tag="rcv")
    for i, amount in enumerate((1_000, 2_000)):
        tid = await net.initiate(HK, hk, US, us, amount, f"h{i}")
        await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    tid = await net.initiate(US, us, HK, hk, 500, "u0")
    await net.submit(HK, "accept_transfer", {"transfer_id": tid, "payer_bank": US})
    rejected = await net.initiate(HK, hk, US, us, 700, "h-rej")
    await net.submit(US, "reject_transfer", {"transfer_id": rejected, "payer_bank": HK})
    ob = await net.obligations(HK, US)
    owed = {(o["debtor"], o["creditor"]): o["owed"] for o in ob["obligations"]}
    assert owed == {(HK, US): 3_000, (US, HK): 500}
    assert ob["net"] == {"USD": 2_500}
    # the creditor confirms an RTGS payment; a second confirmation of it is refused
    await net.submit(US, "confirm_settlement", {"rtgs_reference": "RTGS-77", "debtor_bank": HK,
                                                "currency": "USD", "amount": 2_500})
    with pytest.raises(e.DuplicateReference):
        await net.submit(US, "confirm_settlement", {"rtgs_reference": "RTGS-77",
                                                    "debtor_bank": HK, "currency": "USD",
                                                    "amount": 2_500})
    with pytest.raises(e.InvalidArgument):
        await net.submit(US, "confirm_settlement", {"rtgs_reference": "R", "debtor_bank": US,
                                                    "currency": "USD", "amount": 1})
    with pytest.raises(e.InvalidArgument):
        await net.submit(US, "confirm_settlement", {"rtgs_reference": "R", "debtor_bank": HK,
                                                    "currency": "EUR", "amount": 1})
    ob = await net.obligations(HK, US, org=US)
    assert ob["net"] == {"USD": 0}
    # cnbank may not look; the regulator may
    with pytest.raises(e.NotAuthorized):
        await net.evaluate(CN, "get_obligations", {"bank_a": HK, "bank_b": US})
    reg = await net.evaluate("regulator", "get_obligations", {"bank_a": HK, "bank_b": US,
                                                              "page_size": 100},
                             caller=Net.caller("regulator", "auditor"))
    assert reg["done"]
    assert reg["net"] == {"USD": 0}
    audit = await net.audit()
    assert audit["ok"], audit["failures"]
    pair = next(p for p in audit["pairs"] if p["payer"] == HK and p["payee"] == US)
    assert pair["accepted"] == 3_000
    assert pair["settled"] == 2_500
    assert pair["owed"] == 500


# --------------------------------------------------------------------------- regulator


async def test_regulator_holds(net: Net) -> None:
    acc = await funded(net, HK, "USD", 1_000)
    (to,) = ids("hold2", 1)
    await net.open(HK, "USD", to)
    reg = Net.caller("regulator", "auditor")
    await net.submit("regulator", "set_hold", {"bank": HK, "account_id": acc,
                                               "held_amount": 800, "reason": "court order"},
                     caller=reg)
    with pytest.raises(e.InsufficientFunds):
        await net.submit(HK, "transfer", {"reference": "h1", "from_account": acc,
                                          "to_account": to, "amount": 201})
    await net.submit(HK, "transfer", {"reference": "h2", "from_account": acc,
                                      "to_account": to, "amount": 200})
    got = await net.evaluate(HK, "get_account", {"account_id": acc})
    assert got["available"] == 0
    assert got["hold"]["held_amount"] == 800
    await net.submit("regulator", "set_hold", {"bank": HK, "account_id": acc, "frozen": True},
                     caller=reg)
    with pytest.raises(e.AccountFrozen, match="regulator"):
        await net.submit(HK, "burn", {"reference": "h3", "account_id": acc, "amount": 1},
                         caller=Net.caller(HK, "minter"))
    await net.submit("regulator", "release_hold", {"bank": HK, "account_id": acc}, caller=reg)
    await net.submit(HK, "burn", {"reference": "h4", "account_id": acc, "amount": 800},
                     caller=Net.caller(HK, "minter"))
    with pytest.raises(e.NotFound):
        await net.submit("regulator", "release_hold", {"bank": HK, "account_id": acc},
                         caller=reg)
    # only the regulator writes holds, and only on its own server
    with pytest.raises(e.NotAuthorized):
        await net.submit(HK, "set_hold", {"bank": HK, "account_id": acc, "frozen": True})
    with pytest.raises(e.WrongEndorser):
        await net.submit(HK, "set_hold", {"bank": HK, "account_id": acc, "frozen": True},
                         caller=reg)
    with pytest.raises(e.NotAuthorized):
        await net.submit("regulator", "set_hold", {"bank": HK, "account_id": acc,
                                                   "frozen": True},
                         caller=Net.caller("regulator", "operator"))
    with pytest.raises(e.NotFound):
        await net.submit("regulator", "set_hold", {"bank": HK, "account_id": ids("g", 1)[0],
                                                   "frozen": True}, caller=reg)
    with pytest.raises(e.InvalidArgument):
        await net.submit("regulator", "set_hold", {"bank": HK, "account_id": acc}, caller=reg)


async def test_account_keys_do_not_name_the_account_and_the_regulator_shares_them(
    net: Net,
) -> None:
    reg = Net.caller("regulator", "auditor")
    (early,) = ids("early", 1)
    # Before the bank opened any account, the regulator cannot know its account key.
    with pytest.raises(e.NotFound):
        await net.submit("regulator", "set_hold", {"bank": HK, "account_id": early,
                                                   "frozen": True}, caller=reg)
    acc = await funded(net, HK, "USD", 1_000)
    keys = account_keys(HK)
    # The bank shared its account key (not its secret) in acct-hkbank, once.
    shared = json.loads(net.ledger.get_private_data("acct-hkbank", "keys/accounts") or b"{}")
    assert shared["key"] == keys.key
    assert secret_of(BANKS[HK][0]).hex() not in json.dumps(shared)
    # pinned to hkbank's and the regulator's peers: hkbank alone cannot change it later
    assert net.ledger.get_metadata("acct-hkbank", "keys/accounts") == {
        VALIDATION_PARAMETER: all_of_policy([BANKS[HK][0], REGULATOR])}
    await net.submit("regulator", "set_hold", {"bank": HK, "account_id": acc,
                                               "held_amount": 900}, caller=reg)
    # The regulator's server, without hkbank's secret, wrote where hkbank's server reads.
    assert net.ledger.get_private_data("holds-hkbank", keys.hold(acc)) is not None
    with pytest.raises(e.InsufficientFunds):
        await net.submit(HK, "burn", {"reference": "uk-1", "account_id": acc, "amount": 101},
                         caller=Net.caller(HK, "minter"))
    listed = await net.evaluate("regulator", "list_accounts", {"bank": HK}, caller=reg)
    assert listed["accounts"][0]["hold"]["held_amount"] == 900
    history = await net.evaluate("regulator", "get_history", {"bank": HK, "account_id": acc},
                                 caller=reg)
    assert [r["kind"] for r in history["records"]] == ["opened", "mint"]
    assert (await net.audit())["ok"] is True
    # No key of any collection names the account id; the old keys are nowhere.
    for collection in ("acct-hkbank", "holds-hkbank"):
        stored = net.ledger.keys(collection)
        assert stored
        assert not [k for k in stored if acc in k]
    assert keys.account(acc) in net.ledger.keys("acct-hkbank")
    # Another bank's keys for the same id differ (each bank's own account key).
    assert account_keys(US).tag(acc) != keys.tag(acc)


async def test_a_network_without_regulator() -> None:
    net = Net(regulator=False)
    await net.init()
    acc = await funded(net, HK, "USD", 100)
    (to,) = ids("nr", 1)
    await net.open(HK, "USD", to)
    # no account key is shared (no one to share it with), no holds collection is read
    assert net.ledger.get_private_data("acct-hkbank", "keys/accounts") is None
    sub = await net.prepare(HK, "transfer", {"reference": "t", "from_account": acc,
                                             "to_account": to, "amount": 1})
    assert not any(c.startswith("holds-") for c, _ in sub.reads)
    with pytest.raises(e.NotAuthorized):
        await net.submit(HK, "set_hold", {"bank": HK, "account_id": acc, "frozen": True})


async def test_audit_is_paginated_and_refused_to_others(net: Net) -> None:
    acc = await funded(net, HK, "USD", 1_000)
    us = await funded(net, US, "USD", 0, tag="rcv")
    for i in range(4):
        tid = await net.initiate(HK, acc, US, us, 10 + i, f"a{i}")
        if i % 2:
            await net.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    small = await net.audit(page_size=1)
    big = await net.audit(page_size=10_000)
    assert small == big
    assert small["ok"]
    cur = next(c for c in small["currencies"] if c["currency"] == "USD")
    assert cur["in_flight"] == 10 + 12
    assert cur["supply"] + cur["in_flight"] == 1_000
    with pytest.raises(e.NotAuthorized):
        await net.evaluate(HK, "audit", {})
    with pytest.raises(e.InvalidArgument):
        await net.evaluate("regulator", "audit", {"cursor": {"kind": "supply"}},
                           caller=Net.caller("regulator", "auditor"))


async def test_history_pages(net: Net) -> None:
    acc = await funded(net, HK, "USD", 0)
    for i in range(5):
        await net.mint(HK, acc, 1 + i, f"m{i}")
    page = await net.evaluate(HK, "get_history", {"account_id": acc, "page_size": 4})
    assert [r["seq"] for r in page["records"]] == [0, 1, 2, 3]
    assert page["next_seq"] == 4
    page = await net.evaluate(HK, "get_history", {"account_id": acc, "page_size": 4,
                                                  "from_seq": 4})
    assert [r["seq"] for r in page["records"]] == [4, 5]
    assert page["next_seq"] is None


async def test_unknown_transaction_and_internal_errors_carry_no_text(net: Net) -> None:
    with pytest.raises(e.InvalidArgument, match="unknown transaction"):
        await net.services[HK].execute(net.ledger.stub(), Net.caller(HK), "steal")
    (acc,) = ids("corrupt", 1)
    net.ledger.seed(private={"acct-hkbank": {account_keys(HK).account(acc):
                                             b'{"secret-balance": 1}'}})
    with pytest.raises(e.CorruptState) as info:
        await net.evaluate(HK, "get_account", {"account_id": acc})
    assert "secret" not in str(info.value)


async def test_list_accounts_pages_a_banks_accounts_for_the_bank_and_the_regulator(
    net: Net,
) -> None:
    usd = [await funded(net, amount=100 * (i + 1), tag=f"la{i}") for i in range(3)]
    (hkd,) = ids("lahkd", 1)
    await net.open(HK, "HKD", hkd)
    await net.open(US, "USD", ids("laus", 1)[0])
    page = await net.evaluate(HK, "list_accounts", {"page_size": 2})
    seen = list(page["accounts"])
    while not page["done"]:
        page = await net.evaluate(HK, "list_accounts", {"page_size": 2,
                                                        "cursor": page["cursor"]})
        seen += page["accounts"]
    assert sorted(a["account_id"] for a in seen) == sorted([*usd, hkd])
    assert {a["account_id"]: a["balance"] for a in seen if a["currency"] == "USD"} == {
        acc: 100 * (i + 1) for i, acc in enumerate(usd)}
    only_hkd = await net.evaluate(HK, "list_accounts", {"currency": "HKD"})
    assert [a["account_id"] for a in only_hkd["accounts"]] == [hkd]
    assert only_hkd["done"]
    reg = await net.evaluate("regulator", "list_accounts", {"bank": HK},
                             caller=Net.caller("regulator", "auditor"))
    assert len(reg["accounts"]) == 4
    with pytest.raises(e.NotAuthorized):
        await net.evaluate(US, "list_accounts", {"bank": HK})
    # The regulator's holds come with the accounts, for the bank and the regulator alike.
    assert all(a["hold"] is None for a in seen)
    await net.submit("regulator", "set_hold", {"bank": HK, "account_id": usd[1],
                                               "held_amount": 50, "reason": "court order"},
                     caller=Net.caller("regulator", "auditor"))
    for org, caller in ((HK, None), ("regulator", Net.caller("regulator", "auditor"))):
        listed = await net.evaluate(org, "list_accounts", {"bank": HK, "currency": "USD"},
                                    caller=caller)
        holds = {a["account_id"]: a["hold"] for a in listed["accounts"]}
        assert holds[usd[0]] is None
        assert holds[usd[2]] is None
        assert (holds[usd[1]]["held_amount"], holds[usd[1]]["frozen"]) == (50, False)


class _CountingStub:
    """Wraps a stub and counts the state reads a transaction makes (one per round trip)."""

    def __init__(self, stub: Any, calls: list[str]) -> None:
        self._stub, self._calls = stub, calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._stub, name)
        if name in ("get_state", "get_private_data", "get_multiple_private_data"):
            async def counted(*args: Any) -> Any:
                self._calls.append(name)
                return await attr(*args)
            return counted
        return attr


async def test_transfer_reads_in_two_round_trips_once_the_registry_is_known(net: Net) -> None:
    acc = await funded(net, amount=1_000)
    (to,) = ids("rt2", 1)
    await net.open(HK, "USD", to)
    calls: list[str] = []
    net.stub_wrapper = lambda org, stub: _CountingStub(stub, calls)
    await net.submit(HK, "transfer", {"reference": "rt", "from_account": acc, "to_account": to,
                                      "amount": 100})
    # The registry was read by earlier transactions of this server and is not read again;
    # the reference and both accounts come in one multi-key read; the hold is in another
    # collection. (The harness simulates every submit on two peers: each makes both reads.)
    assert calls == ["get_multiple_private_data", "get_private_data"] * 2
    assert await net.balance(HK, to) == 100


async def test_the_registry_is_read_from_the_ledger_until_a_transaction_has_read_it() -> None:
    net = Net()
    calls: list[str] = []
    net.stub_wrapper = lambda org, stub: _CountingStub(stub, calls)
    await net.init()  # init_network's own registry is not committed yet: not remembered
    calls.clear()
    await net.evaluate(US, "get_registry")
    # the registry and the digest of its argument; an evaluation runs on one peer
    assert calls == ["get_state", "get_state"]
    calls.clear()
    await net.evaluate(US, "get_registry")
    assert calls == []
    # Another server (organization) has its own memory.
    await net.evaluate(CN, "get_registry")
    assert calls == ["get_state", "get_state"]


async def test_get_pending_since_reads_only_transfers_created_since(net: Net) -> None:
    from dtoken_wire import format_timestamp as format_ts

    payer = await funded(net, HK, "USD", 10_000)
    payee = await funded(net, US, "USD", 0, tag="rcv")
    early = await net.initiate(HK, payer, US, payee, 100, "since-1", ttl_seconds=86_400)
    net.advance(hours=1)
    mark = format_ts(net.now)
    late = [await net.initiate(HK, payer, US, payee, 100 + i, f"since-{i + 2}",
                               ttl_seconds=86_400) for i in range(3)]
    # Every pending transfer without ``since``; only the later ones with it (paged too).
    everything = await net.evaluate(US, "get_pending", {"direction": "incoming"})
    assert {t["transfer"]["transfer_id"] for t in everything["transfers"]} == {early, *late}
    got: list[str] = []
    page = await net.evaluate(US, "get_pending", {"direction": "incoming", "since": mark,
                                                  "page_size": 2})
    window_cursor = page["cursor"]
    assert window_cursor is not None
    while True:
        got += [t["transfer"]["transfer_id"] for t in page["transfers"]]
        if page["done"]:
            break
        page = await net.evaluate(US, "get_pending", {"direction": "incoming", "since": mark,
                                                      "page_size": 2, "cursor": page["cursor"]})
    assert sorted(got) == sorted(late)
    # Decided transfers drop out of the window as they do from a full scan.
    await net.submit(US, "accept_transfer", {"transfer_id": late[0], "payer_bank": HK})
    outgoing = await net.evaluate(HK, "get_pending", {"direction": "outgoing", "since": mark})
    assert {t["transfer"]["transfer_id"] for t in outgoing["transfers"]} == set(late[1:])
    # The cursor of one window is refused by another; a malformed ``since`` is named.
    with pytest.raises(e.InvalidArgument, match="cursor"):
        await net.evaluate(US, "get_pending", {"direction": "incoming", "page_size": 1,
                                               "cursor": window_cursor})
    with pytest.raises(e.InvalidArgument, match=r"request\.since"):
        await net.evaluate(US, "get_pending", {"direction": "incoming", "since": "yesterday"})
    # A null ``since`` is the same as none.
    none = await net.evaluate(US, "get_pending", {"direction": "incoming", "since": None})
    assert {t["transfer"]["transfer_id"] for t in none["transfers"]} == set(late[1:]) | {early}


async def test_initiate_writes_the_time_index_in_the_pair_collection(net: Net) -> None:
    payer = await funded(net, HK, "USD", 1_000)
    payee = await funded(net, US, "USD", 0, tag="rcv")
    sub = await net.prepare(HK, "initiate_transfer", {
        "reference": "idx-1", "payer_account": payer, "payee_bank": US, "payee_account": payee,
        "amount": 10})
    keys = {key for coll, key in sub.writes if coll == "pair-hkbank-usbank"}
    assert len(keys) == 2
    (index,) = [k for k in keys if k.startswith("open/")]
    (xfer,) = [k for k in keys if k.startswith("xfer/")]
    from dtoken_wire import format_timestamp as format_ts

    assert index == f"open/{format_ts(net.now)}/{xfer.removeprefix('xfer/')}"
