"""Strict reading of one JSON object, and the formats of the names that travel in it.

Owns: :class:`Fields`, the reader every request (and, on the chaincode side, every stored
record) is parsed with: typed getters, then :meth:`Fields.done` refuses unknown keys; and the
patterns of bank names, currency codes, MSP ids and account ids.

Errors name the field and the rule, never the value (a chaincode error message is written into
a block). A reader built without ``error`` raises :class:`~dtoken_wire.errors.WireError` with
code ``INVALID_ARGUMENT`` (``INVALID_AMOUNT`` for an amount); with ``error`` (a class of the
caller's, e.g. the contract's ``CorruptState`` for stored records) it raises that.

Must not: import anything outside the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, NoReturn, TypeVar

from .codec import MAX_AMOUNT, parse_timestamp
from .errors import WireError

__all__ = [
    "ACCOUNT_ID_RE",
    "BANK_NAME_RE",
    "CURRENCY_RE",
    "MSP_ID_RE",
    "Fields",
]

#: Bank names as the network bootstrap fixes them; no ``-``, so collection names parse back.
BANK_NAME_RE = re.compile(r"^[a-z][a-z0-9]{1,15}$")
#: ISO-4217-like currency codes (``USD``, ``HKD``, ``CNH``).
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
#: MSP ids: Fabric allows more, the consortium uses letters, digits, ``.`` and ``-``.
MSP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$")
#: Account and transfer ids: base64url or hex, at least 22 characters (>= 128 random bits
#: when drawn by ``secrets.token_urlsafe(16)`` or ``secrets.token_hex(16)``).
ACCOUNT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22,64}$")

_E = TypeVar("_E", bound=Enum)


class Fields:
    """Strict reader of one JSON object: typed getters, then :meth:`done` refuses extra keys.

    ``bool`` is never accepted as an ``int``.
    """

    def __init__(
        self,
        data: Mapping[str, object],
        where: str,
        error: Callable[[str], Exception] | None = None,
    ) -> None:
        self._data = data
        self._where = where
        self._error = error
        self._seen: set[str] = set()

    def _raise(self, detail: str) -> NoReturn:
        if self._error is None:
            raise WireError("INVALID_ARGUMENT", detail)
        raise self._error(detail)

    def fail(self, name: str, rule: str) -> NoReturn:
        """Raise the reader's error for field ``name``."""
        self._raise(f"{self._where}.{name} {rule}")

    def _get(self, name: str, optional: bool) -> object:
        self._seen.add(name)
        value = self._data.get(name)
        if value is None and not optional:
            self.fail(name, "is required")
        return value

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
        self._seen.add(name)
        value = self._data.get(name)
        if (type(value) is str and min_len <= len(value) <= max_len
                and (pattern is None or pattern.fullmatch(value))):
            return value  # the common case, checked inline (every stored record reads here)
        if value is None:
            self.fail(name, "is required")
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
            if self._error is None:
                raise WireError(
                    "INVALID_AMOUNT",
                    f"{self._where}.{name} must be a positive integer of minor units",
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
        """A timestamp written by :func:`~dtoken_wire.codec.format_timestamp`."""
        text = self.str_(name, max_len=32)
        try:
            return parse_timestamp(text)
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

    def objects(self, name: str, *, max_items: int = 1000) -> list[Fields]:
        """A JSON array of objects, each as a reader of its own (``<where>.<name>[i]``, same
        error); the caller calls :meth:`done` on each."""
        readers: list[Fields] = []
        for i, item in enumerate(self.list_(name, max_items=max_items)):
            if not isinstance(item, dict):
                self.fail(f"{name}[{i}]", "must be an object")
            readers.append(Fields(item, f"{self._where}.{name}[{i}]", self._error))
        return readers

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
            self._raise(f"{self._where} has an unknown field {name}")
