"""Fault-injection helpers: a network of a test module's own, Raft leadership, orderer
heights, and scanning every node's log for what must never appear in one.

:func:`own_network` brings up a variant of the default consortium on ports
``DTOKEN_TEST_BASE_PORT + offset`` (faults +500, soak +600, security +700, key policies
+800, containers +900),
in the test's temporary folder, so killing its nodes disturbs no other test. On the
way out it prints the tail of every node's log if a test of the module failed, and takes
the network down (its state is kept for inspection after a failure, or always with
``DTOKEN_TEST_KEEP_STATE=1``: to read the logs of a run that passed).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from harness.network import TestNetwork, consortium_variant
from harness.payments import Client

__all__ = [
    "base_port",
    "clients_for",
    "dump_logs",
    "find_in_logs",
    "orderer_height",
    "own_network",
    "raft_leader",
]


def base_port(offset: int) -> int:
    return int(os.environ.get("DTOKEN_TEST_BASE_PORT", "7400")) + offset


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def dump_logs(net: TestNetwork, lines: int = 40) -> None:
    """Print the end of every node's log (and say which nodes are down)."""
    for node in net.nodes():
        state = "running" if node.pid() else "NOT RUNNING"
        _log(f"\n----- {node.name} [{state}] ({node.log_file}) -----\n{net.log_tail(node, lines)}")


@contextmanager
def own_network(
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    name: str,
    offset: int,
    *,
    runtime: str | None = None,
    **overrides: Any,
) -> Iterator[TestNetwork]:
    """A network for one test module (see the module docstring); ``runtime`` as
    :class:`TestNetwork`'s (default: the test run's)."""
    root = tmp_path_factory.mktemp(name)
    config = consortium_variant(
        root / "consortium.yaml", name=name, base_port=base_port(offset), **overrides
    )
    net = TestNetwork(config, root / "state", _log, runtime=runtime)
    failed_before = request.session.testsfailed
    try:
        try:
            net.up()
        except BaseException:
            dump_logs(net)
            raise
        yield net
    finally:
        failed = request.session.testsfailed > failed_before
        if failed:
            dump_logs(net)
        net.down(purge=not failed and not os.environ.get("DTOKEN_TEST_KEEP_STATE"))


def clients_for(net: TestNetwork, **kwargs: Any) -> dict[str, Client]:
    """An operator client per bank and the regulator's auditor (``"regulator"``)."""
    c = net.consortium
    out = {b.name: Client(net, b.name, "operator", **kwargs) for b in c.banks}
    if c.regulator is not None:
        out["regulator"] = Client(net, c.regulator.name, "auditor", **kwargs)
    return out


_LEADER = re.compile(r"Raft leader changed: \d+ -> (\d+) channel=(\S+) node=(\d+)")


def raft_leader(net: TestNetwork) -> str | None:
    """The orderer the running orderers last saw elected Raft leader of the channel.

    Read from the orderers' logs (``Raft leader changed: a -> b ... node=n``): each log
    names its own Raft id (``node=``) and the leader it follows.
    """
    ids: dict[int, str] = {}
    views: list[int] = []
    for node in net.nodes("orderer"):
        text = node.log_file.read_text(errors="replace") if node.log_file.exists() else ""
        seen = [m for m in _LEADER.finditer(text) if m.group(2) == net.consortium.channel]
        if not seen:
            continue
        ids[int(seen[-1].group(3))] = node.name
        if node.pid() is not None:
            views.append(int(seen[-1].group(1)))
    if not views:
        return None
    leader = max(set(views), key=views.count)
    return ids.get(leader)


def orderer_height(net: TestNetwork, orderer_name: str) -> int | None:
    """The orderer's block height of the channel (channel participation API), or None."""
    n = net.network
    o = next(o for o in net.consortium.ordering.orderers if o.name == orderer_name)
    proc = subprocess.run(
        [str(n.fabric.tool("osnadmin")), "channel", "list", "--channelID",
         net.consortium.channel, *n.admin.orderer_admin_args(o)],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    found = re.search(r'"height":\s*(\d+)', proc.stdout)
    return int(found.group(1)) if proc.returncode == 0 and found else None


def find_in_logs(net: TestNetwork, needles: Iterable[str | bytes]) -> list[str]:
    """Every (log file, needle) where a needle appears: each node's log, whole."""
    wanted = [n.encode() if isinstance(n, str) else n for n in needles]
    wanted = [w for w in wanted if w]
    hits: list[str] = []
    logs: list[Path] = [node.log_file for node in net.nodes()]
    for path in logs:
        if not path.exists():
            continue
        data = path.read_bytes()
        for w in wanted:
            if w in data:
                hits.append(f"{path}: {w[:60]!r}")
    return hits
