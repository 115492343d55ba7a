"""Commands that other distributions mount into ``dtoken``, found through entry points.

What it owns: the ``dtoken.commands`` entry-point group, how its plugins are found
(:mod:`importlib.metadata`, never an import by name) and the :class:`CommandHost` the CLI hands
them. The network tooling (``dtoken-network``) registers one, which adds ``dtoken network
up|down|status|generate`` and ``dtoken identity issue`` and names the default network's
profiles folder; a bank that installed only this SDK has neither, and names its profile itself.

What it must not do: import any plugin's package by name (the bank SDK never imports the
network bootstrap: an import-linter contract keeps it so), or let a plugin that fails to load
stop the bank commands (it is reported on stderr and skipped).

A plugin is an object (or a module) with::

    register(subparsers, host: CommandHost) -> None
        add its commands; each sets ``handler`` (``argparse.Namespace -> int``, an exit code)
        with ``set_defaults``; ``dtoken.errors.UsageError`` from the host exits 2.
    default_profiles() -> pathlib.Path | None          (optional)
        the profiles folder when none is given, e.g. the default network's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["GROUP", "CommandHost", "CommandPlugin", "Plugin", "plugins"]

#: The entry-point group other distributions declare their ``dtoken`` commands in.
GROUP = "dtoken.commands"


@dataclass(frozen=True)
class CommandHost:
    """What the ``dtoken`` CLI offers the commands a plugin adds."""

    #: the options every command accepts after its name (``--bank``, ``--identity``, ``--json``)
    common: argparse.ArgumentParser
    #: the organization a command acts as, by the CLI's rules (``--profile``, ``--bank`` in the
    #: profiles folder): its name and its connection profile's path (``UsageError`` if none)
    organization: Callable[[argparse.Namespace], tuple[str, Path]]
    #: the roles a client identity can carry (its certificate's ``<role>=true`` attributes)
    roles: tuple[str, ...]


@runtime_checkable
class CommandPlugin(Protocol):
    """The one method every plugin has; ``default_profiles()`` is optional."""

    def register(self, subparsers: Any, host: CommandHost) -> None: ...


@dataclass(frozen=True)
class Plugin:
    """One loaded plugin and the entry point it came from."""

    name: str
    source: str  # "module:attr", for messages
    target: CommandPlugin

    def default_profiles(self) -> Path | None:
        """The plugin's default profiles folder, if it has one."""
        find = getattr(self.target, "default_profiles", None)
        if find is None:
            return None
        found = find()
        return None if found is None else Path(found)


def _load(point: EntryPoint) -> Plugin | None:
    try:
        target = point.load()
    except Exception as error:  # a broken plugin must not take the bank commands down
        print(f"dtoken: ignoring the {GROUP} plugin {point.name} ({point.value}): "
              f"{type(error).__name__}: {error}", file=sys.stderr)
        return None
    if not isinstance(target, CommandPlugin):
        print(f"dtoken: ignoring the {GROUP} plugin {point.name} ({point.value}): "
              f"it has no register(subparsers, host)", file=sys.stderr)
        return None
    return Plugin(point.name, point.value, target)


@cache
def plugins() -> tuple[Plugin, ...]:
    """The installed plugins, by entry-point name (loaded once per process)."""
    found = (_load(point) for point in sorted(entry_points(group=GROUP), key=lambda p: p.name))
    return tuple(p for p in found if p is not None)
