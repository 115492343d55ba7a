"""Money: integer minor units, parsed and printed exactly, strictly."""

from __future__ import annotations

import pytest
from dtoken.errors import MoneyFormatError, UsageError
from dtoken.money import MAX_MINOR, Money
from hypothesis import given
from hypothesis import strategies as st

CURRENCIES = {"USD": 2, "JPY": 0, "BHD": 3}


@pytest.mark.parametrize(
    ("text", "minor", "currency"),
    [
        ("1,250.00 USD", 125_000, "USD"),
        ("1250 USD", 125_000, "USD"),
        ("USD 1250.5", 125_050, "USD"),
        ("0.01 USD", 1, "USD"),
        ("1,234,567.891 BHD", 1_234_567_891, "BHD"),
        ("12,000 JPY", 12_000, "JPY"),
        ("  7 USD ", 700, "USD"),
    ],
)
def test_parse_reads_digits_exactly(text: str, minor: int, currency: str) -> None:
    money = Money.parse(text, CURRENCIES)
    assert (money.minor, money.currency) == (minor, currency)
    assert type(money.minor) is int


@pytest.mark.parametrize(
    "text",
    [
        "1.001 USD",  # more decimals than the currency has: never rounded
        "1.5 JPY",
        "1,25.00 USD",  # bad grouping
        "12,50 USD",
        "1,2500 USD",
        "1e3 USD",
        "1_000 USD",
        "-5 USD",
        "5 EUR",  # not a currency of the network
        "5 usd",
        "5 USD HKD",
        "USD",
        "",
        "5",  # no currency and none expected
        ".5 USD",
        "5. USD",
        "nan USD",
        f"{MAX_MINOR + 1} JPY",
    ],
)
def test_parse_refuses_anything_inexact_or_ambiguous(text: str) -> None:
    with pytest.raises(MoneyFormatError):
        Money.parse(text, CURRENCIES)


def test_an_expected_currency_fills_a_bare_number_and_refuses_another() -> None:
    assert Money.parse("2.50", CURRENCIES, currency="USD") == Money(250, "USD", 2)
    with pytest.raises(MoneyFormatError):
        Money.parse("2.50 BHD", CURRENCIES, currency="USD")
    assert Money.parse("-2.50", CURRENCIES, currency="USD", allow_negative=True).minor == -250
    assert issubclass(MoneyFormatError, UsageError)
    assert issubclass(MoneyFormatError, ValueError)


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(125_000, "USD", 2), "1,250.00 USD"),
        (Money(5, "USD", 2), "0.05 USD"),
        (Money(0, "USD", 2), "0.00 USD"),
        (Money(-125_050, "USD", 2), "-1,250.50 USD"),
        (Money(1_000_000, "JPY", 0), "1,000,000 JPY"),
        (Money(1, "BHD", 3), "0.001 BHD"),
    ],
)
def test_format_prints_grouped_with_every_decimal(money: Money, text: str) -> None:
    assert str(money) == text
    assert money.format(code=False) == text.rsplit(" ", 1)[0]


@given(st.integers(min_value=0, max_value=MAX_MINOR), st.sampled_from(sorted(CURRENCIES)))
def test_format_then_parse_is_the_identity(minor: int, currency: str) -> None:
    money = Money.of(minor, currency, CURRENCIES)
    assert Money.parse(str(money), CURRENCIES) == money


def test_money_refuses_floats_and_mixing_currencies() -> None:
    with pytest.raises(TypeError):
        Money(12.5, "USD", 2)  # type: ignore[arg-type]
    usd, jpy = Money(100, "USD", 2), Money(100, "JPY", 0)
    assert usd + usd == Money(200, "USD", 2)
    assert usd - Money(150, "USD", 2) == Money(-50, "USD", 2)
    assert Money(1, "USD", 2) < usd
    with pytest.raises(ValueError, match="cannot combine"):
        _ = usd + jpy
    with pytest.raises(ValueError, match="cannot combine"):
        _ = usd > jpy
