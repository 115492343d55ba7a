"""Clients, accounts and the operations of each workload, on our Gateway client.

Every deposit-token input is its wire dataclass (:mod:`dtoken_wire.requests`) as canonical JSON
in the transient key (docs/token-model.md);
every submit names its endorsing organization (the serving bank) as the SDK does, and goes
to the acting bank's chaincode as its connection profile names it (``chaincode``: ``dtoken``
on the single namespace, the bank's own ``dtoken-<bank>`` under the namespace layout), never
to a name written here.

Operations (see :mod:`dtbench.loadgen`), each ``op(slot, n)``:

* ``noop``: one transaction of a chaincode that does nothing;
* ``mint``: the bank's minter credits one of the slot's two accounts;
* ``transfer``: a payment between the slot's two accounts of one bank (alternating
  direction, so balances never run out), on the Python contract or on the Node anchor;
* ``payment``: a cross-bank payment end to end: ``initiate_transfer`` at the payer's bank,
  committed; the payee bank's listener receives the ``TransferPending`` chaincode event
  and submits ``accept_transfer``; done when the accept has committed (two commits plus an
  event, DESIGN §9). The event is emitted in the payer's chaincode (under the layout the
  payer bank's namespace), so the :class:`Acceptor` listens there. The transfer id is drawn
  by the client and handed to the payee side in-process (in production the payee finds it
  with ``get_pending``);
* ``mixed``: per operation, 50 % transfer, 30 % payment, 20 % mint.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fabgateway
import grpc
from consortium.config import Org
from dtoken_wire import EVENT_PENDING, TRANSIENT_KEY, canonical_json
from dtoken_wire.requests import (
    AcceptRequest,
    InitiateRequest,
    MoveRequest,
    OpenAccountRequest,
    Request,
    TransferRequest,
)
from fabgateway import ChaincodeEvent, Contract

from dtbench.cluster import Cluster

__all__ = [
    "Acceptor",
    "BankClient",
    "Ledger",
    "open_client",
]


def request(req: Request | dict[str, Any]) -> dict[str, fabgateway.Argument]:
    """The transient map of a transaction: a deposit-token request (its wire dataclass), or a
    plain object for the Node anchor, whose inputs are its own."""
    obj = req.to_json() if isinstance(req, Request) else req
    return {TRANSIENT_KEY: canonical_json(obj)}


def new_id() -> str:
    """An opaque id of the kind the contract accepts (22-64 of ``[A-Za-z0-9_-]``)."""
    return secrets.token_urlsafe(18)


@dataclass
class BankClient:
    """One identity of one bank, connected to that bank's gateway peer. ``chaincode`` is
    the deposit-token chaincode its transactions go to (its profile's ``chaincode``)."""

    org: Org
    identity: str
    channel: grpc.aio.Channel
    gateway: fabgateway.Gateway
    network: fabgateway.Network
    chaincode: str

    @property
    def msp_id(self) -> str:
        return self.org.msp_id

    def contract(self, chaincode: str) -> Contract:
        return self.network.get_contract(chaincode)

    async def submit(
        self, chaincode: str, name: str, req: Request | dict[str, Any] | None = None
    ) -> bytes:
        return await self.contract(chaincode).submit(
            name,
            transient_data=request(req) if req is not None else None,
            endorsing_organizations=[self.msp_id],
        )

    async def close(self) -> None:
        await self.channel.close(None)


def _credentials(
    cluster: Cluster, org: Org, identity: str
) -> tuple[dict[str, Any], bytes, fabgateway.Identity, fabgateway.Signer]:
    profile = cluster.profile(org)
    ident = profile["identities"][identity]
    return (
        profile,
        Path(profile["gateway"]["tls_ca_cert"]).read_bytes(),
        fabgateway.identity_from_pem_file(org.msp_id, ident["cert"]),
        fabgateway.signer_from_pem_file(ident["key"]),
    )


async def open_client(cluster: Cluster, org: Org, identity: str = "operator") -> BankClient:
    """A Gateway connection for ``identity`` (``operator`` or ``minter``) of ``org``."""
    profile, tls_ca, ident, signer = await asyncio.to_thread(_credentials, cluster, org, identity)
    gw = profile["gateway"]
    channel = fabgateway.tls_channel(gw["endpoint"], tls_ca, server_name_override=gw["server_name"])
    gateway = fabgateway.connect(channel, ident, signer)
    return BankClient(org, identity, channel, gateway, gateway.get_network(profile["channel"]),
                      chaincode=str(profile["chaincode"]))  # fmt: skip


async def bounded(jobs: Sequence[Callable[[], Awaitable[object]]], limit: int = 128) -> None:
    """Run ``jobs`` with at most ``limit`` in flight; raise the first failure."""
    gate = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[object]]) -> None:
        async with gate:
            for attempt in range(5):
                try:
                    await job()
                    return
                except fabgateway.CommitError:
                    if attempt == 4:
                        raise
                except fabgateway.CallError as exc:
                    if attempt == 4 or exc.chaincode_message:
                        raise
                await asyncio.sleep(0.2 * (attempt + 1))

    await asyncio.gather(*(run(job) for job in jobs))


# ---------------------------------------------------------------------------- the ledger


@dataclass
class Ledger:
    """The accounts a run uses, per workload slot.

    ``pairs[slot]``: two accounts of the payer bank (transfers between them, mints into
    them, the first pays cross-bank); ``payees[slot]``: an account at the payee bank;
    ``node_pairs[slot]``: two accounts in the Node anchor's namespace. ``chaincode``, when
    given, sends every deposit-token transaction there (an experiment's own deployment);
    by default each goes to its client's chaincode (:meth:`chaincode_of`).
    """

    payer: BankClient
    payee: BankClient
    minter: BankClient
    currency: str
    chaincode: str | None = None
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    pairs: list[tuple[str, str]] = field(default_factory=list)
    payees: list[str] = field(default_factory=list)
    node_pairs: list[tuple[str, str]] = field(default_factory=list)
    node_ready: bool = False
    _tags: int = 0

    def chaincode_of(self, client: BankClient) -> str:
        """The chaincode ``client``'s deposit-token transactions go to."""
        return self.chaincode or client.chaincode

    def ref(self, kind: str, slot: int, n: int) -> str:
        """A client reference unique to this run, operation builder, slot and iteration."""
        return f"bench-{self.run_id}-{kind}-{slot}-{n}"

    def tagged(self, kind: str) -> str:
        """``kind`` made unique to one operation builder (each point starts at n = 0)."""
        self._tags += 1
        return f"{kind}{self._tags}"

    async def ensure_slots(self, slots: int, *, fund: int = 1_000_000) -> float:
        """Open (and fund) accounts until there are ``slots`` slots; return seconds."""
        t0 = time.monotonic()
        new_pairs = [(new_id(), new_id()) for _ in range(len(self.pairs), slots)]
        new_payees = [new_id() for _ in range(len(self.payees), slots)]
        opens: list[Callable[[], Awaitable[object]]] = []
        for client, account in [
            *((self.payer, a) for pair in new_pairs for a in pair),
            *((self.payee, a) for a in new_payees),
        ]:
            opens.append(_open_job(client, self, account))
        await bounded(opens)
        mints = [_mint_job(self.minter, self, a, fund) for pair in new_pairs for a in pair]
        await bounded(mints)
        self.pairs += new_pairs
        self.payees += new_payees
        return time.monotonic() - t0

    async def ensure_node_slots(self, slots: int, registry: dict[str, Any]) -> float:
        """Initialize the Node anchor and open its accounts (with an opening balance)."""
        from dtbench.cluster import NODE_ANCHOR

        t0 = time.monotonic()
        if not self.node_ready:
            try:
                banks = [{"name": b["name"], "msp_id": b["msp_id"]} for b in registry["banks"]]
                await self.payer.submit(NODE_ANCHOR, "init_network", {
                    "banks": banks, "regulator_msp_id": registry.get("regulator_msp_id"),
                })  # fmt: skip
            except fabgateway.EndorseError as exc:
                if "ALREADY_INITIALIZED" not in (exc.chaincode_message or ""):
                    raise
            self.node_ready = True
        new_pairs = [(new_id(), new_id()) for _ in range(len(self.node_pairs), slots)]

        def job(account: str) -> Callable[[], Awaitable[object]]:
            return lambda: self.payer.submit(NODE_ANCHOR, "open_account", {
                "account_id": account, "currency": self.currency, "owner_ref": "bench",
                "balance": 1_000_000,
            })  # fmt: skip

        await bounded([job(a) for pair in new_pairs for a in pair])
        self.node_pairs += new_pairs
        return time.monotonic() - t0


def _open_job(client: BankClient, ledger: Ledger, account: str) -> Callable[[], Awaitable[object]]:
    return lambda: client.submit(ledger.chaincode_of(client), "open_account", OpenAccountRequest(
        reference=f"bench-{ledger.run_id}-open-{account}", currency=ledger.currency,
        owner_ref="bench", account_id=account,
    ))  # fmt: skip


def _mint_job(
    client: BankClient, ledger: Ledger, account: str, amount: int
) -> Callable[[], Awaitable[object]]:
    return lambda: client.submit(ledger.chaincode_of(client), "mint", MoveRequest(
        reference=f"bench-{ledger.run_id}-fund-{account}", account_id=account, amount=amount,
    ))  # fmt: skip


# ---------------------------------------------------------------------------- operations

Op = Callable[[int, int], Awaitable[str | None]]


def noop_op(client: BankClient, chaincode: str) -> Op:
    contract = client.contract(chaincode)
    orgs = [client.msp_id]

    async def op(slot: int, n: int) -> str | None:
        await contract.submit("noop", endorsing_organizations=orgs)
        return None

    return op


def floor_op(client: BankClient, chaincode: str, collection: str) -> Op:
    """The smallest private transfer (:mod:`dtbench.privprobe`): read the slot's two keys of
    ``collection`` and write both back; no contract logic, no other key."""
    contract = client.contract(chaincode)
    orgs = [client.msp_id]
    spec = f"{collection}:2:2:0"

    async def op(slot: int, n: int) -> str | None:
        await contract.submit("rw", arguments=[str(slot), str(n), spec],
                              endorsing_organizations=orgs)  # fmt: skip
        return None

    return op


def mint_op(ledger: Ledger) -> Op:
    contract = ledger.minter.contract(ledger.chaincode_of(ledger.minter))
    orgs = [ledger.minter.msp_id]
    kind = ledger.tagged("mint")

    async def op(slot: int, n: int) -> str | None:
        account = ledger.pairs[slot][n % 2]
        await contract.submit("mint", transient_data=request(MoveRequest(
            reference=ledger.ref(kind, slot, n), account_id=account, amount=1,
        )), endorsing_organizations=orgs)  # fmt: skip
        return "mint"

    return op


def transfer_op(ledger: Ledger, *, node_anchor: bool = False) -> Op:
    from dtbench.cluster import NODE_ANCHOR

    client = ledger.payer
    contract = client.contract(NODE_ANCHOR if node_anchor else ledger.chaincode_of(client))
    orgs = [client.msp_id]
    pairs = ledger.node_pairs if node_anchor else ledger.pairs
    kind = ledger.tagged("ntransfer" if node_anchor else "transfer")

    async def op(slot: int, n: int) -> str | None:
        a, b = pairs[slot]
        source, target = (a, b) if n % 2 == 0 else (b, a)
        await contract.submit("transfer", transient_data=request(TransferRequest(
            reference=ledger.ref(kind, slot, n), from_account=source, to_account=target,
            amount=1,
        )), endorsing_organizations=orgs)  # fmt: skip
        return "transfer"

    return op


@dataclass
class PaymentTimes:
    """Seconds from the start of a payment to each of its milestones."""

    initiate_committed: float
    event_received: float
    accept_committed: float


class Acceptor:
    """The payee bank's side of cross-bank payments: a chaincode-event listener that
    accepts each transfer it is waiting for.

    ``events_chaincode`` is where the payer's ``initiate_transfer`` emits its event: the
    payer's chaincode (under the namespace layout the payer bank's namespace, not the
    payee's); the accept goes to the payee's own chaincode. (The SDK's ``IncomingListener``
    finds the payers' namespaces itself; the benchmark knows its one payer.)
    """

    def __init__(self, payee: BankClient, payer_bank: str, events_chaincode: str) -> None:
        self.payee = payee
        self.payer_bank = payer_bank
        self.events_chaincode = events_chaincode
        self._contract = payee.contract(payee.chaincode)
        self._waiting: dict[str, tuple[str, float, asyncio.Future[PaymentTimes]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._accepts: dict[str, asyncio.Task[None]] = {}
        self.times: list[PaymentTimes] = []
        self.connected = asyncio.Event()
        self.events_seen = 0
        self.connections = 0
        self.last_error: str | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())
        self._task.add_done_callback(self._ended)
        await asyncio.sleep(0)

    def _ended(self, task: asyncio.Task[None]) -> None:
        # the listener never ends by itself: keep what stopped it in the point's record
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.last_error = f"listener stopped: {type(exc).__name__}: {exc}"[:300]

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for task in list(self._accepts.values()):
            task.cancel()
        await asyncio.gather(*self._accepts.values(), return_exceptions=True)

    async def drain(self, grace: float = 60.0) -> None:
        """Wait for the accepts still running (so the next run starts with idle accounts)."""
        if self._accepts:
            await asyncio.wait(list(self._accepts.values()), timeout=grace)

    def expect(self, tx_id: str, transfer_id: str, started: float) -> asyncio.Future[PaymentTimes]:
        future: asyncio.Future[PaymentTimes] = asyncio.get_running_loop().create_future()
        self._waiting[tx_id] = (transfer_id, started, future)
        return future

    async def settle(self, tx_id: str, grace: float = 60.0) -> None:
        """A payment gave up: accept no more for ``tx_id`` and wait for an accept already
        under way, so that its slot's accounts are idle before the slot is used again."""
        self._waiting.pop(tx_id, None)
        task = self._accepts.get(tx_id)
        if task is not None:
            await asyncio.wait([task], timeout=grace)

    def stats(self) -> dict[str, Any]:
        """What the listener saw: events, stream (re)connections, the last stream error."""
        return {"events": self.events_seen, "connections": self.connections,
                "last_error": self.last_error}  # fmt: skip

    async def _listen(self) -> None:
        while True:
            try:
                async with self.payee.network.chaincode_events(self.events_chaincode) as events:
                    self.connections += 1
                    self.connected.set()
                    async for event in events:
                        self.events_seen += 1
                        self._on_event(event)
            except asyncio.CancelledError:
                raise
            except (fabgateway.GatewayError, grpc.RpcError) as exc:
                # reconnect; payments whose event was missed time out and count as failures
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
            await asyncio.sleep(0.2)

    def _on_event(self, event: ChaincodeEvent) -> None:
        if event.event_name != EVENT_PENDING:
            return
        entry = self._waiting.pop(event.transaction_id, None)
        if entry is None:
            return
        tx_id = event.transaction_id
        task = asyncio.create_task(self._accept(*entry, time.monotonic()))
        self._accepts[tx_id] = task
        task.add_done_callback(lambda _t: self._accepts.pop(tx_id, None))

    async def _accept(
        self,
        transfer_id: str,
        started: float,
        future: asyncio.Future[PaymentTimes],
        event_at: float,
    ) -> None:
        try:
            await self._contract.submit("accept_transfer", transient_data=request(AcceptRequest(
                transfer_id=transfer_id, payer_bank=self.payer_bank,
            )), endorsing_organizations=[self.payee.msp_id])  # fmt: skip
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            now = time.monotonic()
            future.set_result(PaymentTimes(0.0, event_at - started, now - started))


def payment_op(ledger: Ledger, acceptor: Acceptor, *, timeout: float = 30.0) -> Op:
    contract = ledger.payer.contract(ledger.chaincode_of(ledger.payer))
    orgs = [ledger.payer.msp_id]
    payee_bank = ledger.payee.org.name
    kind = ledger.tagged("pay")

    async def op(slot: int, n: int) -> str | None:
        started = time.monotonic()
        transfer_id = new_id()
        proposal = contract.new_proposal("initiate_transfer", transient_data=request(
            InitiateRequest(
                reference=ledger.ref(kind, slot, n), payer_account=ledger.pairs[slot][0],
                payee_bank=payee_bank, payee_account=ledger.payees[slot], amount=1,
                transfer_id=transfer_id,
            )), endorsing_organizations=orgs)  # fmt: skip
        tx_id = proposal.transaction_id
        accepted = acceptor.expect(tx_id, transfer_id, started)
        try:
            transaction = await proposal.endorse()
            submitted = await transaction.submit()
            status = await submitted.get_status()
            status.raise_for_status()
            initiated = time.monotonic() - started
            times = await asyncio.wait_for(accepted, timeout)
        except BaseException:
            if not accepted.done():
                accepted.cancel()
            await asyncio.shield(acceptor.settle(tx_id))
            raise
        times.initiate_committed = initiated
        acceptor.times.append(times)
        return "payment"

    return op


def mixed_op(ledger: Ledger, acceptor: Acceptor) -> Op:
    transfer = transfer_op(ledger)
    payment = payment_op(ledger, acceptor)
    mint = mint_op(ledger)

    async def op(slot: int, n: int) -> str | None:
        r = random.Random(slot * 1_000_003 + n).random()  # noqa: S311 - a workload mix
        if r < 0.5:
            return await transfer(slot, n)
        if r < 0.8:
            return await payment(slot, n)
        return await mint(slot, n)

    return op
