"""Query results: value types and the lazy, paged async iterator.

A query's first page comes with the call that opened it; later pages are fetched only when
iteration reaches the end of the current page. Close an iterator you do not drain
(``async with``, or ``await it.aclose()``); a drained iterator needs no closing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class KV:
    """One state entry returned by a range, partial-composite-key or rich query."""

    key: str
    value: bytes
    namespace: str = ""


@dataclass(frozen=True, slots=True)
class KeyModification:
    """One entry of a key's history."""

    tx_id: str
    value: bytes
    timestamp: datetime | None
    is_delete: bool


@dataclass(frozen=True, slots=True)
class QueryResponseMetadata:
    """Paging information of a paginated query.

    ``bookmark`` is passed to the next call to continue; it is empty after the last page.
    """

    fetched_records_count: int
    bookmark: str


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One batch of results as the peer sent it (internal to the shim and fabshim.testing)."""

    results: Sequence[T]
    has_more: bool
    query_id: str


FetchNext = Callable[[str], Awaitable[Page[T]]]
Close = Callable[[str], Awaitable[None]]


class QueryIterator(Generic[T]):
    """An async iterator over query results, fetching further pages lazily.

    ``async for item in iterator`` yields the results in order. ``aclose()`` releases the
    peer-side query when results remain; it is idempotent.
    """

    __slots__ = ("_close", "_closed", "_fetch_next", "_index", "_page")

    def __init__(self, first_page: Page[T], fetch_next: FetchNext[T], close: Close) -> None:
        self._page = first_page
        self._index = 0
        self._fetch_next = fetch_next
        self._close = close
        self._closed = False

    def __aiter__(self) -> QueryIterator[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._index < len(self._page.results):
                item = self._page.results[self._index]
                self._index += 1
                return item
            if not self._page.has_more:
                self._closed = True
                raise StopAsyncIteration
            self._page = await self._fetch_next(self._page.query_id)
            self._index = 0

    async def aclose(self) -> None:
        """Stop the query; tells the peer only when it still holds results for it."""
        if self._closed:
            return
        self._closed = True
        if self._page.has_more:
            await self._close(self._page.query_id)

    async def __aenter__(self) -> QueryIterator[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def to_list(self) -> list[T]:
        """Drain the iterator into a list (closing it)."""
        items = [item async for item in self]
        await self.aclose()
        return items


StateQueryIterator = QueryIterator[KV]
HistoryQueryIterator = QueryIterator[KeyModification]
