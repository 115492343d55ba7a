"""Pure rules of conversion at the payee's bank (issue 17, item 1): FX quotes.

Owns: the conversion arithmetic (an exact integer ratio, rounded once, to the payee
currency's minor unit, the way the quote says: :func:`convert`), and what each bank checks of
a quote: the payer bank before it pays with one (:func:`check_payment`), the payee bank before
it accepts a transfer that claims one (:func:`check_quoted_accept`).

Why both check: each bank runs its own chaincode server. A dishonest payer bank can write a
transfer claiming a better rate, another amount, an expired quote or one that does not
exist; the payee bank's accept compares every field with **its own** quote (read from its
own collection, pinned to both banks) and refuses any difference, so such a transfer is
never credited and the payer bank can only refund it.

Time: the quote is open for payment in ``[valid_from, valid_until]`` by the transfer's
creation time, which is the payer client's timestamp (Fabric does not check it). That is why
the payee bank also closes its own door: it accepts only until ``accept_until``, judged by its
own transaction's time. A back-dated transfer gains nothing past that.

Must not: touch the ledger, read a clock or draw randomness (as :mod:`deposit_token.rules`).
"""

from __future__ import annotations

from datetime import datetime

from dtoken_wire.codec import MAX_AMOUNT, parse_timestamp
from dtoken_wire.enums import Rounding

from .errors import CurrencyMismatch, Expired, InvalidAmount, InvalidArgument, NotFound
from .records import Quote, Transfer

__all__ = ["check_payment", "check_quoted_accept", "convert", "matches_quote", "quote_consistent"]


def convert(
    amount: int, numerator: int, denominator: int, from_decimals: int, to_decimals: int,
    rounding: Rounding,
) -> int:
    """``amount`` minor units of the payer currency in minor units of the payee currency.

    The rate ``numerator / denominator`` is in major units (payee currency per payer
    currency); the decimals come from the network's registry. Exact integer arithmetic,
    rounded once: down for :attr:`Rounding.BANK`, up for :attr:`Rounding.PAYEE`. A result of
    zero, or above the largest amount, is refused (``INVALID_AMOUNT``).
    """
    if amount <= 0 or numerator <= 0 or denominator <= 0:
        raise InvalidAmount("an amount and a rate's terms must be positive")
    top: int = amount * numerator * 10**to_decimals
    bottom: int = denominator * 10**from_decimals
    whole, rest = divmod(top, bottom)
    if rest and rounding is Rounding.PAYEE:
        whole += 1
    if whole <= 0:
        raise InvalidAmount("the converted amount rounds to zero minor units")
    if whole > MAX_AMOUNT:
        raise InvalidAmount("the converted amount exceeds the largest amount")
    return whole


def quote_consistent(quote: Quote, from_decimals: int, to_decimals: int) -> bool:
    """Whether the quote's ``payee_amount`` is its ``amount`` at its rate, rounded as it says
    (never raises: a reader judges what another bank wrote)."""
    try:
        return quote.payee_amount == convert(quote.amount, quote.rate_numerator,
                                             quote.rate_denominator, from_decimals,
                                             to_decimals, quote.rounding)
    except InvalidAmount:
        return False


def matches_quote(transfer: Transfer, quote: Quote | None) -> bool:
    """Whether a converted transfer states its quote's terms (what a reader checks of an
    accepted one; never raises)."""
    return quote is not None and (
        quote.payer_bank, quote.payee_bank, quote.from_currency, quote.amount,
        quote.to_currency, quote.payee_amount,
    ) == (transfer.payer_bank, transfer.payee_bank, transfer.currency, transfer.amount,
          transfer.payee_currency, transfer.payee_amount)


def _within(at: datetime, quote: Quote) -> bool:
    """Whether ``at`` lies in the quote's window (a window that does not parse: never; the
    payee bank's server wrote it, and a reader judges what another bank wrote)."""
    try:
        return parse_timestamp(quote.valid_from) <= at <= parse_timestamp(quote.valid_until)
    except ValueError:
        return False


def check_payment(
    quote: Quote | None, *, currency: str, amount: int, decimals: tuple[int, int],
    now: datetime,
) -> Quote:
    """The payer bank's checks before paying ``amount`` of ``currency`` with ``quote`` (as
    read from ``pair-<payee>-<payer>``, bound and pin-checked; ``None``: absent or not valid
    there). ``decimals``: the registry's, of the quote's from and to currencies."""
    if quote is None:
        raise NotFound("the payee bank gave no such quote to this bank")
    if quote.from_currency != currency:
        raise CurrencyMismatch("the payer account is not in the quote's from_currency")
    if amount != quote.amount:
        raise InvalidArgument("request.amount must be the quote's amount")
    if not _within(now, quote):
        raise Expired("the quote is not open for payment at this time")
    if not quote_consistent(quote, *decimals):
        raise InvalidArgument("the quote's payee_amount is not its amount at its rate")
    return quote


def check_quoted_accept(transfer: Transfer, quote: Quote | None, now: datetime) -> None:
    """The payee bank's checks before crediting a transfer that claims ``quote`` (its own,
    read from its own ``pair-<payee>-<payer>``; ``None``: absent or not valid there).

    Every field the transfer states about the conversion must be the quote's: a transfer
    claiming a better rate (a larger ``payee_amount``), another amount or currency, is
    refused; so is one made outside the quote's window, or accepted after ``accept_until``
    (``now`` is this transaction's time: the payee bank's own)."""
    if quote is None or quote.payer_bank != transfer.payer_bank or (
            quote.payee_bank != transfer.payee_bank):
        raise NotFound("the transfer names no quote this bank gave its payer bank")
    for name, claimed, given in (
        ("currency", transfer.currency, quote.from_currency),
        ("amount", transfer.amount, quote.amount),
        ("payee_currency", transfer.payee_currency, quote.to_currency),
        ("payee_amount", transfer.payee_amount, quote.payee_amount),
    ):
        if claimed != given:
            raise InvalidArgument(f"the transfer's {name} is not its quote's")
    try:
        created = parse_timestamp(transfer.created_at)
    except ValueError:  # a payer bank's server may write anything there
        raise InvalidArgument("the transfer's created_at is not a timestamp") from None
    if not _within(created, quote):
        raise Expired("the transfer was not made while its quote was open")
    try:
        closed = now > parse_timestamp(quote.accept_until)
    except ValueError:
        closed = True
    if closed:
        raise Expired("the quote's accept window has closed")
