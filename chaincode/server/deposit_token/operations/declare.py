"""Where each transaction is declared, once: a decorator on its body.

Owns: :class:`TxSpec` and :data:`TRANSACTIONS`, filled by :func:`declare` as the operations
modules are imported. A body's name is the transaction's name, its second parameter's
annotation (a :mod:`dtoken_wire.requests` type) is the transient request it takes (none if it
takes only the :class:`~deposit_token.operations.access.Tx`), its docstring the description;
the decorator adds only what the signature cannot say: evaluate-only, and whether the request
may be absent. The service runs from this table, the contract publishes its methods from it,
and ``GetMetadata`` describes each request's fields from the same type.

Must not: run anything (it records; :mod:`deposit_token.service` runs).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from dtoken_wire.requests import Request

__all__ = ["TRANSACTIONS", "TxSpec", "declare"]

Body = Callable[..., Awaitable[dict[str, object]]]
_B = TypeVar("_B", bound=Body)


@dataclass(frozen=True)
class TxSpec:
    """A transaction: its name, request type (``None``: no transient request), body and mode."""

    name: str
    request: type[Request] | None
    body: Body
    evaluate: bool = False
    optional_request: bool = False
    description: str = ""


_TABLE: dict[str, TxSpec] = {}

#: Every transaction except ``init_network`` (which takes its JSON as an argument), by name.
TRANSACTIONS: Mapping[str, TxSpec] = _TABLE


def declare(*, evaluate: bool = False, optional_request: bool = False) -> Callable[[_B], _B]:
    """Declare the decorated body ``async def name(tx, request: SomeRequest)`` a transaction."""

    def record(body: _B) -> _B:
        name = body.__name__
        params = list(inspect.signature(body).parameters)
        request: type[Request] | None = None
        if len(params) == 2:
            kind = typing.get_type_hints(body)[params[1]]
            if not (isinstance(kind, type) and issubclass(kind, Request)):
                raise TypeError(f"{name}: its request must be a dtoken_wire request type")
            request = kind
        elif len(params) != 1:
            raise TypeError(f"{name}: a body takes (tx) or (tx, request)")
        if name in _TABLE:
            raise TypeError(f"transaction {name} is declared twice")
        _TABLE[name] = TxSpec(name, request, body, evaluate, optional_request,
                              inspect.getdoc(body) or "")
        return body

    return record


