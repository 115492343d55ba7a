"""Payments for tests: clients of the real network, idempotent submits, a client-side book of
what each client was told, concurrent payment load, and the invariant checks of DESIGN §7.

* :class:`Client` is one identity of one organization connected to a peer's Gateway
  (``fabgateway.sync``). :meth:`Client.submit` is an idempotent submit: the nonce, hence the
  transaction id, derives from an operation key and an attempt number, so a retry after an
  unknown outcome (peer, orderer or chaincode server gone mid-call) is the *same*
  transaction and can never apply twice; only a definite MVCC invalidation starts a new
  attempt. It returns once the transaction committed VALID (the client was told: an
  *acknowledged* operation), raises :class:`Refused` when the contract refused it (a stable
  code), and :class:`InDoubt` when it gave up retrying without knowing.
* :class:`Book` is the client-side ledger: the accounts the test opened and the balance each
  client was told, every acknowledged operation with its transaction id, the counts
  (submitted, committed, retried, refused, in doubt, lost).
* :class:`PaymentLoad` runs payments from several client threads at once: each worker owns
  its accounts (so the expected balances are exact) and pays along one route (payer bank ->
  payee bank, or inside one bank): open, mint, then initiate and accept (or transfer).
* :func:`check_invariants` compares the book with what every bank's peer and the regulator
  report (balances, references, transfers, histories, the regulator's audit) and returns the
  problems found; :func:`assert_invariants` waits for them to clear (peers that were down
  catch up) and fails with the list.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import fabgateway
from dtoken_wire.errors import PeerUnavailable
from fabgateway import sync

from harness.network import TestNetwork

__all__ = [
    "MIXED_ROUTES",
    "Acked",
    "Book",
    "Client",
    "Counts",
    "Doubt",
    "InDoubt",
    "PaymentLoad",
    "Refused",
    "Route",
    "assert_invariants",
    "audit_totals",
    "check_invariants",
    "refusal_code",
    "request_transient",
]

#: A chaincode error message starts with a stable code (``INSUFFICIENT_FUNDS: ...``).
_CODE = re.compile(r"^([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*): ")
#: Validation codes after which the transaction certainly did not apply: endorse anew.
_RETRY_NEW_ATTEMPT = {"MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT"}
#: Refusals that are node faults (the peer could not read its ledger): retried, as the SDK does.
_NODE_FAULTS = {PeerUnavailable.code}


def request_transient(request: Mapping[str, Any] | bytes | None) -> dict[str, bytes]:
    """The transient map carrying ``request`` under key ``"request"`` (bytes are sent as is)."""
    if request is None:
        return {}
    raw = request if isinstance(request, bytes) else json.dumps(request).encode()
    return {"request": raw}


def refusal_code(error: BaseException) -> str | None:
    """The contract's stable code of a Gateway error, or None when the chaincode did not
    answer (peer down, chaincode server unreachable, timeout ...)."""
    message = getattr(error, "chaincode_message", None)
    if not message:
        return None
    found = _CODE.match(message)
    return found.group(1) if found else None


def _ask(resolve: Callable[[], str | None]) -> str | None:
    """``resolve()``, None when the ledger cannot tell yet (peer unreachable, data not there)."""
    try:
        return resolve()
    except (fabgateway.GatewayError, Refused):
        return None


class Refused(Exception):
    """The contract refused the operation: nothing was written."""

    def __init__(self, code: str, message: str, error: BaseException) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.error = error


class InDoubt(Exception):
    """Retries ran out and the client does not know whether the operation applied."""

    def __init__(self, key: str, last_error: BaseException | None) -> None:
        super().__init__(f"{key}: outcome unknown after retries ({last_error!r})")
        self.key = key
        self.last_error = last_error


@dataclass
class Counts:
    """What happened to submits, for a load or a soak (thread-safe through :class:`Book`)."""

    submitted: int = 0  # operations started (each counted once, whatever its retries)
    committed: int = 0  # acknowledged: the client saw VALID (or DUPLICATE_REFERENCE of its own)
    retried: int = 0  # committed or refused after more than one attempt
    refused: int = 0  # the contract refused (stable code), nothing written
    in_doubt: int = 0  # given up without knowing; resolved against the ledger at the end
    lost: int = 0  # acknowledged but absent from the ledger (must stay 0)
    attempts: int = 0  # endorsements tried in all
    by_code: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        codes = ", ".join(f"{k}={v}" for k, v in sorted(self.by_code.items()))
        return (
            f"submitted={self.submitted} committed={self.committed} retried={self.retried} "
            f"refused={self.refused} in_doubt={self.in_doubt} lost={self.lost}"
            + (f" attempts={self.attempts}" if self.attempts else "")
            + (f" (refusals: {codes})" if codes else "")
        )


class Client:
    """One identity of an organization, connected to one of its peers' Gateway."""

    def __init__(
        self,
        net: TestNetwork,
        org_name: str,
        identity: str = "operator",
        *,
        peer_index: int = 0,
        msp_dir: Path | None = None,
        book: Book | None = None,
        retry_for: float = 150.0,
    ) -> None:
        c = net.consortium
        self.net = net
        self.org = c.org(org_name)
        self.msp_id = self.org.msp_id
        self.book = book
        self.retry_for = retry_for
        profile = net.profile(self.org)
        msp = msp_dir or Path(profile["identities"][identity]["msp_dir"])
        ident, signer = fabgateway.load_msp_dir(self.msp_id, msp)
        peer = self.org.peers[peer_index]
        ca = Path(profile["gateway"]["tls_ca_cert"]).read_bytes()
        self.gateway = sync.connect(
            partial(fabgateway.tls_channel, peer.endpoint, ca, peer.name),
            ident,
            signer,
            evaluate_timeout=10,
            endorse_timeout=20,
            submit_timeout=10,
            commit_status_timeout=30,
        )
        self.network = self.gateway.get_network(c.channel)
        self.contract = self.network.get_contract(str(profile["chaincode"]))

    def close(self) -> None:
        self.gateway.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads
    def evaluate(
        self, fn: str, request: Mapping[str, Any] | bytes | None = None, *args: str | bytes
    ) -> dict[str, Any]:
        """Evaluate on this client's peer; :class:`Refused` if the contract refuses."""
        try:
            raw = self.contract.evaluate_transaction(
                fn, *args, transient_data=request_transient(request),
                endorsing_organizations=[self.msp_id],
            )  # fmt: skip
        except fabgateway.EvaluateError as exc:
            code = refusal_code(exc)
            if code is None:
                raise
            raise Refused(code, exc.chaincode_message or "", exc) from None
        return dict(json.loads(raw))

    def read_until(
        self, fn: str, request: Mapping[str, Any], timeout: float = 90.0
    ) -> dict[str, Any]:
        """Evaluate, retrying while the peer is unreachable or does not have the data yet."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.evaluate(fn, request)
            except Refused as exc:
                if exc.code != "NOT_FOUND" or time.monotonic() > deadline:
                    raise
            except fabgateway.GatewayError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    # -- writes
    def try_submit(
        self,
        fn: str,
        request: Mapping[str, Any] | bytes | None,
        *args: str | bytes,
        nonce: bytes | None = None,
    ) -> str:
        """One attempt, no retry: the transaction id once committed VALID, else the
        fabgateway error (or :class:`Refused`)."""
        proposal = self.contract.new_proposal(
            fn, arguments=args, transient_data=request_transient(request),
            endorsing_organizations=[self.msp_id], nonce=nonce,
        )  # fmt: skip
        try:
            transaction = proposal.endorse()
        except fabgateway.EndorseError as exc:
            code = refusal_code(exc)
            if code is None:
                raise
            raise Refused(code, exc.chaincode_message or "", exc) from None
        status = transaction.submit().get_status()
        status.raise_for_status()
        return proposal.transaction_id

    def submit(
        self,
        fn: str,
        request: Mapping[str, Any],
        *,
        key: str,
        resolve: Callable[[], str | None] | None = None,
        retry_codes: frozenset[str] = frozenset(),
    ) -> str:
        """Idempotent submit of the operation ``key``: the committed transaction id.

        ``resolve()`` asks the ledger whether the operation applied (its transaction id) or
        not (None); it settles a refusal (``DUPLICATE_REFERENCE``, ``INVALID_STATE``) met
        after a try of unknown outcome, and an unknown outcome when retries run out.
        Refusals with a code in ``retry_codes`` are retried (e.g. ``NOT_FOUND`` while the
        peer has not yet received the private data the operation reads).
        """
        book = self.book
        if book:
            book.count(submitted=1)
        deadline = time.monotonic() + self.retry_for
        attempt = 0
        tries = 0
        uncertain = False  # an earlier try may have reached the orderers
        last: BaseException | None = None
        while time.monotonic() < deadline:
            tries += 1
            if book:
                book.count(attempts=1)
            nonce = hashlib.sha256(f"{key}#{attempt}".encode()).digest()[:24]
            proposal = self.contract.new_proposal(
                fn, transient_data=request_transient(request),
                endorsing_organizations=[self.msp_id], nonce=nonce,
            )  # fmt: skip
            tx_id = proposal.transaction_id
            status: fabgateway.Status | None
            try:
                status = proposal.endorse().submit().get_status()
            except fabgateway.EndorseError as exc:
                last = exc
                if exc.is_duplicate_transaction:
                    status = self._status_of(tx_id)
                    if status is None:
                        uncertain = True
                        time.sleep(0.5)
                        continue
                else:
                    code = refusal_code(exc)
                    if code is not None and (uncertain or tries > 1) and resolve:
                        # e.g. DUPLICATE_REFERENCE: an earlier try of unknown outcome applied.
                        found = _ask(resolve)
                        if found is not None:
                            return self._committed(found, tries)
                    if code in retry_codes or code in _NODE_FAULTS:
                        time.sleep(0.3)
                        continue
                    if code is not None:
                        if book:
                            book.count(refused=1, retried=int(tries > 1), code=code)
                        raise Refused(code, exc.chaincode_message or "", exc) from None
                    time.sleep(0.5)  # peer or chaincode unreachable: nothing was sent
                    continue
            except (fabgateway.SubmitError, fabgateway.CommitStatusError) as exc:
                last = exc
                uncertain = True
                time.sleep(0.5)
                continue
            if status.successful:
                return self._committed(tx_id, tries)
            last = fabgateway.CommitError(tx_id, status.code, status.code_name)
            if status.code_name in _RETRY_NEW_ATTEMPT:
                attempt += 1
                continue
            # DUPLICATE_TXID and the like: the id is in the ledger; ask the business state.
            uncertain = True
            if resolve:
                found = _ask(resolve)
                if found is not None:
                    return self._committed(found, tries)
            attempt += 1
        if resolve:
            found = _ask(resolve)
            if found is not None:
                return self._committed(found, tries)
        if book:
            book.count(in_doubt=1)
        raise InDoubt(key, last)

    def _committed(self, tx_id: str, tries: int) -> str:
        if self.book:
            self.book.count(committed=1, retried=int(tries > 1))
        return tx_id

    def _status_of(self, tx_id: str) -> fabgateway.Status | None:
        try:
            return self.network.new_commit(tx_id).get_status(timeout=10)
        except fabgateway.GatewayError:
            return None

    # -- the operations the loads use
    def reference_tx(self, reference: str) -> str | None:
        """The transaction that applied ``reference`` at this bank (None: not applied)."""
        try:
            return str(self.evaluate("get_reference", {"reference": reference})["tx_id"])
        except Refused as exc:
            if exc.code == "NOT_FOUND":
                return None
            raise

    def by_reference(self, fn: str, request: Mapping[str, Any]) -> str:
        """Submit an operation that carries a client ``reference`` (idempotent by it)."""
        reference = str(request["reference"])
        return self.submit(fn, request, key=f"{self.msp_id}/{reference}",
                           resolve=lambda: self.reference_tx(reference))  # fmt: skip

    def decision_tx(self, transfer_id: str, payer_bank: str) -> str | None:
        out = self.evaluate("get_transfer", {"transfer_id": transfer_id, "payer_bank": payer_bank,
                                             "payee_bank": self.org.name})  # fmt: skip
        decision = out.get("decision")
        return str(decision["tx_id"]) if decision else None


# --------------------------------------------------------------------------- the book


@dataclass
class Account:
    account_id: str
    bank: str
    currency: str
    balance: int = 0
    events: int = 1  # history records (the opening is one)


@dataclass
class Acked:
    """An acknowledged operation: what the client was told committed."""

    kind: str
    bank: str
    tx_id: str
    reference: str | None = None
    transfer_id: str | None = None
    counterparty: str | None = None  # the other bank of the transfer


@dataclass
class Doubt:
    """An operation whose outcome the client never learnt (resolved at check time)."""

    kind: str
    bank: str
    apply: Callable[[], None]  # what it does to the book if it applied
    resolve: Callable[[Client], str | None]  # asks the ledger, through the bank's client


class Book:
    """The client side's record of accounts, acknowledged operations and counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.accounts: dict[str, Account] = {}
        self.acked: list[Acked] = []
        self.doubts: list[Doubt] = []
        self.transfers: dict[str, tuple[str, str, int]] = {}  # id -> (payer, payee, amount)
        #: what the clients were told of each transfer: pending, accepted, rejected, refunded
        self.status: dict[str, str] = {}
        self.counts = Counts()
        self.private_values: set[str] = set()  # what no log may show (owner refs, originators)

    def count(self, code: str | None = None, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.counts, name, getattr(self.counts, name) + delta)
            if code:
                self.counts.by_code[code] += 1

    def opened(self, account_id: str, bank: str, currency: str, tx_id: str, ref: str) -> None:
        with self._lock:
            self.accounts[account_id] = Account(account_id, bank, currency)
            self.acked.append(Acked("open_account", bank, tx_id, reference=ref))

    def moved(
        self, kind: str, bank: str, tx_id: str, deltas: Mapping[str, int], *,
        reference: str | None = None, transfer_id: str | None = None,
        counterparty: str | None = None,
    ) -> None:  # fmt: skip
        with self._lock:
            self._apply(deltas)
            self.acked.append(Acked(kind, bank, tx_id, reference, transfer_id, counterparty))

    def _apply(self, deltas: Mapping[str, int]) -> None:
        for account_id, delta in deltas.items():
            acc = self.accounts[account_id]
            acc.balance += delta
            acc.events += 1

    def initiated(self, transfer_id: str, payer: str, payee: str, amount: int) -> None:
        with self._lock:
            self.transfers[transfer_id] = (payer, payee, amount)
            self.status[transfer_id] = "pending"

    def decided(self, transfer_id: str, status: str) -> None:
        with self._lock:
            self.status[transfer_id] = status

    def doubt(self, doubt: Doubt) -> None:
        with self._lock:
            self.doubts.append(doubt)

    def balance(self, account_id: str) -> int:
        with self._lock:
            return self.accounts[account_id].balance

    def totals(self) -> dict[tuple[str, str], int]:
        """Sum of balances per (bank, currency) as the clients were told."""
        out: dict[tuple[str, str], int] = {}
        with self._lock:
            for acc in self.accounts.values():
                out[acc.bank, acc.currency] = out.get((acc.bank, acc.currency), 0) + acc.balance
        return out

    def resolve_doubts(self, clients: Mapping[str, Client]) -> None:
        """Settle every operation of unknown outcome against the ledger (each once)."""
        with self._lock:
            doubts, self.doubts = self.doubts, []
        for i, d in enumerate(doubts):
            try:
                applied = d.resolve(clients[d.bank]) is not None
            except BaseException:
                with self._lock:
                    self.doubts = doubts[i:] + self.doubts
                raise
            if applied:
                with self._lock:
                    d.apply()


# --------------------------------------------------------------------------- load


class Route:
    """Payments along one route: ``payer`` bank to ``payee`` bank (equal: inside one bank)."""

    def __init__(self, payer: str, payee: str, currency: str = "USD") -> None:
        self.payer = payer
        self.payee = payee
        self.currency = currency

    @property
    def banks(self) -> set[str]:
        return {self.payer, self.payee}

    def __repr__(self) -> str:
        return f"{self.payer}->{self.payee}"


class PaymentLoad:
    """Worker threads paying along their routes until stopped.

    Each worker opens its own accounts (a payer and a payee account), mints into the payer,
    then pays ``amount`` per payment: ``transfer`` inside one bank, ``initiate_transfer``
    then ``accept_transfer`` across banks, minting again when the payer runs low. Every
    acknowledged operation goes into :attr:`book`; an operation given up in doubt ends that
    worker (its outcome is settled by :meth:`Book.resolve_doubts`).
    """

    def __init__(
        self,
        net: TestNetwork,
        routes: Sequence[Route],
        *,
        tag: str | None = None,
        book: Book | None = None,
        amount_range: tuple[int, int] = (1, 500),
        seed: int = 6,
    ) -> None:
        self.net = net
        self.routes = list(routes)
        self.tag = tag or uuid.uuid4().hex[:10]
        self.book = book or Book()
        self.amount_range = amount_range
        self.seed = seed
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []
        self.done_by_route: Counter[int] = Counter()  # payments acknowledged per worker
        self._clients: dict[tuple[int, str, str], Client] = {}
        self._lock = threading.Lock()

    def client(self, worker: int, bank: str, identity: str = "operator") -> Client:
        with self._lock:
            key = (worker, bank, identity)
            if key not in self._clients:
                self._clients[key] = Client(self.net, bank, identity, book=self.book)
            return self._clients[key]

    def start(self) -> PaymentLoad:
        for i, route in enumerate(self.routes):
            t = threading.Thread(target=self._run, args=(i, route), name=f"pay-{i}-{route}",
                                 daemon=True)  # fmt: skip
            self._threads.append(t)
            t.start()
        return self

    def payments(self, routes_avoiding: Iterable[str] = ()) -> int:
        """Payments acknowledged so far, on the routes that avoid the named banks."""
        avoid = set(routes_avoiding)
        with self._lock:
            return sum(n for i, n in self.done_by_route.items()
                       if not (self.routes[i].banks & avoid))  # fmt: skip

    def wait_payments(self, more: int, *, avoiding: Iterable[str] = (),
                      timeout: float = 120.0) -> None:  # fmt: skip
        """Wait until ``more`` payments beyond the current count are acknowledged."""
        avoid = list(avoiding)
        target = self.payments(avoid) + more
        self.net.wait_for(
            lambda: self.payments(avoid) >= target or bool(self.errors),
            f"{more} more payments on routes avoiding {avoid or 'nothing'}", timeout,
        )  # fmt: skip
        if self.errors:
            raise AssertionError(f"a payment worker failed: {self.errors[0]!r}")

    def stop(self, timeout: float = 200.0) -> Book:
        """Stop the workers (each finishes its operation in flight, retrying if needed)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise AssertionError(f"payment workers did not stop: {alive}")
        return self.book

    def close(self) -> None:
        for c in self._clients.values():
            c.close()
        self._clients.clear()

    # -- one worker
    def _run(self, worker: int, route: Route) -> None:
        rng = random.Random(f"{self.seed}-{self.tag}-{worker}")
        try:
            payer = self.open(worker, route.payer, route.currency, "payer")
            payee = self.open(worker, route.payee, route.currency, "payee")
            n = 0
            while not self._stop.is_set():
                n += 1
                amount = rng.randint(*self.amount_range)
                if self.book.balance(payer) < amount:
                    self.mint(worker, route.payer, payer, 50 * self.amount_range[1], f"m{n}")
                if route.payer == route.payee:
                    self.transfer(worker, route.payer, payer, payee, amount, f"t{n}")
                else:
                    self.pay_across(worker, route, payer, payee, amount, f"x{n}")
                with self._lock:
                    self.done_by_route[worker] += 1
        except InDoubt:
            return  # recorded in the book; resolved at check time
        except BaseException as exc:  # a worker's failure fails the test that runs the load
            self.errors.append(exc)

    def _ref(self, worker: int, what: str) -> str:
        return f"{self.tag}-w{worker}-{what}"

    def open(self, worker: int, bank: str, currency: str, role: str) -> str:
        account_id = f"acct-{self._ref(worker, role)}".ljust(22, "_")
        ref = self._ref(worker, f"open-{role}")
        owner = f"owner-{self._ref(worker, role)}"
        self.book.private_values.add(owner)
        client = self.client(worker, bank)
        request = {"reference": ref, "currency": currency, "owner_ref": owner,
                   "account_id": account_id}  # fmt: skip
        try:
            tx = client.by_reference("open_account", request)
        except InDoubt:
            raise AssertionError(f"opening {account_id} at {bank}: outcome unknown") from None
        self.book.opened(account_id, bank, currency, tx, ref)
        return account_id

    def mint(self, worker: int, bank: str, account_id: str, amount: int, what: str) -> None:
        ref = self._ref(worker, what)
        request = {"reference": ref, "account_id": account_id, "amount": amount}
        self._by_reference(worker, bank, "mint", request, {account_id: amount}, "minter")

    def transfer(self, worker: int, bank: str, a: str, b: str, amount: int, what: str) -> None:
        ref = self._ref(worker, what)
        request = {"reference": ref, "from_account": a, "to_account": b, "amount": amount}
        self._by_reference(worker, bank, "transfer", request, {a: -amount, b: amount})

    def _by_reference(
        self, worker: int, bank: str, fn: str, request: dict[str, Any],
        deltas: Mapping[str, int], identity: str = "operator",
    ) -> str:  # fmt: skip
        client = self.client(worker, bank, identity)
        ref = str(request["reference"])
        try:
            tx = client.by_reference(fn, request)
        except InDoubt:
            self.book.doubt(Doubt(fn, bank, lambda: self.book._apply(deltas),
                                  lambda c: c.reference_tx(ref)))  # fmt: skip
            raise
        self.book.moved(fn, bank, tx, deltas, reference=ref)
        return tx

    def pay_across(
        self, worker: int, route: Route, payer: str, payee: str, amount: int, what: str
    ) -> None:
        transfer_id = self.initiate(worker, route, payer, payee, amount, what)
        self.accept(worker, route, transfer_id, payee, amount)

    def initiate(
        self, worker: int, route: Route, payer: str, payee: str, amount: int, what: str
    ) -> str:
        """Phase one at the payer's bank (the payer is debited); the transfer id."""
        transfer_id = f"xfer-{self._ref(worker, what)}".ljust(22, "_")
        originator = f"Originator {self._ref(worker, what)}"
        self.book.private_values.add(originator)
        request = {"reference": self._ref(worker, what), "payer_account": payer,
                   "payee_bank": route.payee, "payee_account": payee, "amount": amount,
                   "transfer_id": transfer_id, "originator": {"name": originator}}  # fmt: skip
        self._by_reference(worker, route.payer, "initiate_transfer", request, {payer: -amount})
        self.book.initiated(transfer_id, route.payer, route.payee, amount)
        return transfer_id

    def accept(self, worker: int, route: Route, transfer_id: str, payee: str, amount: int) -> None:
        client = self.client(worker, route.payee)
        request = {"transfer_id": transfer_id, "payer_bank": route.payer}
        try:
            # The payee's peer receives the transfer by gossip (or pulls it after a restart):
            # until then it answers NOT_FOUND.
            tx = client.submit("accept_transfer", request, key=f"accept/{transfer_id}",
                               resolve=lambda: client.decision_tx(transfer_id, route.payer),
                               retry_codes=frozenset({"NOT_FOUND"}))  # fmt: skip
        except InDoubt:

            def credit() -> None:
                self.book._apply({payee: amount})
                self.book.status[transfer_id] = "accepted"

            self.book.doubt(Doubt("accept_transfer", route.payee, credit,
                                  lambda c: c.decision_tx(transfer_id, route.payer)))  # fmt: skip
            raise
        with self.book._lock:
            self.book.status[transfer_id] = "accepted"
        self.book.moved("accept_transfer", route.payee, tx, {payee: amount},
                        transfer_id=transfer_id, counterparty=route.payer)  # fmt: skip


# --------------------------------------------------------------------------- checks


def _all_pages(client: Client, fn: str, request: dict[str, Any]) -> dict[str, Any]:
    page = client.evaluate(fn, request)
    merged = dict(page)
    while not page.get("done", True):
        page = client.evaluate(fn, {**request, "cursor": page["cursor"]})
        merged = dict(page)  # the cursor carries the running tally: the last page has it all
    return merged


def audit_totals(auditor: Client) -> dict[tuple[str, str], int]:
    """The regulator's audit: balances per (bank, currency). Fails if the audit fails."""
    report = _all_pages(auditor, "audit", {"page_size": 1000})
    assert report.get("ok"), f"regulator audit fails: {report.get('failures')}"
    return {(b["bank"], b["currency"]): int(b["balances"]) for b in report.get("banks", [])}


def check_invariants(
    net: TestNetwork,
    book: Book,
    clients: Mapping[str, Client],
    *,
    baseline: Mapping[tuple[str, str], int] | None = None,
) -> list[str]:
    """What differs between the book and the network; empty when every invariant holds.

    ``clients`` maps each bank's name (and ``"regulator"``) to a client: a bank's operator,
    the regulator's auditor. With ``baseline`` (:func:`audit_totals` before the book's
    first operation, on a network nobody else uses meanwhile) the audit's per-bank sums
    must have grown by exactly the book's.
    """
    problems: list[str] = []
    book.resolve_doubts(clients)
    with book._lock:
        accounts = list(book.accounts.values())
        acked = list(book.acked)
        status = dict(book.status)
        transfers = dict(book.transfers)
    lost = 0
    # Every bank's own peer: balances are what the clients were told, histories hold one
    # record per acknowledged event (nothing applied twice, nothing dropped).
    for acc in accounts:
        got = clients[acc.bank].evaluate("get_account", {"account_id": acc.account_id})
        if int(got["balance"]) != acc.balance:
            problems.append(f"{acc.bank} {acc.account_id}: balance {got['balance']}, "
                            f"clients were told {acc.balance}")  # fmt: skip
        history = clients[acc.bank].evaluate(
            "get_history", {"account_id": acc.account_id, "page_size": 10_000}
        )
        if len(history["records"]) != acc.events:
            problems.append(f"{acc.bank} {acc.account_id}: {len(history['records'])} history "
                            f"records, clients acknowledged {acc.events} events")  # fmt: skip
    # Every acknowledged reference applied once, by the transaction the client was told.
    for a in acked:
        if a.reference is not None:
            tx = clients[a.bank].reference_tx(a.reference)
            if tx != a.tx_id:
                lost += tx is None
                problems.append(f"{a.bank} reference {a.reference}: applied by {tx}, "
                                f"acknowledged as {a.tx_id}")  # fmt: skip
        elif a.kind == "refund_transfer" and a.transfer_id and a.counterparty:
            out = clients[a.bank].evaluate(
                "get_transfer",
                {"transfer_id": a.transfer_id, "payer_bank": a.bank, "payee_bank": a.counterparty},
            )
            tx = (out.get("refund") or {}).get("tx_id")
            if tx != a.tx_id:
                lost += tx is None
                problems.append(f"{a.bank} refund of {a.transfer_id}: refunded by {tx}, "
                                f"acknowledged as {a.tx_id}")  # fmt: skip
        elif a.transfer_id is not None and a.counterparty is not None:
            tx = clients[a.bank].decision_tx(a.transfer_id, a.counterparty)
            if tx != a.tx_id:
                lost += tx is None
                problems.append(f"{a.bank} decision on {a.transfer_id}: made by {tx}, "
                                f"acknowledged as {a.tx_id}")  # fmt: skip
    for transfer_id, (payer, payee, amount) in transfers.items():
        out = clients[payee].evaluate(
            "get_transfer", {"transfer_id": transfer_id, "payer_bank": payer, "payee_bank": payee}
        )
        want = status.get(transfer_id, "pending")
        if out["status"] != want or int(out["transfer"]["amount"]) != amount:
            problems.append(f"transfer {transfer_id}: {out['status']}, expected {want}")
    with book._lock:
        book.counts.lost = lost
    if "regulator" in clients:
        problems += _regulator_problems(book, clients["regulator"], accounts, baseline)
    return problems


def _regulator_problems(
    book: Book,
    auditor: Client,
    accounts: Sequence[Account],
    baseline: Mapping[tuple[str, str], int] | None,
) -> list[str]:
    problems: list[str] = []
    for acc in accounts:
        try:
            got = auditor.evaluate("get_account", {"account_id": acc.account_id,
                                                   "bank": acc.bank})  # fmt: skip
        except Refused as exc:
            problems.append(f"regulator: {acc.bank} {acc.account_id}: {exc.code}")
            continue
        if int(got["balance"]) != acc.balance:
            problems.append(f"regulator: {acc.bank} {acc.account_id}: balance "
                            f"{got['balance']}, clients were told {acc.balance}")  # fmt: skip
    report = _all_pages(auditor, "audit", {"page_size": 1000})
    if not report.get("ok"):
        problems.append(f"regulator audit fails: {report.get('failures')}")
    if report.get("disputes"):
        problems.append(f"regulator audit lists disputes: {report['disputes']}")
    if baseline is not None:
        audited = {(b["bank"], b["currency"]): int(b["balances"]) for b in report.get("banks", [])}
        told = book.totals()
        for key in set(audited) | set(told) | set(baseline):
            grew = audited.get(key, 0) - baseline.get(key, 0)
            if grew != told.get(key, 0):
                problems.append(f"regulator audit: {key} balances grew by {grew}, "
                                f"clients were told {told.get(key, 0)}")  # fmt: skip
    return problems


def assert_invariants(
    net: TestNetwork,
    book: Book,
    clients: Mapping[str, Client],
    *,
    baseline: Mapping[tuple[str, str], int] | None = None,
    timeout: float = 120.0,
) -> None:
    """Wait until :func:`check_invariants` finds nothing (peers that were down catch up,
    private data included); fail with what still differs."""
    last: list[str] = ["not checked yet"]

    def clean() -> bool:
        nonlocal last
        try:
            last = check_invariants(net, book, clients, baseline=baseline)
        except (fabgateway.GatewayError, Refused) as exc:
            last = [f"a read failed: {exc}"]
        return not last

    try:
        net.wait_for(clean, "the invariants to hold", timeout=timeout)
    except AssertionError:
        raise AssertionError("invariants do not hold:\n  " + "\n  ".join(last)) from None
    assert book.counts.lost == 0


#: One route of each kind on the default consortium: three cross-bank directions (a cycle,
#: so every bank pays and is paid) and one inside a bank.
MIXED_ROUTES = [
    Route("hkbank", "usbank"),
    Route("usbank", "cnbank"),
    Route("cnbank", "hkbank"),
    Route("hkbank", "hkbank"),
]
