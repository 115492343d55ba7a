"""A consumer cancelled just as a shielded event read completes must not lose the event.

Found while building the bank listener (which waits for events with a timeout): when the read
finished in the same loop iteration as the consumer's cancellation, ``__anext__`` dropped the
finished read and its message with it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from fabgateway.events import _Stream


class _GatedStream(_Stream[int]):
    """Each read waits for the gate, then yields the next number."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.served = 0

    async def _read_one(self) -> Any:
        await self.gate.wait()
        self.gate.clear()
        self.served += 1
        return self.served

    def _accept(self, response: Any) -> list[int]:
        return [int(response)]


@pytest.mark.parametrize("turns", range(6))
async def test_an_event_read_as_the_consumer_is_cancelled_is_delivered_once(turns: int) -> None:
    stream = _GatedStream()
    consumer = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # the consumer starts the read and waits on it
    stream.gate.set()
    for _ in range(turns):  # let the read finish, more or less far
        await asyncio.sleep(0)
    consumer.cancel()
    got: list[int] = []
    with contextlib.suppress(asyncio.CancelledError):
        got.append(await consumer)
    if not got:
        got.append(await asyncio.wait_for(anext(stream), 1.0))
    assert got == [1]
    assert stream.served == 1
    stream.gate.set()
    assert await asyncio.wait_for(anext(stream), 1.0) == 2
    await stream.aclose()
