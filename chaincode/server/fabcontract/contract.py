"""``Contract``, the ``@transaction`` decorator, and the transaction context."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from fabshim import ClientIdentity, Stub

from .errors import UnknownTransaction

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

TRANSACTION_ATTRIBUTE = "__fabcontract_transaction__"


@dataclass(frozen=True, slots=True)
class TransactionMarker:
    """What ``@transaction`` records on a method."""

    evaluate: bool
    name: str | None
    #: ``(transient key, type)`` of each transient entry the transaction reads.
    transient: tuple[tuple[str, Any], ...] = ()


@overload
def transaction(func: F, /) -> F: ...
@overload
def transaction(
    *, evaluate: bool = False, name: str | None = None, transient: Mapping[str, Any] | None = None
) -> Callable[[F], F]: ...
def transaction(
    func: F | None = None,
    /,
    *,
    evaluate: bool = False,
    name: str | None = None,
    transient: Mapping[str, Any] | None = None,
) -> F | Callable[[F], F]:
    """Mark an ``async def`` method of a ``Contract`` as a transaction.

    ``@transaction()`` marks a submit transaction, ``@transaction(evaluate=True)`` an
    evaluate-only one (a query: tagged EVALUATE in the metadata). ``name`` overrides the
    function name clients call. The method's signature is ``(self, ctx, ...)``; its other
    parameters are annotated (see ``fabcontract.serialization``).

    ``transient`` declares the private inputs the transaction reads from the transient map:
    each key and the type its JSON value has (a dataclass, whose fields are the JSON object's
    fields, or any parameter type). The contract still reads them itself (``ctx.transient``);
    the declaration is what ``GetMetadata`` publishes as the transaction's ``transient``
    schema, since such inputs are no arguments.
    """

    def mark(method: F) -> F:
        candidate: object = method
        if not inspect.iscoroutinefunction(candidate):
            raise TypeError(f"transaction {method.__qualname__} must be an async def method")
        marker = TransactionMarker(evaluate, name, tuple((transient or {}).items()))
        setattr(method, TRANSACTION_ATTRIBUTE, marker)
        return method

    if func is not None:
        return mark(func)
    return mark


class Context:
    """What a transaction receives first: the stub and conveniences over it.

    A contract can return a subclass from ``Contract.create_context`` to carry its own
    helpers. ``function`` is the transaction function being run (without contract prefix).
    """

    def __init__(self, stub: Stub) -> None:
        self.stub = stub
        self.function = ""
        self._client_identity: ClientIdentity | None = None

    @property
    def client_identity(self) -> ClientIdentity:
        """The submitting client's identity (parsed on first use)."""
        if self._client_identity is None:
            self._client_identity = ClientIdentity(self.stub)
        return self._client_identity

    @property
    def transient(self) -> Mapping[str, bytes]:
        """The transient map: private inputs, never written to the ledger."""
        return self.stub.get_transient()

    @property
    def tx_id(self) -> str:
        """The transaction id."""
        return self.stub.tx_id


class Contract:
    """Base class of a contract: a named group of transactions.

    The name is the constructor's ``name`` argument, else a ``name`` class attribute,
    else the class name. Clients call ``"<name>:<function>"``, or ``"<function>"`` for the
    default contract (the first one given to ``ContractChaincode``).

    Override the hooks to run code around every transaction of the contract.
    """

    name: str

    def __init__(self, name: str | None = None) -> None:
        if name is None:
            name = getattr(type(self), "name", None) or type(self).__name__
        if not isinstance(name, str) or not name:
            raise TypeError("a contract name must be a non-empty string")
        self.name = name

    def create_context(self, stub: Stub) -> Context:
        """The context passed to this contract's transactions and hooks."""
        return Context(stub)

    async def before_transaction(self, ctx: Context) -> None:
        """Runs before each transaction, after its arguments decoded; raising aborts it."""

    async def after_transaction(self, ctx: Context, result: Any) -> None:
        """Runs after each successful transaction with its result; raising fails it."""

    async def unknown_transaction(self, ctx: Context) -> Any:
        """Runs when the requested function does not exist; by default refuses it.

        A value returned here becomes the (successful) result.
        """
        raise UnknownTransaction(
            f"function {ctx.function!r} is not a transaction of contract {self.name!r}"
        )
