"""Typed declarations of generated twin members, for type checkers: rendered, checked, written.

:func:`fabgateway.blocking.blocking_twin` makes a twin's members at run time, which a type
checker cannot see. This module renders, from the same async classes, the twin's members as
typed declarations (``def mint(self, ...) -> Receipt: ...``) into regions of the twin's own
module, inside ``if TYPE_CHECKING:`` blocks::

    if TYPE_CHECKING:
        # <declarations: imports> ...
        # </declarations>

    class SyncBank(...):
        if TYPE_CHECKING:
            # <declarations: SyncBank> ...
            # </declarations>

The regions hold no behaviour (they never run); a unit test renders them again and fails if
the module's copy differs, so they cannot drift from the async classes. Rewrite them with
``python -m fabgateway._declarations MODULE...`` (e.g. ``fabgateway.sync dtoken.sync``).

What it must not do: run at import time of any module, or write anything but the regions.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import re
import sys
import typing
from pathlib import Path
from types import ModuleType
from typing import Any

from fabgateway.blocking import SYNC_NAMES, Twin, _overridden, _public_members, twin_of

__all__ = ["main", "render", "update"]

_BEGIN = re.compile(r"^(?P<indent>[ ]*)# <declarations: (?P<name>\w+)>")
_END = "# </declarations>"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_LINE = 100 - 8
"""The line length less the indentation of a class region (class body, ``if TYPE_CHECKING``)."""
_SIMPLE_DEFAULTS = (type(None), bool, int, float, str, bytes)


class _Names:
    """The names the rendered text uses, and the imports that bind them in the target."""

    def __init__(self, target: ModuleType) -> None:
        self._target = target
        self._bound: dict[str, tuple[str, str]] = {}  # local name -> (module, name)
        self._builtins = False
        self._modules: dict[str, str] = {}  # local name -> module
        self.shadowed: set[str] = set()
        """Names of the members of the twin being rendered."""

    def local(self, obj: Any, module: str, name: str) -> str:
        if module == "builtins":
            # Always qualified: a twin may have a method named like a builtin (``bytes()``).
            self._builtins = True
            return f"builtins.{name}"
        existing = getattr(self._target, name, None)
        if existing is obj:
            return name
        wanted = (module, name)
        local = name
        if existing is not None or self._bound.get(local, wanted) != wanted:
            local = f"_{module.rsplit('.', 1)[-1]}_{name}"
        self._bound[local] = wanted
        return local

    def module(self, module: ModuleType, head: str) -> str:
        existing = getattr(self._target, head, None)
        if existing is module or existing is None:
            if existing is None:
                self._modules[head] = module.__name__
            return head
        raise TypeError(f"{head!r} means something else in {self._target.__name__}")

    def imports(self) -> list[str]:
        lines = ["import builtins"] if self._builtins else []
        for head, name in sorted(self._modules.items()):
            lines.append(f"import {name}" if head == name else f"import {name} as {head}")
        for local, (module, name) in sorted(self._bound.items(), key=lambda i: (i[1], i[0])):
            alias = "" if local == name else f" as {local}"
            lines.append(f"from {module} import {name}{alias}")
        return lines


def _origin(obj: Any, namespace: dict[str, Any], head: str) -> tuple[str, str]:
    """The (module, name) a type checker should import ``obj`` from."""
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "_name", None)
    if isinstance(module, str) and isinstance(name, str) and "." not in name:
        found = sys.modules.get(module)
        if found is not None and getattr(found, name, None) is obj:
            return module, name
    for standard in ("types", "typing", "collections.abc"):  # TracebackType says "builtins"
        if getattr(importlib.import_module(standard), head, None) is obj:
            return standard, head
    # An alias (``Argument = str | bytes``): the shortest module of the same package that
    # exports it by __all__.
    package = str(namespace.get("__name__", "")).split(".")[0]
    for candidate in sorted(sys.modules, key=len):
        if candidate.split(".")[0] != package:
            continue
        found = sys.modules[candidate]
        exported = getattr(found, "__all__", ())
        in_all = isinstance(exported, list | tuple) and head in exported
        if in_all and getattr(found, head, None) is obj:
            return candidate, head
    raise TypeError(f"cannot tell where to import {head!r} from (for a typed declaration)")


def _render_annotation(
    annotation: Any,
    namespace: dict[str, Any],
    names: _Names,
    typevars: dict[str, str],
    *,
    returned: bool,
) -> str:
    if annotation is inspect.Parameter.empty:
        return "Any"
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)

    def replace(match: re.Match[str]) -> str:
        dotted = match.group(0)
        head = dotted.split(".")[0]
        if dotted in typevars:
            return typevars[dotted]
        if head not in namespace and hasattr(builtins, head):
            if dotted in names.shadowed:  # a member of the twin has this name: qualify it
                return names.local(getattr(builtins, dotted), "builtins", dotted)
            return dotted  # str, int, None, list ...
        if head not in namespace:
            raise TypeError(f"{dotted!r} does not resolve (in a typed declaration)")
        obj: Any = namespace[head]
        for part in dotted.split(".")[1:]:
            obj = getattr(obj, part)
        if isinstance(obj, ModuleType):
            raise TypeError(f"{dotted!r} is a module")
        if returned and isinstance(obj, type):
            twin = twin_of(obj)
            if twin is not None:
                return names.local(twin, twin.__module__, twin.__name__)
        if isinstance(namespace[head], ModuleType) and namespace[head] is not builtins:
            # ``grpc.aio.Channel``: keep the spelling, import the module it starts from.
            return names.module(namespace[head], head) + dotted[len(head) :]
        if returned and obj in (typing.AsyncIterator, _abc_async_iterator()):
            from fabgateway import blocking

            return names.local(blocking.BlockingIterator, "fabgateway.blocking", "BlockingIterator")
        module, name = _origin(obj, namespace, dotted.split(".")[-1])
        return names.local(obj, module, name)

    return _IDENTIFIER.sub(replace, text)


def _abc_async_iterator() -> Any:
    import collections.abc

    return collections.abc.AsyncIterator


def _typevars(async_class: type[Any], names: _Names) -> dict[str, str]:
    """TypeVar name -> rendered argument, from the generic bases of ``async_class``."""
    found: dict[str, str] = {}
    for cls in async_class.__mro__:
        for base in getattr(cls, "__orig_bases__", ()):
            origin = typing.get_origin(base)
            parameters = getattr(origin, "__parameters__", ())
            for parameter, argument in zip(parameters, typing.get_args(base), strict=False):
                if parameter.__name__ in found:
                    continue
                if argument is Any:
                    rendered = names.local(Any, "typing", "Any")
                elif isinstance(argument, type):
                    rendered = names.local(argument, argument.__module__, argument.__qualname__)
                else:
                    continue
                found[parameter.__name__] = rendered
    return found


def _default(value: Any) -> str:
    if isinstance(value, str) and '"' not in value and "\\" not in value:
        return f'"{value}"'  # the project's quotes
    if isinstance(value, _SIMPLE_DEFAULTS) or value == ():
        return repr(value)
    return "..."


def _signature_lines(
    name: str, function: Any, names: _Names, typevars: dict[str, str], indent: str
) -> list[str]:
    signature = inspect.signature(function)
    namespace = function.__globals__
    parts: list[str] = []
    star_done = False
    for index, parameter in enumerate(signature.parameters.values()):
        if index == 0:
            parts.append(parameter.name)  # self
            continue
        rendered = _render_annotation(
            parameter.annotation, namespace, names, typevars, returned=False
        )
        kind = parameter.kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            parts.append(f"*{parameter.name}: {rendered}")
            star_done = True
            continue
        if kind is inspect.Parameter.VAR_KEYWORD:
            parts.append(f"**{parameter.name}: {rendered}")
            continue
        if kind is inspect.Parameter.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        text = f"{parameter.name}: {rendered}"
        if parameter.default is not inspect.Parameter.empty:
            text += f" = {_default(parameter.default)}"
        parts.append(text)
        if kind is inspect.Parameter.POSITIONAL_ONLY and (
            index + 1 == len(signature.parameters)
            or list(signature.parameters.values())[index + 1].kind
            is not inspect.Parameter.POSITIONAL_ONLY
        ):
            parts.append("/")
    returned = _render_annotation(
        signature.return_annotation, namespace, names, typevars, returned=True
    )
    one_line = f"{indent}def {name}({', '.join(parts)}) -> {returned}: ..."
    if len(one_line) <= _LINE:
        return [one_line]
    return [
        f"{indent}def {name}(",
        *(f"{indent}    {part}," for part in parts),
        f"{indent}) -> {returned}: ...",
    ]


def _class_lines(twin: type[Twin[Any]], names: _Names, indent: str) -> list[str]:
    async_class = twin._async_class
    typevars = _typevars(async_class, names)
    names.shadowed = {SYNC_NAMES.get(n, n) for n in _public_members(async_class)}
    lines: list[str] = []
    for name, member in sorted(_public_members(async_class).items()):
        blocking_name = SYNC_NAMES.get(name, name)
        if _overridden(twin, blocking_name) or isinstance(member, classmethod | staticmethod):
            continue
        if isinstance(member, property):
            assert member.fget is not None
            returned = _render_annotation(
                inspect.signature(member.fget).return_annotation,
                member.fget.__globals__,
                names,
                typevars,
                returned=True,
            )
            lines += [f"{indent}@property", f"{indent}def {name}(self) -> {returned}: ..."]
        elif inspect.isfunction(member):
            lines += _signature_lines(blocking_name, member, names, typevars, indent)
        elif not callable(member):
            lines.append(f"{indent}{name}: {type(member).__name__}")
    return lines


def render(module: ModuleType) -> dict[str, list[str]]:
    """Region name -> its lines (without indentation) for every twin class of ``module``."""
    names = _Names(module)
    regions: dict[str, list[str]] = {}
    for name, value in sorted(vars(module).items()):
        if isinstance(value, type) and issubclass(value, Twin) and value.__module__ == (
            module.__name__
        ) and "_async_class" in vars(value):
            regions[name] = _class_lines(value, names, "")
    regions["imports"] = names.imports()
    return regions


def update(source: str, regions: dict[str, list[str]]) -> str:
    """``source`` with each ``# <declarations: NAME>`` region's body replaced."""
    out: list[str] = []
    lines = source.splitlines()
    seen: set[str] = set()
    index = 0
    while index < len(lines):
        line = lines[index]
        out.append(line)
        index += 1
        match = _BEGIN.match(line)
        if not match:
            continue
        name, indent = match.group("name"), match.group("indent")
        if name not in regions:
            raise ValueError(f"a declarations region names no twin of this module: {name}")
        seen.add(name)
        while index < len(lines) and lines[index].strip() != _END:
            index += 1
        if index == len(lines):
            raise ValueError(f"declarations region {name} is not closed by {_END!r}")
        body = regions[name] or ["pass"]
        if name == "imports" and body != ["pass"]:
            body = [f"{body[0]}  # noqa: I001 - generated, one import a line", *body[1:]]
        out += [f"{indent}{text}" if text else "" for text in body]
    missing = sorted(set(regions) - seen)
    if missing:
        raise ValueError(f"no declarations region for {missing}")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Rewrite the declaration regions of the modules named in ``argv``."""
    for name in argv if argv is not None else sys.argv[1:]:
        module = importlib.import_module(name)
        assert module.__file__ is not None
        path = Path(module.__file__)
        text = path.read_text(encoding="utf-8")
        updated = update(text, render(module))
        if updated != text:
            path.write_text(updated, encoding="utf-8")
            print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
