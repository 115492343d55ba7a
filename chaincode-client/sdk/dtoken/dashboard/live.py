"""The dashboard's live state: one organization's view, kept current by its own peer's events.

:class:`LiveState` owns what the page shows and when it changes; it knows nothing of HTTP
(:mod:`dtoken.dashboard.server` serves it).

**Followers.** Two streams read the organization's own peer: the deposit-token events
(``TransferPending``/``TransferDecided``: which banks a transfer concerns, never an amount or
an id; :func:`dtoken.event_source.member_events`, so under the namespace layout the events
of every organization's namespace) and its filtered blocks (transaction ids, validation
codes, event names), which also trigger a refresh for transactions that emit no event (a
mint, a settlement). Both start at the recent blocks and resume from an in-memory checkpoint
after a lost connection.

**Refresh.** Each trigger (debounced) recomputes the view
(:func:`dtoken.dashboard.view.ledger_view`); when it changed, every subscriber gets the new
state. A refresh also runs every ``refresh_interval`` seconds (a transfer that expired,
private data that arrived late by reconciliation).

What it must not do: read anything but through the bank SDK as the organization's own client
identity, or write to the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import fabgateway

from dtoken.bank import Member
from dtoken.dashboard.view import identity_view, ledger_view
from dtoken.errors import DTokenError
from dtoken.event_source import member_events

__all__ = ["RECENT_BLOCKS", "RECENT_EVENTS", "LiveState", "State"]

_log = logging.getLogger(__name__)
# fabric-protos ships no type stubs (as in fabgateway._protos)
ledger_pb2: Any = importlib.import_module("fabric_protos.common.ledger_pb2")
transaction_pb2: Any = importlib.import_module("fabric_protos.peer.transaction_pb2")

#: The page's state: plain JSON data (docs/dashboard.md lists its keys).
State = dict[str, Any]

RECENT_BLOCKS = 12
RECENT_EVENTS = 20
_DEBOUNCE = 0.25
_CATCH_UP = 15.0


class LiveState:
    """The state of ``member``'s dashboard, and the subscribers that follow its changes."""

    def __init__(
        self, member: Member, *, refresh_interval: float = 30.0, reconnect_delay: float = 2.0
    ) -> None:
        self.member = member
        self._refresh_interval = refresh_interval
        self._reconnect_delay = reconnect_delay
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribers: set[asyncio.Queue[State | None]] = set()
        self._dirty = asyncio.Event()
        self._closing = asyncio.Event()
        self._caught_up = asyncio.Event()
        self._blocks: deque[dict[str, Any]] = deque(maxlen=RECENT_BLOCKS)
        self._events: deque[dict[str, Any]] = deque(maxlen=RECENT_EVENTS)
        self._height = 0
        self._view: dict[str, Any] = {}
        self._state: State = {}
        self._version = 0
        self._follower_errors: dict[str, str] = {}

    @property
    def state(self) -> State:
        """The current state, as the page and ``/api/state`` get it."""
        return self._state

    @property
    def subscribers(self) -> int:
        """How many subscriptions (open pages' event streams) follow the state."""
        return len(self._subscribers)

    async def start(self) -> None:
        """Start the followers at the recent blocks and make the first view."""
        start_block = 0
        try:
            self._height = await self._chain_height()
            start_block = max(0, self._height - RECENT_BLOCKS)
        except (fabgateway.GatewayError, DTokenError) as error:
            _log.warning("chain height unknown (%s): recent blocks start at block 0", error)
        if self._height == 0:
            self._caught_up.set()
        self._tasks = [
            asyncio.create_task(self._follow_blocks(start_block), name="dashboard-blocks"),
            asyncio.create_task(self._follow_events(start_block), name="dashboard-events"),
        ]
        # The first page lists the recent blocks: wait (a little) for their replay.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._caught_up.wait(), timeout=_CATCH_UP)
        await self._refresh()
        self._tasks.append(asyncio.create_task(self._refresher(), name="dashboard-refresh"))

    async def close(self) -> None:
        """End every subscription (its stream ends), then stop the followers."""
        self._closing.set()
        for queue in list(self._subscribers):
            _put_latest(queue, None)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[State | None]]:
        """A queue that holds the newest state not yet taken, or ``None`` once closing."""
        queue: asyncio.Queue[State | None] = asyncio.Queue(maxsize=1)
        if self._closing.is_set():
            queue.put_nowait(None)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    # --- state --------------------------------------------------------------------------

    async def _chain_height(self) -> int:
        qscc = self.member.network.get_contract("qscc")
        raw = await qscc.evaluate("GetChainInfo", arguments=[self.member.profile.channel],
                                  endorsing_organizations=[self.member.msp_id])
        return int(ledger_pb2.BlockchainInfo.FromString(raw).height)

    def _compose(self) -> State:
        errors = list(self._view.get("errors", []))
        errors += [f"{k}: {v}" for k, v in sorted(self._follower_errors.items())]
        return {
            "me": identity_view(self.member),
            **self._view,
            "errors": errors,
            "height": self._height,
            "blocks": list(reversed(self._blocks)),
            "events": list(reversed(self._events)),
        }

    async def _refresh(self) -> None:
        self._view = await ledger_view(self.member)
        self._publish()

    def _publish(self) -> None:
        composed = self._compose()
        if composed == {k: v for k, v in self._state.items()
                        if k not in ("version", "updated_at")}:
            return
        self._version += 1
        composed["version"] = self._version
        composed["updated_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        self._state = composed
        for queue in list(self._subscribers):
            _put_latest(queue, composed)

    async def _refresher(self) -> None:
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout=self._refresh_interval)
            await asyncio.sleep(_DEBOUNCE)  # one refresh for a burst of blocks
            self._dirty.clear()
            try:
                await self._refresh()
            except DTokenError as error:  # the view reports its own parts; this is a fault
                _log.warning("refresh failed: %s", error)

    # --- followers ----------------------------------------------------------------------

    async def _follow(
        self,
        what: str,
        stream: Callable[[fabgateway.InMemoryCheckpointer], Any],
        handle: Callable[[Any, fabgateway.InMemoryCheckpointer], None],
    ) -> None:
        checkpointer = fabgateway.InMemoryCheckpointer()
        while not self._closing.is_set():
            try:
                async with stream(checkpointer) as items:
                    self._follower_errors.pop(what, None)
                    async for item in items:
                        handle(item, checkpointer)
                        self._dirty.set()
            except (fabgateway.GatewayError, DTokenError) as error:
                self._follower_errors[what] = f"reconnecting ({type(error).__name__})"
                _log.warning("%s: %s; reconnecting", what, str(error).splitlines()[0])
            await asyncio.sleep(self._reconnect_delay)

    async def _follow_blocks(self, start_block: int) -> None:
        network = self.member.network

        def stream(cp: fabgateway.InMemoryCheckpointer) -> AsyncIterator[Any]:
            return network.filtered_block_events(start_block=start_block, checkpoint=cp)

        def handle(block: Any, cp: fabgateway.InMemoryCheckpointer) -> None:
            self._blocks.append(_block_view(block))
            if int(block.number) + 1 >= self._height:
                self._caught_up.set()
            self._height = max(self._height, int(block.number) + 1)
            cp.checkpoint_block(int(block.number))

        await self._follow("blocks", stream, handle)

    async def _follow_events(self, start_block: int) -> None:
        network = self.member.network
        profile = self.member.profile

        def stream(cp: fabgateway.InMemoryCheckpointer) -> AsyncIterator[Any]:
            return member_events(network, profile, start_block=start_block, checkpoint=cp)

        def handle(event: fabgateway.ChaincodeEvent, cp: fabgateway.InMemoryCheckpointer) -> None:
            self._events.append(_event_view(event))
            cp.checkpoint_chaincode_event(event)

        await self._follow("chaincode events", stream, handle)


def _put_latest(queue: asyncio.Queue[State | None], item: State | None) -> None:
    """Replace what ``queue`` holds by ``item``: a slow page skips states, never lags."""
    if queue.full():
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
    queue.put_nowait(item)


def _block_view(block: Any) -> dict[str, Any]:
    """A filtered block: its transactions, their validation codes and event names."""
    txs = []
    for tx in block.filtered_transactions:
        events = [a.chaincode_event.event_name
                  for a in tx.transaction_actions.chaincode_actions
                  if a.chaincode_event.event_name]
        code = int(tx.tx_validation_code)
        txs.append({"tx_id": tx.txid, "valid": code == 0, "code": _validation_name(code),
                    "events": events})
    return {"number": int(block.number), "transactions": txs}


def _validation_name(code: int) -> str:
    try:
        return str(transaction_pb2.TxValidationCode.Name(code))
    except ValueError:
        return str(code)


def _event_view(event: fabgateway.ChaincodeEvent) -> dict[str, Any]:
    try:
        payload = json.loads(event.payload) if event.payload else None
    except ValueError:
        payload = None
    return {"block": event.block_number, "tx_id": event.transaction_id,
            "name": event.event_name, "payload": payload if isinstance(payload, dict) else None}
