"""Value types of the deposit-token model and strict JSON field reading.

Owns: the registry of banks and tokens (public state), account statuses and limits, amount
bounds, timestamps, and :class:`Fields`, the strict reader every record and request parser
uses. Must not: touch the ledger. Parse errors name the field and the rule, never the value
(an error message ends up in a block).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum, StrEnum
from typing import Any, NoReturn, TypeVar

from .errors import CorruptState, DepositTokenError, InvalidAmount, InvalidArgument
from .keys import BANK_NAME_RE, CURRENCY_RE, MSP_ID_RE

__all__ = [
    "MAX_AMOUNT",
    "MAX_DECIMALS",
    "AccountStatus",
    "BankInfo",
    "Fields",
    "Limits",
    "Registry",
    "TokenDef",
    "canonical_json",
    "day_of",
    "format_ts",
    "loads_object",
    "parse_ts",
]

#: Largest amount or balance, in minor units: a signed 64-bit integer, so that Go, Java and
#: JavaScript clients (``BigInt``) read every value exactly.
MAX_AMOUNT = 2**63 - 1
#: Largest number of decimals a currency may declare.
MAX_DECIMALS = 18

JsonObject = dict[str, Any]
_E = TypeVar("_E", bound=Enum)


def canonical_json(obj: object) -> bytes:
    """Serialize deterministically: sorted keys, no spaces, UTF-8.

    Every endorsing peer must produce byte-identical values, or their write sets differ.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def loads_object(data: bytes | str, where: str, error: type[DepositTokenError]) -> JsonObject:
    """Parse a JSON object, raising ``error`` (without quoting the input) if it is not one."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested too deeply: not a request
        raise error(f"{where} is not valid JSON") from None
    if not isinstance(obj, dict):
        raise error(f"{where} must be a JSON object")
    return obj


def format_ts(moment: datetime) -> str:
    """UTC timestamp as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (fixed width, so it sorts as text)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    """Inverse of :func:`format_ts`; raises ``ValueError`` on another format."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class Fields:
    """Strict reader of one JSON object: typed getters, then :meth:`done` refuses extra keys.

    ``error`` is :class:`InvalidArgument` for requests and :class:`CorruptState` for stored
    records. ``bool`` is never accepted as an ``int``.
    """

    def __init__(
        self,
        data: Mapping[str, object],
        where: str,
        error: type[DepositTokenError] = InvalidArgument,
    ) -> None:
        self._data = data
        self._where = where
        self._error = error
        self._seen: set[str] = set()

    def fail(self, name: str, rule: str) -> NoReturn:
        """Raise the reader's error for field ``name``."""
        raise self._error(f"{self._where}.{name} {rule}")

    def _get(self, name: str, optional: bool) -> object:
        self._seen.add(name)
        if name not in self._data or self._data[name] is None:
            if optional:
                return None
            self.fail(name, "is required")
        return self._data[name]

    def has(self, name: str) -> bool:
        """Whether the field is present and not null."""
        return self._data.get(name) is not None

    def str_(
        self,
        name: str,
        *,
        max_len: int = 256,
        min_len: int = 1,
        pattern: Any = None,
        rule: str = "",
    ) -> str:
        """A required string of ``min_len``..``max_len`` characters, matching ``pattern``."""
        value = self._get(name, optional=False)
        return self._check_str(name, value, max_len, min_len, pattern, rule)

    def opt_str(
        self, name: str, *, max_len: int = 256, pattern: Any = None, rule: str = ""
    ) -> str | None:
        """An optional string (absent or null reads as ``None``)."""
        value = self._get(name, optional=True)
        if value is None:
            return None
        return self._check_str(name, value, max_len, 1, pattern, rule)

    def _check_str(
        self, name: str, value: object, max_len: int, min_len: int, pattern: Any, rule: str
    ) -> str:
        if not isinstance(value, str):
            self.fail(name, "must be a string")
        if not min_len <= len(value) <= max_len:
            self.fail(name, f"must be {min_len} to {max_len} characters")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(name, rule or f"must match {pattern.pattern}")
        return value

    def int_(self, name: str, *, lo: int = 0, hi: int = MAX_AMOUNT) -> int:
        """A required integer in ``[lo, hi]``."""
        value = self._get(name, optional=False)
        return self._check_int(name, value, lo, hi)

    def opt_int(self, name: str, *, lo: int = 0, hi: int = MAX_AMOUNT) -> int | None:
        """An optional integer in ``[lo, hi]``."""
        value = self._get(name, optional=True)
        if value is None:
            return None
        return self._check_int(name, value, lo, hi)

    def amount(self, name: str = "amount") -> int:
        """A positive amount of minor units (``INVALID_AMOUNT`` otherwise, for requests)."""
        value = self._get(name, optional=False)
        if type(value) is not int or not 0 < value <= MAX_AMOUNT:
            if self._error is InvalidArgument:
                raise InvalidAmount(
                    f"{self._where}.{name} must be a positive integer of minor units"
                )
            self.fail(name, "must be a positive integer")
        return value

    def _check_int(self, name: str, value: object, lo: int, hi: int) -> int:
        if type(value) is not int:
            self.fail(name, "must be an integer")
        if not lo <= value <= hi:
            self.fail(name, f"must be between {lo} and {hi}")
        return value

    def bool_(self, name: str, *, default: bool | None = None) -> bool:
        """A boolean; absent reads as ``default`` when one is given."""
        value = self._get(name, optional=default is not None)
        if value is None:
            assert default is not None
            return default
        if not isinstance(value, bool):
            self.fail(name, "must be true or false")
        return value

    def ts(self, name: str) -> datetime:
        """A timestamp written by :func:`format_ts`."""
        text = self.str_(name, max_len=32)
        try:
            return parse_ts(text)
        except ValueError:
            self.fail(name, "must be a UTC timestamp YYYY-MM-DDTHH:MM:SS.ffffffZ")

    def enum(self, name: str, kind: type[_E]) -> _E:
        """A member of ``kind``, given by its value."""
        value = self._get(name, optional=False)
        try:
            return kind(value)
        except ValueError:
            self.fail(name, "must be one of " + ", ".join(str(m.value) for m in kind))

    def obj(self, name: str, *, optional: bool = False) -> Mapping[str, object] | None:
        """A nested JSON object."""
        value = self._get(name, optional=optional)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.fail(name, "must be an object")
        return value

    def list_(self, name: str, *, max_items: int = 1000, optional: bool = False) -> list[object]:
        """A JSON array of at most ``max_items`` items."""
        value = self._get(name, optional=optional)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(name, "must be an array")
        if len(value) > max_items:
            self.fail(name, f"must have at most {max_items} items")
        return value

    def str_map(
        self, name: str, *, max_items: int = 32, max_len: int = 256, optional: bool = True
    ) -> dict[str, str]:
        """An object of string values (originator data ...)."""
        value = self.obj(name, optional=optional)
        if value is None:
            return {}
        if len(value) > max_items:
            self.fail(name, f"must have at most {max_items} fields")
        out: dict[str, str] = {}
        for k, v in value.items():
            if not 1 <= len(k) <= 64 or not isinstance(v, str) or len(v) > max_len:
                self.fail(name, f"must map names of 1 to 64 characters to strings of at most "
                                f"{max_len} characters")
            out[k] = v
        return out

    def done(self) -> None:
        """Refuse fields that no getter asked for."""
        extra = sorted(set(self._data) - self._seen)
        if extra:
            # Field names are chosen by the schema, not by customers: safe to name the first.
            name = extra[0] if len(extra[0]) <= 64 and extra[0].isidentifier() else "<field>"
            raise self._error(f"{self._where} has an unknown field {name}")


class AccountStatus(StrEnum):
    """Status of an account. ``closed`` is final."""

    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


@dataclass(frozen=True)
class Limits:
    """Per-account limits in minor units; ``None`` is no limit."""

    single_payment: int | None = None
    daily_outflow: int | None = None

    def to_json(self) -> JsonObject:
        return {"single_payment": self.single_payment, "daily_outflow": self.daily_outflow}

    @classmethod
    def read(cls, f: Fields) -> Limits:
        """Read the two limit fields from ``f`` (absent or null: no limit)."""
        return cls(f.opt_int("single_payment"), f.opt_int("daily_outflow"))


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
        raw_banks = f.list_("banks", max_items=256)
        if not raw_banks:
            f.fail("banks", "must name at least one bank")
        banks: list[BankInfo] = []
        for i, raw in enumerate(raw_banks):
            if not isinstance(raw, dict):
                f.fail(f"banks[{i}]", "must be an object")
            bf = Fields(raw, f"registry.banks[{i}]", error)
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
        f.done()
        return cls(
            tuple(sorted(banks, key=lambda b: b.name)),
            regulator,
            tuple(sorted(currencies.items())),
        )

    def to_json(self) -> JsonObject:
        return {
            "banks": [b.to_json() for b in self.banks],
            "regulator_msp_id": self.regulator_msp_id,
            "currencies": dict(self.currencies),
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


def day_of(moment: datetime) -> date:
    """The UTC calendar day of a transaction timestamp (daily limits count by it)."""
    return moment.astimezone(UTC).date()
