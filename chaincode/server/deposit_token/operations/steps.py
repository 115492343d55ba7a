"""Steps several transactions share, so each is written once.

Owns: claiming and writing an idempotency reference, a bank's account keys (its own server
derives them, the regulator's reads them from ``keys/accounts``), reading an account (and the
regulator's hold on it), saving it, appending its history and supply records, and reading a
transfer with its decision and refund.

Must not: check access (the transaction bodies do, before any step).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from dtoken_wire.events import EVENT_PENDING

from ..errors import (
    AlreadyExists,
    CorruptState,
    DuplicateReference,
    NotFound,
)
from ..keys import (
    ACCOUNT_KEYS_KEY,
    AccountKeys,
    acct_collection,
    decision_key,
    holds_collection,
    lock_key,
    opened_key,
    outgoing_key,
    pair_collection,
    quote_key,
    quote_use_key,
    reference_key,
    reference_tag_of,
    refund_key,
    supply_key,
    transfer_key,
)
from ..ledger import Ledger
from ..placement import Anomaly, Place, lock_pin, pair_pin
from ..records import (
    Account,
    AccountKeysRecord,
    Decision,
    HistoryItem,
    HistoryKind,
    HistoryRecord,
    Hold,
    Lane,
    LockRecord,
    LockState,
    Opened,
    Outcome,
    OutgoingRecord,
    Quote,
    QuoteUse,
    ReferenceRecord,
    Refund,
    SupplyKind,
    SupplyRecord,
    Transfer,
)
from ..registry import BankInfo, Registry
from ..rules import add_history, decision_matches, gate_lock
from .access import (
    HistoryGroup,
    SupplySum,
    Tx,
    load_registry,
)


async def account_keys(tx: Tx, bank: BankInfo) -> AccountKeys | None:
    """The keys of ``bank``'s accounts, or ``None`` if they cannot be known here.

    The bank's own server derives them from its secret. Any other server (the regulator's:
    the only other member of ``acct-<bank>``) reads the account key the bank wrote under
    ``keys/accounts``; ``None`` if the bank has not written it (it has opened no account) or
    wrote something that is not one (which only the bank's peer could: the bank's accounts
    are then out of the regulator's reach, which its audit shows).
    """
    known = tx.keyrings.get(bank.name)
    if known is not None:
        return known
    regulator = tx.registry.regulator_msp_id if tx.registry is not None else None
    if bank.msp_id == tx.server_msp:
        keys: AccountKeys | None = tx.deriver.account_keys()
    elif regulator is None:
        keys = None
    else:
        found = await tx.ledger.get_bound(AccountKeysRecord,
                                          Place.shared_keys(bank, regulator), ACCOUNT_KEYS_KEY)
        keys = None if found is None or isinstance(found, Anomaly) else AccountKeys(found.key)
    if keys is not None:
        tx.keyrings[bank.name] = keys
    return keys


async def own_account_keys(tx: Tx, registry: Registry, bank: BankInfo) -> AccountKeys:
    """The serving bank's account keys, shared with the regulator on first use: written once
    under ``keys/accounts`` (a point read first, so later transactions only read it), pinned
    to the bank's and the regulator's peers (no later change by the bank alone)."""
    keys = tx.deriver.account_keys()
    coll = acct_collection(bank.name)
    regulator = registry.regulator_msp_id
    if regulator is not None and await tx.ledger.get(
            AccountKeysRecord, coll, ACCOUNT_KEYS_KEY) is None:
        tx.ledger.put(coll, ACCOUNT_KEYS_KEY, AccountKeysRecord(key=keys.key),
                      pin=Place.shared_keys(bank, regulator).pin)
    tx.keyrings[bank.name] = keys
    return keys


async def _keys_or_absent(tx: Tx, bank: BankInfo, role: str = "") -> AccountKeys:
    keys = await account_keys(tx, bank)
    if keys is None:
        raise NotFound(f"the {role + ' ' if role else ''}account does not exist")
    return keys


async def claim_reference(
    tx: Tx, bank: BankInfo, reference: str, accounts: Sequence[str] = ()
) -> str:
    """The idempotency key of ``reference``; ``DUPLICATE_REFERENCE`` if it was applied.

    ``accounts`` (of the serving bank) are read in the same round trip: a transaction
    that goes on to read them then finds them in the ledger's cache.
    """
    key = reference_key(tx.deriver.reference_tag("payment", reference))
    acct = acct_collection(bank.name)
    keys = tx.deriver.account_keys()  # the serving bank's own
    await tx.ledger.prefetch(acct, {key: ReferenceRecord,
                                    **{keys.account(a): Account for a in accounts}})
    if await tx.ledger.get(ReferenceRecord, acct, key) is not None:
        raise DuplicateReference("the client reference was applied already")
    return key


def write_reference(
    tx: Tx, bank: BankInfo, key: str, kind: str, ids: Sequence[str], account: str | None = None
) -> None:
    """Record the client reference ``key`` as applied (``account``: the payer account of the
    cross-bank transfers among ``ids``, whose ``payer_ref`` points here)."""
    tx.ledger.put(acct_collection(bank.name), key, ReferenceRecord(
        kind=kind, tx_id=tx.tx_id, at=tx.at, ids=tuple(ids), account=account))


async def refund_account(tx: Tx, bank: BankInfo, transfer: Transfer) -> str:
    """The payer account of the serving bank's own ``transfer``, which a refund credits: the
    one its reference record names (the record must name the transfer too), or, for a
    transfer written before ``payer_ref``, its ``out/`` note. ``NOT_FOUND`` otherwise."""
    acct = acct_collection(bank.name)
    if transfer.payer_ref:
        ref = await tx.ledger.get(ReferenceRecord, acct, reference_key(transfer.payer_ref))
        if ref is not None and ref.account and transfer.transfer_id in ref.ids:
            return ref.account
    else:
        out = await tx.ledger.get(OutgoingRecord, acct, outgoing_key(transfer.transfer_id))
        if out is not None and out.payee_bank == transfer.payee_bank:
            return out.payer_account
    raise NotFound("the bank initiated no such transfer")


async def read_account(tx: Tx, bank: BankInfo, account_id: str, role: str = "") -> Account:
    keys = await _keys_or_absent(tx, bank, role)
    acc = await tx.ledger.get(Account, acct_collection(bank.name), keys.account(account_id))
    if acc is None:
        raise NotFound(f"the {role + ' ' if role else ''}account does not exist")
    if acc.account_id != account_id or acc.bank != bank.name:
        raise CorruptState("the account record does not match its key")
    return acc


async def read_hold(tx: Tx, registry: Registry, bank: BankInfo, account_id: str) -> Hold | None:
    """The regulator's hold on an account (none if the network has no regulator)."""
    if registry.regulator_msp_id is None:
        return None
    keys = await _keys_or_absent(tx, bank)
    return await tx.ledger.get(Hold, holds_collection(bank.name), keys.hold(account_id))


def save_account(tx: Tx, bank: BankInfo, account: Account) -> None:
    """Write an account (or one of its balance lanes) of the serving bank, keyed under its
    own account key."""
    keys = tx.deriver.account_keys()
    key = (keys.lane(account.account_id, account.lane) if isinstance(account, Lane)
           else keys.account(account.account_id))
    tx.ledger.put(acct_collection(bank.name), key, account)


def record_history(
    tx: Tx, bank: BankInfo, account: Account, kind: HistoryKind, delta: int, **extra: Any
) -> Account:
    """Note an event of ``account`` (its balance already the one after it); the account with
    its history numbering advanced, which the caller saves.

    One transaction's events on one account (or lane) make one history record, written
    when the body has succeeded (:func:`write_grouped`): the first event takes the account's
    next number, the others join it as items (:class:`~deposit_token.records.HistoryRecord`).
    A batch of 500 payments from one account writes one history record, not 500."""
    where = (bank.name, account.account_id, account.lane)
    group = tx.history.get(where)
    if group is None:
        account, record = add_history(account, kind, delta, tx_id=tx.tx_id, at=tx.at, **extra)
        tx.history[where] = HistoryGroup(bank.name, record)
    else:
        group.more.append(HistoryItem(kind, delta, account.balance, **extra))
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
    """Note a movement of ``bank``'s supply. Movements of one transaction with the same
    currency, kind and counterparty are written as one record (:func:`write_grouped`, when
    the body has succeeded): a batch of 500 payments writes one supply record, not 500.
    Every private key written costs each peer a decode of the namespace's collection package
    at validation (docs/benchmarks.md, "Where the CPU goes"), and the audit only sums them."""
    group = (bank.name, currency, kind.value, counterparty)
    noted = tx.supply.get(group)
    if noted is None:
        tx.supply[group] = SupplySum(amount, transfer_id)
    else:
        noted.amount += amount
        noted.transfer_id = None


def announce_pending(tx: Tx, payee_banks: Iterable[str]) -> None:
    """The ``TransferPending`` event of a transaction that opened transfers toward
    ``payee_banks``: their names and the transaction's time, which the transfers' ``open/``
    index entries carry (so a payee bank's listener reads exactly those: ``get_pending`` with
    ``since`` = ``until`` = ``at``)."""
    tx.ledger.set_event(EVENT_PENDING, {"payee_banks": sorted(set(payee_banks)), "at": tx.at})


def write_grouped(tx: Tx) -> None:
    """Write what the body noted to be written once per group, when it has succeeded: the
    supply records :func:`record_supply` noted (a record of one movement keeps its transfer
    id, a sum of several has none), the history records :func:`record_history` noted (one per
    account and lane), and the ``open/`` index entries :func:`write_outgoing_transfer` noted
    (one per pair). Groups are written in the order they were first noted, so both endorsing
    peers write the same keys."""
    for (bank, currency, kind, counterparty), noted in tx.supply.items():
        record = SupplyRecord(currency=currency, kind=SupplyKind(kind), amount=noted.amount,
                              counterparty=counterparty, transfer_id=noted.transfer_id,
                              tx_id=tx.tx_id, at=tx.at)
        tx.ledger.put(acct_collection(bank), supply_key(currency, tx.next_tag("supply")),
                      record)
    tx.supply.clear()
    if tx.history:
        keys = tx.deriver.account_keys()  # only the serving bank writes its accounts' history
        for group in tx.history.values():
            history = HistoryRecord.of_events(group.first, group.more)
            tx.ledger.put(acct_collection(group.bank),
                          keys.history(history.account_id, history.seq), history)
        tx.history.clear()
    for pair, ids in tx.opened.items():
        tx.ledger.put(pair, opened_key(tx.at, ids[0]),
                      Opened(transfer_ids=tuple(ids), tx_id=tx.tx_id))
    tx.opened.clear()


async def transfer_records(
    tx: Tx, payer: BankInfo, payee: BankInfo, transfer_id: str
) -> tuple[Transfer, Decision | None, Refund | None]:
    """The transfer, its decision and its refund: three point reads (all in the read set).

    Each is bound to where it lives (:mod:`deposit_token.placement`). A decision or refund that
    does not decode or disagrees with its place counts as absent: what one bank writes cannot
    block the other's accept or refund. A transfer that is not valid where it lives is refused
    (nothing can be decided on it), naming the collection.
    """
    record, decision, refund, _lock = await pair_records(
        tx.ledger, payer, payee, transfer_id, lambda: _regulator_msp(tx))
    return record, decision, refund


async def _regulator_msp(tx: Tx) -> str | None:
    return (await load_registry(tx)).regulator_msp_id


async def pair_records(
    ledger: Ledger, payer: BankInfo, payee: BankInfo, transfer_id: str,
    regulator_msp: Callable[[], Awaitable[str | None]],
) -> tuple[Transfer, Decision | None, Refund | None, LockRecord | None]:
    """:func:`transfer_records` over a ledger, with the lock of a hash-locked leg (``None``
    for an ordinary transfer). ``regulator_msp`` gives the regulator's MSP id (the lock's pin
    names it), asked only for a hash-locked leg: the contract takes it from its registry, the
    storage chaincode's top-level expiry from the lock's own pin (``pvp``)."""
    there = Place.between(payer, payee)
    back = Place.between(payee, payer)
    key = transfer_key(transfer_id)
    record = await ledger.get_bound(Transfer, there, key)
    if record is None:
        raise NotFound("the transfer does not exist (or has not reached this peer yet)")
    if isinstance(record, Anomaly):
        raise CorruptState(f"the transfer in {there.collection} is not valid there "
                           f"({record.what}): it counts for nobody")
    # (an unpinned transfer is refused even to its own payer: a refund of a record the payer
    # could rewrite alone would be as unverifiable for the payee as an accept of it)
    decision = await ledger.get_bound(Decision, back, decision_key(transfer_id))
    refund = await ledger.get_bound(Refund, there, refund_key(transfer_id))
    if decision is not None and not isinstance(decision, Anomaly) and not decision_matches(
        record, decision
    ):
        # the netting counts it for nobody (decision_mismatch): it must not block the payer's
        # refund either, or the payer's customer would be debited for good
        decision = None
    decision = None if isinstance(decision, Anomaly) else decision
    refund = None if isinstance(refund, Anomaly) else refund
    lock = None
    if record.lock:
        # a hash-locked leg: a claim that does not open the lock, a late claim, a refund the
        # payer wrote alone before the lock was expired, count as absent here too
        lock = await lock_at(ledger, payer, payee, await regulator_msp(), transfer_id)
        decision, refund, _ = gate_lock(record, decision, refund, lock)
    return record, decision, refund, lock


async def read_lock(
    tx: Tx, payer: BankInfo, payee: BankInfo, transfer_id: str
) -> LockRecord | None:
    """The ``lock/<id>`` record of a hash-locked transfer, bound to ``pair-<payer>-<payee>``
    and checked against :func:`deposit_token.placement.lock_pin` (one that is not valid there
    reads as absent: it stands for nothing)."""
    registry = await load_registry(tx)
    return await lock_at(tx.ledger, payer, payee, registry.regulator_msp_id, transfer_id)


async def lock_at(
    ledger: Ledger, payer: BankInfo, payee: BankInfo, regulator_msp_id: str | None,
    transfer_id: str,
) -> LockRecord | None:
    """:func:`read_lock` over a ledger, with the regulator's MSP id given."""
    found = await ledger.get_bound(
        LockRecord, Place.lock(payer, payee, regulator_msp_id), lock_key(transfer_id))
    return None if isinstance(found, Anomaly) else found


async def read_quote(tx: Tx, payee: BankInfo, payer: BankInfo, quote_id: str) -> Quote | None:
    """``quote/<id>`` of ``payee`` to ``payer``, bound to ``pair-<payee>-<payer>`` and
    pin-checked (one that is not valid there reads as absent: it stands for nothing)."""
    found = await tx.ledger.get_bound(Quote, Place.between(payee, payer), quote_key(quote_id))
    return None if isinstance(found, Anomaly) else found


async def read_quote_use(tx: Tx, bank: BankInfo, quote_id: str) -> QuoteUse | None:
    """The bank's own note that it used ``quote_id`` (``None``: not used yet)."""
    return await tx.ledger.get(QuoteUse, acct_collection(bank.name), quote_use_key(quote_id))


def write_quote_use(tx: Tx, bank: BankInfo, quote_id: str, transfer_id: str) -> None:
    """Note in the bank's own ``acct-<bank>`` that it used ``quote_id`` (for ``transfer_id``)."""
    tx.ledger.put(acct_collection(bank.name), quote_use_key(quote_id),
                  QuoteUse(quote_id=quote_id, transfer_id=transfer_id, at=tx.at,
                           tx_id=tx.tx_id))


def record_decision(
    tx: Tx, bank: BankInfo, payer: BankInfo, transfer: Transfer, outcome: Outcome,
    reason: str = "", preimage: str = "",
) -> None:
    """The payee bank's decision on ``transfer``, in ``pair-<payee>-<payer>``, pinned to both
    banks (the payer relies on it: no later change by the payee alone)."""
    tx.ledger.put(pair_collection(bank.name, payer.name), decision_key(transfer.transfer_id),
                  Decision(transfer_id=transfer.transfer_id, outcome=outcome,
                           payer_bank=payer.name, payee_bank=bank.name,
                           amount=transfer.amount, currency=transfer.currency,
                           decided_at=tx.at, reason=reason, tx_id=tx.tx_id,
                           preimage=preimage),
                  pin=pair_pin(bank, payer))


async def check_new_transfer_id(tx: Tx, bank: BankInfo, payee: BankInfo, transfer_id: str) -> None:
    """``ALREADY_EXISTS`` if the serving bank has a transfer with this id toward ``payee``
    (transfer keys are written once; an id is one transfer of its pair, which is how every
    read names it)."""
    if await tx.ledger.get(Transfer, pair_collection(bank.name, payee.name),
                           transfer_key(transfer_id)) is not None:
        raise AlreadyExists("a transfer with that id exists")


def write_outgoing_transfer(
    tx: Tx,
    bank: BankInfo,
    payee: BankInfo,
    payer: Account,
    transfer_id: str,
    *,
    ref_key: str,
    payee_account: str,
    amount: int,
    expires_at: str,
    originator: Mapping[str, str],
    remittance: str,
    lock: str = "",
    regulator_msp_id: str | None = None,
    quote: Quote | None = None,
) -> Account:
    """The payer bank's writes of one cross-bank transfer, its ``payer`` already debited:
    the transfer pinned to both banks in ``pair-<payer>-<payee>``, pointing to the payment's
    reference record ``ref_key`` (which the caller writes, naming the payer account: what a
    refund credits) and noted for the pair's ``open/`` index entry of this transaction, a
    history record, an ``out`` supply record (both grouped per transaction,
    :func:`write_grouped`), and, for a hash-locked leg, its ``lock/`` record, pinned to its
    payer and either its payee or ``regulator_msp_id``
    (:func:`deposit_token.placement.lock_pin`). Returns the payer account with its history
    counted (the caller saves it)."""
    pair = pair_collection(bank.name, payee.name)
    tx.ledger.put(pair, transfer_key(transfer_id), Transfer(
        transfer_id=transfer_id, payer_bank=bank.name, payee_bank=payee.name,
        payee_account=payee_account, amount=amount, currency=payer.currency,
        created_at=tx.at, expires_at=expires_at, originator=dict(originator),
        remittance=remittance, tx_id=tx.tx_id, lock=lock,
        quote_id=quote.quote_id if quote else "",
        payee_currency=quote.to_currency if quote else "",
        payee_amount=quote.payee_amount if quote else 0, payer_ref=reference_tag_of(ref_key),
    ), pin=pair_pin(bank, payee))
    if quote is not None:
        write_quote_use(tx, bank, quote.quote_id, transfer_id)
    if lock:
        # the lock's state, pinned with the transfer: from now on only a transaction the
        # payer's peer and the payee's or the regulator's endorse can change it (expire_lock)
        tx.ledger.put(pair, lock_key(transfer_id), LockRecord(
            transfer_id=transfer_id, payer_bank=bank.name, payee_bank=payee.name, lock=lock,
            deadline=expires_at, state=LockState.LOCKED, at=tx.at, tx_id=tx.tx_id),
            pin=lock_pin(bank, payee, regulator_msp_id))
    tx.opened.setdefault(pair, []).append(transfer_id)
    payer = record_history(tx, bank, payer, HistoryKind.PAYMENT_OUT, -amount,
                           counterparty_bank=payee.name, counterparty_account=payee_account,
                           transfer_id=transfer_id)
    record_supply(tx, bank, payer.currency, SupplyKind.OUT, amount, payee.name, transfer_id)
    return payer
