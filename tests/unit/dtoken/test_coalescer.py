"""The coalescer over a fake submitter that models the contract's per-item semantics.

What is checked, in every scenario and in the property test: every reference is applied
at most once (exactly once unless refused), every call gets its own answer (a receipt or its
own typed refusal), a batch never carries a reference twice, and at most one batch per payer
account is in flight.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from dtoken.coalescer import TRANSACTION, Coalescer
from dtoken.errors import (
    Contended,
    DuplicateReference,
    InsufficientFunds,
    NotFound,
    OutcomeUnknown,
)
from dtoken.submitter import Receipt, RetryPolicy
from dtoken_wire import requests as w
from hypothesis import given, settings
from hypothesis import strategies as st

PAYER = "acct-payer-xxxxxxxxxxxxxxxx"
PAYEE = "acct-payee-xxxxxxxxxxxxxxxx"
POLICY = RetryPolicy(backoff=0.001, outcome_timeout=5.0)


@dataclass
class Status:
    block_number: int


@dataclass
class FakeContract:
    """The ledger as ``coalesced_payout`` and ``initiate_transfer`` leave it, plus a script of
    what happens to each batch: ``ok``, ``conflict`` (invalidated, nothing applied), ``lost``
    (outcome unknown, nothing applied), ``applied`` (outcome unknown, but it committed),
    ``refused`` (the whole batch refused at endorsement)."""

    balance: int
    fates: list[str] = field(default_factory=list)
    applied: dict[str, str] = field(default_factory=dict)  # reference -> tx id
    applied_count: dict[str, int] = field(default_factory=dict)
    blocks: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    counter: itertools.count[int] = field(default_factory=itertools.count)
    committed_batches: dict[str, str] = field(default_factory=dict)  # batch reference -> tx
    replays: int = 0
    policy: RetryPolicy = POLICY

    def _apply(self, items: Sequence[dict[str, Any]], tx_id: str) -> list[str]:
        codes = []
        for item in items:
            ref, amount = item["reference"], item["amount"]
            if ref in self.applied:
                codes.append("DUPLICATE_REFERENCE")
            elif item["payee_account"] != PAYEE:
                codes.append("NOT_FOUND")
            elif amount > self.balance:
                codes.append("INSUFFICIENT_FUNDS")
            else:
                self.balance -= amount
                self.applied[ref] = tx_id
                self.applied_count[ref] = self.applied_count.get(ref, 0) + 1
                codes.append("OK")
        self.blocks[tx_id] = len(self.blocks)
        return codes

    async def submit(self, name: str, request: dict[str, Any], *, reference: str,
                     endorsing_organizations: Sequence[str]) -> Receipt:
        assert name == TRANSACTION
        if reference in self.committed_batches:  # Fabric: the id is in the ledger, a replay
            self.replays += 1
            assert self.replays < 50, "the same batch is resent in a loop"
            tx_id = self.committed_batches[reference]
            return Receipt(reference, name, tx_id, self.blocks[tx_id], 0, True)
        items = request["items"]
        refs = [i["reference"] for i in items]
        assert len(set(refs)) == len(refs), "a batch carries a reference twice"
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.batch_sizes.append(len(items))
        try:
            await asyncio.sleep(0.002)  # in flight: other calls queue up
            fate = self.fates.pop(0) if self.fates else "ok"
            tx_id = f"tx{next(self.counter)}"
            if fate == "refused":
                raise NotFound("the payer account does not exist")
            if fate == "conflict":
                raise Contended("lost", reference=reference, transaction_id=tx_id,
                                next_attempt=1)
            if fate == "lost":
                raise OutcomeUnknown("lost", reference=reference, transaction_ids=(tx_id,))
            codes = self._apply(items, tx_id)
            self.committed_batches[reference] = tx_id
            if fate == "applied":
                raise OutcomeUnknown("lost", reference=reference, transaction_ids=(tx_id,))
            return Receipt(reference, name, tx_id, self.blocks[tx_id], 0, False,
                           result=json.dumps({"tx_id": tx_id, "results": codes}).encode())
        finally:
            self.in_flight -= 1

    async def status_of(self, tx_id: str) -> Status:
        return Status(self.blocks[tx_id])

    async def lookup(self, reference: str) -> tuple[str, str, tuple[str, ...]] | None:
        if reference not in self.applied:
            return None
        return ("initiate_transfer", self.applied[reference], (tid_of(reference),))

    async def single(self, payer: str, item: w.CoalescedItem) -> Receipt:
        tx_id = f"tx{next(self.counter)}"
        (code,) = self._apply([item.to_json()], tx_id)
        if code == "INSUFFICIENT_FUNDS":
            raise InsufficientFunds("refused")
        if code == "NOT_FOUND":
            raise NotFound("refused")
        if code == "DUPLICATE_REFERENCE":  # the SDK answers from the reference record
            first = self.applied[item.reference]
            return Receipt(item.reference, "initiate_transfer", first, self.blocks[first], 0,
                           True)
        return Receipt(item.reference, "initiate_transfer", tx_id, self.blocks[tx_id], 0,
                       False)


def tid_of(reference: str) -> str:
    return f"tid-{reference}".ljust(22, "x")


def item(ref: str, amount: int, payee: str = PAYEE) -> w.CoalescedItem:
    return w.CoalescedItem(ref, "usbank", payee, amount, tid_of(ref))


def coalescer(contract: FakeContract, max_batch: int = w.MAX_BATCH) -> Coalescer:
    return Coalescer(contract, "HarbourBankMSP", lookup=contract.lookup,  # type: ignore[arg-type]
                     single=contract.single, max_batch=max_batch)


async def pay_all(c: Coalescer, items: Sequence[w.CoalescedItem]) -> list[Any]:
    return await asyncio.gather(*(c.pay(PAYER, i) for i in items), return_exceptions=True)


async def test_concurrent_payments_ride_in_few_batches_one_in_flight() -> None:
    contract = FakeContract(balance=10_000)
    c = coalescer(contract)
    out = await pay_all(c, [item(f"r{i}", 10) for i in range(64)])
    assert all(isinstance(r, Receipt) and not r.replayed for r in out)
    assert {r.reference for r in out} == {f"r{i}" for i in range(64)}
    assert contract.max_in_flight == 1
    assert len(contract.batch_sizes) <= 3  # the first alone, then everything that queued
    assert contract.balance == 10_000 - 640


async def test_a_refused_item_is_its_callers_error_and_its_neighbours_go_through() -> None:
    contract = FakeContract(balance=100)
    out = await pay_all(coalescer(contract),
                        [item("a", 60), item("b", 60), item("c", 40), item("d", 1, "nobody")])
    assert isinstance(out[0], Receipt)
    assert isinstance(out[1], InsufficientFunds)
    assert isinstance(out[2], Receipt)
    assert isinstance(out[3], NotFound)
    assert contract.balance == 0


async def test_after_an_unknown_outcome_that_applied_items_are_answered_once() -> None:
    contract = FakeContract(balance=1_000, fates=["applied"])
    out = await pay_all(coalescer(contract), [item(f"r{i}", 10) for i in range(5)])
    assert all(isinstance(r, Receipt) for r in out)
    assert all(not r.replayed for r in out)  # this call's own batch applied them
    assert set(contract.applied_count.values()) == {1}
    assert contract.balance == 950


async def test_a_batch_found_committed_on_resend_is_answered_item_by_item() -> None:
    # the batch commits but its reply is lost; the resent batch (same items, same id) is a
    # replay without per-item codes: each item is answered from the ledger, once
    contract = FakeContract(balance=15, fates=["applied"])
    out = await pay_all(coalescer(contract), [item("a", 10), item("b", 10)])
    assert isinstance(out[0], Receipt)
    assert not out[0].replayed
    assert isinstance(out[1], InsufficientFunds)  # refused in the batch: asked alone
    assert contract.applied_count == {"a": 1}


async def test_a_reference_applied_by_another_call_is_a_replay() -> None:
    contract = FakeContract(balance=1_000)
    c = coalescer(contract)
    first = await c.pay(PAYER, item("r", 10))
    again = await c.pay(PAYER, item("r", 10))
    assert again.replayed
    assert again.tx_id == first.tx_id
    # the same reference with another transfer id: another request reused it
    with pytest.raises(DuplicateReference):
        await c.pay(PAYER, w.CoalescedItem("r", "usbank", PAYEE, 10, "z" * 22))
    assert contract.balance == 990


async def test_a_reference_reused_for_another_amount_is_a_duplicate_not_a_replay() -> None:
    contract = FakeContract(balance=1_000)
    paid: dict[str, int] = {}

    async def same(it: w.CoalescedItem) -> bool:
        return paid[it.reference] == it.amount

    c = Coalescer(contract, "HarbourBankMSP", lookup=contract.lookup,  # type: ignore[arg-type]
                  single=contract.single, same_request=same)
    paid["r"] = 10
    await c.pay(PAYER, item("r", 10))
    with pytest.raises(DuplicateReference):
        await c.pay(PAYER, item("r", 11))  # same reference (same transfer id), other amount
    assert (await c.pay(PAYER, item("r", 10))).replayed
    assert contract.balance == 990


async def test_a_batch_refused_whole_is_sent_item_by_item() -> None:
    contract = FakeContract(balance=1_000, fates=["ok", "refused"])
    out = await pay_all(coalescer(contract), [item(f"r{i}", 10) for i in range(4)])
    assert all(isinstance(r, Receipt) for r in out)
    assert contract.balance == 960


async def test_a_call_out_of_time_gets_the_fault_and_a_later_call_applies_once() -> None:
    contract = FakeContract(balance=1_000, fates=["lost"] * 1_000,
                            policy=RetryPolicy(backoff=0.001, outcome_timeout=0.05))
    with pytest.raises(OutcomeUnknown):
        await coalescer(contract).pay(PAYER, item("r", 10))
    contract.fates = []
    receipt = await coalescer(contract).pay(PAYER, item("r", 10))
    assert not receipt.replayed
    assert contract.applied_count == {"r": 1}


@settings(max_examples=60, deadline=None)
@given(
    amounts=st.lists(st.integers(1, 40), min_size=1, max_size=40),
    fates=st.lists(st.sampled_from(["ok", "conflict", "lost", "applied", "refused"]),
                   max_size=12),
    balance=st.integers(0, 600),
    max_batch=st.integers(1, 8),
    repeat=st.integers(0, 5),
)
def test_every_reference_applies_at_most_once_and_every_call_is_answered(
    amounts: list[int], fates: list[str], balance: int, max_batch: int, repeat: int
) -> None:
    async def scenario() -> None:
        contract = FakeContract(balance=balance, fates=list(fates))
        c = coalescer(contract, max_batch)
        items = [item(f"r{i}", a) for i, a in enumerate(amounts)]
        # some references are paid twice, concurrently (a retry racing its original)
        items += items[:repeat]
        out = await pay_all(c, items)
        for it, result in zip(items, out, strict=True):
            if isinstance(result, Receipt):
                assert result.reference == it.reference
                assert contract.applied.get(it.reference) == result.tx_id
            else:
                assert isinstance(result, InsufficientFunds | NotFound), result
                if isinstance(result, InsufficientFunds):
                    assert it.reference not in contract.applied
        assert all(n == 1 for n in contract.applied_count.values())
        assert contract.max_in_flight == 1
        spent = sum(a for i, a in enumerate(amounts) if f"r{i}" in contract.applied)
        assert contract.balance == balance - spent
        # a crash here (nothing remembered) and a retry of everything: nothing new applies
        # except what was refused for funds and now fits
        again = await pay_all(coalescer(contract, max_batch), items)
        for it, result in zip(items, again, strict=True):
            if isinstance(result, Receipt):
                assert contract.applied[it.reference] == result.tx_id
        assert all(n == 1 for n in contract.applied_count.values())

    asyncio.run(scenario())
