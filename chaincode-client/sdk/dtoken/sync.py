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
from typing import TYPE_CHECKING, Self, TypeVar

import fabgateway.sync  # noqa: F401 - registers the twins of Network & co., returned here
from fabgateway.blocking import LoopThread, Twin, blocking_twin

from dtoken.bank import Bank, Member, Regulator
from dtoken.profile import Profile
from dtoken.submitter import RetryPolicy

__all__ = ["SyncBank", "SyncRegulator", "connect"]

if TYPE_CHECKING:
    # <declarations: imports> generated: python -m fabgateway._declarations dtoken.sync
    import dtoken_wire.conditional as c  # noqa: I001 - generated, one import a line
    from collections.abc import Mapping
    from collections.abc import Sequence
    from datetime import datetime
    from decimal import Decimal
    from dtoken.coalescer import Coalescer
    from dtoken.conditional import Escrow
    from dtoken.conditional import EscrowOpened
    from dtoken.conditional import PaymentRequest
    from dtoken.conditional import PaymentRequested
    from dtoken.models import Account
    from dtoken.models import AccountSummary
    from dtoken.models import AuditReport
    from dtoken.models import HistoryEntry
    from dtoken.models import Obligations
    from dtoken.models import OpenedAccount
    from dtoken.models import Payee
    from dtoken.models import Payment
    from dtoken.models import Payout
    from dtoken.models import ProvenPosition
    from dtoken.models import Quote
    from dtoken.models import ReferenceInfo
    from dtoken.models import Supply
    from dtoken.models import Transfer
    from dtoken.money import Money
    from dtoken.submitter import Receipt
    from dtoken_wire.enums import Rounding
    from fabgateway.sync import Network
    from fractions import Fraction
    # </declarations>

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

    if TYPE_CHECKING:
        # <declarations: SyncBank> generated (fabgateway._declarations)
        def __enter__(self) -> Self: ...
        def accept(self, transfer_id: str, payer_bank: str, *, force: bool = False) -> Receipt: ...
        def account(self, account_id: str) -> Account: ...
        def accounts(self, currency: str | None = None) -> list[AccountSummary]: ...
        def approve_request(
            self,
            request_id: str,
            payee_bank: str,
            *,
            originator: Mapping[str, str] | None = None,
            ttl_seconds: int | None = None,
        ) -> Receipt: ...
        def balance(self, account_id: str) -> Money: ...
        def batch_payout(
            self,
            from_account: str,
            payees: Sequence[Payee],
            *,
            reference: str,
            originator: Mapping[str, str] | None = None,
            ttl_seconds: int | None = None,
        ) -> Payout: ...
        def burn(self, account_id: str, amount: int | Money, *, reference: str) -> Receipt: ...
        def claim(self, transfer_id: str, payer_bank: str, preimage: str) -> Receipt: ...
        def claim_escrow(
            self,
            escrow_id: str,
            payer_bank: str,
            statement: c.Statement | None = None,
        ) -> Receipt: ...
        def claim_escrows(
            self,
            payer_bank: str,
            items: Sequence[tuple[str, c.Statement | None]],
        ) -> tuple[Receipt, dict[str, str] | None]: ...
        def close_account(self, account_id: str, *, reference: str | None = None) -> Receipt: ...
        @property
        def coalescer(self) -> Coalescer: ...
        @property
        def currencies(self) -> Mapping[str, int]: ...
        def decide(
            self,
            payer_bank: str,
            decisions: Sequence[tuple[str, bool, str]],
        ) -> tuple[Receipt, dict[str, str] | None]: ...
        def decline_request(
            self,
            request_id: str,
            payee_bank: str,
            reason: str = "",
        ) -> Receipt: ...
        def escrow(
            self,
            from_account: str,
            to_bank: str,
            to_account: str,
            amount: int | Money,
            *,
            reference: str,
            deadline: datetime,
            on_deadline: c.DeadlineAction | str = "refund",
            attester: str | None = None,
            arbiter: str | None = None,
            remittance: str = "",
            originator: Mapping[str, str] | None = None,
        ) -> EscrowOpened: ...
        def escrows(self, counterparty: str, *, incoming: bool = False) -> list[Escrow]: ...
        def expire_lock(self, transfer_id: str, payee_bank: str) -> Receipt: ...
        def exposure_cap(self, debtor_bank: str, currency: str) -> Money | None: ...
        def freeze(self, account_id: str, *, reference: str | None = None) -> Receipt: ...
        def get_escrow(self, escrow_id: str, payer_bank: str, payee_bank: str) -> Escrow: ...
        def get_payment_request(
            self,
            request_id: str,
            payer_bank: str,
            payee_bank: str,
        ) -> PaymentRequest: ...
        def get_transfer(self, transfer_id: str, payer_bank: str, payee_bank: str) -> Transfer: ...
        def headroom(self, payee_bank: str, currency: str) -> Money | None: ...
        def history(
            self,
            account_id: str,
            *,
            from_seq: int = 0,
            limit: int | None = None,
        ) -> list[HistoryEntry]: ...
        def incoming(
            self,
            counterparty: str | None = None,
            *,
            since: datetime | None = None,
            until: datetime | None = None,
        ) -> list[Transfer]: ...
        @property
        def lane(self) -> int | None: ...
        def lock(
            self,
            from_account: str,
            to_bank: str,
            to_account: str,
            amount: int | Money,
            *,
            lock: str,
            ttl_seconds: int,
            reference: str,
            remittance: str = "",
            originator: Mapping[str, str] | None = None,
        ) -> Payment: ...
        def lookup_reference(self, reference: str) -> ReferenceInfo | None: ...
        def mint(self, account_id: str, amount: int | Money, *, reference: str) -> Receipt: ...
        def money(self, amount: str | int, currency: str | None = None) -> Money: ...
        @property
        def msp_id(self) -> str: ...
        @property
        def name(self) -> str: ...
        @property
        def network(self) -> Network: ...
        def obligations(self, other_bank: str) -> Obligations: ...
        def offer_quote(
            self,
            payer_bank: str,
            amount: Money,
            to_currency: str,
            rate: Fraction | Decimal | str | int,
            *,
            reference: str,
            ttl_seconds: int = 600,
            accept_seconds: int = 3600,
            rounding: Rounding | str = "bank",
        ) -> Quote: ...
        def open_account(
            self,
            currency: str,
            owner_ref: str,
            *,
            reference: str,
            single_payment_limit: int | Money | None = None,
            daily_outflow_limit: int | Money | None = None,
        ) -> OpenedAccount: ...
        def outgoing(
            self,
            counterparty: str | None = None,
            *,
            since: datetime | None = None,
        ) -> list[Transfer]: ...
        def pay_with_quote(
            self,
            from_account: str,
            to_account: str,
            quote: Quote,
            *,
            reference: str,
            remittance: str = "",
            originator: Mapping[str, str] | None = None,
            ttl_seconds: int | None = None,
        ) -> Payment: ...
        def payment_requests(
            self,
            counterparty: str,
            *,
            incoming: bool = True,
        ) -> list[PaymentRequest]: ...
        def quote(
            self,
            quote_id: str,
            *,
            payee_bank: str,
            payer_bank: str | None = None,
        ) -> Quote: ...
        def rebalance_lanes(
            self,
            account_id: str,
            lane: int,
            amount: int | Money,
            *,
            reference: str | None = None,
        ) -> Receipt: ...
        def record_position(
            self,
            collection: str,
            key: str,
            value_hash: str,
            claimed_tx_id: str,
        ) -> ProvenPosition | None: ...
        def record_settlement(
            self,
            debtor_bank: str,
            amount: Money,
            *,
            rtgs_reference: str,
        ) -> Receipt: ...
        def refund(self, transfer_id: str, payee_bank: str) -> Receipt: ...
        def refund_escrow(
            self,
            escrow_id: str,
            payee_bank: str,
            statement: c.Statement | None = None,
        ) -> Receipt: ...
        def register_attester(self, name: str, public_key_pem: str) -> Receipt: ...
        def reject(self, transfer_id: str, payer_bank: str, reason: str = "") -> Receipt: ...
        def release(self, escrow_id: str, payee_bank: str) -> Receipt: ...
        def request_payment(
            self,
            payer_bank: str,
            payer_account: str,
            to_account: str,
            amount: Money,
            *,
            invoice_ref: str,
            due: datetime,
            reference: str,
        ) -> PaymentRequested: ...
        def set_exposure_cap(self, debtor_bank: str, cap: Money) -> Receipt: ...
        def set_lanes(
            self,
            account_id: str,
            lanes: int,
            *,
            reference: str | None = None,
        ) -> Receipt: ...
        def set_limits(
            self,
            account_id: str,
            *,
            single_payment: int | Money | None = None,
            daily_outflow: int | Money | None = None,
            reference: str | None = None,
        ) -> Receipt: ...
        def supply(self, currency: str) -> Supply: ...
        def suspensions(self) -> list[dict[str, str]]: ...
        def transfer(
            self,
            from_account: str,
            to_bank: str,
            to_account: str,
            amount: int | Money,
            *,
            reference: str,
            remittance: str = "",
            originator: Mapping[str, str] | None = None,
            ttl_seconds: int | None = None,
        ) -> Payment: ...
        def unfreeze(self, account_id: str, *, reference: str | None = None) -> Receipt: ...
        def wait_for_commit(self, tx_id: str, *, timeout: float = 30.0) -> int: ...
        # </declarations>

    _member_class = Bank


@blocking_twin(Regulator)
class SyncRegulator(_SyncMember[Regulator]):
    """:class:`~dtoken.bank.Regulator`, blocking."""

    if TYPE_CHECKING:
        # <declarations: SyncRegulator> generated (fabgateway._declarations)
        def __enter__(self) -> Self: ...
        def account(self, bank: str, account_id: str) -> Account: ...
        def accounts(self, bank: str, currency: str | None = None) -> list[AccountSummary]: ...
        def audit(self) -> AuditReport: ...
        @property
        def currencies(self) -> Mapping[str, int]: ...
        def freeze(
            self,
            bank: str,
            account_id: str,
            *,
            held_amount: int | Money = 0,
            frozen: bool = True,
            reason: str = "",
            reference: str | None = None,
        ) -> Receipt: ...
        def get_transfer(self, transfer_id: str, payer_bank: str, payee_bank: str) -> Transfer: ...
        def history(
            self,
            bank: str,
            account_id: str,
            *,
            from_seq: int = 0,
            limit: int | None = None,
        ) -> list[HistoryEntry]: ...
        def lookup_reference(self, reference: str) -> ReferenceInfo | None: ...
        def money(self, amount: str | int, currency: str | None = None) -> Money: ...
        @property
        def msp_id(self) -> str: ...
        @property
        def name(self) -> str: ...
        @property
        def network(self) -> Network: ...
        def obligations(self, bank_a: str, bank_b: str) -> Obligations: ...
        def pending(self, bank: str, direction: str = "incoming") -> list[Transfer]: ...
        def record_position(
            self,
            collection: str,
            key: str,
            value_hash: str,
            claimed_tx_id: str,
        ) -> ProvenPosition | None: ...
        def release(
            self,
            bank: str,
            account_id: str,
            *,
            reference: str | None = None,
        ) -> Receipt: ...
        def resume(self, bank: str, *, reference: str | None = None) -> Receipt: ...
        def supply(self, bank: str, currency: str) -> Supply: ...
        def suspend(
            self,
            bank: str,
            *,
            reason: str = "",
            reference: str | None = None,
        ) -> Receipt: ...
        def wait_for_commit(self, tx_id: str, *, timeout: float = 30.0) -> int: ...
        # </declarations>

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
