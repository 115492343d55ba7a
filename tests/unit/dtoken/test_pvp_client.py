"""The client side of a PvP (``dtoken.pvp``): the secret and its lock, the deadline rule, and
what a bank checks of a leg before acting on it."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from dtoken.errors import UsageError
from dtoken.models import Transfer, TransferStatus
from dtoken.money import Money
from dtoken.pvp import LegRefused, check_leg, leg_ttls, lock_of, new_secret

CURRENCIES = {"USD": 2, "CNH": 2}
LOCK = hashlib.sha256(b"\x07" * 32).hexdigest()


def leg(**kw: object) -> Transfer:
    base = Transfer(transfer_id="t" * 24, payer_bank="usbank", payee_bank="hkbank",
                    payee_account="dealer-usd", amount=Money.of(100_000, "USD", CURRENCIES),
                    created_at="2025-01-06T09:00:00.000000Z",
                    expires_at="2025-01-06T11:00:00.000000Z", originator={}, remittance="",
                    status=TransferStatus.PENDING, lock=LOCK, lock_state="locked")
    return replace(base, **kw)  # type: ignore[arg-type]


def test_the_lock_is_the_sha256_of_the_preimage_bytes() -> None:
    assert lock_of("07" * 32) == LOCK
    preimage, lock = new_secret()
    assert len(preimage) == 64
    assert lock_of(preimage) == lock
    assert new_secret()[0] != preimage
    for bad in ("07" * 31, "zz" * 32, ""):
        with pytest.raises(UsageError, match="64 hex digits"):
            lock_of(bad)


def test_the_leg_claimed_last_outlives_the_leg_claimed_first_by_the_margin() -> None:
    assert leg_ttls(3600) == (7200, 3600)
    assert leg_ttls(600, margin=120) == (720, 600)
    with pytest.raises(UsageError, match="at least 60 s"):
        leg_ttls(600, margin=59)


def test_a_leg_is_acted_on_only_if_it_says_what_the_trade_says() -> None:
    amount = Money.of(100_000, "USD", CURRENCIES)
    check_leg(leg(), lock=LOCK, amount=amount, payee_account="dealer-usd",
              deadline_after="2025-01-06T10:00:00.000000Z")
    refusals = [
        (leg(lock=""), "not locked"),
        (leg(lock="ab" * 32), "not locked"),
        (leg(lock_state="expired"), "lock does not stand"),
        (leg(lock_state=None), "lock does not stand"),
        (leg(status=TransferStatus.ACCEPTED), "not pending"),
        (leg(amount=Money.of(99_999, "USD", CURRENCIES)), "does not pay"),
        (leg(amount=Money.of(100_000, "CNH", CURRENCIES)), "does not pay"),
        (leg(payee_account="someone-else"), "does not pay"),
        (leg(expires_at="2025-01-06T10:00:00.000000Z"), "deadline is not after"),
    ]
    for bad, why in refusals:
        with pytest.raises(LegRefused, match=why):
            check_leg(bad, lock=LOCK, amount=amount, payee_account="dealer-usd",
                      deadline_after="2025-01-06T10:00:00.000000Z")
