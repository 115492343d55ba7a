"""CPU per transaction of every process during a measurement window.

``Meter.open()`` and ``Meter.close()`` are the window's hooks: they read ``utime + stime`` of
every node of the network (``/proc/<pid>/stat``), and the client's own CPU time: this
Python process's ``time.process_time()`` (all its threads, gRPC's included), or for the
Node client the CPU it reports for the same window.
"""

from __future__ import annotations

import time
from typing import Any

from dtbench.cluster import Cluster
from dtbench.procstat import machine_busy_seconds

__all__ = ["Meter"]


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

    def open(self) -> None:
        self._start = self.cluster.cpu_snapshot()
        self._client = (time.process_time(), 0.0)
        self._machine = (machine_busy_seconds(), 0.0)

    def close(self) -> None:
        self._end = self.cluster.cpu_snapshot()
        self._client = (self._client[0], time.process_time())
        self._machine = (self._machine[0], machine_busy_seconds())

    def report(self, committed_tx: float, *, client_cpu_s: float | None = None) -> dict[str, Any]:
        """ms of CPU per committed transaction: per node, per role, the client, the total.

        ``client_cpu_s`` replaces this process's CPU time (an external client's own figure).
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
        }


def _r(value: float) -> float | None:
    if value != value:  # NaN: nothing committed
        return None
    return round(value, 3)
