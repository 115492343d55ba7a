"""The conditional watcher's rules, over a fake bank: released incoming escrows are claimed,
due outgoing escrows are released or (after the grace) refunded as their terms say, pending
requests are answered by the rule, and a refusal is a skip, not a failure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from dtoken.bank import Bank
from dtoken.conditional import (
    DeadlineAction,
    Escrow,
    EscrowState,
    PaymentRequest,
    PaymentRequestStatus,
)
from dtoken.conditional_watch import ConditionalWatcher, RequestDecision, approve_up_to
from dtoken.errors import InvalidState
from dtoken.models import format_timestamp
from dtoken.money import Money

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CUR = {"USD": 2}


def escrow(eid: str, payer: str, payee: str, state: EscrowState,
           on_deadline: DeadlineAction = DeadlineAction.REFUND,
           deadline: datetime = NOW - timedelta(hours=2)) -> Escrow:
    return Escrow(eid, payer, payee, "acct", Money.of(500, "USD", CUR), "",
                  format_timestamp(deadline), on_deadline, "", "", "", state)


def request(rid: str, amount: int) -> PaymentRequest:
    return PaymentRequest(rid, "hkbank", "usbank", "buyer", "seller",
                          Money.of(amount, "USD", CUR), "INV", "", PaymentRequestStatus.PENDING)


@dataclass
class FakeBank:
    name: str = "hkbank"
    outgoing: dict[str, list[Escrow]] = field(default_factory=dict)
    incoming: dict[str, list[Escrow]] = field(default_factory=dict)
    requests: dict[str, list[PaymentRequest]] = field(default_factory=dict)
    calls: list[tuple[str, ...]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def escrows(self, counterparty: str, *, incoming: bool = False) -> list[Escrow]:
        return (self.incoming if incoming else self.outgoing).get(counterparty, [])

    async def payment_requests(self, counterparty: str) -> list[PaymentRequest]:
        return self.requests.get(counterparty, [])

    async def _call(self, *what: str) -> Any:
        self.calls.append(what)
        if what[1] in self.refuse:
            raise InvalidState("INVALID_STATE: decided already")
        return None

    async def claim_escrow(self, eid: str, payer: str) -> Any:
        return await self._call("claim", eid, payer)

    async def claim_escrows(self, payer: str, items: Sequence[tuple[str, Any]]
                            ) -> tuple[Any, dict[str, str]]:
        self.calls.append(("claims", payer, *(i for i, _ in items)))
        return None, {i: ("INVALID_STATE" if i in self.refuse else "OK") for i, _ in items}

    async def release(self, eid: str, payee: str) -> Any:
        return await self._call("release", eid, payee)

    async def refund_escrow(self, eid: str, payee: str) -> Any:
        return await self._call("refund", eid, payee)

    async def approve_request(self, rid: str, payee: str) -> Any:
        return await self._call("approve", rid, payee)

    async def decline_request(self, rid: str, payee: str, reason: str) -> Any:
        return await self._call("decline", rid, payee, reason)


def watcher(bank: FakeBank, banks: Sequence[str] = ("hkbank", "usbank"),
            **kw: Any) -> ConditionalWatcher:
    return ConditionalWatcher(cast(Bank, bank), counterparties=banks, clock=lambda: NOW, **kw)


async def test_each_escrow_is_settled_as_its_state_and_terms_say() -> None:
    bank = FakeBank(
        incoming={"usbank": [escrow("in-released", "usbank", "hkbank", EscrowState.RELEASED),
                             escrow("in-held", "usbank", "hkbank", EscrowState.HELD)]},
        outgoing={"usbank": [
            escrow("due-refund", "hkbank", "usbank", EscrowState.DUE),
            escrow("due-release", "hkbank", "usbank", EscrowState.DUE, DeadlineAction.RELEASE),
            escrow("due-in-grace", "hkbank", "usbank", EscrowState.DUE,
                   deadline=NOW - timedelta(minutes=10)),
            escrow("paid", "hkbank", "usbank", EscrowState.PAID)],
            "hkbank": [escrow("local-due", "hkbank", "hkbank", EscrowState.DUE)]},
    )
    done = await watcher(bank).pass_once()
    assert sorted(bank.calls) == [("claim", "in-released", "usbank"),
                                  ("refund", "due-refund", "usbank"),
                                  ("refund", "local-due", "hkbank"),
                                  ("release", "due-release", "usbank")]
    assert {h.action for h in done} == {"claimed", "refunded", "released"}


async def test_requests_are_answered_by_the_rule_and_a_refusal_is_a_skip() -> None:
    bank = FakeBank(requests={"usbank": [request("small", 100), request("large", 10_000),
                                         request("taken", 50)]}, refuse={"taken"})
    done = await watcher(bank, request_rule=approve_up_to(Money.of(1000, "USD", CUR))
                         ).pass_once()
    assert sorted(bank.calls) == [("approve", "small", "usbank"),
                                  ("approve", "taken", "usbank")]
    assert sorted((h.item_id, h.action) for h in done) == [("small", "approved"),
                                                           ("taken", "skipped")]

    def decline_all(r: PaymentRequest) -> RequestDecision:
        return RequestDecision(False, "unknown supplier")

    bank.calls.clear()
    await watcher(bank, request_rule=decline_all).pass_once()
    assert ("decline", "large", "usbank", "unknown supplier") in bank.calls


async def test_several_released_escrows_of_one_payer_bank_are_claimed_in_one_batch() -> None:
    bank = FakeBank(incoming={"usbank": [
        escrow(f"in-{i}", "usbank", "hkbank", EscrowState.RELEASED) for i in range(3)]},
        refuse={"in-2"})
    done = await watcher(bank).pass_once()
    assert bank.calls == [("claims", "usbank", "in-0", "in-1", "in-2")]
    assert [(h.item_id, h.action, h.reason) for h in done] == [
        ("in-0", "claimed", ""), ("in-1", "claimed", ""), ("in-2", "skipped", "INVALID_STATE")]
