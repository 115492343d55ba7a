"""A blocking facade over :class:`~dtoken.bank.Bank` and :class:`~dtoken.bank.Regulator`.

For scripts and notebooks::

    from dtoken.sync import SyncBank

    with SyncBank.connect("state/profiles/hkbank.json", identity="minter") as bank:
        account = bank.open_account("USD", "CIF-1001", reference="open-1001").account_id
        bank.mint(account, bank.money("1,250.00 USD"), reference="dep-77")
        print(bank.balance(account))

:class:`SyncBank` and :class:`SyncRegulator` are the blocking twins of ``Bank`` and
``Regulator``, made by :func:`fabgateway.blocking.blocking_twin`: every method of the async
client is here, with the same parameters, results and exceptions, blocking its caller until
the call is done (a parity test holds them equal). The async client runs on an event loop in
a private thread (a gRPC aio channel belongs to the loop it was made on); ``network`` is the
blocking :class:`fabgateway.sync.Network` on that same loop.

What it must not do: carry a method of its own that the async client lacks (add it to
``bank.py``; the twin follows), or block inside the loop thread.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

import fabgateway.sync  # noqa: F401 - registers the twins of Network & co., returned here
from fabgateway.blocking import LoopThread, Twin, blocking_twin

from dtoken.bank import Bank, Member, Regulator
from dtoken.profile import Profile
from dtoken.submitter import RetryPolicy

__all__ = ["SyncBank", "SyncRegulator", "connect"]

_M = TypeVar("_M", bound=Member)

class _SyncMember(Twin[_M]):
    """What SyncBank and SyncRegulator share: connecting, closing, the async client."""

    _member_class: type[Member] = Member

    # Differs: the async constructor opens a channel, which must happen on the twin's own loop
    # thread, which this constructor starts.
    @classmethod
    def connect(
        cls,
        profile: Profile | str | Path,
        *,
        identity: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> Self:
        """Connect on a private loop thread; ``close()`` (or ``with``) ends both."""
        runner = LoopThread("dtoken-sync")

        async def make() -> Member:
            return cls._member_class.connect(profile, identity=identity, policy=policy)

        try:
            member = runner.run(make())
        except BaseException:
            runner.stop()
            raise
        return cls(member, runner)  # type: ignore[arg-type]

    @property
    def member(self) -> _M:
        """The async client (use it only on the facade's loop thread)."""
        return self._target

    # Differs: besides the async client's channel, the twin owns its loop thread.
    def close(self) -> None:
        """Close the channel and stop the loop thread (idempotent)."""
        if self._runner.stopped:
            return
        try:
            self._runner.run(self._target.close())
        finally:
            self._runner.stop()

    # Differs: leaving ``with`` closes what this twin owns (see close()).
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@blocking_twin(Bank)
class SyncBank(_SyncMember[Bank]):
    """:class:`~dtoken.bank.Bank`, blocking."""

    _member_class = Bank


@blocking_twin(Regulator)
class SyncRegulator(_SyncMember[Regulator]):
    """:class:`~dtoken.bank.Regulator`, blocking."""

    _member_class = Regulator


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
