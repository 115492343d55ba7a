"""Bilateral exposure caps on the in-memory network (issue 13, item 9).

A creditor bank writes its cap on a debtor into ``pair-<creditor>-<debtor>``, one write-once
key per change; ``get_obligations`` (either bank of the pair) and the regulator's audit report
the cap in force and the headroom it leaves. A "cap" written anywhere else, or naming other
parties, counts for nobody.
"""

from __future__ import annotations

from typing import Any

import pytest
from deposit_token.errors import InvalidArgument, NotAuthorized, WrongEndorser
from deposit_token.keys import cap_key
from deposit_token.records import Cap
from fabshim.errors import MVCCReadConflictError
from unit.deposit_token.dt_harness import Net, pending_payment
from unit.deposit_token.test_dt_dishonest import forge

HK, US, CN = "hkbank", "usbank", "cnbank"
AT = "2025-01-06T09:00:00.000000Z"


async def set_cap(net: Net, creditor: str, debtor: str, cap: int, currency: str = "USD") -> None:
    await net.submit(creditor, "set_exposure_cap",
                     {"debtor_bank": debtor, "currency": currency, "cap": cap})


def row(page: dict[str, Any], debtor: str, creditor: str, currency: str = "USD"
        ) -> dict[str, Any] | None:
    found = [o for o in page["obligations"]
             if (o["debtor"], o["creditor"], o["currency"]) == (debtor, creditor, currency)]
    return found[0] if found else None


@pytest.fixture
async def net() -> Net:
    """hkbank's customer paid usbank's customer 300; usbank accepted: hkbank owes it 300."""
    n, _payer, _payee, tid = await pending_payment(funds=10_000, amount=300)
    await n.submit(US, "accept_transfer", {"transfer_id": tid, "payer_bank": HK})
    return n


async def test_no_cap_reports_none(net: Net) -> None:
    ob = row(await net.obligations(HK, US), HK, US)
    assert ob is not None
    assert (ob["owed"], ob["cap"], ob["headroom"]) == (300, None, None)


async def test_the_latest_cap_is_in_force_for_both_banks_and_the_regulator(net: Net) -> None:
    for cap in (1_000, 5_000, 700):
        await set_cap(net, US, HK, cap)
    for org in (US, HK):  # the creditor and the payer read the same figures
        page = await net.obligations(HK, US, page_size=2, org=org)
        ob = row(page, HK, US)
        assert ob is not None
        assert (ob["owed"], ob["cap"], ob["headroom"]) == (300, 700, 400)
        assert page["anomalies"] == {}
    audit = await net.audit()
    assert audit["ok"]
    assert [(c["debtor"], c["creditor"], c["cap"], c["headroom"]) for c in audit["caps"]] == [
        (HK, US, 700, 400)]
    assert audit["over_cap"] == []


async def test_the_cap_read_alone_is_the_one_in_force_and_skips_garbage(net: Net) -> None:
    async def cap(currency: str = "USD") -> object:
        got = await net.evaluate(US, "get_exposure_cap", {"debtor_bank": HK,
                                                          "currency": currency})
        return got["cap"]

    assert await cap() is None
    for value in (1_000, 5_000, 700):
        await set_cap(net, US, HK, value)
        assert await cap() == value
    assert await cap("HKD") is None
    await forge(net, "pair-usbank-hkbank", "cap/USD/000000000004", b"not a cap")
    assert await cap() == 700  # a record that does not decode counts for nobody


async def test_every_change_is_a_new_key_numbered_without_gaps(net: Net) -> None:
    for cap in range(1, 12):
        await set_cap(net, US, HK, cap * 100)
    for seq in range(1, 12):
        raw = net.ledger.get_private_data("pair-usbank-hkbank", cap_key("USD", seq))
        assert raw is not None
    assert net.ledger.get_private_data("pair-usbank-hkbank", cap_key("USD", 12)) is None
    ob = row(await net.obligations(US, HK), HK, US)
    assert ob is not None
    assert ob["cap"] == 1_100


async def test_two_concurrent_changes_cannot_both_commit(net: Net) -> None:
    await set_cap(net, US, HK, 100)
    first = await net.prepare(US, "set_exposure_cap",
                              {"debtor_bank": HK, "currency": "USD", "cap": 200})
    second = await net.prepare(US, "set_exposure_cap",
                               {"debtor_bank": HK, "currency": "USD", "cap": 300})
    first.commit()
    with pytest.raises(MVCCReadConflictError):  # both read seq 2 free and wrote it
        second.commit()
    ob = row(await net.obligations(HK, US), HK, US)
    assert ob is not None
    assert ob["cap"] == 200


async def test_a_cap_without_a_debt_is_reported_and_caps_are_per_currency(net: Net) -> None:
    await set_cap(net, HK, US, 0)  # hkbank accepts nothing unsettled from usbank
    page = await net.obligations(HK, US)
    ob = row(page, US, HK)
    assert ob is not None
    assert (ob["owed"], ob["cap"], ob["headroom"]) == (0, 0, 0)
    assert row(page, HK, US, "HKD") is None


async def test_a_debt_over_the_cap_is_listed_by_the_audit_not_failed(net: Net) -> None:
    await set_cap(net, US, HK, 100)  # lowered below what is already owed
    ob = row(await net.obligations(HK, US), HK, US)
    assert ob is not None
    assert (ob["cap"], ob["headroom"]) == (100, 0)
    audit = await net.audit()
    assert audit["ok"]
    (over,) = audit["over_cap"]
    assert (over["debtor"], over["creditor"], over["owed"], over["cap"]) == (HK, US, 300, 100)
    (pair,) = [p for p in audit["pairs"] if (p["payer"], p["payee"]) == (HK, US)]
    assert pair["cap"] == 100


async def test_settlement_restores_headroom(net: Net) -> None:
    await set_cap(net, US, HK, 500)
    await net.submit(US, "confirm_settlement", {"debtor_bank": HK, "currency": "USD",
                                                "amount": 300, "rtgs_reference": "RTGS-1"})
    ob = row(await net.obligations(HK, US), HK, US)
    assert ob is not None
    assert (ob["owed"], ob["headroom"]) == (0, 500)


async def test_bad_requests_are_refused(net: Net) -> None:
    with pytest.raises(InvalidArgument):
        await set_cap(net, US, US, 10)
    with pytest.raises(InvalidArgument):
        await set_cap(net, US, HK, 10, currency="EUR")
    with pytest.raises(NotAuthorized):
        await net.submit(US, "set_exposure_cap", {"debtor_bank": HK, "currency": "USD",
                                                  "cap": 10}, caller=net.caller(US, "minter"))
    with pytest.raises(WrongEndorser):  # hkbank cannot set usbank's cap through usbank's server
        await net.submit(US, "set_exposure_cap", {"debtor_bank": HK, "currency": "USD",
                                                  "cap": 10}, caller=net.caller(HK, "operator"))


async def test_the_debtor_writing_a_cap_into_its_own_collection_changes_nothing(
    net: Net,
) -> None:
    await set_cap(net, US, HK, 500)
    # hkbank's modified server claims usbank raised its cap on hkbank, in hkbank's own pair
    await forge(net, "pair-hkbank-usbank", cap_key("USD", 1), Cap(
        creditor_bank=US, debtor_bank=HK, currency="USD", cap=10**12, seq=1, set_at=AT, tx_id="x"))
    for org in (US, HK):
        page = await net.obligations(HK, US, org=org)
        ob = row(page, HK, US)
        assert ob is not None
        assert (ob["cap"], ob["headroom"]) == (500, 200)
        assert row(page, US, HK) is None  # nor is it read as hkbank's cap on usbank
        assert page["anomalies"] == {"hkbank/pair-hkbank-usbank/wrong_parties": 1}
        (detail,) = page["anomaly_records"]
        assert detail["writers"] == [HK]
    audit = await net.audit()
    assert audit["anomalies"] == {"hkbank/pair-hkbank-usbank/wrong_parties": 1}
    assert [(c["debtor"], c["cap"]) for c in audit["caps"]] == [(HK, 500)]


async def test_a_cap_under_the_wrong_key_or_garbage_counts_for_nobody(net: Net) -> None:
    await set_cap(net, US, HK, 500)
    await forge(net, "pair-usbank-hkbank", cap_key("USD", 9), Cap(
        creditor_bank=US, debtor_bank=HK, currency="USD", cap=10**9, seq=2, set_at=AT, tx_id="x"))
    await forge(net, "pair-usbank-hkbank", cap_key("USD", 10), b"{not json")
    page = await net.obligations(HK, US)
    ob = row(page, HK, US)
    assert ob is not None
    assert ob["cap"] == 500
    assert page["anomalies"] == {"usbank/pair-usbank-hkbank/wrong_key": 1,
                                 "usbank/pair-usbank-hkbank/undecodable": 1}
