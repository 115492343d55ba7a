"""Conditional payments in the background: the bank's rules for escrows and payment requests.

:class:`ConditionalWatcher` makes one pass (:meth:`~ConditionalWatcher.pass_once`) over what
this bank's conditional payments wait on, from its own peer, and acts:

* **incoming escrows released** by the payer bank (the buyer confirmed; the terms released at
  the deadline): claim them, crediting the seller (``claim_escrow`` on the release; several
  of one payer bank in one ``claim_escrows``, the credits summed per seller account);
* **outgoing escrows due** (the deadline passed, nothing decided): as the terms say, release
  them to the payee, or refund the buyer once ``refund_grace`` has passed after the deadline
  (the grace gives the payee bank time to present a delivery attested in time, which would
  otherwise outrank a refund made on this bank's own word: docs/token-model.md, "Escrow");
* **incoming payment requests pending**: ask the bank's :data:`RequestRule` and approve (pay
  once), decline (with the rule's reason), or leave the request for later.

The ledger is the truth: every pass re-reads the states, and every action is idempotent (the
SDK derives each one's reference from the escrow or request id, and the contract refuses a
second one with ``INVALID_STATE``, counted here as ``skipped``). Statements signed by an
attester or an arbiter are presented by whoever holds them (:meth:`dtoken.bank.Bank.claim_escrow`
with the statement); this watcher never signs anything.

Must not: decide whether a condition holds (the contract does), or log an amount or account.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dtoken_wire.codec import parse_timestamp

from dtoken.bank import Bank
from dtoken.conditional import (
    MAX_CLAIMS,
    DeadlineAction,
    Escrow,
    EscrowState,
    PaymentRequest,
    PaymentRequestStatus,
)
from dtoken.errors import DTokenError, Expired, InvalidState, NotExpired
from dtoken.money import Money
from dtoken.submitter import Receipt

__all__ = [
    "DEFAULT_REFUND_GRACE",
    "ConditionalHandled",
    "ConditionalWatcher",
    "RequestDecision",
    "RequestRule",
    "approve_up_to",
    "leave_requests",
]

_log = logging.getLogger("dtoken.conditional")

#: How long after an escrow's deadline this bank waits before refunding on its own word.
DEFAULT_REFUND_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class RequestDecision:
    """A rule's answer to a payment request: approve, or decline with a reason."""

    approve: bool
    reason: str = ""


#: A bank's rule for an incoming payment request: a decision, or ``None`` to leave it
#: pending (a person decides, or a later pass).
RequestRule = Callable[[PaymentRequest],
                       RequestDecision | Awaitable[RequestDecision | None] | None]


def leave_requests(request: PaymentRequest) -> RequestDecision | None:
    """The default rule: answer no request automatically."""
    return None


def approve_up_to(limit: Money) -> RequestRule:
    """A rule that pays requests up to ``limit`` (in its currency) and leaves the others."""

    def rule(request: PaymentRequest) -> RequestDecision | None:
        if request.amount.currency == limit.currency and request.amount.minor <= limit.minor:
            return RequestDecision(True)
        return None

    return rule


@dataclass(frozen=True)
class ConditionalHandled:
    """What a pass did with one escrow or request: ``kind`` is ``escrow`` or ``request``;
    ``action`` is ``claimed``, ``released``, ``refunded``, ``approved``, ``declined``,
    ``skipped`` (nothing to do any more) or ``failed`` (left for the next pass)."""

    kind: str
    item_id: str
    counterparty: str
    action: str
    reason: str = ""
    receipt: Receipt | None = None
    error: DTokenError | None = None


class ConditionalWatcher:
    """One bank's background rules for escrows and payment requests (see the module)."""

    def __init__(
        self,
        bank: Bank,
        *,
        request_rule: RequestRule = leave_requests,
        refund_grace: timedelta = DEFAULT_REFUND_GRACE,
        counterparties: Sequence[str] | None = None,
        on_handled: Callable[[ConditionalHandled], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._bank = bank
        self._rule = request_rule
        self._grace = refund_grace
        self._counterparties = counterparties
        self._on_handled = on_handled
        self._clock = clock

    def _banks(self) -> list[str]:
        return list(self._counterparties or self._bank.profile.banks())

    async def pass_once(self) -> list[ConditionalHandled]:
        """One pass over every counterparty (this bank included, for escrows within it)."""
        done: list[ConditionalHandled] = []
        for other in self._banks():
            if other != self._bank.name:
                released = [e.escrow_id for e in await self._bank.escrows(other, incoming=True)
                            if e.state is EscrowState.RELEASED]
                done += await self._claim(other, released)
                for request in await self._bank.payment_requests(other):
                    if request.status is PaymentRequestStatus.PENDING:
                        handled = await self._answer(request)
                        if handled is not None:
                            done.append(handled)
            for escrow in await self._bank.escrows(other):
                handled = await self._settle_due(escrow)
                if handled is not None:
                    done.append(handled)
        for handled in done:
            if self._on_handled is not None:
                self._on_handled(handled)
        return done

    async def _claim(self, payer_bank: str, ids: Sequence[str]) -> list[ConditionalHandled]:
        """Claim released escrows: one alone, several in batches of :data:`MAX_CLAIMS`
        (credits summed per payee account); a batch refused whole or replayed falls back to
        one by one."""
        if len(ids) == 1:
            return [await self._act("escrow", ids[0], payer_bank, "claimed",
                                    self._bank.claim_escrow(ids[0], payer_bank))]
        done: list[ConditionalHandled] = []
        for start in range(0, len(ids), MAX_CLAIMS):
            chunk = ids[start:start + MAX_CLAIMS]
            try:
                receipt, codes = await self._bank.claim_escrows(
                    payer_bank, [(i, None) for i in chunk])
            except DTokenError:
                codes, receipt = None, None
            if codes is None:
                done += [await self._act("escrow", i, payer_bank, "claimed",
                                         self._bank.claim_escrow(i, payer_bank)) for i in chunk]
                continue
            done += [ConditionalHandled("escrow", i, payer_bank,
                                        "claimed" if codes[i] == "OK" else "skipped",
                                        "" if codes[i] == "OK" else codes[i], receipt)
                     for i in chunk]
        return done

    async def _settle_due(self, escrow: Escrow) -> ConditionalHandled | None:
        if escrow.state is not EscrowState.DUE:
            return None
        other = escrow.payee_bank
        if escrow.on_deadline is DeadlineAction.RELEASE:
            return await self._act("escrow", escrow.escrow_id, other, "released",
                                   self._bank.release(escrow.escrow_id, other))
        if self._clock() < parse_timestamp(escrow.deadline) + self._grace:
            return None  # the payee bank's time to present a delivery attested in time
        return await self._act("escrow", escrow.escrow_id, other, "refunded",
                               self._bank.refund_escrow(escrow.escrow_id, other))

    async def _answer(self, request: PaymentRequest) -> ConditionalHandled | None:
        decision = self._rule(request)
        if inspect.isawaitable(decision):
            decision = await decision
        if decision is None:
            return None
        other = request.payee_bank
        if decision.approve:
            return await self._act("request", request.request_id, other, "approved",
                                   self._bank.approve_request(request.request_id, other))
        return await self._act("request", request.request_id, other, "declined",
                               self._bank.decline_request(request.request_id, other,
                                                          decision.reason),
                               decision.reason)

    async def _act(self, kind: str, item_id: str, other: str, action: str,
                   call: Awaitable[Receipt], reason: str = "") -> ConditionalHandled:
        try:
            return ConditionalHandled(kind, item_id, other, action, reason, await call)
        except (InvalidState, NotExpired, Expired) as error:
            return ConditionalHandled(kind, item_id, other, "skipped", error.code, error=error)
        except DTokenError as error:
            _log.warning("%s %s with %s failed: %s", kind, action, other, type(error).__name__)
            return ConditionalHandled(kind, item_id, other, "failed", type(error).__name__,
                                      error=error)

    async def run(self, *, interval: float = 30.0, stop: asyncio.Event | None = None) -> None:
        """A pass every ``interval`` seconds until ``stop`` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                await self.pass_once()
            except DTokenError as error:
                _log.warning("conditional pass failed: %s", type(error).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
