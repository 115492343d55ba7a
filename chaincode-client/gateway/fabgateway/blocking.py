"""Blocking twins of async classes, made by construction, and the loop thread they run on.

What it owns: :class:`LoopThread` (an asyncio event loop in a daemon thread that runs
coroutines and async iterators for blocking callers, and shuts down cleanly) and
:func:`blocking_twin`, a class decorator that fills a :class:`Twin` subclass with the blocking
form of every public member of an async class:

================================  =================================================
async class member                blocking twin member
================================  =================================================
``async def m(...)``              ``def m(...)``: runs on the loop thread, blocks
plain method, property            the same, called in the caller's thread
``__aenter__`` / ``__aexit__``    ``__enter__`` / ``__exit__``
``__aiter__`` / ``__anext__``     ``__iter__`` / ``__next__``
``aclose``                        ``close``
class constant                    the same constant
classmethod, staticmethod         nothing: a constructor is written on the twin
================================  =================================================

Each result is wrapped on its way out: the async object itself becomes the twin itself, an
object of a class that has a registered twin becomes that twin (sharing the loop thread), any
other async iterator becomes a :class:`BlockingIterator`, anything else is returned as is.
Exceptions are the async API's. A twin member written in the class body (an override) is
kept; each override says why the blocking form differs. Public instance attributes of the
async object (set in its ``__init__``) are read through.

What it must not do: know any particular async class (``fabgateway.sync`` and
``dtoken.sync`` declare their twins), or run a coroutine on the caller's thread.

Static typing: members made at run time are invisible to a type checker, so the twin's module
also carries them as typed declarations in ``if TYPE_CHECKING:`` regions, rendered from the
same async classes by :mod:`fabgateway._declarations` and checked current by a unit test.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Future
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

__all__ = [
    "SYNC_NAMES",
    "BlockingIterator",
    "LoopThread",
    "Twin",
    "blocking_twin",
    "twin_of",
]

_T = TypeVar("_T")
_A = TypeVar("_A")
_TwinT = TypeVar("_TwinT", bound="type[Twin[Any]]")

SYNC_NAMES: dict[str, str] = {
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "aclose": "close",
}
"""The async protocol names and their blocking counterparts; other names stay the same."""

_END: Any = object()


class LoopThread:
    """An asyncio event loop running in a daemon thread, for blocking callers.

    :meth:`run` runs an awaitable on the loop and blocks the calling thread until it is done
    (several threads may call at once); :meth:`next` takes one item of an async iterator.
    :meth:`stop` cancels what is still running, finalizes async generators, stops the loop,
    joins the thread and closes the loop; it is idempotent. Calling :meth:`run` from the loop's
    own thread would deadlock, so it raises ``RuntimeError``.
    """

    def __init__(self, name: str = "fabgateway-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop (schedule on it only with ``*_threadsafe`` calls)."""
        return self._loop

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` has been called."""
        return self._stopping

    def run(self, awaitable: Awaitable[_T]) -> _T:
        """Run ``awaitable`` on the loop thread; return its result or raise its exception.

        If the caller is interrupted (``KeyboardInterrupt``) while waiting, the call on the
        loop is cancelled.
        """
        problem = self._refusal()
        if problem:
            if isinstance(awaitable, Coroutine):
                awaitable.close()  # never awaited, on purpose: no warning
            raise RuntimeError(problem)

        async def call() -> _T:
            return await awaitable

        future: Future[_T] = asyncio.run_coroutine_threadsafe(call(), self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def next(self, iterator: AsyncIterator[_T]) -> _T:
        """The next item of ``iterator``, taken on the loop; ``StopIteration`` at its end."""

        async def step() -> _T:
            try:
                return await iterator.__anext__()
            except StopAsyncIteration:
                # A coroutine cannot end a future with StopIteration: report the end as a value.
                return _END  # type: ignore[no-any-return]

        item = self.run(step())
        if item is _END:
            raise StopIteration
        return item

    def iterate(self, iterator: AsyncIterator[_T]) -> BlockingIterator[_T]:
        """A blocking iterator over ``iterator``, items taken on the loop."""
        return BlockingIterator(iterator, self)

    def _refusal(self) -> str:
        if self._stopping:
            return "the loop thread is stopped"
        if threading.current_thread() is self._thread:
            return "a blocking call was made from its own loop thread (it would wait forever)"
        return ""

    def stop(self) -> None:
        """Cancel the loop's remaining tasks, stop the loop and its thread, close the loop."""
        with self._lock:
            if self._stopping:
                return
            if threading.current_thread() is self._thread:
                raise RuntimeError("a loop thread cannot stop itself")
            self._stopping = True
        try:
            asyncio.run_coroutine_threadsafe(self._drain(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    async def _drain(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._loop.shutdown_asyncgens()


class BlockingIterator(Generic[_T]):
    """An async iterator made blocking; ``close()`` (or ``with``) closes the async one."""

    def __init__(self, iterator: AsyncIterator[_T], runner: LoopThread) -> None:
        self._iterator = iterator
        self._runner = runner

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> _T:
        return self._runner.next(self._iterator)

    def close(self) -> None:
        """``aclose()`` the async iterator, if it has one."""
        aclose: Callable[[], Awaitable[object]] | None = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            self._runner.run(aclose())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_TWINS: dict[type[Any], type[Twin[Any]]] = {}


def twin_of(async_class: type[Any]) -> type[Twin[Any]] | None:
    """The registered twin of ``async_class`` (or of its nearest registered base)."""
    for cls in async_class.__mro__:
        twin = _TWINS.get(cls)
        if twin is not None:
            return twin
    return None


class Twin(Generic[_A]):
    """Base of a blocking twin: the async object it stands for and the loop thread it uses.

    Subclasses are declared with :func:`blocking_twin`, which fills them in.
    """

    _async_class: ClassVar[type[Any]]

    def __init__(self, target: _A, runner: LoopThread) -> None:
        self._target = target
        self._runner = runner

    def _wrap(self, value: Any) -> Any:
        if value is self._target:
            return self
        twin = twin_of(type(value))
        if twin is not None:
            return twin(value, self._runner)
        if isinstance(value, AsyncIterator):
            return BlockingIterator(value, self._runner)
        return value

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: read a public instance attribute through.
        attributes = getattr(self.__dict__.get("_target"), "__dict__", {})
        if name.startswith("_") or name not in attributes:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return self._wrap(attributes[name])

    def __repr__(self) -> str:
        return f"<blocking {self._target!r}>"


class _GeneratedProperty(property):
    """A property made by :func:`blocking_twin` (so that a subclass may make it again)."""


def _is_generated(member: object) -> bool:
    return isinstance(member, _GeneratedProperty) or getattr(member, "_twin_generated", False)


def _public_members(async_class: type[Any]) -> dict[str, Any]:
    """Name -> raw class attribute, nearest definition first, for public and protocol names."""
    members: dict[str, Any] = {}
    for cls in async_class.__mro__:
        if cls is object:
            continue
        for name, member in vars(cls).items():
            if name in members:
                continue
            if name.startswith("_") and name not in SYNC_NAMES:
                continue
            members[name] = member
    return members


def _overridden(twin_class: type[Any], name: str) -> bool:
    """True when ``name`` is written in the twin's body or a twin base other than Twin."""
    for cls in twin_class.__mro__:
        if name in vars(cls):
            if cls in (Twin, Generic, object):
                return False
            return not _is_generated(vars(cls)[name])
    return False


def _blocking_signature(function: Callable[..., Any]) -> inspect.Signature:
    signature = inspect.signature(function)
    annotation = signature.return_annotation
    names = {cls.__name__: twin.__name__ for cls, twin in _TWINS.items()}
    if isinstance(annotation, str) and annotation in names:
        signature = signature.replace(return_annotation=names[annotation])
    return signature


def _coroutine_method(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Twin[Any], /, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(self._runner.run(getattr(self._target, name)(*args, **kwargs)))

    return method


def _plain_method(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Twin[Any], /, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(getattr(self._target, name)(*args, **kwargs))

    return method


def _next_method(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def method(self: Twin[Any], /) -> Any:
        return self._wrap(self._runner.next(self._target))

    return method


def _exit_method(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def method(
        self: Twin[Any],
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Any:
        return self._runner.run(self._target.__aexit__(exc_type, exc, tb))

    return method


def _property(name: str, prop: property) -> property:
    def get(self: Twin[Any]) -> Any:
        return self._wrap(getattr(self._target, name))

    return _GeneratedProperty(get, doc=prop.__doc__)


def blocking_twin(async_class: type[Any]) -> Callable[[_TwinT], _TwinT]:
    """Class decorator: make the decorated :class:`Twin` subclass the blocking twin of
    ``async_class`` (see the module docstring for the rules) and register it, so that results
    of class ``async_class`` returned by other twins become this twin."""

    def decorate(twin_class: _TwinT) -> _TwinT:
        if not issubclass(twin_class, Twin):
            raise TypeError(f"{twin_class.__name__} must subclass fabgateway.blocking.Twin")
        members = _public_members(async_class)
        clashes = sorted(n for n in SYNC_NAMES if n in members and SYNC_NAMES[n] in members)
        if clashes:
            raise TypeError(f"{async_class.__name__} has both forms of {clashes}")
        earlier = _TWINS.get(async_class)
        if earlier is not None and (earlier.__module__, earlier.__qualname__) != (
            twin_class.__module__,
            twin_class.__qualname__,
        ):
            # One twin per async class: a second would silently change what the first's
            # facade returns.
            raise TypeError(
                f"{async_class.__qualname__} already has a twin: "
                f"{earlier.__module__}.{earlier.__qualname__}"
            )
        twin_class._async_class = async_class
        _TWINS[async_class] = twin_class
        for name, member in members.items():
            sync_name = SYNC_NAMES.get(name, name)
            if _overridden(twin_class, sync_name):
                continue
            made = _blocking_member(name, member)
            if made is None:
                continue
            if callable(made) and not isinstance(made, type):
                made.__name__ = sync_name
                made.__qualname__ = f"{twin_class.__qualname__}.{sync_name}"
                made.__module__ = twin_class.__module__
                made.__doc__ = getattr(member, "__doc__", None)
                made.__signature__ = _blocking_signature(member)
                made._twin_generated = True
            setattr(twin_class, sync_name, made)
        return twin_class

    return decorate


def _blocking_member(name: str, member: Any) -> Any:
    """The twin's member for the async class's ``member`` (None: nothing to make)."""
    if isinstance(member, classmethod | staticmethod):
        return None  # constructors: the twin writes its own (they must run on its loop)
    if isinstance(member, property):
        return _property(name, member)
    if name == "__anext__":
        return _next_method(name, member)
    if name == "__aexit__":
        return _exit_method(name, member)
    if name == "__aiter__":
        return _plain_method(name, member)
    if inspect.iscoroutinefunction(member):
        return _coroutine_method(name, member)
    if inspect.isfunction(member):
        return _plain_method(name, member)
    if callable(member) or isinstance(member, type):
        return None  # a nested class or a callable object: not part of the blocking API
    return member  # a class constant
