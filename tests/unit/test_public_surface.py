"""The public surface: each package's ``__all__`` says what it exports, and the blocking twins
have every public member of their async classes (in the style of httpx's
``test_exported_members``).

The ``__all__`` rule, for each package's ``__init__``: every name in ``__all__`` resolves and
is listed once; every public name the ``__init__`` binds (imports, defines, assigns) is in
``__all__``. A package whose ``__init__`` binds no public name (its surface is its modules)
may omit ``__all__``. Every module of every package that declares ``__all__`` has it resolve.

The parity rule: for each async class with a blocking twin, each public member (and each async
protocol method, under its blocking name from ``SYNC_NAMES``) exists on the twin; a callable one
takes the same parameters (names, kinds, defaults, annotations) and does not return a coroutine;
the twin has no public member of its own beyond the extras listed here, each with its reason.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import dtoken
import dtoken.bank
import dtoken.sync
import fabgateway
import pytest
from fabgateway import sync
from fabgateway._declarations import render, update
from fabgateway.blocking import SYNC_NAMES

PACKAGES = [
    "fabgateway",
    "fabshim",
    "fabcontract",
    "dtoken",
    "deposit_token",
    "consortium",
    "dtoken_wire",
]

# --- __all__ ---------------------------------------------------------------------------------


def _bound_names(tree: ast.Module) -> set[str]:
    """Names bound at the top level of a module (descending into if/try, not functions)."""
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.ImportFrom):
                if node.module == "__future__":
                    continue
                names.update(a.asname or a.name for a in node.names if a.name != "*")
            elif isinstance(node, ast.Import):
                names.update(a.asname or a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                if isinstance(node, ast.Try):
                    for handler in node.handlers:
                        visit(handler.body)
                    visit(node.finalbody)

    visit(tree.body)
    return names


@pytest.mark.parametrize("name", PACKAGES)
def test_each_package_all_lists_exactly_its_public_names(name: str) -> None:
    package = importlib.import_module(name)
    assert package.__file__ is not None
    tree = ast.parse(Path(package.__file__).read_text(encoding="utf-8"))
    public = {n for n in _bound_names(tree) if not n.startswith("_")}
    declared = getattr(package, "__all__", None)
    if declared is None:
        assert not public, f"{name}/__init__.py binds {sorted(public)} but has no __all__"
        return
    assert len(declared) == len(set(declared)), f"{name}.__all__ lists a name twice"
    missing = [n for n in declared if not hasattr(package, n)]
    assert not missing, f"{name}.__all__ lists names that do not exist: {missing}"
    assert set(declared) == public, (
        f"{name}: public but not in __all__: {sorted(public - set(declared))}; "
        f"in __all__ but not bound by __init__: {sorted(set(declared) - public)}"
    )


def _modules(package_name: str) -> list[ModuleType]:
    package = importlib.import_module(package_name)
    found = [package]
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
        if info.name.rsplit(".", 1)[-1] == "__main__":
            continue
        found.append(importlib.import_module(info.name))
    return found


@pytest.mark.parametrize("name", PACKAGES)
def test_every_module_all_resolves(name: str) -> None:
    for module in _modules(name):
        declared = getattr(module, "__all__", None)
        if declared is None:
            continue
        missing = [n for n in declared if not hasattr(module, n)]
        assert not missing, f"{module.__name__}.__all__ lists missing names: {missing}"
        assert len(declared) == len(set(declared)), f"{module.__name__}.__all__ has duplicates"


# --- parity of the blocking twins ------------------------------------------------------------

TWINS: list[tuple[type[Any], type[Any]]] = [
    (fabgateway.Gateway, sync.Gateway),
    (fabgateway.Network, sync.Network),
    (fabgateway.Contract, sync.Contract),
    (fabgateway.Proposal, sync.Proposal),
    (fabgateway.Transaction, sync.Transaction),
    (fabgateway.Commit, sync.Commit),
    (fabgateway.SubmittedTransaction, sync.SubmittedTransaction),
    (fabgateway.ChaincodeEventsRequest, sync.ChaincodeEventsRequest),
    (fabgateway.BlockEventsRequest, sync.BlockEventsRequest),
    (fabgateway.ChaincodeEventStream, sync.ChaincodeEventIterator),
    (fabgateway.BlockEventStream, sync.BlockEventIterator),
    (fabgateway.BlockChaincodeEventStream, sync.BlockChaincodeEventIterator),
    (fabgateway.LedgerQueries, sync.LedgerQueries),
    (dtoken.Bank, dtoken.sync.SyncBank),
    (dtoken.Regulator, dtoken.sync.SyncRegulator),
]

EXTRAS: dict[type[Any], set[str]] = {
    # The async client behind the facade, for code that runs on the facade's loop.
    dtoken.sync.SyncBank: {"member"},
    dtoken.sync.SyncRegulator: {"member"},
}

NO_TWIN: dict[type[Any], str] = {
    dtoken.Member: "the base of Bank and Regulator, never used alone",
    dtoken.IncomingListener: "a background service that lives inside an async application",
    dtoken.Sweeper: "a background service that lives inside an async application",
}


def _async_api(cls: type[Any]) -> dict[str, Any]:
    """Public member name -> attribute, plus the async protocol methods, of ``cls``."""
    names = {n for n in dir(cls) if not n.startswith("_")}
    names |= {n for n in SYNC_NAMES if hasattr(cls, n)}
    return {n: inspect.getattr_static(cls, n) for n in names}


def _parameters(function: Callable[..., Any]) -> list[tuple[str, Any, Any, Any]]:
    return [
        (p.name, p.kind, p.default, p.annotation)
        for p in inspect.signature(function).parameters.values()
    ]


def _is_async(cls: type[Any]) -> bool:
    return any(
        inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member)
        for member in _async_api(cls).values()
    )


@pytest.mark.parametrize(("async_class", "twin"), TWINS, ids=lambda c: c.__qualname__)
def test_every_public_async_member_has_a_blocking_twin(
    async_class: type[Any], twin: type[Any]
) -> None:
    for name, member in sorted(_async_api(async_class).items()):
        blocking_name = SYNC_NAMES.get(name, name)
        where = f"{twin.__qualname__}.{blocking_name} (twin of {async_class.__qualname__}.{name})"
        assert hasattr(twin, blocking_name), f"missing: {where}"
        counterpart = inspect.getattr_static(twin, blocking_name)
        if isinstance(member, property):
            assert isinstance(counterpart, property), f"not a property: {where}"
            continue
        original = getattr(async_class, name)
        if not callable(original):
            assert getattr(twin, blocking_name) == original, f"different constant: {where}"
            continue
        blocking = getattr(twin, blocking_name)
        assert _parameters(blocking) == _parameters(original), f"different parameters: {where}"
        assert not inspect.iscoroutinefunction(blocking), f"still a coroutine: {where}"
        assert not inspect.isasyncgenfunction(blocking), f"still async: {where}"


@pytest.mark.parametrize(("async_class", "twin"), TWINS, ids=lambda c: c.__qualname__)
def test_a_twin_has_nothing_public_the_async_class_lacks(
    async_class: type[Any], twin: type[Any]
) -> None:
    expected = {SYNC_NAMES.get(n, n) for n in _async_api(async_class)}
    own = {n for n in dir(twin) if not n.startswith("_")}
    assert own - expected == EXTRAS.get(twin, set())


@pytest.mark.parametrize("package", [fabgateway, dtoken], ids=lambda m: m.__name__)
def test_every_exported_async_class_has_a_twin_or_a_reason(package: ModuleType) -> None:
    with_twins = {a for a, _ in TWINS}
    for name in package.__all__:
        value = getattr(package, name)
        if isinstance(value, type) and _is_async(value):
            assert value in with_twins or value in NO_TWIN, (
                f"{package.__name__}.{name} has async methods but no blocking twin"
            )


def test_the_blocking_connects_take_the_async_ones_parameters() -> None:
    # fabgateway.sync.connect takes a factory of the channel instead of the channel (a
    # grpc.aio channel belongs to the loop that made it); every other parameter is the same.
    blocking = _parameters(sync.connect)
    original = _parameters(fabgateway.connect)
    assert blocking[0][0] == "channel_factory"
    assert original[0][0] == "channel"
    assert blocking[1:] == original[1:]
    assert _parameters(dtoken.sync.connect) == _parameters(dtoken.bank.connect)


@pytest.mark.parametrize("module", [sync, dtoken.sync], ids=lambda m: m.__name__)
def test_the_typed_declarations_of_the_twins_are_current(module: ModuleType) -> None:
    # What a type checker reads of a twin is rendered from the async classes; a stale copy
    # would type a method that is gone or miss a new one.
    assert module.__file__ is not None
    source = Path(module.__file__).read_text(encoding="utf-8")
    assert update(source, render(module)) == source, (
        f"run: python -m fabgateway._declarations {module.__name__}"
    )
