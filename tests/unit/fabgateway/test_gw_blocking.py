"""fabgateway.blocking: the loop thread, and twins made from small async classes."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Self

import pytest
from fabgateway.blocking import BlockingIterator, LoopThread, Twin, blocking_twin

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def runner() -> Iterator[LoopThread]:
    loop = LoopThread("test-blocking")
    yield loop
    loop.stop()


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


# --- the loop thread -----------------------------------------------------------------------


def test_run_returns_the_result_and_raises_the_error_on_the_callers_thread(
    runner: LoopThread,
) -> None:
    async def where() -> str:
        return threading.current_thread().name

    async def fail() -> None:
        raise KeyError("nope")

    assert runner.run(where()) == "test-blocking"
    with pytest.raises(KeyError, match="nope"):
        runner.run(fail())


def test_run_from_the_loop_thread_itself_is_refused_not_a_deadlock(runner: LoopThread) -> None:
    async def inner() -> int:
        return 1

    async def reenter() -> None:
        runner.run(inner())

    with pytest.raises(RuntimeError, match="its own loop thread"):
        runner.run(reenter())


def test_stop_cancels_what_runs_joins_the_thread_and_refuses_later_calls() -> None:
    loop = LoopThread("test-stop")
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def start() -> None:
        asyncio.get_running_loop().create_task(forever())
        await asyncio.sleep(0)

    loop.run(start())
    assert _threads("test-stop")
    loop.stop()
    loop.stop()  # idempotent
    assert cancelled.is_set()
    assert not _threads("test-stop")
    assert loop.loop.is_closed()
    assert loop.stopped

    async def late() -> None:
        raise AssertionError("must not run")

    with pytest.raises(RuntimeError, match="stopped"):
        loop.run(late())  # closed, not left "never awaited" (warnings are errors here)


def test_next_and_iterate_take_items_on_the_loop(runner: LoopThread) -> None:
    seen: list[str] = []

    async def numbers() -> AsyncIterator[int]:
        for n in range(3):
            seen.append(threading.current_thread().name)
            yield n

    iterator = runner.iterate(numbers())
    assert isinstance(iterator, BlockingIterator)
    with iterator:
        assert list(iterator) == [0, 1, 2]
    assert set(seen) == {"test-blocking"}
    with pytest.raises(StopIteration):
        runner.next(_empty())


async def _empty() -> AsyncIterator[int]:
    return
    yield  # pragma: no cover


def test_several_threads_block_on_one_loop_at_once(runner: LoopThread) -> None:
    barrier = threading.Barrier(3)
    results: list[int] = []

    async def slow(n: int) -> int:
        await asyncio.sleep(0.05)
        return n

    def call(n: int) -> None:
        barrier.wait()
        results.append(runner.run(slow(n)))

    threads = [threading.Thread(target=call, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [0, 1, 2]


# --- twins ---------------------------------------------------------------------------------


class AsyncLeaf:
    """A small async object returned by AsyncRoot."""

    LIMIT = 7

    def __init__(self, label: str) -> None:
        self.label = label
        self._secret = "s"

    async def shout(self, suffix: str = "!") -> str:
        """Upper-case label."""
        return self.label.upper() + suffix


class AsyncStream:
    """An async iterator and async context manager, with aclose()."""

    def __init__(self, items: list[int]) -> None:
        self._items = list(items)
        self.closed = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> int:
        if self.closed or not self._items:
            raise StopAsyncIteration
        return self._items.pop(0)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self.closed = True


class AsyncRoot:
    def __init__(self) -> None:
        self.calls: list[str] = []

    @property
    def leaf(self) -> AsyncLeaf:
        return AsyncLeaf("prop")

    @classmethod
    def create(cls) -> AsyncRoot:
        return cls()

    def new_leaf(self, label: str) -> AsyncLeaf:
        return AsyncLeaf(label)

    async def fetch_leaf(self, label: str, *, times: int = 1) -> AsyncLeaf:
        self.calls.append(threading.current_thread().name)
        return AsyncLeaf(label * times)

    async def same(self) -> AsyncRoot:
        return self

    def stream(self, *items: int) -> AsyncStream:
        return AsyncStream(list(items))

    async def numbers(self, n: int) -> AsyncIterator[int]:
        for i in range(n):
            yield i

    async def fail(self) -> None:
        raise ValueError("bad input: n")

    async def ping(self) -> str:
        return "async"


@blocking_twin(AsyncLeaf)
class Leaf(Twin[AsyncLeaf]):
    pass


@blocking_twin(AsyncStream)
class Stream(Twin[AsyncStream]):
    pass


@blocking_twin(AsyncRoot)
class Root(Twin[AsyncRoot]):
    # Differs: a test of overrides.
    def ping(self) -> str:
        return "override"


class AsyncRootChild(AsyncRoot):
    async def extra(self) -> int:
        return 42


@blocking_twin(AsyncRootChild)
class RootChild(Root):
    pass


def test_coroutine_methods_block_on_the_loop_and_return_twins(runner: LoopThread) -> None:
    target = AsyncRoot()
    root = Root(target, runner)
    leaf = root.fetch_leaf("ab", times=2)
    assert isinstance(leaf, Leaf)
    assert leaf.shout() == "ABAB!"
    assert leaf.shout(suffix="?") == "ABAB?"
    assert target.calls == ["test-blocking"]
    assert root.same() is root
    with pytest.raises(ValueError, match="bad input"):
        root.fail()


def test_plain_methods_properties_constants_and_instance_attributes(runner: LoopThread) -> None:
    root = Root(AsyncRoot(), runner)
    assert isinstance(root.new_leaf("x"), Leaf)
    assert isinstance(root.leaf, Leaf)
    assert root.leaf.label == "prop"  # an instance attribute, read through
    assert Leaf.LIMIT == 7
    with pytest.raises(AttributeError):
        _ = root.leaf._secret  # private stays private
    with pytest.raises(AttributeError, match="nothing"):
        _ = root.nothing
    assert "create" not in vars(Root)  # constructors are written by hand on a twin


def test_async_iterators_and_context_managers_become_blocking(runner: LoopThread) -> None:
    root = Root(AsyncRoot(), runner)
    with root.stream(1, 2, 3) as stream:
        assert isinstance(stream, Stream)
        assert next(stream) == 1
        assert list(stream) == [2, 3]
    with root.stream(4, 5) as stream:
        assert next(iter(stream)) == 4
    assert stream.closed  # __exit__ ran the async __aexit__ -> aclose
    other = root.stream(6)
    other.close()  # aclose -> close
    assert list(other) == []
    numbers = root.numbers(3)
    assert isinstance(numbers, BlockingIterator)
    assert list(numbers) == [0, 1, 2]


def test_overrides_are_kept_and_signatures_copied(runner: LoopThread) -> None:
    root = Root(AsyncRoot(), runner)
    assert root.ping() == "override"
    blocking, original = inspect.signature(Root.fetch_leaf), inspect.signature(AsyncRoot.fetch_leaf)
    assert blocking.parameters == original.parameters
    assert blocking.return_annotation == "Leaf"  # the twin of what the async method returns
    assert not inspect.iscoroutinefunction(Root.fetch_leaf)
    assert Leaf.shout.__doc__ == "Upper-case label."
    assert Leaf.shout.__qualname__ == "Leaf.shout"


def test_a_twin_subclass_keeps_its_bases_overrides_and_adds_the_new_methods(
    runner: LoopThread,
) -> None:
    child = RootChild(AsyncRootChild(), runner)
    assert child.extra() == 42
    assert child.ping() == "override"
    assert isinstance(child.fetch_leaf("a"), Leaf)


def test_a_class_with_both_close_and_aclose_cannot_have_a_twin() -> None:
    class Both:
        def close(self) -> None: ...

        async def aclose(self) -> None: ...

    with pytest.raises(TypeError, match="both forms"):

        @blocking_twin(Both)
        class _BothTwin(Twin[Both]):
            pass


def test_an_async_class_has_one_twin_only() -> None:
    with pytest.raises(TypeError, match=r"already has a twin: .*Leaf"):

        @blocking_twin(AsyncLeaf)
        class _SecondLeaf(Twin[AsyncLeaf]):
            pass


def test_only_twin_subclasses_can_be_declared() -> None:
    with pytest.raises(TypeError, match="must subclass"):
        blocking_twin(AsyncLeaf)(object)  # type: ignore[type-var]

