"""Payment versus payment with a third bank as FX dealer: hash-locked legs, client side.

Owns: the secret and its lock (:func:`new_secret`, :func:`lock_of`), the deadline rule
(:func:`leg_ttls`), what a bank checks of a leg before it acts on it (:func:`check_leg`), and
:func:`pvp`, which runs both legs of one trade through the three banks' SDKs (the demo's and
the integration test's story; in production each bank runs its own step, as its listener
does). The contract's side is ``deposit_token.operations.pvp``; docs/token-model.md,
"Payment versus payment", works out why the legs settle both or neither.

The trade: a buyer at bank A pays USD to the dealer's USD account at bank B (leg 1, A->B);
the dealer pays CNH from its CNH account at B to the exporter at bank C (leg 2, B->C). The
exporter's bank C draws the secret and hands out only its lock. Leg 2 is claimed first
(C reveals the preimage in its decision); the dealer's bank reads it there and claims leg 1.
So leg 1, claimed last, has the later deadline: ``ttl(leg 1) >= ttl(leg 2) + margin``.

Must not: send a preimage anywhere but in a claim; act on a leg it has not checked.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from dtoken_wire.enums import TransferStatus

from dtoken.bank import Bank
from dtoken.errors import UsageError
from dtoken.models import Transfer
from dtoken.money import Money
from dtoken.submitter import Receipt

__all__ = [
    "LegRefused",
    "PreimageBook",
    "PvpResult",
    "check_leg",
    "leg_ttls",
    "lock_of",
    "new_secret",
    "pvp",
]

#: The least time the last claimer keeps after the first claim's deadline (the dealer's
#: bank must see the revealed preimage and commit its claim before leg 1's deadline).
MIN_MARGIN_SECONDS = 60


class LegRefused(UsageError):
    """A leg does not say what the trade needs (lock, amount, payee, deadline): not acted on."""


def lock_of(preimage: str) -> str:
    """SHA-256 (hex) of the 32-byte preimage given as 64 hex digits: what the legs are locked
    under (the contract computes the same)."""
    try:
        raw = bytes.fromhex(preimage)
    except ValueError:
        raise UsageError("a preimage is 64 hex digits") from None
    if len(raw) != 32:
        raise UsageError("a preimage is 64 hex digits")
    return hashlib.sha256(raw).hexdigest()


def new_secret() -> tuple[str, str]:
    """A fresh ``(preimage, lock)``: the preimage stays with the exporter's bank until it
    claims leg 2; the lock goes to the buyer's and the dealer's banks."""
    preimage = secrets.token_hex(32)
    return preimage, lock_of(preimage)


def leg_ttls(first_claimed_ttl: int, margin: int = 3600) -> tuple[int, int]:
    """``(ttl of leg 1, ttl of leg 2)`` in seconds, leg 2 being claimed first: leg 1, claimed
    last (by the party that learns the preimage last), must outlive leg 2 by ``margin``."""
    if margin < MIN_MARGIN_SECONDS:
        raise UsageError(f"the margin between the deadlines is at least {MIN_MARGIN_SECONDS} s")
    return first_claimed_ttl + margin, first_claimed_ttl


def check_leg(
    leg: Transfer, *, lock: str, amount: Money, payee_account: str,
    deadline_after: str | None = None,
) -> None:
    """Refuse to act on ``leg`` (read with ``get_transfer``) unless it is pending, locked
    under ``lock`` with its lock record standing ``locked``, for exactly
    ``amount`` to ``payee_account``, and (``deadline_after``: a stored timestamp) its deadline
    is later than that one (the dealer checks leg 1 outlives the leg 2 it is about to lock)."""
    if leg.status is not TransferStatus.PENDING:
        raise LegRefused(f"leg {leg.transfer_id} is {leg.status.value}, not pending")
    if not leg.lock or not hmac.compare_digest(leg.lock, lock):
        raise LegRefused(f"leg {leg.transfer_id} is not locked under the trade's lock")
    if leg.lock_state != "locked":
        # a payer bank's server could create the lock record already ``expired`` (it creates
        # the key alone): such a leg can never be claimed, and it refunds at once. Once seen
        # ``locked``, the pin keeps it so until the payer and the regulator (or the payee)
        # expire it.
        raise LegRefused(f"leg {leg.transfer_id}'s lock does not stand ({leg.lock_state})")
    if leg.amount != amount or leg.payee_account != payee_account:
        raise LegRefused(f"leg {leg.transfer_id} does not pay what the trade says")
    if deadline_after is not None and not leg.expires_at > deadline_after:
        raise LegRefused(f"leg {leg.transfer_id}'s deadline is not after the other leg's")


class PreimageBook:
    """The preimages one bank knows, by lock, for its listener to claim incoming legs with
    (:class:`dtoken.listener.IncomingListener`, ``preimages=``): those it drew (the
    exporter's bank, :meth:`remember`) and those revealed in the payee's claim of an outgoing
    leg it watches (the dealer's bank, :meth:`watch`). Kept in memory: a restarted listener
    is given them again (a drawn preimage is the bank's secret to store as it stores keys).
    """

    def __init__(self, bank: Bank) -> None:
        self._bank = bank
        self._known: dict[str, str] = {}
        self._watched: dict[str, list[tuple[str, str]]] = {}

    def remember(self, preimage: str) -> str:
        """Keep a preimage this bank drew; its lock."""
        lock = lock_of(preimage)
        self._known[lock] = preimage
        return lock

    def watch(self, transfer_id: str, payee_bank: str, lock: str) -> None:
        """An outgoing leg under ``lock`` whose claim will reveal the preimage."""
        self._watched.setdefault(lock, []).append((transfer_id, payee_bank))

    async def __call__(self, transfer: Transfer) -> str | None:
        """The preimage of ``transfer``'s lock, if known or revealed by now."""
        found = self._known.get(transfer.lock)
        if found is not None:
            return found
        for transfer_id, payee_bank in self._watched.get(transfer.lock, []):
            leg = await self._bank.get_transfer(transfer_id, self._bank.name, payee_bank)
            if leg.preimage and hmac.compare_digest(lock_of(leg.preimage), transfer.lock):
                self._known[transfer.lock] = leg.preimage
                return leg.preimage
        return None


@dataclass(frozen=True)
class PvpResult:
    """Both legs of one trade and the receipts of their claims."""

    leg1: Transfer
    leg2: Transfer
    claim2: Receipt
    claim1: Receipt


async def pvp(
    buyer_bank: Bank, buyer_account: str, dealer_bank: Bank, dealer_usd: str, dealer_cnh: str,
    exporter_bank: Bank, exporter_account: str, pay: Money, receive: Money, *,
    reference: str, ttl_seconds: int = 3600, margin: int = 3600,
) -> PvpResult:
    """One trade, both legs, each step by the bank whose step it is, each checked first:

    1. the exporter's bank draws the secret (the preimage never leaves it until its claim);
    2. the buyer's bank locks leg 1 (``pay`` to the dealer's account at the dealer's bank);
    3. the dealer's bank checks leg 1, then locks leg 2 (``receive`` to the exporter), with
       the earlier deadline;
    4. the exporter's bank checks leg 2, then claims it with the preimage;
    5. the dealer's bank reads the preimage in that claim and claims leg 1.
    """
    preimage, lock = new_secret()
    ttl1, ttl2 = leg_ttls(ttl_seconds, margin)
    p1 = await buyer_bank.lock(buyer_account, dealer_bank.name, dealer_usd, pay, lock=lock,
                               ttl_seconds=ttl1, reference=f"{reference}/leg1")
    assert p1.transfer_id is not None
    await dealer_bank.wait_for_commit(p1.receipt.tx_id)
    leg1 = await dealer_bank.get_transfer(p1.transfer_id, buyer_bank.name, dealer_bank.name)
    check_leg(leg1, lock=lock, amount=pay, payee_account=dealer_usd)
    p2 = await dealer_bank.lock(dealer_cnh, exporter_bank.name, exporter_account, receive,
                                lock=lock, ttl_seconds=ttl2, reference=f"{reference}/leg2")
    assert p2.transfer_id is not None
    await exporter_bank.wait_for_commit(p2.receipt.tx_id)
    leg2 = await exporter_bank.get_transfer(p2.transfer_id, dealer_bank.name,
                                            exporter_bank.name)
    check_leg(leg2, lock=lock, amount=receive, payee_account=exporter_account)
    if not leg1.expires_at > leg2.expires_at:
        raise LegRefused("leg 1 must outlive leg 2")
    claim2 = await exporter_bank.claim(p2.transfer_id, dealer_bank.name, preimage)
    await dealer_bank.wait_for_commit(claim2.tx_id)
    revealed = await dealer_bank.get_transfer(p2.transfer_id, dealer_bank.name,
                                              exporter_bank.name)
    claim1 = await dealer_bank.claim(p1.transfer_id, buyer_bank.name, revealed.preimage)
    return PvpResult(leg1, revealed, claim2, claim1)
