"""Conversion at the payee's bank (FX quotes): honest flows, each refusal, rounding both
ways, and the dishonest payer and payee banks.

The story: a buyer at usbank pays USD; the exporter at cnbank is paid CNH. cnbank (the payee
bank) quotes usbank a firm rate for the one payment; usbank's customer pays with it; cnbank
credits CNH at the quoted rate when it accepts; usbank owes cnbank USD (the obligation stays
in the payer's currency). Each dishonest write is committed as a modified server's would be
(endorsed by its own peer alone, pinned as an honest one would pin it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from deposit_token import errors as e
from deposit_token.conversion import check_payment, check_quoted_accept, convert
from deposit_token.keys import quote_key, transfer_key
from deposit_token.records import Quote, Transfer
from dtoken_wire.enums import Rounding
from fabshim.errors import EndorsementPolicyFailureError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unit.deposit_token.dt_harness import Net, ids
from unit.deposit_token.test_dt_dishonest import forge, owed

US, CN, HK = "usbank", "cnbank", "hkbank"
PAY = 100_000  # USD 1,000.00
RATE = (72345, 10000)  # 7.2345 CNH per USD
RECEIVE = 723_450  # CNH 7,234.50


# --------------------------------------------------------------------------- the arithmetic


def test_convert_is_exact_and_rounds_once_to_the_payee_minor_unit() -> None:
    assert convert(PAY, *RATE, 2, 2, Rounding.BANK) == RECEIVE
    # 0.01 USD at 7.2345: 0.072345 CNH = 7.2345 fen: down 7, up 8
    assert convert(1, *RATE, 2, 2, Rounding.BANK) == 7
    assert convert(1, *RATE, 2, 2, Rounding.PAYEE) == 8
    # an exact result is not rounded up
    assert convert(100, 7, 1, 2, 2, Rounding.PAYEE) == 700
    # decimals from the registry: USD (2) to a 0-decimal currency at 150.25 per USD
    assert convert(1234, 15025, 100, 2, 0, Rounding.BANK) == 1854  # 1854.085
    assert convert(1234, 15025, 100, 2, 0, Rounding.PAYEE) == 1855
    # and back: 1,855 units at 1/150.25 USD each = 12.3460... USD
    assert convert(1855, 100, 15025, 0, 2, Rounding.BANK) == 1234
    assert convert(1855, 100, 15025, 0, 2, Rounding.PAYEE) == 1235


def test_convert_refuses_a_credit_of_nothing_or_too_much() -> None:
    with pytest.raises(e.InvalidAmount, match="rounds to zero"):
        convert(1, 1, 1000, 2, 2, Rounding.BANK)
    assert convert(1, 1, 1000, 2, 2, Rounding.PAYEE) == 1  # the payee's favour: one fen
    with pytest.raises(e.InvalidAmount, match="largest"):
        convert(10**15, 10**12, 1, 2, 2, Rounding.BANK)
    with pytest.raises(e.InvalidAmount):
        convert(0, 1, 1, 2, 2, Rounding.BANK)


# --------------------------------------------------------------------------- helpers


async def setup(net: Net | None = None) -> tuple[Net, str, str]:
    net = net or Net()
    await net.init()
    (buyer,), (exporter,) = ids("buyer", 1), ids("exprt", 1)
    await net.open(US, "USD", buyer)
    await net.mint(US, buyer, 5 * PAY, "dep-b")
    await net.open(CN, "CNH", exporter)
    return net, buyer, exporter


async def offer(net: Net, quote_id: str, *, amount: int = PAY, rate: tuple[int, int] = RATE,
                rounding: str = "bank", payee: str = CN, payer: str = US,
                **extra: Any) -> dict[str, Any]:
    await net.submit(payee, "offer_quote", {
        "quote_id": quote_id, "payer_bank": payer, "from_currency": "USD",
        "to_currency": "CNH", "amount": amount, "rate_numerator": rate[0],
        "rate_denominator": rate[1], "rounding": rounding, **extra})
    got = await net.evaluate(payer, "get_quote", {"quote_id": quote_id, "payee_bank": payee,
                                                  "payer_bank": payer})
    quote: dict[str, Any] = got["quote"]
    return quote


async def pay(net: Net, buyer: str, exporter: str, quote_id: str, ref: str,
              amount: int = PAY) -> str:
    await net.submit(US, "pay_with_quote", {
        "reference": ref, "payer_account": buyer, "payee_bank": CN,
        "payee_account": exporter, "amount": amount, "quote_id": quote_id})
    got = await net.evaluate(US, "get_reference", {"reference": ref})
    (tid,) = got["ids"]
    return str(tid)


async def accept(net: Net, tid: str) -> None:
    await net.submit(CN, "accept_transfer", {"transfer_id": tid, "payer_bank": US})


def currency_row(audit: dict[str, Any], currency: str) -> dict[str, Any]:
    (row,) = [c for c in audit["currencies"] if c["currency"] == currency]
    return dict(row)


QID = "quote-0001-usbank-cnbank"


# --------------------------------------------------------------------------- honest flows


async def test_a_quoted_payment_debits_usd_credits_cnh_and_the_obligation_stays_usd() -> None:
    net, buyer, exporter = await setup()
    quote = await offer(net, QID)
    assert quote["payee_amount"] == RECEIVE
    assert (quote["rate_numerator"], quote["rate_denominator"]) == RATE
    tid = await pay(net, buyer, exporter, QID, "po-1")
    assert await net.balance(US, buyer) == 4 * PAY
    seen = await net.evaluate(CN, "get_transfer", {"transfer_id": tid, "payer_bank": US,
                                                   "payee_bank": CN})
    assert seen["transfer"]["quote_id"] == QID
    assert (seen["transfer"]["payee_currency"], seen["transfer"]["payee_amount"]) == (
        "CNH", RECEIVE)
    await accept(net, tid)
    assert await net.balance(CN, exporter) == RECEIVE
    for org in (US, CN):
        amount, page = await owed(net, US, CN, org)
        assert amount == PAY
        assert {o["currency"] for o in page["obligations"]} == {"USD"}
    audit = await net.audit()
    assert audit["ok"], audit
    usd, cnh = currency_row(audit, "USD"), currency_row(audit, "CNH")
    assert (usd["minted"], usd["supply"], usd["converted_out"]) == (5 * PAY, 4 * PAY, PAY)
    assert (cnh["minted"], cnh["supply"], cnh["converted_in"]) == (0, RECEIVE, RECEIVE)


async def test_the_listeners_batch_path_accepts_a_quoted_transfer_too() -> None:
    net, buyer, exporter = await setup()
    await offer(net, QID)
    await offer(net, "quote-0002-usbank-cnbank", rounding="payee", amount=1)
    t1 = await pay(net, buyer, exporter, QID, "po-1")
    t2 = await pay(net, buyer, exporter, "quote-0002-usbank-cnbank", "po-2", amount=1)
    got = await net.submit(CN, "decide_transfers", {"payer_bank": US, "decisions": [
        {"transfer_id": t1, "accept": True}, {"transfer_id": t2, "accept": True}]})
    assert got["results"] == ["OK", "OK"]
    assert await net.balance(CN, exporter) == RECEIVE + 8  # 7.2345 fen rounded up
    assert (await net.audit())["ok"]


async def test_one_exporter_receiving_a_backlog_of_quoted_payments_in_one_batch() -> None:
    """The shape an exporter's bank sees: many buyers' payments, each at its own quote and
    rounding, decided in one ``decide_transfers``; one credit of the exporter's balance key,
    each payment credited exactly its quote's amount, one payment refused in the batch (its
    quote's accept window closed) without stopping its neighbours."""
    net, buyer, exporter = await setup()
    await net.mint(US, buyer, 50 * PAY, "dep-more")
    expected, tids = 0, []
    for i in range(40):
        qid = f"quote-burst-{i:04d}-usbank-cnbank"
        amount, rounding = 1_000 + 37 * i, ("bank", "payee")[i % 2]
        quote = await offer(net, qid, amount=amount, rate=(72345 + i, 10000),
                            rounding=rounding, accept_seconds=600 if i == 7 else 7200)
        tids.append(await pay(net, buyer, exporter, qid, f"po-burst-{i}", amount=amount))
        if i != 7:
            expected += int(quote["payee_amount"])
    net.advance(seconds=1300)  # past quote 7's accept window, inside every other one's
    got = await net.submit(CN, "decide_transfers", {"payer_bank": US, "decisions": [
        {"transfer_id": t, "accept": True} for t in tids]})
    assert got["results"] == ["OK"] * 7 + ["EXPIRED"] + ["OK"] * 32
    assert await net.balance(CN, exporter) == expected
    audit = await net.audit()
    assert audit["ok"], audit
    assert currency_row(audit, "CNH")["converted_in"] == expected


async def test_a_rejected_quoted_transfer_refunds_in_the_payers_currency() -> None:
    net, buyer, exporter = await setup()
    await offer(net, QID)
    tid = await pay(net, buyer, exporter, QID, "po-1")
    await net.submit(CN, "reject_transfer", {"transfer_id": tid, "payer_bank": US})
    await net.submit(US, "refund_transfer", {"transfer_id": tid, "payee_bank": CN})
    assert await net.balance(US, buyer) == 5 * PAY
    assert await net.balance(CN, exporter) == 0
    audit = await net.audit()
    assert audit["ok"], audit
    assert currency_row(audit, "USD")["converted_out"] == 0


# --------------------------------------------------------------------------- refusals


async def test_the_payer_bank_refuses_an_unknown_expired_altered_or_used_quote() -> None:
    net, buyer, exporter = await setup()
    with pytest.raises(e.NotFound, match="no such quote"):
        await pay(net, buyer, exporter, QID, "po-0")
    await offer(net, QID, ttl_seconds=600)
    with pytest.raises(e.InvalidArgument, match="quote's amount"):
        await pay(net, buyer, exporter, QID, "po-1", amount=PAY + 1)
    await pay(net, buyer, exporter, QID, "po-2")
    with pytest.raises(e.AlreadyExists, match="pays once"):
        await pay(net, buyer, exporter, QID, "po-3")
    await offer(net, "quote-0003-usbank-cnbank", ttl_seconds=600)
    net.advance(seconds=601)
    with pytest.raises(e.Expired, match="not open"):
        await pay(net, buyer, exporter, "quote-0003-usbank-cnbank", "po-4")
    assert await net.balance(US, buyer) == 4 * PAY


async def test_the_payer_account_must_be_in_the_quotes_currency() -> None:
    net, _buyer, exporter = await setup()
    (hkd,) = ids("hkdac", 1)
    await net.open(HK, "HKD", hkd)
    await net.mint(HK, hkd, PAY, "dep-h")
    await offer(net, QID, payer=HK)
    with pytest.raises(e.CurrencyMismatch, match="from_currency"):
        await net.submit(HK, "pay_with_quote", {
            "reference": "x", "payer_account": hkd, "payee_bank": CN,
            "payee_account": exporter, "amount": PAY, "quote_id": QID})


async def test_a_quote_is_given_once_and_only_in_currencies_the_banks_issue() -> None:
    net, _buyer, _exporter = await setup()
    await offer(net, QID)
    with pytest.raises(e.AlreadyExists):
        await offer(net, QID)
    with pytest.raises(e.CurrencyMismatch, match="issues no token"):
        await net.submit(US, "offer_quote", {  # usbank issues no CNH
            "quote_id": "quote-0009-cnbank-usbank", "payer_bank": CN, "from_currency": "USD",
            "to_currency": "CNH", "amount": PAY, "rate_numerator": 1, "rate_denominator": 1})
    with pytest.raises(e.InvalidArgument, match="must differ"):
        await net.submit(CN, "offer_quote", {
            "quote_id": "quote-0010-usbank-cnbank", "payer_bank": US, "from_currency": "CNH",
            "to_currency": "CNH", "amount": PAY, "rate_numerator": 1, "rate_denominator": 1})


async def test_the_payee_bank_closes_its_accept_window_on_its_own_clock() -> None:
    net, buyer, exporter = await setup()
    await offer(net, QID, ttl_seconds=600, accept_seconds=600)
    tid = await pay(net, buyer, exporter, QID, "po-1")
    net.advance(seconds=1201)
    with pytest.raises(e.Expired, match="accept window"):
        await accept(net, tid)
    await net.submit(CN, "reject_transfer", {"transfer_id": tid, "payer_bank": US})
    await net.submit(US, "refund_transfer", {"transfer_id": tid, "payee_bank": CN})
    assert await net.balance(US, buyer) == 5 * PAY


# --------------------------------------------------------------------------- dishonest banks


async def dishonest_transfer(net: Net, tid: str, exporter: str, **changes: Any) -> None:
    """usbank's modified server writes a transfer claiming a quote, pinned as an honest one
    (only its own peer endorses: it can write anything in pair-usbank-cnbank)."""
    fields: dict[str, Any] = dict(
        transfer_id=tid, payer_bank=US, payee_bank=CN, payee_account=exporter, amount=PAY,
        currency="USD", created_at="2025-01-06T09:00:00.000000Z",
        expires_at="2025-01-07T09:00:00.000000Z", tx_id="forged", quote_id=QID,
        payee_currency="CNH", payee_amount=RECEIVE)
    fields.update(changes)
    await forge(net, f"pair-{US}-{CN}", transfer_key(tid), Transfer(**fields))


@pytest.mark.parametrize(("changes", "refusal", "match"), [
    ({"payee_amount": RECEIVE * 2}, e.InvalidArgument, "payee_amount"),  # a better rate
    ({"amount": PAY // 2}, e.InvalidArgument, "amount"),  # less paid, same credit
    ({"payee_currency": "USD"}, e.InvalidArgument, "payee_currency"),
    ({"currency": "HKD"}, e.InvalidArgument, "currency"),
    ({"quote_id": "quote-9999-never-given"}, e.NotFound, "no quote"),
    ({"created_at": "2025-01-06T10:00:00.000000Z"}, e.Expired, "while its quote was open"),
    ({"created_at": "2025-01-06T08:00:00.000000Z"}, e.Expired, "while its quote was open"),
    ({"created_at": "yesterday"}, e.InvalidArgument, "created_at"),
])
async def test_the_payees_accept_refuses_a_transfer_that_alters_its_quote(
    changes: dict[str, Any], refusal: type[Exception], match: str,
) -> None:
    """usbank's server claims a better rate (or another amount, currency, quote, time):
    cnbank's accept compares each field with its own quote and refuses; nothing is credited
    and cnbank is owed nothing for it."""
    net, _buyer, exporter = await setup()
    await offer(net, QID, ttl_seconds=600)
    tid = ids("forged", 1)[0]
    await dishonest_transfer(net, tid, exporter, **changes)
    with pytest.raises(refusal, match=match):
        await accept(net, tid)
    got = await net.submit(CN, "decide_transfers", {"payer_bank": US, "decisions": [
        {"transfer_id": tid, "accept": False, "reason": "quote refused"}]})
    assert got["results"] == ["OK"]
    assert await net.balance(CN, exporter) == 0
    assert (await owed(net, US, CN, CN))[0] == 0


async def test_an_accept_off_the_quote_is_reported_by_the_audit() -> None:
    """Both banks' servers modified: usbank writes a transfer claiming twice the quoted CNH,
    cnbank accepts it and credits its customer (with its own ``in`` record). Each bank's
    books balance, but the regulator's audit compares the accepted transfer with cnbank's
    pinned quote and reports it, naming both banks; an honest conversion beside it is not."""
    net, buyer, exporter = await setup()
    await offer(net, QID, ttl_seconds=600)
    await offer(net, "quote-0002-usbank-cnbank")
    honest = await pay(net, buyer, exporter, "quote-0002-usbank-cnbank", "po-ok")
    await accept(net, honest)
    tid = ids("forged", 1)[0]
    await dishonest_transfer(net, tid, exporter, payee_amount=RECEIVE * 2)
    # cnbank's server skips the quote check: the honest accept with the check patched out
    import deposit_token.operations.decisions as decisions
    saved = decisions.check_quoted_accept
    decisions.check_quoted_accept = lambda *_a: None  # type: ignore[assignment]
    try:
        await accept(net, tid)
    finally:
        decisions.check_quoted_accept = saved
    assert await net.balance(CN, exporter) == RECEIVE * 3
    audit = await net.audit()
    assert audit["anomalies"] == {"usbank+cnbank/pair-cnbank-usbank/accept_off_quote": 1}
    assert not audit["ok"]


async def test_a_quote_the_payer_bank_writes_itself_is_no_quote() -> None:
    """usbank's server writes a 'quote' at a rate it likes, in its own pair-usbank-cnbank
    (the only pair collection it can write), and a transfer claiming it: cnbank reads quotes
    only from its own pair-cnbank-usbank, so the accept finds none."""
    net, _buyer, exporter = await setup()
    forged = Quote(quote_id=QID, payee_bank=CN, payer_bank=US, from_currency="USD",
                   to_currency="CNH", amount=PAY, payee_amount=RECEIVE * 2,
                   rate_numerator=2 * RATE[0], rate_denominator=RATE[1],
                   rounding=Rounding.BANK, valid_from="2025-01-06T08:00:00.000000Z",
                   valid_until="2025-01-06T10:00:00.000000Z",
                   accept_until="2025-01-06T11:00:00.000000Z", tx_id="forged")
    await forge(net, f"pair-{US}-{CN}", quote_key(QID), forged)
    tid = ids("forged", 1)[0]
    await dishonest_transfer(net, tid, exporter, payee_amount=RECEIVE * 2)
    with pytest.raises(e.NotFound):
        await accept(net, tid)


async def test_one_quote_pays_once_even_if_the_payer_bank_reuses_it() -> None:
    """usbank's server skips its own once-only check and writes two transfers with one
    quote: cnbank accepts the first and refuses the second (its own ``quse`` note)."""
    net, _buyer, exporter = await setup()
    await offer(net, QID, ttl_seconds=600)
    t1, t2 = ids("forged", 2)
    await dishonest_transfer(net, t1, exporter)
    await dishonest_transfer(net, t2, exporter)
    await accept(net, t1)
    with pytest.raises(e.InvalidState, match="used"):
        await accept(net, t2)
    got = await net.submit(CN, "decide_transfers", {"payer_bank": US, "decisions": [
        {"transfer_id": t2, "accept": False, "reason": "quote used"}]})
    assert got["results"] == ["OK"]
    assert await net.balance(CN, exporter) == RECEIVE


async def test_a_quote_the_payee_bank_left_unpinned_is_refused_by_the_payer() -> None:
    """cnbank's server writes a quote without the pin (so it could change it alone after the
    payer relied on it): usbank's contract reads it as no quote."""
    net, buyer, exporter = await setup()
    good = await offer(net, "quote-0000-usbank-cnbank")
    forged = Quote(**{**good, "quote_id": QID, "rounding": Rounding.BANK})
    await forge(net, f"pair-{CN}-{US}", quote_key(QID), forged, pin=False)
    with pytest.raises(e.NotFound):
        await pay(net, buyer, exporter, QID, "po-1")


@pytest.mark.parametrize("rewrite", ["worse_rate", "delete"])
async def test_the_payee_bank_cannot_alter_or_withdraw_its_quote_alone(rewrite: str) -> None:
    """cnbank's server, once usbank's customer paid with the quote, rewrites it at a worse
    rate (or deletes it) endorsed by its own peer alone: the quote is pinned to both banks,
    so the write is invalidated, the quote stands, and cnbank's own honest accept pays the
    quoted amount."""
    net, buyer, exporter = await setup()
    await offer(net, QID)
    tid = await pay(net, buyer, exporter, QID, "po-1")
    pair, key = f"pair-{CN}-{US}", quote_key(QID)
    stored = net.ledger.get_private_data(pair, key)
    assert stored is not None
    value = None if rewrite == "delete" else stored.replace(
        f'"payee_amount":{RECEIVE}'.encode(), f'"payee_amount":{RECEIVE // 2}'.encode())
    assert value != stored
    with pytest.raises(EndorsementPolicyFailureError):
        await forge(net, pair, key, value, pin=False)
    assert net.ledger.get_private_data(pair, key) == stored
    await accept(net, tid)
    assert await net.balance(CN, exporter) == RECEIVE


# --------------------------------------------------------------------------- the property


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(1, 2 * PAY), st.integers(1, 10**6),
                          st.integers(1, 10**6), st.sampled_from(["bank", "payee"]),
                          st.sampled_from(["accept", "reject", "pending", "expire"])),
                min_size=1, max_size=5))
async def test_conservation_per_currency_holds_with_conversions(
    steps: list[tuple[int, int, int, str, str]],
) -> None:
    """Any mix of quoted payments (amounts, rates, rounding) accepted, rejected and refunded,
    left pending or expired: per currency, minted less burned less converted out plus
    converted in equals balances plus what is in flight; the audit says ok; each customer's
    balance is what the accepted quotes say, to the minor unit."""
    net, buyer, exporter = await setup()
    await net.mint(US, buyer, 10 * PAY, "dep-more")
    credited = 0
    paid = 0
    pending = 0
    for i, (amount, num, den, rounding, fate) in enumerate(steps):
        qid = f"quote-prop-{i:04d}-usbank-cnbank"
        try:
            quote = await offer(net, qid, amount=amount, rate=(num, den), rounding=rounding)
        except e.InvalidAmount:  # the credit rounds to zero, or is too large: refused
            continue
        tid = await pay(net, buyer, exporter, qid, f"po-{i}", amount=amount)
        paid += amount
        if fate == "accept":
            await accept(net, tid)
            credited += quote["payee_amount"]
            expected = convert(amount, num, den, 2, 2, Rounding(rounding))
            assert quote["payee_amount"] == expected
        elif fate == "reject":
            await net.submit(CN, "reject_transfer", {"transfer_id": tid, "payer_bank": US})
            await net.submit(US, "refund_transfer", {"transfer_id": tid, "payee_bank": CN})
            paid -= amount
        elif fate == "expire":  # undecided past its expiry: the payer bank refunds
            net.advance(days=2)
            await net.submit(US, "refund_transfer", {"transfer_id": tid, "payee_bank": CN})
            paid -= amount
        else:
            pending += amount
    assert await net.balance(CN, exporter) == credited
    assert await net.balance(US, buyer) == 15 * PAY - paid
    audit = await net.audit()
    assert audit["ok"], audit
    for row in audit["currencies"]:
        assert row["supply"] + row["in_flight"] == (
            row["minted"] - row["burned"] - row["converted_out"] + row["converted_in"])
    assert currency_row(audit, "USD")["in_flight"] == pending
    if credited:
        assert currency_row(audit, "CNH")["converted_in"] == credited


def test_check_quoted_accept_is_pure_and_names_the_field() -> None:
    quote = Quote(quote_id=QID, payee_bank=CN, payer_bank=US, from_currency="USD",
                  to_currency="CNH", amount=PAY, payee_amount=RECEIVE,
                  rate_numerator=RATE[0], rate_denominator=RATE[1], rounding=Rounding.BANK,
                  valid_from="2025-01-06T09:00:00.000000Z",
                  valid_until="2025-01-06T09:10:00.000000Z",
                  accept_until="2025-01-06T10:10:00.000000Z")
    transfer = Transfer(transfer_id=ids("t", 1)[0], payer_bank=US, payee_bank=CN,
                        payee_account=ids("x", 1)[0], amount=PAY, currency="USD",
                        created_at="2025-01-06T09:05:00.000000Z",
                        expires_at="2025-01-07T09:05:00.000000Z", quote_id=QID,
                        payee_currency="CNH", payee_amount=RECEIVE + 1)
    now = datetime(2025, 1, 6, 9, 30, tzinfo=UTC)
    with pytest.raises(e.InvalidArgument, match="payee_amount"):
        check_quoted_accept(transfer, quote, now)
    with pytest.raises(e.NotFound):
        check_quoted_accept(transfer, None, now)


def test_a_quote_whose_window_does_not_parse_is_open_to_nobody() -> None:
    """The payee bank's server may write anything into its own quote: a window that is not
    made of timestamps is never open (a refusal, never an internal error)."""
    quote = Quote(quote_id=QID, payee_bank=CN, payer_bank=US, from_currency="USD",
                  to_currency="CNH", amount=PAY, payee_amount=RECEIVE,
                  rate_numerator=RATE[0], rate_denominator=RATE[1], rounding=Rounding.BANK,
                  valid_from="always", valid_until="never", accept_until="later")
    now = datetime(2025, 1, 6, 9, 5, tzinfo=UTC)
    with pytest.raises(e.Expired):
        check_payment(quote, currency="USD", amount=PAY, decimals=(2, 2), now=now)
    transfer = Transfer(transfer_id=ids("t", 1)[0], payer_bank=US, payee_bank=CN,
                        payee_account=ids("x", 1)[0], amount=PAY, currency="USD",
                        created_at="2025-01-06T09:05:00.000000Z",
                        expires_at="2025-01-07T09:05:00.000000Z", quote_id=QID,
                        payee_currency="CNH", payee_amount=RECEIVE)
    with pytest.raises(e.Expired):
        check_quoted_accept(transfer, quote, now)
