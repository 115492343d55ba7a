"""Conversion at the payee's bank (issue 17, item 1): FX quotes and paying with them.

Owns: ``offer_quote`` (the payee bank writes its firm rate for one payment into
``pair-<payee>-<payer>``, pinned to both banks so neither alone can alter it afterwards),
``get_quote`` (either bank of the pair, or the regulator, reads it) and ``pay_with_quote``
(the payer bank debits its customer in the payer currency into a transfer that carries the
quote id, the payee currency and the payee amount). The payee bank's accept of such a
transfer is :func:`deposit_token.operations.decisions.decide_one`, which credits the payee
amount in the payee currency after :func:`deposit_token.conversion.check_quoted_accept`.

What each transaction reads and writes:

* ``offer_quote`` point-reads ``quote/<id>`` (write-once: a pinned key must never be
  rewritten) and writes it with its pin;
* ``pay_with_quote`` point-reads the quote (bound to its place and pin-checked: a "quote" the
  payer bank wrote in its own collection is not in this place) and the bank's own
  ``quse/<id>`` note, then writes what ``initiate_transfer`` writes plus that note: a quote
  pays once.

Must not: convert except through :mod:`deposit_token.conversion`; trust a quote that is not
bound to ``pair-<payee>-<payer>`` with both banks' pin.
"""

from __future__ import annotations

from datetime import timedelta

from dtoken_wire.codec import format_timestamp
from dtoken_wire.requests import OfferQuoteRequest, PayWithQuoteRequest, QuoteLookup

from ..conversion import check_payment, convert
from ..errors import AlreadyExists, CurrencyMismatch, NotFound
from ..keys import quote_key
from ..placement import Place, pair_pin
from ..records import Quote
from ..registry import Registry
from .access import (
    ROLE_OPERATOR,
    Tx,
    authorize_bank_write,
    authorize_read,
    done,
    load_registry,
    member_bank,
    other_bank,
)
from .crossbank import _payout
from .declare import declare
from .steps import read_account, read_quote, read_quote_use

__all__ = ["get_quote", "offer_quote", "pay_with_quote", "quote_decimals"]


def quote_decimals(registry: Registry, from_currency: str, to_currency: str) -> tuple[int, int]:
    """The registry's decimals of a quote's two currencies (each must be the network's)."""
    out: list[int] = []
    for name, code in (("from_currency", from_currency), ("to_currency", to_currency)):
        decimals = registry.decimals(code)
        if decimals is None:
            raise CurrencyMismatch(f"request.{name} is not a currency of the network")
        out.append(decimals)
    return out[0], out[1]


@declare()
async def offer_quote(tx: Tx, req: OfferQuoteRequest) -> dict[str, object]:
    """At the payee's bank: a firm FX rate to one payer bank for one payment, open for
    ``ttl_seconds``, honoured at accept until ``accept_seconds`` after that."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payer = other_bank(registry, bank, req.payer_bank, "payer_bank")
    decimals = quote_decimals(registry, req.from_currency, req.to_currency)
    if not registry.issues(bank.name, req.to_currency):
        raise CurrencyMismatch("this bank issues no token in request.to_currency")
    if not registry.issues(payer.name, req.from_currency):
        raise CurrencyMismatch("the payer bank issues no token in request.from_currency")
    payee_amount = convert(req.amount, req.rate_numerator, req.rate_denominator, *decimals,
                           req.rounding)
    place = Place.between(bank, payer)
    key = quote_key(req.quote_id)
    if await tx.ledger.get_bound(Quote, place, key) is not None:
        # whatever is there (even garbage): a pinned key is written once
        raise AlreadyExists("request.quote_id is taken")
    valid_until = tx.now + timedelta(seconds=req.ttl_seconds)
    tx.ledger.put(place.collection, key, Quote(
        quote_id=req.quote_id, payee_bank=bank.name, payer_bank=payer.name,
        from_currency=req.from_currency, to_currency=req.to_currency, amount=req.amount,
        payee_amount=payee_amount, rate_numerator=req.rate_numerator,
        rate_denominator=req.rate_denominator, rounding=req.rounding, valid_from=tx.at,
        valid_until=format_timestamp(valid_until),
        accept_until=format_timestamp(valid_until + timedelta(seconds=req.accept_seconds)),
        tx_id=tx.tx_id,
    ), pin=pair_pin(bank, payer))
    return done(tx)


@declare(evaluate=True)
async def get_quote(tx: Tx, req: QuoteLookup) -> dict[str, object]:
    """One quote as its payee bank wrote it (either bank of the pair, or the regulator)."""
    registry = await load_registry(tx)
    payee = member_bank(registry, req.payee_bank, "payee_bank")
    payer = other_bank(registry, payee, req.payer_bank, "payer_bank")
    authorize_read(tx, registry, [payee, payer])
    quote = await read_quote(tx, payee, payer, req.quote_id)
    if quote is None:
        raise NotFound("the payee bank gave no such quote to the payer bank")
    return {"quote": quote.to_json()}


@declare()
async def pay_with_quote(tx: Tx, req: PayWithQuoteRequest) -> dict[str, object]:
    """At the payer's bank: a cross-bank transfer converted at the payee bank's quote (the
    payer debited in its currency; the payee credited the quote's amount in the payee's)."""
    registry = await load_registry(tx)
    bank = authorize_bank_write(tx, registry, ROLE_OPERATOR)
    payee = other_bank(registry, bank, req.payee_bank, "payee_bank")
    quote = await read_quote(tx, payee, bank, req.quote_id)
    payer = await read_account(tx, bank, req.payer_account, "payer")
    decimals = (quote_decimals(registry, quote.from_currency, quote.to_currency)
                if quote is not None else (0, 0))
    quote = check_payment(quote, currency=payer.currency, amount=req.amount,
                          decimals=decimals, now=tx.now)
    if await read_quote_use(tx, bank, quote.quote_id) is not None:
        raise AlreadyExists("the quote was paid with already (a quote pays once)")
    return await _payout(tx, "pay_with_quote", req.reference, req.payer_account,
                         (req.payment,), req.ttl_seconds, req.originator, cross_only=True,
                         quote=quote)
