"""CPU per transaction of every process during a measurement window.

``Meter.open()`` and ``Meter.close()`` are the window's hooks: they read ``utime + stime`` of
every node of the network (``/proc/<pid>/stat``), and the client's own CPU time: this
Python process's ``time.process_time()`` (all its threads, gRPC's included), or for the
Node client the CPU it reports for the same window.

With the network's idle CPU (``Cluster.idle_cpu``, measured just before, with no load),
:func:`idle_subtracted` gives what the load itself cost: per node, the CPU seconds of the
window minus its idle rate (cores) times the window's length; summed over the peers and
divided by the committed transactions and by the number of peers, the *CPU per transaction
per peer*; summed over every process (plus the client, whose idle is nothing: it is the
load generator), the *CPU per transaction*. The scaling section compares the first across
network sizes: a peer's cost per transaction should not grow with the number of banks, while
the idle CPU (gossip, Raft heartbeats) grows with the number of nodes whatever the load.

Must not: start or stop anything, or know which workload ran (the caller passes the
committed transactions).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from dtbench.cluster import Cluster
from dtbench.procstat import machine_busy_seconds

__all__ = ["Meter", "idle_subtracted"]

PEER_ROLE = "peer"


class Meter:
    """CPU seconds of each process over one window, per committed transaction."""

    def __init__(self, cluster: Cluster, gateway_peer: str) -> None:
        self.cluster = cluster
        self.gateway_peer = gateway_peer
        self._roles = {name: role for name, (role, _pid) in cluster.pids().items()}
        self._start: dict[str, float] = {}
        self._end: dict[str, float] = {}
        self._client = (0.0, 0.0)
        self._machine = (0.0, 0.0)
        self._clock = (0.0, 0.0)

    def open(self) -> None:
        self._start = self.cluster.cpu_snapshot()
        self._client = (time.process_time(), 0.0)
        self._machine = (machine_busy_seconds(), 0.0)
        self._clock = (time.monotonic(), 0.0)

    def close(self) -> None:
        self._end = self.cluster.cpu_snapshot()
        self._client = (self._client[0], time.process_time())
        self._machine = (self._machine[0], machine_busy_seconds())
        self._clock = (self._clock[0], time.monotonic())

    @property
    def window_s(self) -> float:
        """Seconds between :meth:`open` and :meth:`close`."""
        return self._clock[1] - self._clock[0]

    def busy_s(self) -> dict[str, float]:
        """CPU seconds each node used in the window (nodes seen at both ends)."""
        return {name: end - self._start[name]
                for name, end in self._end.items() if name in self._start}  # fmt: skip

    def report(
        self,
        committed_tx: float,
        *,
        client_cpu_s: float | None = None,
        idle_cores: Mapping[str, float] | None = None,
    ) -> dict[str, Any]:
        """ms of CPU per committed transaction: per node, per role, the client, the total.

        ``client_cpu_s`` replaces this process's CPU time (an external client's own figure).
        With ``idle_cores`` (node -> cores, ``Cluster.idle_cpu()["by_node"]``), also the
        figures with the idle CPU subtracted (:func:`idle_subtracted`), as ``"idle_subtracted"``.
        """
        tx = committed_tx if committed_tx > 0 else float("nan")
        by_node: dict[str, float] = {}
        for name, end in self._end.items():
            start = self._start.get(name)
            if start is not None:
                by_node[name] = (end - start) * 1000.0 / tx
        client_s = client_cpu_s if client_cpu_s is not None else self._client[1] - self._client[0]
        by_role: dict[str, float] = {}
        for name, value in by_node.items():
            role = self._roles.get(name, "?")
            if role == "peer":
                role = "peer (gateway)" if name == self.gateway_peer else "peers (others)"
            by_role[role] = by_role.get(role, 0.0) + value
        by_role["client"] = client_s * 1000.0 / tx
        network_s = sum(self._end.get(k, 0.0) - v for k, v in self._start.items())
        machine_s = self._machine[1] - self._machine[0]
        extra: dict[str, Any] = {}
        if idle_cores is not None:
            busy = self.busy_s()
            roles = {name: self._roles.get(name, "?") for name in busy}
            extra["idle_subtracted"] = idle_subtracted(
                busy, roles, idle_cores, window_s=self.window_s,
                committed_tx=committed_tx, client_s=client_s,
            )  # fmt: skip
        return {
            "cpu_ms_per_tx": {k: _r(v) for k, v in sorted(by_role.items())},
            "cpu_ms_per_tx_by_process": {k: _r(v) for k, v in sorted(by_node.items())},
            "cpu_ms_per_tx_total": _r(sum(by_role.values())),
            "cpu_s": {
                "network": _r(network_s),
                "client": _r(client_s),
                # everything else the machine ran meanwhile (other users' work): noise
                "others": _r(max(machine_s - network_s - client_s, 0.0)),
                "machine": _r(machine_s),
            },
            **extra,
        }


def idle_subtracted(
    busy_s: Mapping[str, float],
    roles: Mapping[str, str],
    idle_cores: Mapping[str, float],
    *,
    window_s: float,
    committed_tx: float,
    client_s: float = 0.0,
) -> dict[str, Any]:
    """What a window's load cost, with the network's idle CPU taken away.

    ``busy_s``: CPU seconds each node used in the window; ``roles``: each node's role
    (``peer``, ``orderer``, ``chaincode:<name>``); ``idle_cores``: each node's CPU with no
    load, in cores (CPU seconds per second); ``window_s``: the window's length;
    ``committed_tx``: transactions committed in it; ``client_s``: the load generator's CPU
    seconds (counted whole: its idle is nothing).

    * ``ms_per_tx_per_peer`` = (sum over peers of busy - sum over peers of idle * window_s)
      / committed_tx / number of peers, in ms;
    * ``ms_per_tx`` = (sum over every node of busy - sum of idle * window_s + client_s)
      / committed_tx, in ms.

    A node without an idle figure (started after it was measured) counts with idle 0 and is
    named in ``nodes_without_idle``. With nothing committed, the per-transaction figures are
    ``None``. A result below zero means the idle measurement was busier than the window
    (noise); it is reported as it is, never clamped.
    """
    if not (window_s > 0 and math.isfinite(window_s)):
        raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
    if committed_tx < 0 or not math.isfinite(committed_tx):
        raise ValueError(f"committed_tx must be a finite count >= 0, got {committed_tx!r}")
    for what, values in (("busy_s", busy_s), ("idle_cores", idle_cores)):
        bad = sorted(k for k, v in values.items() if v < 0 or not math.isfinite(v))
        if bad:
            raise ValueError(f"{what} must be finite and >= 0; not for {', '.join(bad)}")
    unknown = sorted(set(busy_s) - set(roles))
    if unknown:
        raise ValueError(f"busy_s names nodes without a role: {', '.join(unknown)}")
    peers = sorted(n for n in busy_s if roles[n] == PEER_ROLE)
    if not peers:
        raise ValueError("busy_s has no peer: CPU per transaction per peer needs at least one")
    missing = sorted(n for n in busy_s if n not in idle_cores)

    def idle_s(nodes: list[str]) -> float:
        return sum(idle_cores.get(n, 0.0) for n in nodes) * window_s

    everyone = sorted(busy_s)
    peer_busy, peer_idle = sum(busy_s[n] for n in peers), idle_s(peers)
    all_busy, all_idle = sum(busy_s.values()), idle_s(everyone)

    def per_tx(seconds: float, divisor: int = 1) -> float | None:
        if committed_tx == 0:
            return None
        return round(seconds * 1000.0 / committed_tx / divisor, 4)

    return {
        "window_s": round(window_s, 3),
        "committed_tx": committed_tx,
        "peers": len(peers),
        "peer_busy_s": round(peer_busy, 3),
        "peer_idle_s": round(peer_idle, 3),
        "all_busy_s": round(all_busy, 3),
        "all_idle_s": round(all_idle, 3),
        "client_s": round(client_s, 3),
        "ms_per_tx_per_peer": per_tx(peer_busy - peer_idle, len(peers)),
        "ms_per_tx": per_tx(all_busy - all_idle + client_s),
        "idle_share_of_peers": round(peer_idle / peer_busy, 4) if peer_busy > 0 else None,
        "nodes_without_idle": missing,
    }


def _r(value: float) -> float | None:
    if value != value:  # NaN: nothing committed
        return None
    return round(value, 3)
