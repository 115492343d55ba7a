"""A bank joins a running network: each organization grows its own registry (``admit_bank``).

The founders (hkbank, usbank, the regulator) start with a registry without cnbank; cnbank
joins, every operator restarts its server pinned to the registry that appends cnbank, and each
organization's administrator runs ``admit_bank`` on its own server. From the dishonest side:
nobody but the organization's own administrator, with the exact argument its operator pinned,
gets the registry grown, and no argument that changes, drops, reorders or slips in a member is
accepted. The harness keeps public state in one ledger, so one organization's ``admit_bank``
is seen by all (on Fabric each namespace has its own copy: tests/integration/test_add_bank.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from deposit_token import errors as e
from deposit_token.config import ServerSettings
from deposit_token.service import Service
from unit.deposit_token.dt_harness import (
    BANKS,
    CURRENCIES,
    REGULATOR,
    Net,
    msp_of,
    registry_pin,
    secret_of,
)

HK, US, CN = "hkbank", "usbank", "cnbank"
FOUNDERS = (HK, US)


def payload(banks: list[dict[str, Any]], **changes: Any) -> str:
    data: dict[str, Any] = {"banks": banks, "regulator_msp_id": REGULATOR,
                            "currencies": CURRENCIES, **changes}
    return json.dumps(data)


def bank(name: str) -> dict[str, Any]:
    msp, currencies = BANKS[name]
    return {"name": name, "msp_id": msp, "currencies": currencies}


OLD = payload([bank(HK), bank(US)])
NEW = payload([bank(HK), bank(US), bank(CN)])


def restart(n: Net, org: str, argument: str | None) -> None:
    """The operator restarts ``org``'s server pinned to ``argument`` (``None``: no pin)."""
    msp = msp_of(org)
    n.services[org] = Service(ServerSettings(
        msp, secret_of(msp), None if argument is None else registry_pin(argument),
        layout=bool(n.layout)))


async def founded() -> Net:
    """hkbank, usbank and the regulator initialized with :data:`OLD`; every server, cnbank's
    included, then restarted pinned to :data:`NEW` (the join)."""
    n = Net(agreed=OLD)
    stubs = []
    for org in FOUNDERS:
        stub = n._stub(None, "init-network-tx", n.now, serving=org)
        await n.services[org].init_network(stub, n.admin(org), OLD)
        stubs.append(stub)
    stubs[0].commit()
    for org in FOUNDERS:
        await n.open(org, "USD", f"{org}-main".ljust(22, "_"))
        await n.mint(org, f"{org}-main".ljust(22, "_"), 50_000, f"dep-{org}")
    # The servers read (and, pinned to OLD, cache) the founders' registry.
    assert len((await n.evaluate(HK, "get_registry"))["banks"]) == 2
    for org in (*BANKS, "regulator"):
        restart(n, org, NEW)
    return n


async def test_a_joined_bank_pays_and_is_paid_once_admitted() -> None:
    n = await founded()
    hk_acc, cn_acc = f"{HK}-main".ljust(22, "_"), f"{CN}-main".ljust(22, "_")
    with pytest.raises(e.WrongEndorser):
        await n.open(CN, "USD", cn_acc)  # not in the (harness's one) registry yet
    with pytest.raises(e.NotFound):
        await n.initiate(HK, hk_acc, CN, cn_acc, 100, "before-admission")
    result = await n.submit(HK, "admit_bank", argument=NEW)
    assert result["admitted"] == CN
    assert result["banks"] == 3
    assert result["tokens"] == 2  # CNH and USD issued by cnbank
    registry = await n.evaluate(US, "get_registry")
    assert registry["join_order"] == [HK, US, CN]
    assert {t["issuer"] for t in registry["tokens"]} == {HK, US, CN}

    await n.open(CN, "USD", cn_acc)
    await n.mint(CN, cn_acc, 10_000, "dep-cn")
    to_cn = await n.initiate(HK, hk_acc, CN, cn_acc, 1_250, "hk-to-cn")
    await n.submit(CN, "accept_transfer", {"transfer_id": to_cn, "payer_bank": HK})
    back = await n.initiate(CN, cn_acc, HK, hk_acc, 250, "cn-to-hk")
    await n.submit(HK, "accept_transfer", {"transfer_id": back, "payer_bank": CN})
    assert await n.balance(CN, cn_acc) == 10_000 + 1_250 - 250
    assert await n.balance(HK, hk_acc) == 50_000 - 1_250 + 250
    audit = await n.audit()
    assert audit["ok"], audit["failures"]
    scan = await n.obligations(HK, CN)
    assert not scan["anomaly_records"]


async def test_the_cache_follows_the_pin() -> None:
    # Restarted with the new pin, hkbank's server read the old registry (not final for it);
    # it must see the grown registry as soon as admit_bank commits, without a restart.
    n = await founded()
    assert len((await n.evaluate(HK, "get_registry"))["banks"]) == 2
    await n.submit(US, "admit_bank", argument=NEW)
    assert len((await n.evaluate(HK, "get_registry"))["banks"]) == 3
    # Now final: served from the cache, still the grown registry.
    assert len((await n.evaluate(HK, "get_registry"))["banks"]) == 3


async def test_admission_is_idempotent_and_refused_twice() -> None:
    n = await founded()
    await n.submit(HK, "admit_bank", argument=NEW)
    with pytest.raises(e.AlreadyInitialized):
        await n.submit(HK, "admit_bank", argument=NEW)


async def test_only_the_servers_own_administrator_grows_its_registry() -> None:
    n = await founded()
    with pytest.raises(e.NotAuthorized, match="administrator"):
        await n.submit(HK, "admit_bank", argument=NEW, caller=n.caller(HK))
    # usbank's administrator on hkbank's server: hkbank's registry is hkbank's own word.
    with pytest.raises(e.NotAuthorized, match="this server's organization"):
        await n.submit(HK, "admit_bank", argument=NEW, caller=n.admin(US))
    with pytest.raises(e.NotAuthorized, match="agreed to"):
        await n.submit(HK, "admit_bank", argument=payload([bank(HK), bank(US), bank(CN)],
                                                          currencies={**CURRENCIES, "EUR": 2}))
    restart(n, HK, None)
    with pytest.raises(e.ServerMisconfigured):
        await n.submit(HK, "admit_bank", argument=NEW)


def _mallory(**changes: Any) -> dict[str, Any]:
    return {**bank(CN), **changes}


@pytest.mark.parametrize(("argument", "rule"), [
    # cnbank slipped in before a founder: the join order (pair placement) would move
    (payload([bank(CN), bank(HK), bank(US)]), "one bank appended"),
    (payload([bank(HK), bank(US)]), "lists these banks already"),
    (payload([bank(HK), bank(CN)]), "one bank appended"),  # usbank dropped
    (payload([bank(HK), bank(US), bank(CN), {"name": "mxbank", "msp_id": "MxMSP",
                                             "currencies": ["USD"]}]), "one bank appended"),
    (payload([{**bank(HK), "msp_id": "EvilMSP"}, bank(US), bank(CN)]),
     "must not change a member bank"),
    (payload([{**bank(US), "currencies": ["USD", "HKD"]}, bank(HK), bank(CN)]),
     "one bank appended"),
    (payload([bank(HK), bank(US), bank(CN)], regulator_msp_id=None), "regulator_msp_id"),
    (payload([bank(HK), bank(US), bank(CN)], currencies={**CURRENCIES, "USD": 3}),
     "currencies must keep"),
    (payload([bank(HK), bank(US), _mallory(currencies=["USD"])],
             currencies={**CURRENCIES, "EUR": 2}), "only currencies the new bank issues"),
    (payload([bank(HK), bank(US), _mallory(msp_id=msp_of(HK))]), "must not repeat an MSP id"),
])
async def test_a_registry_growth_other_than_one_appended_bank_is_refused(
        argument: str, rule: str) -> None:
    # Even pinned by hkbank's own operator: the contract accepts growth only.
    n = await founded()
    restart(n, HK, argument)
    error: type[e.DepositTokenError] = (
        e.AlreadyInitialized if rule == "lists these banks already" else e.InvalidArgument)
    with pytest.raises(error, match=rule):
        await n.submit(HK, "admit_bank", argument=argument)
    assert len((await n.evaluate(US, "get_registry"))["banks"]) == 2


async def test_admit_bank_before_init_network_is_refused() -> None:
    n = Net(agreed=NEW)
    with pytest.raises(e.NotInitialized):
        await n.submit(HK, "admit_bank", argument=NEW)


async def test_a_joined_bank_is_told_of_the_suspensions_in_force() -> None:
    """usbank was suspended before cnbank joined: the regulator's admission writes usbank's
    flag into cnbank's holds collection (only the regulator's peers endorse there), so
    cnbank's own contract refuses payments to and from usbank from its first day."""
    n = await founded()
    await n.submit("regulator", "suspend_bank", {"bank": US, "reason": "capital call missed"})
    result = await n.submit("regulator", "admit_bank", argument=NEW)
    assert (result["admitted"], result["suspensions_told"]) == (CN, 1)
    cn_acc, us_acc = f"{CN}-main".ljust(22, "_"), f"{US}-main".ljust(22, "_")
    await n.open(CN, "USD", cn_acc)
    await n.mint(CN, cn_acc, 10_000, "dep-cn")
    told = await n.evaluate(CN, "get_suspensions")
    assert [(s["bank"], s["reason"]) for s in told["suspended"]] == [
        (US, "capital call missed")]
    with pytest.raises(e.BankSuspended, match="usbank is suspended"):
        await n.initiate(CN, cn_acc, US, us_acc, 100, "cn-to-suspended")
    # hkbank, not suspended, is not told anything about itself
    hk_acc = f"{HK}-main".ljust(22, "_")
    await n.initiate(CN, cn_acc, HK, hk_acc, 100, "cn-to-hk")
