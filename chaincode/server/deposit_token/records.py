"""Schemas of every record the contract stores, with strict JSON (de)serialization and salts.

Owns: the stored shape of accounts, holds, supply, history, idempotency, transfer, decision,
refund and settlement records, and :func:`encode` / :func:`decode`, which add and check the
envelope ``{"type", "v", "salt"}``. Every private value is written with a salt (DESIGN §6:
a hash of an unsalted ``{"balance": 1000}`` can be brute-forced from the block). Must not:
touch the ledger or decide anything (that is :mod:`deposit_token.rules`).

One file of ~520 lines on purpose: every stored schema sits beside the one envelope that
encodes it, so a change to what is stored (whose bytes ``test_dt_records`` pins) is read and
reviewed in one place; its sections (accounts, supply and history, cross-bank) are short.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any, ClassVar, Protocol, Self, TypeVar

from dtoken_wire.codec import MAX_AMOUNT, canonical_json
from dtoken_wire.conditional import PARTY_NAME_RE, DeadlineAction
from dtoken_wire.enums import AccountStatus, Rounding
from dtoken_wire.fields import Fields
from dtoken_wire.requests import MAX_BATCH as WIRE_MAX_BATCH
from dtoken_wire.requests import MAX_LANES as WIRE_MAX_LANES
from dtoken_wire.requests import MAX_QUOTE_RATE_TERM, Limits

from .errors import CorruptState
from .keys import ACCOUNT_ID_RE, BANK_NAME_RE, CAP_SEQ_MAX, CURRENCY_RE, HEX32_RE, TAG_RE
from .registry import JsonObject, loads_object

__all__ = [
    "LANE_SEQ_BASE",
    "MAX_HISTORY_ITEMS",
    "MAX_LANES",
    "RECORD_VERSION",
    "Account",
    "AccountKeysRecord",
    "Attester",
    "Cap",
    "Decision",
    "Escrow",
    "EscrowClaim",
    "EscrowNote",
    "EscrowRefund",
    "EscrowRelease",
    "HistoryItem",
    "HistoryKind",
    "HistoryRecord",
    "Hold",
    "Lane",
    "LockRecord",
    "LockState",
    "Opened",
    "Outcome",
    "OutgoingRecord",
    "PaymentRequest",
    "Quote",
    "QuoteUse",
    "Record",
    "ReferenceRecord",
    "Refund",
    "RefundCause",
    "RequestDecline",
    "Settlement",
    "StoredRecord",
    "SupplyKind",
    "SupplyRecord",
    "Suspension",
    "Transfer",
    "decode",
    "encode",
]

RECORD_VERSION = 1
_R = TypeVar("_R", bound="Record")


class Record(Protocol):
    """What :func:`encode` and :func:`decode` need of a record class."""

    TYPE: ClassVar[str]

    def to_json(self) -> JsonObject: ...

    @classmethod
    def read(cls: type[_R], f: Fields) -> _R: ...


class StoredRecord:
    """Base of the stored records (dataclasses): :meth:`to_json` is every field, as the JSON
    the contract stores it (an enum by its value, a value object by its ``to_json``, a map as
    an object, a tuple as an array of values or of value objects' ``to_json``). Key order
    does not matter: :func:`encode` writes canonical JSON with sorted keys. Reading stays
    explicit per class (``read``): it is where each field is validated."""

    def to_json(self) -> JsonObject:
        out: JsonObject = {}
        for name in _field_names(type(self)):
            value: Any = getattr(self, name)
            if type(value) not in _PLAIN:  # most fields are str and int: stored as they are
                if isinstance(value, Enum):
                    value = value.value
                elif hasattr(value, "to_json"):
                    value = value.to_json()
                elif isinstance(value, Mapping):
                    value = dict(value)
                elif isinstance(value, tuple):
                    value = [v.to_json() if hasattr(v, "to_json") else v for v in value]
            out[name] = value
        return out


#: Types stored as they are (exact types: an enum deriving from ``str`` is not one of them).
_PLAIN: frozenset[type] = frozenset({str, int, bool, type(None)})
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """The dataclass fields of a record class, in order (looked up once per class)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def encode(record: Record, salt: str) -> bytes:
    """The stored bytes of ``record``: canonical JSON with type, version and salt."""
    if not TAG_RE.fullmatch(salt):
        raise ValueError("a salt is 32 hex digits")
    body = record.to_json()
    body.update({"type": record.TYPE, "v": RECORD_VERSION, "salt": salt})
    return canonical_json(body)


#: Records decoded lately, by class and stored bytes (see :func:`decode`).
_DECODED: dict[tuple[type, bytes], Any] = {}
#: How many :data:`_DECODED` keeps (the oldest goes first): the transfers and decisions of a
#: few thousand payments in a listener's window; a transfer with its bytes takes about 2 KB,
#: so about 15 MB when full.
DECODE_CACHE_SIZE = 8192
#: Stored values longer than this are decoded every time, never kept: a payer bank's peer can
#: commit transfers of about 100 KB (every originator field and the remittance at their
#: longest), and 8,192 of those would hold more than a gigabyte in the payee's server. An
#: honest payment's transfer is well under 1 KB; the cache then holds at most 32 MB of bytes.
DECODE_CACHE_MAX_BYTES = 4096


def decode(kind: type[_R], data: bytes) -> _R:
    """Parse bytes written by :func:`encode` for a record of class ``kind``.

    Raises ``CORRUPT_STATE`` if the bytes are not such a record.

    The result depends on nothing but ``kind`` and ``data``, and records are frozen, so the
    same bytes read again (the listener's ``get_pending`` reads every pending transfer at each
    pass, and ``decide_transfers`` reads them once more) return the record decoded the first
    time. Only records that decoded are kept: bytes that do not decode are refused every time,
    and values longer than :data:`DECODE_CACHE_MAX_BYTES` are decoded every time.
    """
    if type(data) is not bytes or len(data) > DECODE_CACHE_MAX_BYTES:
        return _decode(kind, data)
    key = (kind, data)
    found: _R | None = _DECODED.get(key)
    if found is None:
        found = _decode(kind, data)
        if len(_DECODED) >= DECODE_CACHE_SIZE:
            del _DECODED[next(iter(_DECODED))]
        _DECODED[key] = found
    return found


def _decode(kind: type[_R], data: bytes) -> _R:
    obj = loads_object(data, kind.TYPE, CorruptState)
    f = Fields(obj, kind.TYPE, CorruptState)
    if f.str_("type", max_len=32) != kind.TYPE:
        f.fail("type", f"must be {kind.TYPE}")
    f.int_("v", lo=RECORD_VERSION, hi=RECORD_VERSION)
    f.str_("salt", pattern=TAG_RE)
    record = kind.read(f)
    f.done()
    return record


def _id(f: Fields, name: str) -> str:
    return f.str_(name, max_len=64, pattern=ACCOUNT_ID_RE, rule="must be an opaque id")


def _opt_id(f: Fields, name: str) -> str | None:
    return f.opt_str(name, max_len=64, pattern=ACCOUNT_ID_RE, rule="must be an opaque id")


def _bank(f: Fields, name: str) -> str:
    return f.str_(name, max_len=16, pattern=BANK_NAME_RE, rule="must be a bank name")


def _opt_bank(f: Fields, name: str) -> str | None:
    return f.opt_str(name, max_len=16, pattern=BANK_NAME_RE, rule="must be a bank name")


def _cur(f: Fields, name: str = "currency") -> str:
    return f.str_(name, max_len=3, pattern=CURRENCY_RE, rule="must be a currency code")


def _tx(f: Fields) -> str:
    return f.str_("tx_id", max_len=256)


def _moment(f: Fields, name: str) -> str:
    """A timestamp a rule compares with the transaction's time, kept as written (the stored
    bytes must re-encode identically) but checked here: a garbled one makes the record
    undecodable (an anomaly) instead of an error in the middle of a scan."""
    f.ts(name)
    return f.str_(name, max_len=32)


def _opt_hex(f: Fields, name: str) -> str:
    return f.opt_str(name, max_len=64, pattern=HEX32_RE, rule="must be 64 hex digits") or ""


# --------------------------------------------------------------------------- accounts


@dataclass(frozen=True)
class Account(StoredRecord):
    """An account at one bank in one currency; its balance lives here (one key).

    ``outflow`` is what left the account by payments on ``outflow_day`` (UTC, by transaction
    timestamps); ``seq`` is the number of history records written so far.
    """

    TYPE: ClassVar[str] = "account"

    account_id: str
    bank: str
    currency: str
    owner_ref: str
    status: AccountStatus = AccountStatus.ACTIVE
    limits: Limits = field(default_factory=Limits)
    balance: int = 0
    outflow_day: str = ""
    outflow: int = 0
    seq: int = 0
    opened_at: str = ""
    lane: int = 0
    """Which balance lane this record is (0: the account record itself; docs/token-model.md,
    "Balance lanes")."""
    lanes: int = 1
    """How many balance lanes the account has (every lane record carries the count, so a
    debit finds it with the point read of its own lane)."""
    share: int | None = None
    """This lane's part of the daily-outflow limit when the account has lanes and a daily
    limit (the shares of all lanes add up to the limit); ``None`` otherwise."""

    def to_json(self) -> JsonObject:
        # An account without lanes is stored exactly as before lanes existed.
        out = super().to_json()
        for name, default in (("lane", 0), ("lanes", 1), ("share", None)):
            if out[name] == default:
                del out[name]
        return out

    @classmethod
    def read(cls, f: Fields) -> Self:
        limits_obj = f.obj("limits")
        assert limits_obj is not None
        lf = Fields(limits_obj, "account.limits", CorruptState)
        limits = Limits.read(lf)
        lf.done()
        return cls(
            account_id=_id(f, "account_id"),
            bank=_bank(f, "bank"),
            currency=_cur(f),
            owner_ref=f.str_("owner_ref", max_len=256),
            status=f.enum("status", AccountStatus),
            limits=limits,
            balance=f.int_("balance"),
            outflow_day=f.str_("outflow_day", min_len=0, max_len=10),
            outflow=f.int_("outflow"),
            seq=f.int_("seq"),
            opened_at=f.str_("opened_at", max_len=32),
            lane=f.opt_int("lane", hi=MAX_LANES - 1) or 0,
            lanes=f.opt_int("lanes", lo=2, hi=MAX_LANES) or 1,
            share=f.opt_int("share"),
        )


#: The most balance lanes an account may have (each lane is one more point read for what
#: reads them all: a rebalance, a debit under a held amount, a balance).
MAX_LANES = WIRE_MAX_LANES
#: History records of lane ``k`` are numbered from ``k * LANE_SEQ_BASE`` (keys of 12 digits):
#: each lane numbers its own records, without sharing a counter with the other lanes.
LANE_SEQ_BASE = 10**10


@dataclass(frozen=True)
class Lane(Account):
    """Balance lane ``lane`` (1 to ``lanes - 1``) of an account: the account's fields that a
    debit needs (status, limits, the lane count, copied from the account record by every
    change of them), its own balance, daily outflow and share of the daily limit, and its own
    history numbering. Stored under ``lane/<account tag>/<lane>`` in ``acct-<bank>``."""

    TYPE: ClassVar[str] = "lane"


@dataclass(frozen=True)
class AccountKeysRecord(StoredRecord):
    """A bank's account key (:class:`~deposit_token.keys.AccountKeys`), which it shares with
    the regulator in its own ``acct-<bank>`` (key ``keys/accounts``), written once."""

    TYPE: ClassVar[str] = "account_keys"

    key: str

    @classmethod
    def read(cls, f: Fields) -> AccountKeysRecord:
        return cls(key=f.str_("key", pattern=TAG_RE))


@dataclass(frozen=True)
class Hold(StoredRecord):
    """The regulator's hold on an account: a full freeze and/or an amount that may not leave."""

    TYPE: ClassVar[str] = "hold"

    account_id: str
    frozen: bool = False
    held_amount: int = 0
    reason: str = ""
    set_at: str = ""
    tx_id: str = ""
    floor: int = 0
    """The lowest balance an honest bank can leave the account at while the hold stands:
    ``min(held_amount, balance when the hold was set)`` (a debit must leave ``held_amount``;
    below it, only credits come in). A balance under it is a breach the audit names."""

    @classmethod
    def read(cls, f: Fields) -> Hold:
        return cls(
            account_id=_id(f, "account_id"),
            frozen=f.bool_("frozen"),
            held_amount=f.int_("held_amount"),
            floor=f.int_("floor"),
            reason=f.str_("reason", min_len=0, max_len=256),
            set_at=f.str_("set_at", max_len=32),
            tx_id=_tx(f),
        )


@dataclass(frozen=True)
class Suspension(StoredRecord):
    """The regulator's suspension of a bank, as told to one bank (in its holds collection):
    no new payment to or from ``bank`` while ``suspended``; ``suspended=False`` resumes it."""

    TYPE: ClassVar[str] = "suspension"

    bank: str
    suspended: bool
    reason: str = ""
    set_at: str = ""
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> Suspension:
        return cls(
            bank=_bank(f, "bank"),
            suspended=f.bool_("suspended"),
            reason=f.str_("reason", min_len=0, max_len=256),
            set_at=f.str_("set_at", max_len=32),
            tx_id=_tx(f),
        )


# --------------------------------------------------------------------------- supply, history


class SupplyKind(StrEnum):
    """What a supply record records; its ``delta`` sign follows the kind."""

    MINT = "mint"  # + (a deposit arrived)
    BURN = "burn"  # - (a redemption)
    INTERNAL = "internal"  # 0 (a transfer within the bank)
    OUT = "out"  # - (a cross-bank transfer initiated by this bank)
    IN = "in"  # + (a cross-bank transfer this bank accepted)
    REFUND = "refund"  # + (this bank refunded its own outgoing transfer)

    @property
    def sign(self) -> int:
        """-1, 0 or +1: the sign every record of this kind carries."""
        return {"mint": 1, "burn": -1, "internal": 0, "out": -1, "in": 1, "refund": 1}[self.value]


@dataclass(frozen=True)
class SupplyRecord(StoredRecord):
    """One movement of a bank's token supply: written once, under a new key, never read by
    writers (so supply is no hot key). A bank's supply is the sum of ``delta``."""

    TYPE: ClassVar[str] = "supply"

    currency: str
    kind: SupplyKind
    amount: int  # >= 0; delta = kind.sign * amount
    counterparty: str | None = None  # the other bank, for OUT, IN, REFUND
    transfer_id: str | None = None
    tx_id: str = ""
    at: str = ""

    @property
    def delta(self) -> int:
        """The signed change of the bank's supply."""
        return self.kind.sign * self.amount

    @classmethod
    def read(cls, f: Fields) -> SupplyRecord:
        rec = cls(
            currency=_cur(f),
            kind=f.enum("kind", SupplyKind),
            amount=f.int_("amount"),
            counterparty=_opt_bank(f, "counterparty"),
            transfer_id=_opt_id(f, "transfer_id"),
            tx_id=_tx(f),
            at=f.str_("at", max_len=32),
        )
        if (rec.counterparty is None) != (rec.kind in (SupplyKind.MINT, SupplyKind.BURN,
                                                       SupplyKind.INTERNAL)):
            f.fail("counterparty", "must be given exactly for cross-bank kinds")
        return rec


class HistoryKind(StrEnum):
    """What happened to an account."""

    OPENED = "opened"
    MINT = "mint"
    BURN = "burn"
    TRANSFER_OUT = "transfer_out"  # within the bank
    TRANSFER_IN = "transfer_in"  # within the bank
    PAYMENT_OUT = "payment_out"  # cross-bank, initiated
    PAYMENT_IN = "payment_in"  # cross-bank, accepted
    REFUND = "refund"  # cross-bank, refunded to the payer
    STATUS = "status"
    LIMITS = "limits"
    ESCROW_OUT = "escrow_out"  # debited into escrow (the money is "in escrow")
    ESCROW_RELEASED = "escrow_released"  # the payer's escrow released to the payee (delta 0)
    ESCROW_IN = "escrow_in"  # credited from an escrow
    ESCROW_REFUND = "escrow_refund"  # credited back from the payer's own escrow
    BATCH = "batch"  # a record of several events of different kinds (its items say each)


#: At most this many events in one history record: one transaction's events on one account
#: (a batch carries at most ``MAX_BATCH`` payments; twice that leaves room for the events
#: around them).
MAX_HISTORY_ITEMS = 2 * WIRE_MAX_BATCH


@dataclass(frozen=True)
class HistoryItem(StoredRecord):
    """One event of a history record that holds several (:attr:`HistoryRecord.items`)."""

    kind: HistoryKind
    delta: int  # signed change of the balance
    balance_after: int
    counterparty_bank: str | None = None
    counterparty_account: str | None = None
    transfer_id: str | None = None
    detail: str = ""

    @classmethod
    def read(cls, f: Fields) -> HistoryItem:
        item = cls(**_event_fields(f, delta_floor=-MAX_AMOUNT))
        f.done()
        return item


def _event_fields(f: Fields, *, delta_floor: int) -> dict[str, Any]:
    """The fields of one event (:class:`HistoryItem`'s, which a :class:`HistoryRecord` of one
    event holds in its own fields), read and checked."""
    return {
        "kind": f.enum("kind", HistoryKind),
        "delta": f.int_("delta", lo=delta_floor),
        "balance_after": f.int_("balance_after"),
        "counterparty_bank": _opt_bank(f, "counterparty_bank"),
        "counterparty_account": _opt_id(f, "counterparty_account"),
        "transfer_id": _opt_id(f, "transfer_id"),
        "detail": f.str_("detail", min_len=0, max_len=256),
    }


@dataclass(frozen=True)
class HistoryRecord(StoredRecord):
    """One entry of an account's history (``GetHistoryForKey`` does not cover private data):
    one transaction's events on the account (or one of its lanes).

    A transaction with one event on the account writes it in the record's own fields (no
    ``items``). One with several (a batch of payments from one account, a batch of accepts
    crediting one account twice) writes one record whose ``items`` are the events in order,
    each with its own balance after it; the record's ``delta`` is their sum, its
    ``balance_after`` the last one's, its ``kind`` theirs if they share one, else ``batch``.
    One record rather than one per event because every private key written costs each peer a
    decode of the namespace's collection package at validation (docs/benchmarks.md, "Where
    the CPU goes"). :meth:`entries` gives the events one by one, as statements show them."""

    TYPE: ClassVar[str] = "history"

    account_id: str
    seq: int
    kind: HistoryKind
    delta: int  # signed change of the balance
    balance_after: int
    counterparty_bank: str | None = None
    counterparty_account: str | None = None
    transfer_id: str | None = None
    detail: str = ""
    tx_id: str = ""
    at: str = ""
    items: tuple[HistoryItem, ...] = ()

    def to_json(self) -> JsonObject:
        out = super().to_json()
        if not self.items:
            del out["items"]  # a record of one event is stored as it always was
        return out

    @classmethod
    def of_events(cls, first: HistoryRecord, more: list[HistoryItem]) -> HistoryRecord:
        """The record of one transaction's events on an account: ``first`` (numbered, as
        :func:`deposit_token.rules.add_history` made it) alone, or with ``more`` after it."""
        if not more:
            return first
        as_item = HistoryItem(**{f.name: getattr(first, f.name)
                                 for f in dataclasses.fields(HistoryItem)})
        items = (as_item, *more)
        kinds = {i.kind for i in items}
        return dataclasses.replace(
            first, kind=first.kind if len(kinds) == 1 else HistoryKind.BATCH,
            delta=sum(i.delta for i in items), balance_after=items[-1].balance_after,
            counterparty_bank=None, counterparty_account=None, transfer_id=None, detail="",
            items=items)

    def entries(self) -> list[JsonObject]:
        """The record's events one by one, as ``get_history`` answers: the record itself, or
        each item with the record's account, number, transaction and time (and ``item``, its
        place in the record)."""
        if not self.items:
            return [self.to_json()]
        common = {"account_id": self.account_id, "seq": self.seq, "tx_id": self.tx_id,
                  "at": self.at}
        return [{**item.to_json(), **common, "item": n} for n, item in enumerate(self.items)]

    @classmethod
    def read(cls, f: Fields) -> HistoryRecord:
        record = cls(
            account_id=_id(f, "account_id"),
            seq=f.int_("seq"),
            **_event_fields(f, delta_floor=-MAX_AMOUNT * MAX_HISTORY_ITEMS),
            tx_id=_tx(f),
            at=f.str_("at", max_len=32),
            items=tuple(HistoryItem.read(i) for i in f.objects(
                "items", max_items=MAX_HISTORY_ITEMS)) if f.has("items") else (),
        )
        if record.items and (
            len(record.items) < 2
            or record.delta != sum(i.delta for i in record.items)
            or record.balance_after != record.items[-1].balance_after
        ):
            f.fail("items", "must be two or more events that add up to the record")
        return record


@dataclass(frozen=True)
class ReferenceRecord(StoredRecord):
    """A client reference applied: which transaction, of which kind, and the ids it made; for
    a payment across banks, also the payer account (what a refund credits: each transfer it
    made points here, :attr:`Transfer.payer_ref`). Stored without ``account`` when there is
    none (earlier records' bytes stand)."""

    TYPE: ClassVar[str] = "reference"

    kind: str
    tx_id: str
    at: str
    ids: tuple[str, ...] = ()
    account: str | None = None

    def to_json(self) -> JsonObject:
        out = super().to_json()
        if self.account is None:
            del out["account"]
        return out

    @classmethod
    def read(cls, f: Fields) -> ReferenceRecord:
        kind = f.str_("kind", max_len=32)
        tx_id = _tx(f)
        at = f.str_("at", max_len=32)
        ids: list[str] = []
        for item in f.list_("ids", max_items=10_000):
            if not isinstance(item, str) or not ACCOUNT_ID_RE.fullmatch(item):
                f.fail("ids", "must hold opaque ids")
            ids.append(item)
        return cls(kind, tx_id, at, tuple(ids), _opt_id(f, "account"))


@dataclass(frozen=True)
class OutgoingRecord(StoredRecord):
    """The payer bank's own note of a transfer it initiated: the account to refund. Contracts
    before :attr:`Transfer.payer_ref` wrote one per transfer (``out/<id>``); read for their
    transfers' refunds, no longer written."""

    TYPE: ClassVar[str] = "outgoing"

    transfer_id: str
    payer_account: str
    payee_bank: str
    amount: int
    currency: str
    tx_id: str

    @classmethod
    def read(cls, f: Fields) -> OutgoingRecord:
        return cls(
            transfer_id=_id(f, "transfer_id"),
            payer_account=_id(f, "payer_account"),
            payee_bank=_bank(f, "payee_bank"),
            amount=f.amount(),
            currency=_cur(f),
            tx_id=_tx(f),
        )


# --------------------------------------------------------------------------- cross-bank


@dataclass(frozen=True)
class Transfer(StoredRecord):
    """A cross-bank transfer as the payer bank asserts it, in ``pair-<payer>-<payee>``.

    Holds what the payee bank needs: the payee account, the amount, the expiry and the
    originator data the travel rule asks for; never the payer's account id (the payee bank
    could otherwise follow that account's key hash through every block).
    """

    TYPE: ClassVar[str] = "transfer"

    transfer_id: str
    payer_bank: str
    payee_bank: str
    payee_account: str
    amount: int
    currency: str
    created_at: str
    expires_at: str
    originator: Mapping[str, str] = field(default_factory=dict)
    remittance: str = ""
    tx_id: str = ""
    #: A hash-locked leg (PvP): SHA-256 (hex) of the preimage that alone lets the payee bank
    #: accept it, before ``expires_at`` (its deadline). Empty: an ordinary transfer, stored
    #: without the field (the bytes of every transfer written before locks existed stand).
    lock: str = ""
    #: A converted transfer: the payee bank's quote it was paid with, and what the payee is
    #: credited, in ``payee_currency``, when the payee bank accepts it (``amount`` and
    #: ``currency`` stay the payer's: the debit and the interbank obligation). Empty and 0 for
    #: an ordinary transfer, stored without the fields (earlier records' bytes stand).
    quote_id: str = ""
    payee_currency: str = ""
    payee_amount: int = 0
    #: The tag of the payer bank's own reference record of the payment (``ref/<tag>`` in
    #: ``acct-<payer>``: the payer account a refund credits), an HMAC under the payer bank's
    #: secret that tells the payee bank nothing. One key for both the idempotency of the
    #: client reference and the refund, rather than a note per transfer: every private key
    #: written costs each peer a decode at validation. Empty in transfers written before it
    #: (their refund reads the ``out/`` note), stored without the field then.
    payer_ref: str = ""

    def to_json(self) -> JsonObject:
        out = super().to_json()
        for name in ("lock", "quote_id", "payee_currency", "payee_amount", "payer_ref"):
            if not out[name]:
                del out[name]
        return out

    @property
    def credit_currency(self) -> str:
        """The currency the payee is credited in."""
        return self.payee_currency or self.currency

    @property
    def credit_amount(self) -> int:
        """What the payee is credited (minor units of :attr:`credit_currency`)."""
        return self.payee_amount or self.amount

    @classmethod
    def read(cls, f: Fields) -> Transfer:
        return cls(
            transfer_id=_id(f, "transfer_id"),
            payer_bank=_bank(f, "payer_bank"),
            payee_bank=_bank(f, "payee_bank"),
            payee_account=_id(f, "payee_account"),
            amount=f.amount(),
            currency=_cur(f),
            created_at=f.str_("created_at", max_len=32),
            expires_at=_moment(f, "expires_at"),
            originator=f.str_map("originator", max_len=1024),
            remittance=f.str_("remittance", min_len=0, max_len=1024),
            tx_id=_tx(f),
            lock=_opt_hex(f, "lock"),
            **_quoted(f),
            payer_ref=f.opt_str("payer_ref", max_len=32, pattern=TAG_RE,
                                rule="must be 32 hex digits") or "",
        )


def _quoted(f: Fields) -> dict[str, Any]:
    """The quote fields of a transfer: all three or none."""
    if not (f.has("quote_id") or f.has("payee_currency") or f.has("payee_amount")):
        return {}
    return {"quote_id": _id(f, "quote_id"), "payee_currency": _cur(f, "payee_currency"),
            "payee_amount": f.amount("payee_amount")}


@dataclass(frozen=True)
class Opened(StoredRecord):
    """The payer bank's index entry of the transfers one transaction opened toward one bank,
    by creation time (``open/<at>/<first id>`` in ``pair-<payer>-<payee>``), so that both
    banks can read only the transfers created since a moment instead of every transfer the
    pair ever made. Written once with the transfers: one entry for a batch of hundreds, not
    one each (every private key written costs each peer a decode at validation)."""

    TYPE: ClassVar[str] = "opened"

    transfer_ids: tuple[str, ...]
    tx_id: str

    @classmethod
    def read(cls, f: Fields) -> Opened:
        if f.has("transfer_id"):  # an entry of one transfer, as contracts before batches wrote
            return cls(transfer_ids=(_id(f, "transfer_id"),), tx_id=_tx(f))
        ids = f.list_("transfer_ids", max_items=WIRE_MAX_BATCH)
        if not ids or not all(isinstance(i, str) and ACCOUNT_ID_RE.fullmatch(i) for i in ids):
            f.fail("transfer_ids", "must hold one or more opaque ids")
        return cls(transfer_ids=tuple(str(i) for i in ids), tx_id=_tx(f))


class Outcome(StrEnum):
    """The payee bank's decision on a transfer."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True)
class Decision(StoredRecord):
    """The payee bank's decision, in ``pair-<payee>-<payer>`` (what the payee asserts)."""

    TYPE: ClassVar[str] = "decision"

    transfer_id: str
    outcome: Outcome
    payer_bank: str
    payee_bank: str
    amount: int
    currency: str
    decided_at: str
    reason: str = ""
    tx_id: str = ""
    #: The accept of a hash-locked transfer: the preimage of its lock (hex), which every
    #: reader hashes (the claim counts only if it opens the lock). Empty otherwise, and then
    #: not stored.
    preimage: str = ""

    def to_json(self) -> JsonObject:
        out = super().to_json()
        if not self.preimage:
            del out["preimage"]
        return out

    @classmethod
    def read(cls, f: Fields) -> Decision:
        return cls(
            transfer_id=_id(f, "transfer_id"),
            outcome=f.enum("outcome", Outcome),
            payer_bank=_bank(f, "payer_bank"),
            payee_bank=_bank(f, "payee_bank"),
            amount=f.amount(),
            currency=_cur(f),
            decided_at=f.str_("decided_at", max_len=32),
            reason=f.str_("reason", min_len=0, max_len=256),
            tx_id=_tx(f),
            preimage=_opt_hex(f, "preimage"),
        )


class RefundCause(StrEnum):
    """Why the payer bank refunded: the payee bank rejected, or the transfer expired."""

    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Refund(StoredRecord):
    """The payer bank's refund of its own transfer, in ``pair-<payer>-<payee>``."""

    TYPE: ClassVar[str] = "refund"

    transfer_id: str
    payer_bank: str
    payee_bank: str
    amount: int
    currency: str
    cause: RefundCause
    refunded_at: str
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> Refund:
        return cls(
            transfer_id=_id(f, "transfer_id"),
            payer_bank=_bank(f, "payer_bank"),
            payee_bank=_bank(f, "payee_bank"),
            amount=f.amount(),
            currency=_cur(f),
            cause=f.enum("cause", RefundCause),
            refunded_at=f.str_("refunded_at", max_len=32),
            tx_id=_tx(f),
        )


@dataclass(frozen=True)
class Settlement(StoredRecord):
    """The creditor bank's confirmation that the debtor's reserves arrived (RTGS reference),
    in ``pair-<creditor>-<debtor>``."""

    TYPE: ClassVar[str] = "settlement"

    debtor_bank: str
    creditor_bank: str
    currency: str
    amount: int
    rtgs_reference: str
    settled_at: str
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> Settlement:
        return cls(
            debtor_bank=_bank(f, "debtor_bank"),
            creditor_bank=_bank(f, "creditor_bank"),
            currency=_cur(f),
            amount=f.amount(),
            rtgs_reference=f.str_("rtgs_reference", max_len=128),
            settled_at=f.str_("settled_at", max_len=32),
            tx_id=_tx(f),
        )



@dataclass(frozen=True)
class Cap(StoredRecord):
    """The most ``debtor_bank`` may owe ``creditor_bank`` unsettled in ``currency``, as the
    creditor set it, in ``pair-<creditor>-<debtor>`` under ``cap/<currency>/<seq>``. Each
    change is a new record with the next ``seq``; the highest is the cap in force.

    Not pinned: it is the creditor's limit on its own exposure, enforced by the creditor
    where it decides to accept. Rewriting or deleting it alone can only loosen or tighten
    what the creditor itself accepts; no other bank's figures depend on it."""

    TYPE: ClassVar[str] = "cap"

    creditor_bank: str
    debtor_bank: str
    currency: str
    cap: int
    seq: int
    set_at: str
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> Cap:
        return cls(
            creditor_bank=_bank(f, "creditor_bank"),
            debtor_bank=_bank(f, "debtor_bank"),
            currency=_cur(f),
            cap=f.int_("cap"),
            seq=f.int_("seq", lo=1, hi=CAP_SEQ_MAX),
            set_at=f.str_("set_at", max_len=32),
            tx_id=_tx(f),
        )


class LockState(StrEnum):
    """Where a hash-locked transfer's lock stands (its ``lock/<id>`` record)."""

    LOCKED = "locked"  # written with the transfer, by the payer bank
    EXPIRED = "expired"  # rewritten after the deadline: needs BOTH banks' peers (the pin)


@dataclass(frozen=True)
class LockRecord(StoredRecord):
    """The state of a hash-locked transfer, in ``pair-<payer>-<payee>`` under ``lock/<id>``.

    Written ``locked`` by the payer bank with the transfer and pinned to both banks' peers, so
    only a transaction both endorse can turn it ``expired``: the payee bank's server endorses
    that only once the deadline has passed on its own clock and it holds no claim. A refund of
    a locked transfer counts only once its lock is ``expired`` (or the payee rejected it).
    """

    TYPE: ClassVar[str] = "lock"

    transfer_id: str
    payer_bank: str
    payee_bank: str
    lock: str
    deadline: str
    state: LockState
    at: str
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> LockRecord:
        return cls(
            transfer_id=_id(f, "transfer_id"),
            payer_bank=_bank(f, "payer_bank"),
            payee_bank=_bank(f, "payee_bank"),
            lock=f.str_("lock", max_len=64, pattern=HEX32_RE, rule="must be 64 hex digits"),
            deadline=_moment(f, "deadline"),
            state=f.enum("state", LockState),
            at=f.str_("at", max_len=32),
            tx_id=_tx(f),
        )


# --------------------------------------------------------------------------- conditional payments
# (escrow until a condition, payment requests: docs/token-model.md "Escrow", "Payment requests")


def _party(f: Fields, name: str) -> str:
    value = f.str_(name, min_len=0, max_len=32)
    if value and not PARTY_NAME_RE.fullmatch(value):
        f.fail(name, "must be a party name or empty")
    return value


def _statement_map(f: Fields) -> dict[str, str]:
    return f.str_map("statement", max_items=4, max_len=200)


@dataclass(frozen=True)
class Attester(StoredRecord):
    """A party the bank trusts to sign statements about its customers' escrows (a delivery
    attester, an arbiter): its P-256 public key (PEM), in ``acct-<bank>`` under
    ``attester/<name>``, written once. An escrow copies the key into its terms."""

    TYPE: ClassVar[str] = "attester"

    name: str
    public_key_pem: str
    registered_at: str
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> Attester:
        return cls(
            name=f.str_("name", max_len=32, pattern=PARTY_NAME_RE, rule="must be a party name"),
            public_key_pem=f.str_("public_key_pem", max_len=1024),
            registered_at=f.str_("registered_at", max_len=32),
            tx_id=_tx(f),
        )


@dataclass(frozen=True)
class Escrow(StoredRecord):
    """An escrow as the payer bank opened it: the money left the payer's account and waits
    on the terms. Across banks in ``pair-<payer>-<payee>`` under ``esc/<id>``, pinned to both
    banks (without the payer's account id); within a bank in ``acct-<bank>`` (with it).

    The terms: ``deadline`` and ``on_deadline`` (where the money goes if nothing decided it
    by then); ``attester`` and ``arbiter`` (names, ``""`` for none) with the public keys the
    payer bank had registered for them when the escrow opened."""

    TYPE: ClassVar[str] = "escrow"

    escrow_id: str
    payer_bank: str
    payee_bank: str
    payee_account: str
    amount: int
    currency: str
    created_at: str
    deadline: str
    on_deadline: DeadlineAction
    attester: str = ""
    attester_key: str = ""
    arbiter: str = ""
    arbiter_key: str = ""
    remittance: str = ""
    originator: Mapping[str, str] = field(default_factory=dict)
    payer_account: str | None = None
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> Escrow:
        return cls(
            escrow_id=_id(f, "escrow_id"),
            payer_bank=_bank(f, "payer_bank"),
            payee_bank=_bank(f, "payee_bank"),
            payee_account=_id(f, "payee_account"),
            amount=f.amount(),
            currency=_cur(f),
            created_at=f.str_("created_at", max_len=32),
            deadline=_moment(f, "deadline"),
            on_deadline=f.enum("on_deadline", DeadlineAction),
            attester=_party(f, "attester"),
            attester_key=f.str_("attester_key", min_len=0, max_len=1024),
            arbiter=_party(f, "arbiter"),
            arbiter_key=f.str_("arbiter_key", min_len=0, max_len=1024),
            remittance=f.str_("remittance", min_len=0, max_len=1024),
            originator=f.str_map("originator", max_len=1024),
            payer_account=_opt_id(f, "payer_account"),
            tx_id=_tx(f),
        )


@dataclass(frozen=True)
class EscrowNote(StoredRecord):
    """The payer bank's own note of a cross-bank escrow (``escnote/<id>`` in ``acct-<bank>``):
    the account to refund, which the pair's record does not carry."""

    TYPE: ClassVar[str] = "escrow_note"

    escrow_id: str
    payer_account: str
    payee_bank: str
    amount: int
    currency: str
    tx_id: str

    @classmethod
    def read(cls, f: Fields) -> EscrowNote:
        return cls(
            escrow_id=_id(f, "escrow_id"),
            payer_account=_id(f, "payer_account"),
            payee_bank=_bank(f, "payee_bank"),
            amount=f.amount(),
            currency=_cur(f),
            tx_id=_tx(f),
        )


@dataclass(frozen=True)
class EscrowRelease(StoredRecord):
    """The payer bank releases its customer's escrow to the payee (``cause``: ``buyer``, the
    customer confirmed; ``deadline``, the terms release at the deadline): in
    ``pair-<payer>-<payee>`` under ``escrel/<id>``, pinned (its word, against its own side)."""

    TYPE: ClassVar[str] = "escrow_release"

    escrow_id: str
    payer_bank: str
    payee_bank: str
    amount: int
    currency: str
    cause: str
    released_at: str
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> EscrowRelease:
        rec = cls(
            escrow_id=_id(f, "escrow_id"),
            payer_bank=_bank(f, "payer_bank"),
            payee_bank=_bank(f, "payee_bank"),
            amount=f.amount(),
            currency=_cur(f),
            cause=f.str_("cause", max_len=16),
            released_at=f.str_("released_at", max_len=32),
            tx_id=_tx(f),
        )
        if rec.cause not in ("buyer", "deadline"):
            f.fail("cause", "must be buyer or deadline")
        return rec


@dataclass(frozen=True)
class EscrowClaim(StoredRecord):
    """The payee bank credited its customer from an escrow (``pair-<payee>-<payer>`` under
    ``escclaim/<id>``, pinned), with what it relied on: ``basis`` ``release`` (the payer
    bank's release record) or ``statement`` (the signed statement it carries)."""

    TYPE: ClassVar[str] = "escrow_claim"

    escrow_id: str
    payer_bank: str
    payee_bank: str
    amount: int
    currency: str
    basis: str
    claimed_at: str
    statement: Mapping[str, str] = field(default_factory=dict)
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> EscrowClaim:
        rec = cls(
            escrow_id=_id(f, "escrow_id"),
            payer_bank=_bank(f, "payer_bank"),
            payee_bank=_bank(f, "payee_bank"),
            amount=f.amount(),
            currency=_cur(f),
            basis=f.str_("basis", max_len=16),
            claimed_at=f.str_("claimed_at", max_len=32),
            statement=_statement_map(f),
            tx_id=_tx(f),
        )
        if rec.basis not in ("release", "statement"):
            f.fail("basis", "must be release or statement")
        return rec


@dataclass(frozen=True)
class EscrowRefund(StoredRecord):
    """The payer bank credited its customer back from an escrow (``pair-<payer>-<payee>``
    under ``escref/<id>``, pinned): ``cause`` ``deadline`` or ``statement`` (the arbiter's
    signed ruling it carries)."""

    TYPE: ClassVar[str] = "escrow_refund"

    escrow_id: str
    payer_bank: str
    payee_bank: str
    amount: int
    currency: str
    cause: str
    refunded_at: str
    statement: Mapping[str, str] = field(default_factory=dict)
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> EscrowRefund:
        rec = cls(
            escrow_id=_id(f, "escrow_id"),
            payer_bank=_bank(f, "payer_bank"),
            payee_bank=_bank(f, "payee_bank"),
            amount=f.amount(),
            currency=_cur(f),
            cause=f.str_("cause", max_len=16),
            refunded_at=f.str_("refunded_at", max_len=32),
            statement=_statement_map(f),
            tx_id=_tx(f),
        )
        if rec.cause not in ("deadline", "statement"):
            f.fail("cause", "must be deadline or statement")
        return rec


@dataclass(frozen=True)
class PaymentRequest(StoredRecord):
    """A request to pay, as the payee bank (the exporter's) sent it: in
    ``pair-<payee>-<payer>`` under ``payreq/<id>``, pinned to both banks. Paying it is a
    transfer whose id is the request's id (so it can be paid once)."""

    TYPE: ClassVar[str] = "payment_request"

    request_id: str
    payer_bank: str
    payee_bank: str
    payer_account: str
    payee_account: str
    amount: int
    currency: str
    invoice_ref: str
    due: str
    created_at: str
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> PaymentRequest:
        return cls(
            request_id=_id(f, "request_id"),
            payer_bank=_bank(f, "payer_bank"),
            payee_bank=_bank(f, "payee_bank"),
            payer_account=_id(f, "payer_account"),
            payee_account=_id(f, "payee_account"),
            amount=f.amount(),
            currency=_cur(f),
            invoice_ref=f.str_("invoice_ref", max_len=128),
            due=_moment(f, "due"),
            created_at=f.str_("created_at", max_len=32),
            tx_id=_tx(f),
        )


@dataclass(frozen=True)
class RequestDecline(StoredRecord):
    """The payer bank declined a payment request (``pair-<payer>-<payee>`` under
    ``reqdecl/<id>``, pinned)."""

    TYPE: ClassVar[str] = "request_decline"

    request_id: str
    payer_bank: str
    payee_bank: str
    reason: str
    declined_at: str
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> RequestDecline:
        return cls(
            request_id=_id(f, "request_id"),
            payer_bank=_bank(f, "payer_bank"),
            payee_bank=_bank(f, "payee_bank"),
            reason=f.str_("reason", min_len=0, max_len=256),
            declined_at=f.str_("declined_at", max_len=32),
            tx_id=_tx(f),
        )


@dataclass(frozen=True)
class Quote(StoredRecord):
    """The payee bank's FX quote to one payer bank, in ``pair-<payee>-<payer>`` under
    ``quote/<id>``, pinned to both banks at creation (neither alone can alter it after).

    Good for one payment of exactly ``amount`` minor units of ``from_currency`` by a customer
    of ``payer_bank``, initiated within ``[valid_from, valid_until]``: the payee bank credits
    ``payee_amount`` minor units of ``to_currency``, which is ``amount`` at the rate
    ``rate_numerator / rate_denominator`` (major units of ``to_currency`` per major unit of
    ``from_currency``), rounded to the minor unit as ``rounding`` says
    (:func:`deposit_token.conversion.convert`). The payee bank accepts such a transfer until
    ``accept_until`` on its own clock.
    """

    TYPE: ClassVar[str] = "quote"

    quote_id: str
    payee_bank: str
    payer_bank: str
    from_currency: str
    to_currency: str
    amount: int
    payee_amount: int
    rate_numerator: int
    rate_denominator: int
    rounding: Rounding
    valid_from: str
    valid_until: str
    accept_until: str
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> Quote:
        return cls(
            quote_id=_id(f, "quote_id"),
            payee_bank=_bank(f, "payee_bank"),
            payer_bank=_bank(f, "payer_bank"),
            from_currency=_cur(f, "from_currency"),
            to_currency=_cur(f, "to_currency"),
            amount=f.amount(),
            payee_amount=f.amount("payee_amount"),
            rate_numerator=f.int_("rate_numerator", lo=1, hi=MAX_QUOTE_RATE_TERM),
            rate_denominator=f.int_("rate_denominator", lo=1, hi=MAX_QUOTE_RATE_TERM),
            rounding=f.enum("rounding", Rounding),
            valid_from=f.str_("valid_from", max_len=32),
            valid_until=f.str_("valid_until", max_len=32),
            accept_until=f.str_("accept_until", max_len=32),
            tx_id=_tx(f),
        )


@dataclass(frozen=True)
class QuoteUse(StoredRecord):
    """A bank's own note, in ``acct-<bank>`` under ``quse/<quote id>``, that it used a
    quote: the payer bank paid with it, or the payee bank accepted a transfer made with it.
    A quote is good for one payment; each bank refuses a second use on its side."""

    TYPE: ClassVar[str] = "quote_use"

    quote_id: str
    transfer_id: str
    at: str
    tx_id: str = ""

    @classmethod
    def read(cls, f: Fields) -> QuoteUse:
        return cls(
            quote_id=_id(f, "quote_id"),
            transfer_id=_id(f, "transfer_id"),
            at=f.str_("at", max_len=32),
            tx_id=_tx(f),
        )
