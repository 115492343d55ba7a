"""Fabric's command-line tools acting as an organization's admin.

Owns how ``peer``, ``osnadmin`` and ``configtxgen`` are invoked: the admin environment
(``CORE_PEER_*``), the TLS flags to reach an orderer or endorsing peers, running a tool
(:class:`consortium.errors.FabricCommandError` on failure, with its output) and retrying
while the ordering service elects a leader or gossip spreads the channel membership;
plus ``invoke``, a transaction submitted by ``peer chaincode invoke``.

This module must not decide *what* to run (that is :mod:`consortium.joins` and
:mod:`consortium.lifecycle`) nor start or stop nodes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from consortium.binaries import FabricInstall
from consortium.config import Consortium, OrdererNode, Org, PeerNode
from consortium.errors import FabricCommandError
from consortium.layout import StateLayout
from consortium.nodes import NodeSet

__all__ = ["FabricAdmin", "parallel", "run_async"]

T = TypeVar("T")

#: Output of a failed command that means "try again shortly".
_TRANSIENT = (
    "SERVICE_UNAVAILABLE",
    "no Raft leader",
    "failed to connect",
    "connection refused",
    "chaincode registration failed",
    "could not launch chaincode",
    "error sending",
    "UNAVAILABLE",
)


def run_async(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, on a loop of its own (in a
    thread of its own when the caller already runs a loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro()).result()


def parallel(fn: Callable[[Any], T], items: Sequence[Any]) -> list[T]:
    """``[fn(i) for i in items]``, on up to 8 threads when there is more than one item."""
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        return list(pool.map(fn, items))


class FabricAdmin:
    """Runs Fabric's tools for the organizations of one consortium."""

    def __init__(
        self,
        consortium: Consortium,
        layout: StateLayout,
        fabric: Callable[[], FabricInstall],
        nodes: NodeSet,
    ) -> None:
        self.consortium = consortium
        self.layout = layout
        self.fabric = fabric
        self.nodes = nodes

    def tool(self, name: str) -> str:
        """The path of one of the pinned Fabric binaries (``peer``, ``osnadmin``, ...)."""
        return str(self.fabric().tool(name))

    # ------------------------------------------------------------------ flags

    def admin_env(self, org: Org, peer: PeerNode | None = None) -> dict[str, str]:
        """Environment for Fabric's ``peer`` CLI acting as the org's admin."""
        peer = peer or org.peers[0]
        admin = self.layout.org_crypto(org).user("Admin")
        return {
            "FABRIC_CFG_PATH": str(self.fabric().config_dir),
            "FABRIC_LOGGING_SPEC": "warning",
            "CORE_PEER_LOCALMSPID": org.msp_id,
            "CORE_PEER_MSPCONFIGPATH": str(admin.msp_dir),
            "CORE_PEER_ADDRESS": peer.endpoint,
            "CORE_PEER_TLS_ENABLED": "true",
            "CORE_PEER_TLS_ROOTCERT_FILE": str(self.layout.tlsca(org.name)),
        }

    def orderer_args(self) -> list[str]:
        """``peer`` CLI flags to reach the first live orderer over TLS."""
        orderers = self.consortium.ordering.orderers
        o = orderers[0]
        for cand in orderers:
            if self.nodes.orderer(cand).pid() is not None:
                o = cand
                break
        ca = self.layout.tlsca(self.consortium.orderer_org.name)
        return ["-o", o.endpoint, "--tls", "--cafile", str(ca)]

    def orderer_admin_args(self, o: OrdererNode) -> list[str]:
        """``osnadmin`` flags to reach orderer ``o``'s admin endpoint (mutual TLS)."""
        admin = self.layout.org_crypto(self.consortium.orderer_org).user("Admin")
        return [
            "-o",
            o.admin_endpoint,
            "--ca-file",
            str(admin.tls_ca),
            "--client-cert",
            str(admin.tls_cert),
            "--client-key",
            str(admin.tls_key),
        ]

    def peer_targets(self, orgs: Iterable[Org]) -> list[str]:
        """``--peerAddresses`` flags naming each organization's first peer."""
        args: list[str] = []
        for org in orgs:
            ca = self.layout.tlsca(org.name)
            args += ["--peerAddresses", org.peers[0].endpoint, "--tlsRootCertFiles", str(ca)]
        return args

    # ------------------------------------------------------------------ running

    def run(self, cmd: Sequence[str], *, env: dict[str, str]) -> str:
        """Run a tool in the state folder; its stdout and stderr, or FabricCommandError."""
        proc = subprocess.run(
            list(cmd),
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            check=False,
            cwd=self.layout.state_dir,
        )
        if proc.returncode != 0:
            raise FabricCommandError(" ".join(cmd[:4]), proc.returncode, proc.stdout + proc.stderr)
        return proc.stdout + proc.stderr

    def run_retrying(self, cmd: Sequence[str], *, env: dict[str, str], attempts: int = 20) -> str:
        """Run a command that talks to the orderer, retrying while Raft elects a leader
        or gossip has not yet spread the channel membership."""
        for attempt in range(attempts):
            try:
                return self.run(cmd, env=env)
            except FabricCommandError as exc:
                if attempt == attempts - 1 or not any(t in exc.output for t in _TRANSIENT):
                    raise
                time.sleep(0.25 * (attempt + 1))
        raise AssertionError("unreachable")

    def invoke(
        self, org: Org, chaincode: str, args: Sequence[str], endorsers: Sequence[Org]
    ) -> str:
        """Submit a transaction with Fabric's own ``peer chaincode invoke`` (admin tasks)."""
        ctor = json.dumps({"Args": list(args)})
        return self.run_retrying(
            [
                self.tool("peer"), "chaincode", "invoke", *self.orderer_args(),
                "-C", self.consortium.channel, "-n", chaincode, "-c", ctor,
                *self.peer_targets(endorsers), "--waitForEvent",
            ],
            env=self.admin_env(org),
        )  # fmt: skip
