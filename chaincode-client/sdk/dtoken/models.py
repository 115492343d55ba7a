"""What the bank SDK returns: frozen value objects built from the contract's JSON answers.

Amounts are :class:`~dtoken.money.Money` (integer minor units and the currency), never floats.
Each ``from_json`` reads the contract's field names (docs/token-model.md) and fails with
:class:`~dtoken.errors.NetworkFault` if the peer answered something else. The statuses and the
timestamp format are the wire package's (:mod:`dtoken_wire`), re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from dtoken_wire import AccountStatus, TransferStatus, format_timestamp, parse_timestamp

from dtoken.errors import NetworkFault
from dtoken.money import Money
from dtoken.submitter import Receipt

__all__ = [
    "Account",
    "AccountLimits",
    "AccountStatus",
    "AccountSummary",
    "Anomaly",
    "AuditReport",
    "HistoryEntry",
    "Hold",
    "Obligation",
    "Obligations",
    "OpenedAccount",
    "Payee",
    "Payment",
    "Payout",
    "ProvenPosition",
    "Quote",
    "ReferenceInfo",
    "Supply",
    "Transfer",
    "TransferStatus",
    "format_timestamp",
    "parse_timestamp",
]

Currencies = Mapping[str, int]

def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise NetworkFault(f"the contract's answer has no valid {key!r}")
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _money(data: Mapping[str, Any], key: str, currency: str, currencies: Currencies) -> Money:
    return Money.of(_get(data, key, int), currency, currencies)


@dataclass(frozen=True)
class AccountLimits:
    """An account's limits as Money (``None``: no limit); the wire's ``dtoken_wire.Limits``
    carries the same two values in minor units."""

    single_payment: Money | None = None
    daily_outflow: Money | None = None


@dataclass(frozen=True)
class Hold:
    """A regulator's hold on an account."""

    frozen: bool
    held: Money
    reason: str
    set_at: str

    @classmethod
    def from_json(cls, data: object, currency: str, currencies: Currencies) -> Hold | None:
        """The contract's hold record (``None`` when there is none)."""
        if not isinstance(data, Mapping):
            return None
        return cls(
            frozen=bool(data.get("frozen")),
            held=_money(data, "held_amount", currency, currencies),
            reason=str(data.get("reason", "")),
            set_at=str(data.get("set_at", "")),
        )


@dataclass(frozen=True)
class Account:
    """An account as its bank (or the regulator) sees it."""

    account_id: str
    bank: str
    currency: str
    owner_ref: str
    status: AccountStatus
    balance: Money
    available: Money
    """Balance less the regulator's held amount (zero if frozen by a hold)."""
    limits: AccountLimits
    outflow_today: Money
    hold: Hold | None
    opened_at: str
    history_length: int
    """How many history records lane 0 (the account record) has written."""
    lane_balances: tuple[Money, ...] = ()
    """The balance of each balance lane (one item for an account without lanes)."""

    @property
    def lanes(self) -> int:
        """How many balance lanes the account has (docs/sdk.md, "Balance lanes")."""
        return max(1, len(self.lane_balances))

    @classmethod
    def from_json(cls, data: Mapping[str, Any], currencies: Currencies) -> Account:
        cur = _get(data, "currency", str)
        limits = _get(data, "limits", dict)

        def limit(key: str) -> Money | None:
            value = limits.get(key)
            return None if value is None else _money(limits, key, cur, currencies)

        return cls(
            account_id=_get(data, "account_id", str),
            bank=_get(data, "bank", str),
            currency=cur,
            owner_ref=_get(data, "owner_ref", str),
            status=AccountStatus(_get(data, "status", str)),
            balance=_money(data, "balance", cur, currencies),
            available=_money(data, "available", cur, currencies),
            limits=AccountLimits(limit("single_payment"), limit("daily_outflow")),
            outflow_today=_money(data, "outflow_today", cur, currencies),
            hold=Hold.from_json(data.get("hold"), cur, currencies),
            opened_at=str(data.get("opened_at", "")),
            history_length=_get(data, "seq", int),
            lane_balances=tuple(
                _money({"lane": v}, "lane", cur, currencies)
                for v in _get({"l": data.get("lane_balances", [])}, "l", list)),
        )


@dataclass(frozen=True)
class AccountSummary:
    """One line of a bank's account list."""

    account_id: str
    currency: str
    owner_ref: str
    status: AccountStatus
    balance: Money
    opened_at: str
    hold: Hold | None = None
    """The regulator's hold, if any (banks and the regulator both read it)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any], currencies: Currencies) -> AccountSummary:
        cur = _get(data, "currency", str)
        return cls(
            account_id=_get(data, "account_id", str),
            currency=cur,
            owner_ref=_get(data, "owner_ref", str),
            status=AccountStatus(_get(data, "status", str)),
            balance=_money(data, "balance", cur, currencies),
            opened_at=str(data.get("opened_at", "")),
            hold=Hold.from_json(data.get("hold"), cur, currencies),
        )


@dataclass(frozen=True)
class HistoryEntry:
    """One event of an account: ``kind`` is opened, mint, burn, transfer_in, transfer_out,
    payment_in, payment_out, refund, status or limits (or an escrow kind).

    ``seq`` numbers the history records; one transaction's events on one account share a
    record (a batch of payments from one account is one), and ``item`` is the event's place
    in it (0 for a record of one event): ``(seq, item)`` identifies an event."""

    seq: int
    kind: str
    delta: Money
    balance_after: Money
    counterparty_bank: str | None
    counterparty_account: str | None
    transfer_id: str | None
    detail: str
    tx_id: str
    at: str
    item: int = 0

    @classmethod
    def from_json(
        cls, data: Mapping[str, Any], currency: str, currencies: Currencies
    ) -> HistoryEntry:
        return cls(
            seq=_get(data, "seq", int),
            kind=_get(data, "kind", str),
            delta=_money(data, "delta", currency, currencies),
            balance_after=_money(data, "balance_after", currency, currencies),
            counterparty_bank=_opt_str(data, "counterparty_bank"),
            counterparty_account=_opt_str(data, "counterparty_account"),
            transfer_id=_opt_str(data, "transfer_id"),
            detail=str(data.get("detail", "")),
            tx_id=str(data.get("tx_id", "")),
            at=str(data.get("at", "")),
            item=_get(data, "item", int) if "item" in data else 0,
        )


@dataclass(frozen=True)
class Transfer:
    """A cross-bank transfer and where it stands."""

    transfer_id: str
    payer_bank: str
    payee_bank: str
    payee_account: str
    amount: Money
    created_at: str
    expires_at: str
    originator: Mapping[str, str]
    remittance: str
    status: TransferStatus
    decision: str | None = None
    """``accepted`` or ``rejected`` once the payee bank decided."""
    reject_reason: str | None = None
    refunded: bool = False
    lock: str = ""
    """A hash-locked leg (PvP): SHA-256 (hex) of the preimage that claims it; empty if not."""
    preimage: str = ""
    """The preimage the payee bank's claim revealed (what the other leg's claimer needs)."""
    lock_state: str | None = None
    """A hash-locked leg's lock, as :meth:`dtoken.bank.Bank.get_transfer` reads it:
    ``locked`` (it can be claimed), ``expired`` (the payer and the regulator, or the payee,
    expired it), or ``None``."""
    quote_id: str = ""
    """A converted transfer: the payee bank's quote it was paid with (empty if none)."""
    payee_amount: Money | None = None
    """A converted transfer: what the payee is credited, in the payee bank's currency, when
    the payee bank accepts (``amount`` is the payer's debit and the interbank obligation)."""

    @property
    def credit(self) -> Money:
        """What the payee is credited on accept: ``payee_amount``, else ``amount``."""
        return self.payee_amount if self.payee_amount is not None else self.amount

    @classmethod
    def from_json(
        cls,
        record: Mapping[str, Any],
        status: str,
        currencies: Currencies,
        decision: Mapping[str, Any] | None = None,
        refund: Mapping[str, Any] | None = None,
        lock_state: str | None = None,
    ) -> Transfer:
        cur = _get(record, "currency", str)
        originator = record.get("originator") or {}
        return cls(
            transfer_id=_get(record, "transfer_id", str),
            payer_bank=_get(record, "payer_bank", str),
            payee_bank=_get(record, "payee_bank", str),
            payee_account=_get(record, "payee_account", str),
            amount=_money(record, "amount", cur, currencies),
            created_at=str(record.get("created_at", "")),
            expires_at=str(record.get("expires_at", "")),
            originator={str(k): str(v) for k, v in dict(originator).items()},
            remittance=str(record.get("remittance", "")),
            status=TransferStatus(status),
            decision=_opt_str(decision, "outcome") if decision else None,
            reject_reason=(_opt_str(decision, "reason") or None) if decision else None,
            refunded=refund is not None,
            lock=str(record.get("lock", "")),
            preimage=str(decision.get("preimage", "")) if decision else "",
            lock_state=lock_state,
            quote_id=str(record.get("quote_id", "")),
            payee_amount=(_money(record, "payee_amount", _get(record, "payee_currency", str),
                                 currencies) if record.get("quote_id") else None),
        )


@dataclass(frozen=True)
class Quote:
    """A payee bank's FX quote to a payer bank, as the payee bank wrote it (pinned to both
    banks: neither alone can alter it). Good for one payment of exactly ``amount`` (payer
    currency), initiated between ``valid_from`` and ``valid_until``, which the payee bank
    credits as ``payee_amount`` (payee currency) if it accepts by ``accept_until``."""

    quote_id: str
    payee_bank: str
    payer_bank: str
    amount: Money
    payee_amount: Money
    rate: Fraction
    """Major units of the payee currency per major unit of the payer currency (exact)."""
    rounding: str
    """``bank`` (down to the payee currency's minor unit) or ``payee`` (up)."""
    valid_from: str
    valid_until: str
    accept_until: str

    @classmethod
    def from_json(cls, record: Mapping[str, Any], currencies: Currencies) -> Quote:
        return cls(
            quote_id=_get(record, "quote_id", str),
            payee_bank=_get(record, "payee_bank", str),
            payer_bank=_get(record, "payer_bank", str),
            amount=_money(record, "amount", _get(record, "from_currency", str), currencies),
            payee_amount=_money(record, "payee_amount", _get(record, "to_currency", str),
                                currencies),
            rate=Fraction(_get(record, "rate_numerator", int),
                          _get(record, "rate_denominator", int)),
            rounding=_get(record, "rounding", str),
            valid_from=_get(record, "valid_from", str),
            valid_until=_get(record, "valid_until", str),
            accept_until=_get(record, "accept_until", str),
        )


@dataclass(frozen=True)
class Supply:
    """A bank's supply of one token: the sum of its supply records."""

    bank: str
    currency: str
    supply: Money
    by_kind: Mapping[str, Money]
    """Totals per kind: mint, burn, internal, out, in, refund."""


@dataclass(frozen=True)
class Obligation:
    """What ``debtor`` owes ``creditor`` in one currency: accepted less settled.

    ``cap`` is the creditor's exposure cap on the debtor (the most it lets the debtor owe it
    unsettled), ``headroom`` what the creditor may still accept under it (the cap less what
    is owed and disputed, never below zero); both ``None`` when the creditor set no cap."""

    debtor: str
    creditor: str
    currency: str
    accepted: Money
    settled: Money
    disputed: Money
    owed: Money
    cap: Money | None = None
    headroom: Money | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], currencies: Currencies) -> Obligation:
        cur = _get(data, "currency", str)
        capped = data.get("cap") is not None
        return cls(
            debtor=_get(data, "debtor", str),
            creditor=_get(data, "creditor", str),
            currency=cur,
            accepted=_money(data, "accepted", cur, currencies),
            settled=_money(data, "settled", cur, currencies),
            disputed=_money(data, "disputed", cur, currencies),
            owed=_money(data, "owed", cur, currencies),
            cap=_money(data, "cap", cur, currencies) if capped else None,
            headroom=_money(data, "headroom", cur, currencies) if capped else None,
        )


@dataclass(frozen=True)
class Anomaly:
    """A record that counts for nobody (docs/security.md): where it is, and the banks whose
    peers alone could have written it. ``what``: ``undecodable``, ``wrong_parties``,
    ``wrong_key``, ``unpinned``, ``decision_mismatch``, ``accept_without_transfer``,
    ``index_without_transfer``, and the SDK's own ``unverified_position`` (a record whose
    writer claims a transaction that the ledger says did not write it)."""

    collection: str
    key: str
    writers: tuple[str, ...]
    what: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Anomaly:
        return cls(
            collection=_get(data, "collection", str),
            key=_get(data, "key", str),
            writers=tuple(str(w) for w in _get(data, "writers", list)),
            what=_get(data, "what", str),
        )

    @property
    def tally_key(self) -> str:
        """How scans count it: ``writers/collection/what`` (writers joined by ``+``)."""
        return f"{'+'.join(self.writers)}/{self.collection}/{self.what}"

    @classmethod
    def many(cls, data: Mapping[str, Any]) -> tuple[Anomaly, ...]:
        """The ``anomaly_records`` of a scan's answer (the first ones found; all are counted
        in its ``anomalies``)."""
        return tuple(cls.from_json(a) for a in data.get("anomaly_records") or ())


@dataclass(frozen=True)
class ProvenPosition:
    """Where a record's bytes were first written by a VALID transaction (block, index): an
    order no writer can choose. ``claimed`` is False when the transaction its writer named in
    the record is not that one (an anomaly: the position was found by reading the blocks)."""

    block_number: int
    tx_index: int
    transaction_id: str
    claimed: bool


@dataclass(frozen=True)
class Obligations:
    """Obligations between two banks, both ways; ``net[cur]`` > 0: ``banks[0]`` owes.

    ``anomalies`` counts the records that count for nobody, by ``writers/collection/what``;
    ``anomaly_records`` describes the first of them."""

    banks: tuple[str, str]
    obligations: tuple[Obligation, ...]
    net: Mapping[str, Money]
    anomalies: Mapping[str, int]
    disputes: tuple[Mapping[str, Any], ...]
    anomaly_records: tuple[Anomaly, ...] = ()

    def owed(self, debtor: str, currency: str) -> int:
        """Minor units ``debtor`` owes the other bank in ``currency`` (0 if nothing)."""
        return sum(
            o.owed.minor for o in self.obligations if o.debtor == debtor and o.currency == currency
        )

    def headroom(self, debtor: str, currency: str) -> Money | None:
        """What the other bank may still accept from ``debtor`` in ``currency`` under its
        exposure cap (``None``: it set no cap)."""
        for o in self.obligations:
            if o.debtor == debtor and o.currency == currency:
                return o.headroom
        return None


@dataclass(frozen=True)
class AuditReport:
    """The regulator's audit: ``ok`` when every conservation check holds."""

    ok: bool
    failures: tuple[str, ...]
    banks: tuple[Mapping[str, Any], ...]
    pairs: tuple[Mapping[str, Any], ...]
    currencies: tuple[Mapping[str, Any], ...]
    anomalies: Mapping[str, int]
    disputes: tuple[Mapping[str, Any], ...]
    anomaly_records: tuple[Anomaly, ...] = ()
    caps: tuple[Mapping[str, Any], ...] = ()
    """Every exposure cap in force, with what its debtor owes and the headroom left."""
    over_cap: tuple[Mapping[str, Any], ...] = ()
    """The caps exceeded: listed, not failed (a cap is enforced by its creditor when it
    accepts, docs/security.md)."""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditReport:
        return cls(
            ok=bool(_get(data, "ok", bool)),
            failures=tuple(str(f) for f in _get(data, "failures", list)),
            banks=tuple(_get(data, "banks", list)),
            pairs=tuple(_get(data, "pairs", list)),
            currencies=tuple(_get(data, "currencies", list)),
            anomalies=dict(_get(data, "anomalies", dict)),
            disputes=tuple(data.get("disputes") or ()),
            anomaly_records=Anomaly.many(data),
            caps=tuple(data.get("caps") or ()),
            over_cap=tuple(data.get("over_cap") or ()),
        )


@dataclass(frozen=True)
class ReferenceInfo:
    """What a reference did: its transaction, its kind and the ids it created."""

    kind: str
    tx_id: str
    at: str
    ids: tuple[str, ...]


@dataclass(frozen=True)
class OpenedAccount:
    account_id: str
    receipt: Receipt


@dataclass(frozen=True)
class Payment:
    """A payment: ``internal`` (one transaction, done) or ``cross_bank`` (initiated; the payee
    bank accepts or rejects ``transfer_id``)."""

    kind: str
    payee_bank: str
    transfer_id: str | None
    receipt: Receipt


@dataclass(frozen=True)
class Payee:
    """One payment of a batch payout. ``amount`` is minor units or Money."""

    bank: str
    account_id: str
    amount: int | Money
    remittance: str = ""


@dataclass(frozen=True)
class Payout:
    """A batch payout: one debit; ``transfer_ids[i]`` is payment i's transfer (``None`` for a
    payee at the payer's own bank, credited at once)."""

    transfer_ids: tuple[str | None, ...]
    receipt: Receipt
    payees: tuple[Payee, ...] = field(default=())
