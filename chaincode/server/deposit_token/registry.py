"""The registry: the consortium's banks, regulator and tokens, as ``init_network`` wrote them.

Owns: :class:`Registry`, :class:`BankInfo`, :class:`TokenDef` (public state), reading a JSON
object with a contract error (:func:`loads_object`) and the UTC day of a timestamp. The value
types that cross the wire (statuses, limits, timestamps, canonical JSON, the strict field
reader) are in :mod:`dtoken_wire`. Must not: touch the ledger. Parse errors name the field and
the rule, never the value (an error message ends up in a block).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, TypeVar

from dtoken_wire.fields import BANK_NAME_RE, CURRENCY_RE, MSP_ID_RE, Fields

from .errors import CorruptState, DepositTokenError

__all__ = [
    "MAX_DECIMALS",
    "BankInfo",
    "JsonObject",
    "Registry",
    "TokenDef",
    "day_of",
    "loads_object",
]

#: Largest number of decimals a currency may declare.
MAX_DECIMALS = 18

JsonObject = dict[str, Any]
_E = TypeVar("_E", bound=Enum)


def loads_object(data: bytes | str, where: str, error: type[DepositTokenError]) -> JsonObject:
    """Parse a JSON object, raising ``error`` (without quoting the input) if it is not one."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested too deeply: not a request
        raise error(f"{where} is not valid JSON") from None
    if not isinstance(obj, dict):
        raise error(f"{where} must be a JSON object")
    return obj


@dataclass(frozen=True)
class BankInfo:
    """A member bank: its short name, its MSP id and the currencies it issues tokens in."""

    name: str
    msp_id: str
    currencies: tuple[str, ...]

    def to_json(self) -> JsonObject:
        return {"name": self.name, "msp_id": self.msp_id, "currencies": list(self.currencies)}


@dataclass(frozen=True)
class TokenDef:
    """A token: ``(issuing bank, currency)``, integer minor units, ``decimals`` per currency."""

    issuer: str
    issuer_msp_id: str
    currency: str
    decimals: int

    def to_json(self) -> JsonObject:
        return {
            "issuer": self.issuer,
            "issuer_msp_id": self.issuer_msp_id,
            "currency": self.currency,
            "decimals": self.decimals,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> TokenDef:
        f = Fields(data, "token", CorruptState)
        out = cls(
            f.str_("issuer", pattern=BANK_NAME_RE),
            f.str_("issuer_msp_id", pattern=MSP_ID_RE),
            f.str_("currency", pattern=CURRENCY_RE),
            f.int_("decimals", hi=MAX_DECIMALS),
        )
        f.done()
        return out


@dataclass(frozen=True)
class Registry:
    """The consortium as ``init_network`` recorded it in public state."""

    banks: tuple[BankInfo, ...]
    regulator_msp_id: str | None
    currencies: tuple[tuple[str, int], ...]  # (code, decimals), sorted by code
    #: Bank names in the order they joined (the consortium file's order; the namespace
    #: layout places pair collections by it). Empty: the order of ``banks``.
    join_order: tuple[str, ...] = ()
    _by_name: Mapping[str, BankInfo] = field(init=False, repr=False, compare=False)
    _by_msp: Mapping[str, BankInfo] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {b.name: b for b in self.banks})
        object.__setattr__(self, "_by_msp", {b.msp_id: b for b in self.banks})

    @classmethod
    def parse(cls, data: Mapping[str, object], error: type[DepositTokenError]) -> Registry:
        """Validate an ``init_network`` argument (``InvalidArgument``) or stored registry."""
        f = Fields(data, "registry", error)
        cur_obj = f.obj("currencies")
        assert cur_obj is not None
        if not 1 <= len(cur_obj) <= 64:
            f.fail("currencies", "must name 1 to 64 currencies")
        currencies: dict[str, int] = {}
        for code, decimals in cur_obj.items():
            if not CURRENCY_RE.fullmatch(code):
                f.fail("currencies", "keys must be three-letter upper-case currency codes")
            if type(decimals) is not int or not 0 <= decimals <= MAX_DECIMALS:
                f.fail("currencies", f"values must be integers from 0 to {MAX_DECIMALS}")
            currencies[code] = decimals
        bank_readers = f.objects("banks", max_items=256)
        if not bank_readers:
            f.fail("banks", "must name at least one bank")
        banks: list[BankInfo] = []
        for bf in bank_readers:
            name = bf.str_("name", pattern=BANK_NAME_RE, rule="must be a bank name")
            msp = bf.str_("msp_id", max_len=64, pattern=MSP_ID_RE, rule="must be an MSP id")
            cur_list = bf.list_("currencies", max_items=64)
            if not cur_list:
                bf.fail("currencies", "must name at least one currency")
            for c in cur_list:
                if not isinstance(c, str) or c not in currencies:
                    bf.fail("currencies", "must name currencies declared in registry.currencies")
            if len(set(cur_list)) != len(cur_list):
                bf.fail("currencies", "must not repeat a currency")
            bf.done()
            banks.append(BankInfo(name, msp, tuple(sorted(str(c) for c in cur_list))))
        if len({b.name for b in banks}) != len(banks):
            f.fail("banks", "must not repeat a bank name")
        if len({b.msp_id for b in banks}) != len(banks):
            f.fail("banks", "must not repeat an MSP id")
        regulator = f.opt_str("regulator_msp_id", max_len=64, pattern=MSP_ID_RE)
        if regulator is not None and regulator in {b.msp_id for b in banks}:
            f.fail("regulator_msp_id", "must differ from every bank's MSP id")
        order: list[object] = [b.name for b in banks]
        if f.has("join_order"):
            order = f.list_("join_order", max_items=256)
            if sorted(str(x) for x in order) != sorted(b.name for b in banks) or any(
                    not isinstance(x, str) for x in order):
                f.fail("join_order", "must name every bank once")
        f.done()
        return cls(
            tuple(sorted(banks, key=lambda b: b.name)),
            regulator,
            tuple(sorted(currencies.items())),
            tuple(str(x) for x in order),
        )

    def to_json(self) -> JsonObject:
        return {
            "banks": [b.to_json() for b in self.banks],
            "regulator_msp_id": self.regulator_msp_id,
            "currencies": dict(self.currencies),
            "join_order": list(self.joined()),
        }

    # -- look-ups

    def bank(self, name: str) -> BankInfo | None:
        """The bank called ``name``, if it is a member."""
        return self._by_name.get(name)

    def bank_by_msp(self, msp_id: str) -> BankInfo | None:
        """The bank whose MSP id is ``msp_id``, if any."""
        return self._by_msp.get(msp_id)

    def is_regulator(self, msp_id: str) -> bool:
        """Whether ``msp_id`` is the regulator's."""
        return self.regulator_msp_id is not None and msp_id == self.regulator_msp_id

    def decimals(self, currency: str) -> int | None:
        """Decimals of ``currency``, if the network knows it."""
        return dict(self.currencies).get(currency)

    def issues(self, bank: str, currency: str) -> bool:
        """Whether ``bank`` issues a token in ``currency``."""
        info = self.bank(bank)
        return info is not None and currency in info.currencies

    def tokens(self) -> Iterator[TokenDef]:
        """Every token definition, by bank then currency."""
        decimals = dict(self.currencies)
        for b in self.banks:
            for c in b.currencies:
                yield TokenDef(b.name, b.msp_id, c, decimals[c])

    def bank_names(self) -> Sequence[str]:
        """Member bank names, sorted."""
        return [b.name for b in self.banks]

    def joined(self) -> Sequence[str]:
        """Member bank names in the order they joined (what the namespace layout uses)."""
        return list(self.join_order) or [b.name for b in self.banks]


def day_of(moment: datetime) -> date:
    """The UTC calendar day of a transaction timestamp (daily limits count by it)."""
    return moment.astimezone(UTC).date()
