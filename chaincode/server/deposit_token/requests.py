"""Reading a transaction's request: the wire dataclass, with the contract's errors.

Owns: :func:`parse`, which runs a request type's strict ``from_json``
(:mod:`dtoken_wire.requests`, where every request shape and its checks are written once, for
the SDK and the contract) and turns its :class:`~dtoken_wire.errors.WireError` into this
contract's exception of the same code (``INVALID_ARGUMENT`` or ``INVALID_AMOUNT``, naming the
field, never its value).

Must not: declare a request shape (that is the wire package's), or touch the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from dtoken_wire.errors import WireError
from dtoken_wire.requests import Request

from .errors import InvalidArgument, refusal_from_message

__all__ = ["parse"]

_R = TypeVar("_R", bound=Request)


def parse(kind: type[_R], data: Mapping[str, object]) -> _R:
    """``kind.from_json(data)``, raising ``INVALID_ARGUMENT`` / ``INVALID_AMOUNT``."""
    try:
        return kind.from_json(data)
    except WireError as exc:
        raise (refusal_from_message(str(exc)) or InvalidArgument(exc.detail)) from None
