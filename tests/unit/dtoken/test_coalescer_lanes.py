"""The coalescer on an account with balance lanes: two processes (two coalescers, each on its
own lane) pay from one account at once, over a fake contract that debits only the lane a
batch names and rebalances lanes as ``rebalance_lanes`` does.

What is checked: each process keeps at most one batch in flight on its lane while both lanes
are in flight together (they do not invalidate each other), a payment larger than its lane is
paid after a rebalance instead of refused, a payment is refused for funds only when the whole
account cannot pay it, and every reference is applied at most once, through crashes
(a retry of everything by new coalescers) and lost outcomes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dtoken.coalescer import Coalescer
from dtoken.errors import InsufficientFunds, NetworkFault, OutcomeUnknown
from dtoken.submitter import Receipt
from dtoken_wire import requests as w
from hypothesis import given, settings
from hypothesis import strategies as st
from unit.dtoken.test_coalescer import PAYEE, PAYER, POLICY, Status, tid_of


@dataclass
class LanedContract:
    lanes: list[int]
    fates: list[str] = field(default_factory=list)
    applied: dict[str, str] = field(default_factory=dict)
    applied_count: dict[str, int] = field(default_factory=dict)
    blocks: dict[str, int] = field(default_factory=dict)
    in_flight: dict[int, int] = field(default_factory=dict)
    max_in_flight: dict[int, int] = field(default_factory=dict)
    overlap: int = 0
    rebalances: int = 0
    counter: int = 0
    policy: Any = POLICY

    def _tx(self) -> str:
        self.counter += 1
        tx_id = f"tx{self.counter}"
        self.blocks[tx_id] = len(self.blocks)
        return tx_id

    async def submit(self, name: str, request: dict[str, Any], *, reference: str,
                     endorsing_organizations: Sequence[str]) -> Receipt:
        assert name == "coalesced_payout"
        lane = int(request.get("payer_lane", 0))
        self.in_flight[lane] = self.in_flight.get(lane, 0) + 1
        self.max_in_flight[lane] = max(self.max_in_flight.get(lane, 0), self.in_flight[lane])
        if sum(1 for n in self.in_flight.values() if n) > 1:
            self.overlap += 1
        try:
            await asyncio.sleep(0.002)
            fate = self.fates.pop(0) if self.fates else "ok"
            if fate == "lost":
                raise OutcomeUnknown("lost", reference=reference, transaction_ids=("x",))
            tx_id = self._tx()
            codes = []
            for item in request["items"]:
                ref, amount = item["reference"], item["amount"]
                if ref in self.applied:
                    codes.append("DUPLICATE_REFERENCE")
                elif amount > self.lanes[lane]:
                    codes.append("INSUFFICIENT_FUNDS")
                else:
                    self.lanes[lane] -= amount
                    self.applied[ref] = tx_id
                    self.applied_count[ref] = self.applied_count.get(ref, 0) + 1
                    codes.append("OK")
            if "OK" not in codes:
                from dtoken.errors import contract_error
                raise contract_error("INVALID_STATE: none of the payments can be applied")
            return Receipt(reference, name, tx_id, self.blocks[tx_id], 0, False,
                           result=json.dumps({"tx_id": tx_id, "results": codes}).encode())
        finally:
            self.in_flight[lane] -= 1

    async def rebalance(self, payer: str, lane: int, amount: int) -> None:
        self.rebalances += 1
        await asyncio.sleep(0.001)
        need = amount - self.lanes[lane]
        if need > sum(self.lanes) - self.lanes[lane]:
            raise InsufficientFunds("the account's balance does not cover the amount")
        for other in sorted(range(len(self.lanes)), key=lambda i: -self.lanes[i]):
            if other == lane or need <= 0:
                continue
            take = min(need, self.lanes[other])
            self.lanes[other] -= take
            self.lanes[lane] += take
            need -= take

    async def status_of(self, tx_id: str) -> Status:
        return Status(self.blocks[tx_id])

    async def lookup(self, reference: str) -> tuple[str, str, tuple[str, ...]] | None:
        if reference not in self.applied:
            return None
        return ("initiate_transfer", self.applied[reference], (tid_of(reference),))

    def _single(self, lane: int, item: w.CoalescedItem) -> Receipt | None:
        if item.reference in self.applied:
            first = self.applied[item.reference]
            return Receipt(item.reference, "initiate_transfer", first, self.blocks[first], 0,
                           True)
        if item.amount > self.lanes[lane]:
            return None
        tx_id = self._tx()
        self.lanes[lane] -= item.amount
        self.applied[item.reference] = tx_id
        self.applied_count[item.reference] = self.applied_count.get(item.reference, 0) + 1
        return Receipt(item.reference, "initiate_transfer", tx_id, self.blocks[tx_id], 0, False)

    async def single(self, lane: int, item: w.CoalescedItem) -> Receipt:
        """``Bank._initiate_item``: the item alone on its lane, a rebalance if it is short."""
        done = self._single(lane, item)
        if done is None:
            await self.rebalance(PAYER, lane, item.amount)
            done = self._single(lane, item)
        if done is None:
            raise InsufficientFunds("refused alone")
        return done


def process(contract: LanedContract, lane: int) -> Coalescer:
    async def lane_of(account: str) -> tuple[int, int]:
        return lane, len(contract.lanes)

    async def single(payer: str, item: w.CoalescedItem) -> Receipt:
        return await contract.single(lane, item)

    return Coalescer(contract, "HarbourBankMSP", lookup=contract.lookup,  # type: ignore[arg-type]
                     single=single, lane_of=lane_of, rebalance=contract.rebalance)


def item(ref: str, amount: int) -> w.CoalescedItem:
    return w.CoalescedItem(ref, "usbank", PAYEE, amount, tid_of(ref))


async def two_processes(contract: LanedContract, items: Sequence[w.CoalescedItem]) -> list[Any]:
    a, b = process(contract, 0), process(contract, 1)
    return await asyncio.gather(*(
        (a if i % 2 == 0 else b).pay(PAYER, it) for i, it in enumerate(items)),
        return_exceptions=True)


async def test_two_processes_pay_on_their_own_lanes_at_once() -> None:
    contract = LanedContract(lanes=[5_000, 5_000])
    out = await two_processes(contract, [item(f"r{i}", 10) for i in range(100)])
    assert all(isinstance(r, Receipt) for r in out)
    assert contract.max_in_flight == {0: 1, 1: 1}
    assert contract.overlap > 0  # both lanes had a batch in flight together
    assert contract.rebalances == 0
    assert sum(contract.lanes) == 10_000 - 1_000


async def test_a_payment_larger_than_its_lane_is_paid_after_a_rebalance() -> None:
    contract = LanedContract(lanes=[100, 900])
    out = await process(contract, 0).pay(PAYER, item("big", 700))
    assert isinstance(out, Receipt)
    assert contract.rebalances == 1
    assert sum(contract.lanes) == 300
    refused = await asyncio.gather(process(contract, 0).pay(PAYER, item("too-big", 301)),
                                   return_exceptions=True)
    assert isinstance(refused[0], InsufficientFunds)
    assert "too-big" not in contract.applied


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 400), min_size=1, max_size=30),
       st.lists(st.integers(0, 2_000), min_size=2, max_size=2),
       st.lists(st.sampled_from(["ok", "ok", "lost"]), max_size=6))
def test_refused_only_when_the_account_cannot_pay_and_applied_at_most_once(
        amounts: list[int], lanes: list[int], fates: list[str]) -> None:
    async def scenario() -> None:
        contract = LanedContract(lanes=list(lanes), fates=list(fates))
        items = [item(f"r{i}", a) for i, a in enumerate(amounts)]
        out = await two_processes(contract, items)
        for it, result in zip(items, out, strict=True):
            if isinstance(result, Receipt):
                assert contract.applied[it.reference] == result.tx_id
            elif isinstance(result, InsufficientFunds):
                assert it.reference not in contract.applied
                assert it.amount > sum(contract.lanes)  # the whole account could not pay it
            else:  # a fault, never a refusal: nothing applied, safe to call again
                assert isinstance(result, NetworkFault), result
                assert it.reference not in contract.applied
        assert all(n == 1 for n in contract.applied_count.values())
        assert contract.max_in_flight.get(0, 0) <= 1
        assert contract.max_in_flight.get(1, 0) <= 1
        spent = sum(a for i, a in enumerate(amounts) if f"r{i}" in contract.applied)
        assert sum(contract.lanes) == sum(lanes) - spent
        # a crash of both processes and a retry of everything: nothing applies twice
        await two_processes(contract, items)
        assert all(n == 1 for n in contract.applied_count.values())

    asyncio.run(scenario())


async def test_a_burst_of_calls_reads_the_lane_count_once(monkeypatch: Any) -> None:
    """Thousands of transfer() calls at once must not become thousands of get_account
    queries: the lane count of an account is read once and shared."""
    from dtoken.bank import Bank

    bank = Bank.__new__(Bank)  # only the lane assignment is exercised
    reads: list[str] = []

    async def evaluate(name: str, request: Any) -> dict[str, Any]:
        reads.append(name)
        await asyncio.sleep(0.01)
        return {"lanes": 4}

    monkeypatch.setattr(bank, "_evaluate", evaluate)
    monkeypatch.delenv("DTOKEN_LANE", raising=False)
    bank.lane = 3
    got = await asyncio.gather(*(bank._payer_lane(PAYER) for _ in range(500)))
    assert set(got) == {(3, 4)}
    assert reads == ["get_account"]
    monkeypatch.setenv("DTOKEN_LANE", "2")
    bank.lane = None
    assert await bank._payer_lane(PAYER) == (2, 4)
    assert reads == ["get_account"]  # remembered
