"""A soak with a bounded duration (issue 6, item 3), on a network of this module's own.

Several client desks, each a thread using the bank SDK (``dtoken.sync``), mix every
operation for ``DTOKEN_SOAK_SECONDS`` (default 40; e.g. 600 for the long run): cross-bank
payments accepted by the payee bank, payments rejected and refunded, payments within a bank,
batch payouts, mints, burns, overdrafts the contract refuses, and a regulator's hold that
makes a payment refused until released. Meanwhile a fault thread, every
``DTOKEN_SOAK_FAULT_EVERY`` seconds (default 8), SIGKILLs one node in turn (a bank's peer,
the Raft leader, a bank's chaincode server, the regulator's peer) and restarts it a few
seconds later.

A desk retries an operation the SDK could not finish (``NetworkFault``, ``OutcomeUnknown``)
with the same reference (it cannot apply twice); an operation still unknown after 150 s is
"in doubt" and settled against the ledger at the end. The test prints the counts (submitted,
committed, retried, refused, in doubt, lost), checks DESIGN §7 against the desks' book
(``harness.payments.check_invariants``: balances on every bank's peer and the regulator's,
histories, references, transfer states, the audit's sums), scans every node's log for the
private values the desks used, and requires lost == 0.

The network runs on ``DTOKEN_TEST_BASE_PORT + 600``.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from dtoken import errors as sdk_errors
from dtoken.models import Payee
from dtoken.sync import SyncBank, SyncRegulator
from harness import TestNetwork
from harness.faults import clients_for, find_in_logs, own_network, raft_leader
from harness.payments import Acked, Book, Client, Doubt, assert_invariants, audit_totals

SECONDS = float(os.environ.get("DTOKEN_SOAK_SECONDS", "40"))
FAULT_EVERY = float(os.environ.get("DTOKEN_SOAK_FAULT_EVERY", "8"))
DESKS = int(os.environ.get("DTOKEN_SOAK_DESKS", "4"))
BANKS = ["hkbank", "usbank", "cnbank"]
RETRY_FOR = 150.0
T = TypeVar("T")


@pytest.fixture(scope="module")
def net(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TestNetwork]:
    with own_network(tmp_path_factory, request, "soak", 600) as network:
        yield network


class InDoubtError(Exception):
    pass


class Desk:
    """One client desk: accounts at every bank, SDK clients, a random mix of operations."""

    def __init__(self, soak: Soak, index: int) -> None:
        self.soak = soak
        self.book = soak.book
        self.i = index
        self.home = BANKS[index % len(BANKS)]
        self.rng = random.Random(f"{soak.tag}-{index}")
        self.n = 0
        self.banks: dict[str, SyncBank] = {}
        self.accounts: dict[str, str] = {}  # bank -> this desk's account there
        self.spare = ""  # a second account at the home bank

    def ref(self, what: str) -> str:
        self.n += 1
        return f"{self.soak.tag}-d{self.i}-{self.n}-{what}"

    def bank(self, name: str) -> SyncBank:
        if name not in self.banks:
            path = self.soak.net.network.profile_path(self.soak.net.consortium.org(name))
            bank = SyncBank.connect(path, identity="minter")  # minter: operator too
            assert isinstance(bank, SyncBank)
            self.banks[name] = bank
        return self.banks[name]

    # -- one operation, retried while the network cannot answer
    def call(
        self,
        what: str,
        fn: Callable[[], T],
        *,
        retry_codes: tuple[str, ...] = (),
        doubt: Doubt | None = None,
    ) -> T | None:
        """``fn()`` (an SDK call with a fixed reference): its result, or None if refused.

        Still unknown after RETRY_FOR seconds: ``doubt`` (what it would do to the book, and
        how to ask the ledger) is recorded for the check, and the desk stops."""
        self.book.count(submitted=1)
        deadline = time.monotonic() + RETRY_FOR
        tries = 0
        while True:
            tries += 1
            try:
                result = fn()
            except sdk_errors.ContractError as exc:
                if exc.code in retry_codes and time.monotonic() < deadline:
                    time.sleep(0.3)
                    continue
                self.book.count(refused=1, retried=int(tries > 1), code=exc.code)
                return None
            except sdk_errors.NetworkFault:
                if time.monotonic() > deadline:
                    self.book.count(in_doubt=1)
                    if doubt is not None:
                        self.book.doubt(doubt)
                    raise InDoubtError(what) from None
                time.sleep(0.5)
                continue
            receipt = getattr(result, "receipt", result)
            again = tries > 1 or getattr(receipt, "attempt", 0) > 0
            self.book.count(committed=1, retried=int(again))
            return result

    def by_ref(self, kind: str, bank: str, reference: str, deltas: dict[str, int]) -> Doubt:
        """An operation with a contract reference: applied iff the reference is."""
        return Doubt(kind, bank, lambda: self.book._apply(deltas),
                     lambda c: c.reference_tx(reference))  # fmt: skip

    # -- setup
    def open_accounts(self) -> None:
        for b in BANKS:
            self.accounts[b] = self.open(b, "main")
        self.spare = self.open(self.home, "spare")
        self.mint(self.accounts[self.home], 1_000_000)

    def open(self, bank: str, role: str) -> str:
        reference = self.ref(f"open-{bank}-{role}")
        owner = f"Owner {self.soak.tag} desk {self.i} {role}"
        self.book.private_values.add(owner)
        opened = self.call(
            "open", lambda: self.bank(bank).open_account("USD", owner, reference=reference)
        )
        assert opened is not None
        self.book.opened(opened.account_id, bank, "USD", opened.receipt.tx_id, reference)
        return opened.account_id

    def mint(self, account_id: str, amount: int) -> None:
        reference = self.ref("mint")
        got = self.call(
            "mint",
            lambda: self.bank(self.home).mint(account_id, amount, reference=reference),
            doubt=self.by_ref("mint", self.home, reference, {account_id: amount}),
        )
        if got is not None:
            self.book.moved("mint", self.home, got.tx_id, {account_id: amount},
                            reference=reference)  # fmt: skip

    # -- the mix
    def step(self) -> None:
        home, main = self.home, self.accounts[self.home]
        if self.book.balance(main) < 50_000:
            self.mint(main, 500_000)
        other = self.rng.choice([b for b in BANKS if b != home])
        amount = self.rng.randint(1, 5_000)
        op = self.rng.choices(
            ["pay", "reject", "internal", "back", "burn", "batch", "overdraft", "hold"],
            weights=[40, 8, 15, 10, 5, 7, 8, 4],
        )[0]
        if op == "pay":
            self.pay(home, main, other, amount, decide="accept")
        elif op == "reject":
            self.pay(home, main, other, amount, decide="reject")
        elif op == "back":
            src = self.accounts[other]
            if self.book.balance(src) >= amount:
                self.pay(other, src, home, amount, decide="accept", to=main)
        elif op == "internal":
            self.internal(main, self.spare, amount)
        elif op == "burn":
            if self.book.balance(self.spare) >= amount:
                reference = self.ref("burn")
                got = self.call(
                    "burn",
                    lambda: self.bank(home).burn(self.spare, amount, reference=reference),
                    doubt=self.by_ref("burn", home, reference, {self.spare: -amount}),
                )
                if got is not None:
                    self.book.moved("burn", home, got.tx_id, {self.spare: -amount},
                                    reference=reference)  # fmt: skip
        elif op == "batch":
            self.batch(main, other, amount)
        elif op == "overdraft":
            reference = self.ref("overdraft")
            too_much = self.book.balance(self.spare) + 1
            got = self.call("overdraft", lambda: self.bank(home).transfer(
                self.spare, home, main, too_much, reference=reference))  # fmt: skip
            assert got is None, "an overdraft was accepted"
        elif op == "hold":
            self.hold(amount)

    def internal(self, a: str, b: str, amount: int) -> None:
        reference = self.ref("internal")
        deltas = {a: -amount, b: amount}
        got = self.call("internal", lambda: self.bank(self.home).transfer(
            a, self.home, b, amount, reference=reference),
            doubt=self.by_ref("transfer", self.home, reference, deltas))  # fmt: skip
        if got is not None:
            self.book.moved("transfer", self.home, got.receipt.tx_id, deltas,
                            reference=reference)  # fmt: skip

    def pay(
        self, payer: str, src: str, payee: str, amount: int, *, decide: str, to: str | None = None
    ) -> None:
        dst = to or self.accounts[payee]
        reference = self.ref(f"pay-{decide}")
        originator = f"Originator {self.soak.tag} {self.i}-{self.n}"
        self.book.private_values.add(originator)
        got = self.call("pay", lambda: self.bank(payer).transfer(
            src, payee, dst, amount, reference=reference,
            originator={"name": originator}, remittance=f"Invoice {self.soak.tag}-{self.n}",
        ), doubt=self.by_ref("initiate_transfer", payer, reference, {src: -amount}))  # fmt: skip
        if got is None:
            return
        assert got.transfer_id is not None
        self.book.moved("initiate_transfer", payer, got.receipt.tx_id, {src: -amount},
                        reference=reference)  # fmt: skip
        self.book.initiated(got.transfer_id, payer, payee, amount)
        self.decide(got.transfer_id, payer, payee, dst, src, amount, decide)

    def decide(
        self, tid: str, payer: str, payee: str, dst: str, src: str, amount: int, decide: str
    ) -> None:
        # The payee's peer may not have the transfer yet (gossip, or it is catching up).
        if decide == "accept":

            def credit() -> None:
                self.book._apply({dst: amount})
                self.book.status[tid] = "accepted"

            got = self.call("accept", lambda: self.bank(payee).accept(tid, payer),
                            retry_codes=("NOT_FOUND",),
                            doubt=Doubt("accept", payee, credit,
                                        lambda c: c.decision_tx(tid, payer)))  # fmt: skip
            assert got is not None, f"accept of {tid} refused"
            self.book.moved("accept_transfer", payee, got.tx_id, {dst: amount},
                            transfer_id=tid, counterparty=payer)  # fmt: skip
            self.book.decided(tid, "accepted")
            return
        got = self.call("reject", lambda: self.bank(payee).reject(tid, payer, "soak: declined"),
                        retry_codes=("NOT_FOUND",),
                        doubt=Doubt("reject", payee,
                                    lambda: self.book.status.__setitem__(tid, "rejected"),
                                    lambda c: c.decision_tx(tid, payer)))  # fmt: skip
        assert got is not None, f"reject of {tid} refused"
        with self.book._lock:
            self.book.acked.append(Acked("reject_transfer", payee, got.tx_id, None, tid, payer))
        self.book.decided(tid, "rejected")

        def refund() -> None:
            self.book._apply({src: amount})
            self.book.status[tid] = "refunded"

        def refund_tx(c: Client) -> str | None:
            out = c.evaluate(
                "get_transfer", {"transfer_id": tid, "payer_bank": payer, "payee_bank": payee}
            )
            return (out.get("refund") or {}).get("tx_id")

        refunded = self.call("refund", lambda: self.bank(payer).refund(tid, payee),
                             retry_codes=("NOT_FOUND", "NOT_EXPIRED"),
                             doubt=Doubt("refund", payer, refund, refund_tx))  # fmt: skip
        assert refunded is not None, f"refund of {tid} refused"
        self.book.moved("refund_transfer", payer, refunded.tx_id, {src: amount},
                        transfer_id=tid, counterparty=payee)  # fmt: skip
        self.book.decided(tid, "refunded")

    def batch(self, main: str, other: str, amount: int) -> None:
        reference = self.ref("batch")
        payees = [Payee(other, self.accounts[other], amount),
                  Payee(self.home, self.spare, amount + 1)]  # fmt: skip
        third = next(b for b in BANKS if b not in (self.home, other))
        payees.append(Payee(third, self.accounts[third], amount + 2))
        total = sum(int(p.amount) for p in payees)
        deltas = {main: -total, self.spare: amount + 1}
        got = self.call("batch", lambda: self.bank(self.home).batch_payout(
            main, payees, reference=reference),
            doubt=self.by_ref("batch_payout", self.home, reference, deltas))  # fmt: skip
        if got is None:
            return
        self.book.moved("batch_payout", self.home, got.receipt.tx_id, deltas,
                        reference=reference)  # fmt: skip
        with self.book._lock:
            # The payer's history has one record per payment of the batch.
            self.book.accounts[main].events += len(payees) - 1
        for tid, p in zip(got.transfer_ids, payees, strict=True):
            if tid is None:
                continue
            self.book.initiated(tid, self.home, p.bank, int(p.amount))
            self.decide(tid, self.home, p.bank, p.account_id, main, int(p.amount), "accept")

    def hold(self, amount: int) -> None:
        """The regulator freezes the spare account: a payment from it is refused; release."""
        reg = self.soak.regulator()
        reference = self.ref("hold")
        held = self.call("hold", lambda: reg.freeze(self.home, self.spare, reference=reference,
                                                    reason="soak: inquiry"))  # fmt: skip
        if held is None:
            return
        reference = self.ref("frozen-pay")
        got = self.call("frozen-pay", lambda: self.bank(self.home).transfer(
            self.spare, self.home, self.accounts[self.home], 1, reference=reference))  # fmt: skip
        assert got is None, "a payment left an account the regulator froze"
        released = self.call(
            "release", lambda: reg.release(self.home, self.spare, reference=self.ref("release"))
        )
        assert released is not None

    def run(self, stop: threading.Event, errors: list[BaseException]) -> None:
        try:
            self.open_accounts()
            while not stop.is_set():
                self.step()
        except InDoubtError:
            return  # counted; the book settles nothing for SDK calls in doubt: see check
        except BaseException as exc:
            errors.append(exc)
        finally:
            for b in self.banks.values():
                b.close()


class Soak:
    def __init__(self, net: TestNetwork) -> None:
        self.net = net
        self.tag = uuid.uuid4().hex[:8]
        self.book = Book()
        self._regulator: SyncRegulator | None = None
        self._lock = threading.Lock()
        self.faults: list[str] = []

    def regulator(self) -> SyncRegulator:
        with self._lock:
            if self._regulator is None:
                path = self.net.network.profile_path(self.net.consortium.org("regulator"))
                reg = SyncRegulator.connect(path, identity="auditor")
                assert isinstance(reg, SyncRegulator)
                self._regulator = reg
            return self._regulator

    def inject(self, stop: threading.Event) -> None:
        """Every FAULT_EVERY seconds, SIGKILL one node in turn; restart it 3 s later."""
        c = self.net.consortium
        victims: list[Callable[[], str]] = [
            lambda: c.org("usbank").peers[0].name,
            lambda: raft_leader(self.net) or c.ordering.orderers[0].name,
            lambda: f"chaincode.{c.org('cnbank').peers[0].name}",
            lambda: c.org("regulator").peers[0].name,
            lambda: f"chaincode.{c.org('hkbank').peers[0].name}",
            lambda: c.org("hkbank").peers[0].name,
        ]
        k = 0
        while not stop.wait(FAULT_EVERY):
            node = self.net.node(victims[k % len(victims)]())
            k += 1
            self.net.kill(node)
            self.faults.append(node.name)
            time.sleep(3)  # down for a while even when the run ends now
            self.net.restart(node, timeout=120)


def test_soak_mixed_operations_with_faults_loses_nothing(
    net: TestNetwork, capsys: pytest.CaptureFixture[str]
) -> None:
    clients = clients_for(net)
    try:
        baseline = audit_totals(clients["regulator"])
        soak = Soak(net)
        stop, errors = threading.Event(), []
        desks = [Desk(soak, i) for i in range(DESKS)]
        threads = [threading.Thread(target=d.run, args=(stop, errors), name=f"desk-{d.i}")
                   for d in desks]  # fmt: skip
        faults = threading.Thread(target=_guard(soak.inject, errors), args=(stop,), name="faults")
        started = time.monotonic()
        for t in [*threads, faults]:
            t.start()
        stop.wait(SECONDS)
        stop.set()
        faults.join(180)
        for t in threads:
            t.join(RETRY_FOR + 60)
        elapsed = time.monotonic() - started
        assert not any(t.is_alive() for t in [*threads, faults]), "a desk did not stop"
        assert not errors, f"a desk failed: {errors[0]!r}"
        assert not net.unhealthy(), [n.name for n in net.unhealthy()]
        assert_invariants(net, soak.book, clients, baseline=baseline, timeout=180)
        counts = soak.book.counts
        leaks = find_in_logs(net, ["PRIVATE KEY", *soak.book.private_values])
        with capsys.disabled():
            print(f"\nsoak: {elapsed:.0f} s, {DESKS} desks, faults injected: "
                  f"{', '.join(soak.faults) or 'none'}\nsoak: {counts.line()}")  # fmt: skip
        assert not leaks, "private values in logs:\n" + "\n".join(leaks)
        assert counts.lost == 0
        assert counts.committed > 0
        if counts.submitted >= 100:
            assert counts.refused > 0  # overdrafts and payments from frozen accounts
        if SECONDS >= 30:
            assert soak.faults, "no fault was injected"
    finally:
        for c in clients.values():
            c.close()


def _guard(fn: Callable[..., Any], errors: list[BaseException]) -> Callable[..., None]:
    def run(*args: Any) -> None:
        try:
            fn(*args)
        except BaseException as exc:
            errors.append(exc)

    return run
