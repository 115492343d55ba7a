"""Where the network's nodes run: the :class:`Runtime` every node handle goes through, and
the native one (each node a process of this machine, :mod:`consortium.processes`).

A runtime starts, inspects and stops one node (:class:`consortium.nodes.NodeHandle`), names the
programs inside it (Fabric's tools, the chaincode servers' Python) and says how the nodes
reach each other (the host of a peer's chaincode server). The bootstrap (configuration files,
genesis, joins, lifecycle, profiles) is the same for every runtime; only these answers differ.
The container runtime (:mod:`consortium.container_runtime`) runs each node in a container.

Runtimes are chosen by name (:data:`RUNTIMES`); the name is kept in the state folder's
``network.json`` so ``down`` and ``status`` find the same runtime ``up`` used.

This module must not configure nodes nor run Fabric's tools.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from consortium import processes
from consortium.binaries import FabricInstall
from consortium.config import Consortium, PeerNode

if TYPE_CHECKING:
    from consortium.nodes import NodeHandle

__all__ = ["NATIVE", "RUNTIMES", "NativeRuntime", "Runtime"]

NATIVE: Final = "native"
#: The runtimes ``dtoken network up --runtime`` accepts.
RUNTIMES: Final = (NATIVE, "containers")


class Runtime(Protocol):
    """Runs the nodes of one state folder."""

    @property
    def name(self) -> str:
        """The runtime's name (one of :data:`RUNTIMES`)."""
        ...

    def node_view(self, consortium: Consortium) -> Consortium:
        """The consortium as the nodes see each other (host names in their configuration
        and in the channel's); clients on this machine use the consortium itself."""
        ...

    def fabric_tool(self, name: str) -> str:
        """The path of a Fabric program (``peer``, ``orderer``) where the node runs."""
        ...

    def python(self) -> str:
        """The Python that runs a chaincode server where it runs."""
        ...

    def chaincode_host(self, p: PeerNode, slot: int) -> str:
        """The host a peer dials for the chaincode server in port slot ``slot``."""
        ...

    def start(self, node: NodeHandle) -> None:
        """Start the node unless it runs (idempotent); return once it is recognisable."""
        ...

    def pid(self, node: NodeHandle) -> int | None:
        """The node's process id on this machine while it runs, else None."""
        ...

    def stop(self, node: NodeHandle, *, kill: bool = False, timeout: float = 10.0) -> bool:
        """Stop the node (SIGKILL at once with ``kill``); True if it ran."""
        ...

    def rss_mb(self, node: NodeHandle) -> float | None:
        """Resident memory of the node's process in MiB (None if it is not running)."""
        ...

    def ledger_dir(self, node: NodeHandle) -> Path:
        """Where the node's ledger (its ``data/`` folder) is on this machine, for
        inspection; NodeError if this machine cannot see it."""
        ...

    def close(self, *, purge: bool = False) -> None:
        """After every node stopped: release what the runtime holds for the network (with
        ``purge`` also the ledgers it keeps outside the state folder)."""
        ...


class NativeRuntime:
    """Each node a process of this machine, started detached and tracked by its pid file."""

    name = NATIVE

    def __init__(
        self,
        fabric: Callable[[], FabricInstall],
        launcher: Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        self._fabric = fabric
        self.launcher = launcher

    def node_view(self, consortium: Consortium) -> Consortium:
        return consortium

    def fabric_tool(self, name: str) -> str:
        return str(self._fabric().tool(name))

    def python(self) -> str:
        return sys.executable

    def chaincode_host(self, p: PeerNode, slot: int) -> str:
        return p.host

    def start(self, node: NodeHandle) -> None:
        processes.start(node.spec)

    def pid(self, node: NodeHandle) -> int | None:
        return processes.running_pid(node.spec)

    def stop(self, node: NodeHandle, *, kill: bool = False, timeout: float = 10.0) -> bool:
        return processes.stop(node.spec, kill=kill, timeout=timeout)

    def rss_mb(self, node: NodeHandle) -> float | None:
        pid = self.pid(node)
        return None if pid is None else processes.rss_mb(pid)

    def ledger_dir(self, node: NodeHandle) -> Path:
        return node.home / "data"

    def close(self, *, purge: bool = False) -> None:
        """Nothing: a native node's ledger is in its folder of the state folder."""
