"""A blocking facade over :class:`~dtoken.bank.Bank` and :class:`~dtoken.bank.Regulator`.

For scripts and notebooks::

    from dtoken.sync import SyncBank

    with SyncBank.connect("state/profiles/hkbank.json", identity="minter") as bank:
        account = bank.open_account("USD", "CIF-1001", reference="open-1001").account_id
        bank.mint(account, bank.money("1,250.00 USD"), reference="dep-77")
        print(bank.balance(account))

The async client runs on an event loop in a private thread (a gRPC aio channel belongs to the
loop it was made on); each method blocks its caller until the call is done. Same arguments,
results and exceptions as the async methods.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

from dtoken.bank import Bank, Member, Regulator
from dtoken.money import Money
from dtoken.profile import Profile
from dtoken.submitter import RetryPolicy

__all__ = ["SyncBank", "SyncRegulator", "connect"]

_P = ParamSpec("_P")
_T = TypeVar("_T")
_M = TypeVar("_M", bound=Member)


class _Loop:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="dtoken-sync", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("dtoken.sync called from its own event loop thread")
        future: Future[_T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result()

    def stop(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.close()


class _SyncMember(Generic[_M]):
    _cls: type[Member] = Member

    def __init__(self, member: _M, loop: _Loop) -> None:
        self._member = member
        self._loop = loop

    @classmethod
    def connect(
        cls,
        profile: Profile | str | Path,
        *,
        identity: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> Self:
        """Connect on a private loop thread; ``close()`` (or ``with``) ends both."""
        loop = _Loop()

        async def make() -> Member:
            return cls._cls.connect(profile, identity=identity, policy=policy)

        try:
            member = loop.run(make())
        except BaseException:
            loop.stop()
            raise
        return cls(member, loop)  # type: ignore[arg-type]

    def _run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return self._loop.run(coroutine)

    @property
    def member(self) -> _M:
        """The async client (use it only from the facade's loop)."""
        return self._member

    @property
    def name(self) -> str:
        return self._member.name

    @property
    def profile(self) -> Profile:
        return self._member.profile

    def money(self, amount: str | int, currency: str | None = None) -> Money:
        return self._member.money(amount, currency)

    def close(self) -> None:
        """Close the channel and stop the loop thread."""
        try:
            self._loop.run(self._member.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _Blocking(Generic[_M, _P, _T]):
    """A method of the async client, made blocking on the facade."""

    def __init__(self, method: Callable[Concatenate[_M, _P], Coroutine[Any, Any, _T]]) -> None:
        self._method = method
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...

    @overload
    def __get__(self, obj: _SyncMember[_M], owner: type[Any]) -> Callable[_P, _T]: ...

    def __get__(
        self, obj: _SyncMember[_M] | None, owner: type[Any]
    ) -> Self | Callable[_P, _T]:
        if obj is None:
            return self
        method = self._method
        facade = obj

        def call(*args: _P.args, **kwargs: _P.kwargs) -> _T:
            return facade._run(method(facade._member, *args, **kwargs))

        return call


class SyncBank(_SyncMember[Bank]):
    """:class:`~dtoken.bank.Bank`, blocking."""

    _cls = Bank

    open_account = _Blocking(Bank.open_account)
    account = _Blocking(Bank.account)
    accounts = _Blocking(Bank.accounts)
    balance = _Blocking(Bank.balance)
    history = _Blocking(Bank.history)
    freeze = _Blocking(Bank.freeze)
    unfreeze = _Blocking(Bank.unfreeze)
    close_account = _Blocking(Bank.close_account)
    set_limits = _Blocking(Bank.set_limits)
    mint = _Blocking(Bank.mint)
    burn = _Blocking(Bank.burn)
    transfer = _Blocking(Bank.transfer)
    batch_payout = _Blocking(Bank.batch_payout)
    incoming = _Blocking(Bank.incoming)
    outgoing = _Blocking(Bank.outgoing)
    accept = _Blocking(Bank.accept)
    reject = _Blocking(Bank.reject)
    refund = _Blocking(Bank.refund)
    get_transfer = _Blocking(Bank.get_transfer)
    wait_for_commit = _Blocking(Bank.wait_for_commit)
    ledger_positions = _Blocking(Bank.ledger_positions)
    lookup_reference = _Blocking(Bank.lookup_reference)
    supply = _Blocking(Bank.supply)
    obligations = _Blocking(Bank.obligations)
    record_settlement = _Blocking(Bank.record_settlement)


class SyncRegulator(_SyncMember[Regulator]):
    """:class:`~dtoken.bank.Regulator`, blocking."""

    _cls = Regulator

    freeze = _Blocking(Regulator.freeze)
    release = _Blocking(Regulator.release)
    audit = _Blocking(Regulator.audit)
    account = _Blocking(Regulator.account)
    accounts = _Blocking(Regulator.accounts)
    history = _Blocking(Regulator.history)
    supply = _Blocking(Regulator.supply)
    obligations = _Blocking(Regulator.obligations)
    pending = _Blocking(Regulator.pending)
    get_transfer = _Blocking(Regulator.get_transfer)
    wait_for_commit = _Blocking(Regulator.wait_for_commit)
    ledger_positions = _Blocking(Regulator.ledger_positions)


def connect(
    profile: Profile | str | Path,
    *,
    identity: str | None = None,
    policy: RetryPolicy | None = None,
) -> SyncBank | SyncRegulator:
    """A :class:`SyncBank` or a :class:`SyncRegulator`, as the profile's organization is."""
    loaded = profile if isinstance(profile, Profile) else Profile.load(profile)
    if loaded.is_regulator:
        return SyncRegulator.connect(loaded, identity=identity, policy=policy)
    return SyncBank.connect(loaded, identity=identity, policy=policy)
