"""``Money``: an amount in integer minor units of one currency, parsed and printed exactly.

Never a float: ``"1,250.00 USD"`` parses digit by digit into ``Money(125000, "USD", 2)`` and
prints back the same way. Parsing is strict: thousands separators, if any, must group by three;
the fraction may not have more digits than the currency's decimals (nothing is rounded); the
currency code must be one the network knows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

from dtoken_wire.codec import MAX_AMOUNT
from dtoken_wire.fields import CURRENCY_RE

from dtoken.errors import MoneyFormatError

__all__ = ["MAX_MINOR", "Money"]

#: Largest amount the contract accepts (a signed 64-bit integer of minor units): the wire's
#: ``MAX_AMOUNT``.
MAX_MINOR = MAX_AMOUNT
_NUMBER = re.compile(
    r"(?P<sign>-)?(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?"
)


@dataclass(frozen=True, order=False)
class Money:
    """``minor`` units of ``currency``, which has ``decimals`` digits after the point."""

    minor: int
    currency: str
    decimals: int

    def __post_init__(self) -> None:
        if type(self.minor) is not int:
            raise TypeError("Money.minor must be an int (minor units), never a float")
        if not CURRENCY_RE.fullmatch(self.currency):
            raise ValueError(f"{self.currency!r} is not a currency code")
        if type(self.decimals) is not int or not 0 <= self.decimals <= 18:
            raise ValueError("Money.decimals must be an int between 0 and 18")

    @classmethod
    def of(cls, minor: int, currency: str, currencies: Mapping[str, int]) -> Money:
        """``minor`` units of ``currency``, with the decimals the network declares for it."""
        return cls(minor, currency, _decimals(currency, currencies))

    @classmethod
    def parse(
        cls,
        text: str,
        currencies: Mapping[str, int],
        *,
        currency: str | None = None,
        allow_negative: bool = False,
    ) -> Money:
        """Parse ``"1,250.00 USD"``, ``"USD 1250"``, or ``"1250.5"`` when ``currency`` is given.

        ``currencies`` maps each known code to its decimals. ``currency``, if given, is the
        expected currency: a text naming another one is refused, a bare number takes it.
        Raises :class:`~dtoken.errors.MoneyFormatError` (a ``ValueError``).
        """
        parts = text.strip().split()
        codes = [p for p in parts if CURRENCY_RE.fullmatch(p)]
        numbers = [p for p in parts if not CURRENCY_RE.fullmatch(p)]
        if len(numbers) != 1 or len(codes) > 1 or len(parts) != len(numbers) + len(codes):
            raise MoneyFormatError(f"{text!r} is not an amount like '1,250.00 USD'")
        code = codes[0] if codes else currency
        if code is None:
            raise MoneyFormatError(f"{text!r} names no currency (write e.g. '1,250.00 USD')")
        if currency is not None and code != currency:
            raise MoneyFormatError(f"{text!r} is not in {currency}")
        decimals = _decimals(code, currencies)
        found = _NUMBER.fullmatch(numbers[0])
        if found is None:
            raise MoneyFormatError(f"{text!r} is not an amount like '1,250.00 {code}'")
        frac = found.group("frac") or ""
        if len(frac) > decimals:
            raise MoneyFormatError(
                f"{text!r} has more than {decimals} decimals for {code} (nothing is rounded)"
            )
        minor = int(found.group("int").replace(",", "") + frac.ljust(decimals, "0"))
        if found.group("sign"):
            if not allow_negative:
                raise MoneyFormatError(f"{text!r} is negative")
            minor = -minor
        if abs(minor) > MAX_MINOR:
            raise MoneyFormatError(f"{text!r} is too large")
        return cls(minor, code, decimals)

    def format(self, *, code: bool = True) -> str:
        """``"1,250.00 USD"`` (``code=False``: ``"1,250.00"``)."""
        sign = "-" if self.minor < 0 else ""
        digits = str(abs(self.minor)).rjust(self.decimals + 1, "0")
        whole = digits[: len(digits) - self.decimals] if self.decimals else digits
        frac = digits[len(digits) - self.decimals :] if self.decimals else ""
        text = f"{sign}{int(whole):,}" + (f".{frac}" if frac else "")
        return f"{text} {self.currency}" if code else text

    def __str__(self) -> str:
        return self.format()

    def _same(self, other: Money) -> None:
        if (other.currency, other.decimals) != (self.currency, self.decimals):
            raise ValueError(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor + other.minor, self.currency, self.decimals)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.minor - other.minor, self.currency, self.decimals)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency, self.decimals)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor < other.minor

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.minor <= other.minor

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.minor > other.minor

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.minor >= other.minor

    def zero(self) -> Self:
        """Zero in the same currency."""
        return type(self)(0, self.currency, self.decimals)


def _decimals(code: str, currencies: Mapping[str, int]) -> int:
    if not CURRENCY_RE.fullmatch(code):
        raise MoneyFormatError(f"{code!r} is not a currency code")
    decimals = currencies.get(code)
    if decimals is None:
        known = ", ".join(sorted(currencies)) or "none"
        raise MoneyFormatError(f"{code} is not a currency of this network (known: {known})")
    return decimals
