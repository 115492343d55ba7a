"""Steps several transactions share, so each is written once.

Owns: claiming and writing an idempotency reference, reading an account (and the regulator's
hold on it), saving it, appending its history and supply records, and reading a transfer with
its decision and refund.

Must not: check access (the transaction bodies do, before any step).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import (
    CorruptState,
    DuplicateReference,
    NotFound,
)
from ..keys import (
    account_key,
    acct_collection,
    decision_key,
    history_key,
    hold_key,
    holds_collection,
    reference_key,
    refund_key,
    supply_key,
    transfer_key,
)
from ..placement import Anomaly, Place
from ..records import (
    Account,
    Decision,
    HistoryKind,
    Hold,
    ReferenceRecord,
    Refund,
    SupplyKind,
    SupplyRecord,
    Transfer,
)
from ..registry import BankInfo, Registry
from ..rules import (
    add_history,
)
from .access import (
    Tx,
)


async def claim_reference(
    tx: Tx, bank: BankInfo, reference: str, accounts: Sequence[str] = ()
) -> str:
    """The idempotency key of ``reference``; ``DUPLICATE_REFERENCE`` if it was applied.

    ``accounts`` (of the serving bank) are read in the same round trip: a transaction
    that goes on to read them then finds them in the ledger's cache.
    """
    key = reference_key(tx.deriver.reference_tag("payment", reference))
    acct = acct_collection(bank.name)
    await tx.ledger.prefetch(acct, {key: ReferenceRecord,
                                    **{account_key(a): Account for a in accounts}})
    if await tx.ledger.get(ReferenceRecord, acct, key) is not None:
        raise DuplicateReference("the client reference was applied already")
    return key


def write_reference(tx: Tx, bank: BankInfo, key: str, kind: str, ids: Sequence[str]) -> None:
    tx.ledger.put(acct_collection(bank.name), key,
                  ReferenceRecord(kind=kind, tx_id=tx.tx_id, at=tx.at, ids=tuple(ids)))


async def read_account(tx: Tx, bank: BankInfo, account_id: str, role: str = "") -> Account:
    acc = await tx.ledger.get(Account, acct_collection(bank.name), account_key(account_id))
    if acc is None:
        raise NotFound(f"the {role + ' ' if role else ''}account does not exist")
    if acc.account_id != account_id or acc.bank != bank.name:
        raise CorruptState("the account record does not match its key")
    return acc


async def read_hold(tx: Tx, registry: Registry, bank: BankInfo, account_id: str) -> Hold | None:
    """The regulator's hold on an account (none if the network has no regulator)."""
    if registry.regulator_msp_id is None:
        return None
    return await tx.ledger.get(Hold, holds_collection(bank.name), hold_key(account_id))


def save_account(tx: Tx, bank: BankInfo, account: Account) -> None:
    tx.ledger.put(acct_collection(bank.name), account_key(account.account_id), account)


def record_history(
    tx: Tx, bank: BankInfo, account: Account, kind: HistoryKind, delta: int, **extra: Any
) -> Account:
    account, record = add_history(account, kind, delta, tx_id=tx.tx_id, at=tx.at, **extra)
    tx.ledger.put(acct_collection(bank.name), history_key(record.account_id, record.seq), record)
    return account


def record_supply(
    tx: Tx,
    bank: BankInfo,
    currency: str,
    kind: SupplyKind,
    amount: int,
    counterparty: str | None = None,
    transfer_id: str | None = None,
) -> None:
    record = SupplyRecord(currency=currency, kind=kind, amount=amount, counterparty=counterparty,
                          transfer_id=transfer_id, tx_id=tx.tx_id, at=tx.at)
    tx.ledger.put(acct_collection(bank.name), supply_key(currency, tx.next_tag("supply")), record)


async def transfer_records(
    tx: Tx, payer: BankInfo, payee: BankInfo, transfer_id: str
) -> tuple[Transfer, Decision | None, Refund | None]:
    """The transfer, its decision and its refund: three point reads (all in the read set).

    Each is bound to where it lives (:mod:`deposit_token.placement`). A decision or refund that
    does not decode or disagrees with its place counts as absent: what one bank writes cannot
    block the other's accept or refund. A transfer that is not valid where it lives is refused
    (nothing can be decided on it), naming the collection.
    """
    there = Place.between(payer, payee)
    back = Place.between(payee, payer)
    key = transfer_key(transfer_id)
    record = await tx.ledger.get_bound(Transfer, there, key)
    if record is None:
        raise NotFound("the transfer does not exist (or has not reached this peer yet)")
    if isinstance(record, Anomaly):
        raise CorruptState(f"the transfer in {there.collection} is not valid there "
                           f"({record.what}): it counts for nobody")
    # (an unpinned transfer is refused even to its own payer: a refund of a record the payer
    # could rewrite alone would be as unverifiable for the payee as an accept of it)
    decision = await tx.ledger.get_bound(Decision, back, decision_key(transfer_id))
    refund = await tx.ledger.get_bound(Refund, there, refund_key(transfer_id))
    return (record, None if isinstance(decision, Anomaly) else decision,
            None if isinstance(refund, Anomaly) else refund)
