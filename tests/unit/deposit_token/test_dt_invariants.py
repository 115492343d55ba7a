"""DESIGN §7 invariants over random sequences of operations (hypothesis), through the contract.

Each example runs a random sequence of mints, burns, transfers, cross-bank initiates and batch
payouts, accepts, rejects, refunds, settlements, regulator holds, replayed references, clock
moves and **races**: two decisions on one transfer simulated against the same committed state
(an accept stamped before expiry against a refund stamped after it, or accept against
reject), then committed in a random order. ``MemoryLedger`` applies Fabric's MVCC rule: the
second commit fails if a key it read changed.

A reference model (plain dicts) follows every committed transaction; at the end, and after
each step where cheap, the contract's state must agree with it:

* no balance below zero; a refusal for funds only when the model's available balance is short;
* every balance equals the model's; supply per bank equals the sum of its balances;
* no transfer both accepted and refunded (honest banks); no reference applied twice;
* conservation per currency (supply + in flight = minted - burned) and obligations per pair
  (accepted - settled), by the regulator's paginated audit and by ``get_obligations``.

The dishonest variant runs a payee bank whose server skips the read of the refund key on
accept, and a payer bank whose server skips the read of the decision key on refund (a bank's
peer runs whatever code the bank runs). Then both records can exist; the ledger order decides
which one counts, and the audit's conservation gap equals exactly the void amounts.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from deposit_token import errors as e
from fabshim import MVCCReadConflictError
from hypothesis import HealthCheck, given, settings
from hypothesis import event as _event
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from unit.deposit_token.dt_harness import Net, Submitted, ids

BANK_NAMES = ["hkbank", "usbank", "cnbank"]
ACCOUNTS = {b: list(ids(f"{b[:2]}inv", 3)) for b in BANK_NAMES}
MINTER = ("minter",)


def event(text: str) -> None:
    """Hypothesis statistics (``--hypothesis-show-statistics``), outside tests a no-op."""
    if currently_in_test_context():
        _event(text)


# --------------------------------------------------------------------------- operations

bank_i = st.integers(0, 2)
acct_i = st.integers(0, 2)
amount = st.integers(1, 3_000)
pick = st.integers(0, 10_000)

initiate = st.tuples(st.just("initiate"), bank_i, acct_i, st.integers(1, 2), acct_i, amount,
                     st.sampled_from([60, 3_600, 86_400]))
race = st.tuples(st.just("race"), pick, st.sampled_from(["accept", "reject"]),
                 st.sampled_from(["refund", "accept", "reject"]), st.booleans())
ops = st.one_of(
    st.tuples(st.just("mint"), bank_i, acct_i, amount),
    st.tuples(st.just("burn"), bank_i, acct_i, amount),
    st.tuples(st.just("transfer"), bank_i, acct_i, acct_i, amount),
    initiate,
    initiate,
    initiate,
    st.tuples(st.just("batch"), bank_i, acct_i,
              st.lists(st.tuples(bank_i, acct_i, amount), min_size=1, max_size=4)),
    st.tuples(st.just("accept"), pick),
    st.tuples(st.just("accept"), pick),
    st.tuples(st.just("reject"), pick),
    st.tuples(st.just("refund"), pick),
    st.tuples(st.just("refund"), pick),
    race,
    race,
    race,
    st.tuples(st.just("settle"), bank_i, st.integers(1, 2), amount),
    st.tuples(st.just("hold"), bank_i, acct_i, st.integers(0, 2_000), st.booleans()),
    st.tuples(st.just("replay"), pick),
    st.tuples(st.just("advance"), st.sampled_from([30, 1_800, 7_200, 90_000])),
)


@dataclass
class Model:
    """What the ledger should hold, updated only from committed transactions."""

    balances: dict[tuple[str, str], int] = field(default_factory=dict)
    holds: dict[tuple[str, str], tuple[int, bool]] = field(default_factory=dict)
    minted: int = 0
    burned: int = 0
    # transfer id -> (payer bank, payer account, payee bank, payee account, amount, expires)
    transfers: dict[str, tuple[str, str, str, str, int, Any]] = field(default_factory=dict)
    decided: dict[str, tuple[str, int]] = field(default_factory=dict)  # outcome, ledger height
    refunded: dict[str, int] = field(default_factory=dict)  # ledger height
    settled: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    references: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def available(self, bank: str, acc: str) -> int:
        held, frozen = self.holds.get((bank, acc), (0, False))
        return -1 if frozen else self.balances[(bank, acc)] - held

    def effect(self, tid: str) -> str:
        d = self.decided.get(tid)
        r = self.refunded.get(tid)
        if d and d[0] == "accepted" and r is not None:
            return "accepted" if d[1] < r else "refunded"
        if d and d[0] == "accepted":
            return "accepted"
        if r is not None:
            return "refunded"
        return "in_flight"


class Run:
    def __init__(self, dishonest: bool) -> None:
        self.net = Net()
        self.model = Model()
        self.dishonest = dishonest
        self.counter = 0
        if dishonest:
            self.net.stub_wrapper = skip_reads

    def ref(self) -> str:
        self.counter += 1
        return f"ref-{self.counter:05d}"

    async def setup(self) -> None:
        await self.net.init()
        for bank, accounts in ACCOUNTS.items():
            for acc in accounts:
                await self.net.open(bank, "USD", acc)
                self.model.balances[(bank, acc)] = 0
            for acc in accounts:
                await self.net.mint(bank, acc, 5_000, f"seed-{acc}")
                self.model.balances[(bank, acc)] = 5_000
                self.model.minted += 5_000

    async def try_submit(self, org: str, name: str, request: dict[str, Any],
                         **kw: Any) -> bool:
        try:
            await self.net.submit(org, name, request, **kw)
        except e.DepositTokenError as exc:
            self.last_error = exc
            return False
        if "reference" in request:
            self.model.references.append((org, name, request))
        return True

    # ------------------------------------------------------------------ steps

    async def step(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        await getattr(self, f"op_{kind}")(*op[1:])

    async def op_mint(self, b: int, a: int, amount: int) -> None:
        bank, acc = BANK_NAMES[b], ACCOUNTS[BANK_NAMES[b]][a]
        ok = await self.try_submit(bank, "mint", {"reference": self.ref(), "account_id": acc,
                                                  "amount": amount},
                                   caller=Net.caller(bank, *MINTER))
        assert ok
        self.model.balances[(bank, acc)] += amount
        self.model.minted += amount

    async def op_burn(self, b: int, a: int, amount: int) -> None:
        bank, acc = BANK_NAMES[b], ACCOUNTS[BANK_NAMES[b]][a]
        ok = await self.try_submit(bank, "burn", {"reference": self.ref(), "account_id": acc,
                                                  "amount": amount},
                                   caller=Net.caller(bank, *MINTER))
        self.check_funds(ok, bank, acc, amount)
        if ok:
            self.model.balances[(bank, acc)] -= amount
            self.model.burned += amount

    async def op_transfer(self, b: int, a1: int, a2: int, amount: int) -> None:
        bank = BANK_NAMES[b]
        src, dst = ACCOUNTS[bank][a1], ACCOUNTS[bank][a2]
        ok = await self.try_submit(bank, "transfer", {"reference": self.ref(),
                                                      "from_account": src, "to_account": dst,
                                                      "amount": amount})
        if src == dst:
            assert not ok
            return
        self.check_funds(ok, bank, src, amount)
        if ok:
            self.model.balances[(bank, src)] -= amount
            self.model.balances[(bank, dst)] += amount

    async def op_initiate(self, b: int, a: int, shift: int, pa: int, amount: int,
                          ttl: int) -> None:
        bank = BANK_NAMES[b]
        payee_bank = BANK_NAMES[(b + shift) % 3]
        await self.payout(bank, ACCOUNTS[bank][a], [(payee_bank, ACCOUNTS[payee_bank][pa],
                                                     amount)], ttl, single=True)

    async def op_batch(self, b: int, a: int, items: list[tuple[int, int, int]]) -> None:
        bank = BANK_NAMES[b]
        payer = ACCOUNTS[bank][a]
        payments = [(BANK_NAMES[pb], ACCOUNTS[BANK_NAMES[pb]][pa], amt) for pb, pa, amt in items]
        await self.payout(bank, payer, payments, 3_600, single=False)

    async def payout(self, bank: str, payer: str, payments: list[tuple[str, str, int]],
                     ttl: int, single: bool) -> None:
        ref = self.ref()
        if single:
            (pb, pa, amt), = payments
            req: dict[str, Any] = {"reference": ref, "payer_account": payer, "payee_bank": pb,
                                   "payee_account": pa, "amount": amt, "ttl_seconds": ttl}
            name = "initiate_transfer"
        else:
            req = {"reference": ref, "payer_account": payer, "ttl_seconds": ttl, "payments": [
                {"payee_bank": pb, "payee_account": pa, "amount": amt}
                for pb, pa, amt in payments]}
            name = "batch_payout"
        ok = await self.try_submit(bank, name, req)
        total = sum(amt for _, _, amt in payments)
        self_pay = any(pb == bank and (single or pa == payer) for pb, pa, _ in payments)
        if self_pay:
            assert not ok
            return
        self.check_funds(ok, bank, payer, total)
        if not ok:
            return
        self.model.balances[(bank, payer)] -= total
        got = await self.net.evaluate(bank, "get_reference", {"reference": ref})
        cross = [(pb, pa, amt) for pb, pa, amt in payments if pb != bank]
        assert len(got["ids"]) == len(cross)
        expires = self.net.now + timedelta(seconds=ttl)
        for tid, (pb, pa, amt) in zip(got["ids"], cross, strict=True):
            self.model.transfers[tid] = (bank, payer, pb, pa, amt, expires)
        for pb, pa, amt in payments:
            if pb == bank:
                self.model.balances[(bank, pa)] += amt

    def pick(self, k: int) -> str | None:
        if not self.model.transfers:
            return None
        keys = sorted(self.model.transfers)
        return keys[k % len(keys)]

    def decision_request(self, kind: str, tid: str) -> tuple[str, str, dict[str, Any]]:
        payer, _, payee, _, _, _ = self.model.transfers[tid]
        if kind == "refund":
            return payer, "refund_transfer", {"transfer_id": tid, "payee_bank": payee}
        return payee, f"{kind}_transfer", {"transfer_id": tid, "payer_bank": payer}

    def apply_decision(self, kind: str, tid: str, height: int) -> None:
        payer, payer_acc, payee, payee_acc, amt, _ = self.model.transfers[tid]
        if kind == "accept":
            self.model.decided[tid] = ("accepted", height)
            self.model.balances[(payee, payee_acc)] += amt
        elif kind == "reject":
            self.model.decided[tid] = ("rejected", height)
        else:
            self.model.refunded[tid] = height
            self.model.balances[(payer, payer_acc)] += amt

    async def decide(self, kind: str, k: int) -> None:
        tid = self.pick(k)
        if tid is None:
            return
        org, name, req = self.decision_request(kind, tid)
        ok = await self.try_submit(org, name, req)
        if ok:
            self.apply_decision(kind, tid, self.net.ledger.height)
        elif not self.dishonest:
            self.check_decision_refusal(kind, tid)

    async def op_accept(self, k: int) -> None:
        await self.decide("accept", k)

    async def op_reject(self, k: int) -> None:
        await self.decide("reject", k)

    async def op_refund(self, k: int) -> None:
        await self.decide("refund", k)

    async def op_race(self, k: int, first: str, second: str, first_commits_first: bool) -> None:
        """Two decisions simulated against the same state, committed in either order."""
        tid = self.pick(k)
        if tid is None:
            return
        expires = self.model.transfers[tid][5]
        before, after = expires - timedelta(seconds=1), expires + timedelta(seconds=1)
        prepared: list[tuple[str, Submitted]] = []
        for kind in (first, second):
            org, name, req = self.decision_request(kind, tid)
            # an accept is stamped before expiry; a refund after it (the classic race)
            when = after if kind == "refund" else before
            try:
                prepared.append((kind, await self.net.prepare(org, name, req, when=when)))
            except e.DepositTokenError:
                continue
        if not first_commits_first:
            prepared.reverse()
        for i, (kind, sub) in enumerate(prepared):
            try:
                height = sub.commit()
            except MVCCReadConflictError:
                assert i == 1, "the first commit never conflicts"
                event("race: the second commit failed MVCC")
                continue
            event(f"race: {len(prepared)} endorsed, commit {i} went through")
            if i == 1 and not self.dishonest:
                # two honest decisions on one transfer read each other's keys: the later
                # one must have been invalidated
                raise AssertionError(f"{prepared[0][0]} and {kind} both committed")
            self.apply_decision(kind, tid, height)

    async def op_settle(self, b: int, shift: int, amt: int) -> None:
        creditor, debtor = BANK_NAMES[b], BANK_NAMES[(b + shift) % 3]
        ok = await self.try_submit(creditor, "confirm_settlement", {
            "rtgs_reference": self.ref(), "debtor_bank": debtor, "currency": "USD",
            "amount": amt})
        assert ok
        self.model.settled[(debtor, creditor)] += amt

    async def op_hold(self, b: int, a: int, held: int, frozen: bool) -> None:
        bank, acc = BANK_NAMES[b], ACCOUNTS[BANK_NAMES[b]][a]
        reg = Net.caller("regulator", "auditor")
        if held == 0 and not frozen:
            ok = await self.try_submit("regulator", "release_hold",
                                       {"bank": bank, "account_id": acc}, caller=reg)
            assert ok == ((bank, acc) in self.model.holds)
            self.model.holds.pop((bank, acc), None)
            return
        ok = await self.try_submit("regulator", "set_hold", {
            "bank": bank, "account_id": acc, "held_amount": held, "frozen": frozen}, caller=reg)
        assert ok
        self.model.holds[(bank, acc)] = (held, frozen)

    async def op_replay(self, k: int) -> None:
        """A reference applied once is never applied again, whatever else changes."""
        if not self.model.references:
            return
        org, name, req = self.model.references[k % len(self.model.references)]
        caller = Net.caller(org, *MINTER) if name in ("mint", "burn") else None
        ok = await self.try_submit(org, name, dict(req), caller=caller)
        assert not ok
        assert isinstance(self.last_error, e.DuplicateReference)

    async def op_advance(self, seconds: int) -> None:
        self.net.advance(seconds=seconds)

    # ------------------------------------------------------------------ checks

    def check_funds(self, ok: bool, bank: str, acc: str, amount: int) -> None:
        available = self.model.available(bank, acc)
        if ok:
            assert available >= amount, "a debit went through without the funds"
        elif isinstance(self.last_error, e.InsufficientFunds):
            assert available < amount
        elif isinstance(self.last_error, e.AccountFrozen):
            assert self.model.holds.get((bank, acc), (0, False))[1]

    def check_decision_refusal(self, kind: str, tid: str) -> None:
        err = self.last_error
        expires = self.model.transfers[tid][5]
        decided, refunded = tid in self.model.decided, tid in self.model.refunded
        if isinstance(err, e.Expired):
            assert self.net.now >= expires
        elif isinstance(err, e.NotExpired):
            assert not decided
            assert self.net.now < expires
        elif isinstance(err, e.InvalidState):
            assert decided or refunded

    async def final_checks(self) -> None:
        net, model = self.net, self.model
        for (bank, acc), expected in model.balances.items():
            got = await net.evaluate(bank, "get_account", {"account_id": acc})
            assert got["balance"] == expected >= 0
        both = {t for t in model.transfers
                if t in model.refunded and model.decided.get(t, ("", 0))[0] == "accepted"}
        if not self.dishonest:
            assert not both, "a transfer was both accepted and refunded"
        for tid in model.transfers:
            payer, _, payee, _, _, _ = model.transfers[tid]
            got = await net.evaluate("regulator", "get_transfer", {
                "transfer_id": tid, "payer_bank": payer, "payee_bank": payee},
                caller=Net.caller("regulator", "auditor"))
            status = got["status"]
            if tid in both:
                assert status == "disputed"
        # the regulator's audit, with the ledger order of every transaction
        audit = await net.audit(page_size=5)
        in_flight = sum(t[4] for tid, t in model.transfers.items()
                        if model.effect(tid) == "in_flight")
        void = sum(model.transfers[tid][4] for tid in both)
        (usd,) = [c for c in audit["currencies"] if c["currency"] == "USD"]
        assert usd["minted"] == model.minted
        assert usd["burned"] == model.burned
        assert usd["in_flight"] == in_flight
        assert usd["excess"] == void, "conservation: supply + in flight = minted - burned"
        for row in audit["banks"]:
            assert row["ok"], "a bank's balances differ from its supply records"
        if not both:
            assert audit["ok"], audit["failures"]
        assert audit["disputes"] == []  # the ledger order resolved every one
        # obligations per pair, by either bank
        for i, a in enumerate(BANK_NAMES):
            for b in BANK_NAMES[i + 1:]:
                ob = await net.obligations(a, b, page_size=3, org=b)
                owed = {(o["debtor"], o["creditor"]): o["owed"] for o in ob["obligations"]}
                for debtor, creditor in ((a, b), (b, a)):
                    accepted = sum(
                        t[4] for tid, t in model.transfers.items()
                        if (t[0], t[2]) == (debtor, creditor) and model.effect(tid) == "accepted")
                    expected = accepted - model.settled.get((debtor, creditor), 0)
                    assert owed.get((debtor, creditor), 0) == expected
        event(f"transfers both accepted and refunded: {bool(both)}")
        event(f"transfers: {min(len(model.transfers), 5)}+")
        if both:
            # without the ledger order, the same transfers are reported, not guessed
            audit = await net.audit(page_size=50, order=False)
            assert {d["transfer_id"] for d in audit["disputes"]} == both


def skip_reads(org: str, stub: Any) -> Any:
    """A dishonest server: usbank's accept skips the refund read, hkbank's refund skips the
    decision read (reads skipped leave no trace in the read set, as in a modified server)."""
    skipped = {"usbank": "refund/", "hkbank": "dec/"}.get(org)
    if skipped is None:
        return stub
    return _SkippingStub(stub, skipped, org)


class _SkippingStub:
    """Skips reads of ``prefix`` keys in the *other* bank's directional collections (what
    the two-phase protocol relies on); its own records it still reads."""

    def __init__(self, inner: Any, prefix: str, org: str) -> None:
        self._inner = inner
        self._prefix = prefix
        self._own = f"pair-{org}-"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def get_private_data(self, collection: str, key: str) -> bytes | None:
        if (key.startswith(self._prefix) and collection.startswith("pair-")
                and not collection.startswith(self._own)):
            return None
        result: bytes | None = await self._inner.get_private_data(collection, key)
        return result


def run_sequence(sequence: list[tuple[Any, ...]], dishonest: bool) -> None:
    async def main() -> None:
        run = Run(dishonest)
        await run.setup()
        for op in sequence:
            await run.step(op)
        await run.final_checks()

    asyncio.run(main())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=15, max_size=60))
def test_invariants_hold_over_random_operations(sequence: list[tuple[Any, ...]]) -> None:
    run_sequence(sequence, dishonest=False)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=15, max_size=60))
def test_dishonest_banks_ledger_order_decides(sequence: list[tuple[Any, ...]]) -> None:
    run_sequence(sequence, dishonest=True)


def test_the_classic_race_accept_before_expiry_refund_after() -> None:
    """Deterministic version of the race: both endorse, the first to commit wins."""
    for accept_first in (True, False):
        run_sequence([
            ("initiate", 0, 0, 1, 0, 1_000, 3_600),
            ("race", 0, "accept", "refund", accept_first),
        ], dishonest=False)


def test_a_dishonest_accept_after_a_refund_is_void_by_ledger_order() -> None:
    async def main() -> None:
        run = Run(dishonest=True)
        await run.setup()
        await run.step(("initiate", 0, 0, 1, 0, 1_000, 3_600))
        await run.step(("advance", 7_200))
        await run.step(("refund", 0))  # hkbank refunds after expiry
        tid = run.pick(0)
        assert tid is not None
        # usbank's modified server accepts anyway, backdating its proposal
        expires = run.model.transfers[tid][5]
        sub = await run.net.prepare("usbank", "accept_transfer",
                                    {"transfer_id": tid, "payer_bank": "hkbank"},
                                    when=expires - timedelta(seconds=5))
        run.apply_decision("accept", tid, sub.commit())
        assert run.model.effect(tid) == "refunded"
        await run.final_checks()
        ob = await run.net.obligations("hkbank", "usbank")
        assert ob["net"].get("USD", 0) == 0  # the void accept creates no obligation

    asyncio.run(main())
