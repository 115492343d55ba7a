"""Test hosts: one network namespace per organization, joined by a bridge.

Each host gets a veth pair (one end in the namespace, one on the bridge) and an
address in a private /24 that exists only on this machine, inside namespaces
the test created. ``cut(name)`` takes a host's link down (a partition) and
``restore(name)`` brings it back. ``close()`` removes everything it created.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass


def available() -> str | None:
    """None if namespaces can be made here, else why not."""
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"ip netns is not usable: {probe.stderr.strip()}"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc


@dataclass(frozen=True)
class Host:
    name: str
    namespace: str
    address: str
    host_link: str  # the veth end on the bridge (root namespace)


class TestHosts:
    """A bridge in the root namespace and one namespace per named host."""

    __test__ = False

    def __init__(self, names: Sequence[str], tag: int) -> None:
        """``tag`` (0..255) keeps the names and subnet of concurrent test runs apart."""
        self.tag = tag
        self.bridge = f"dtbr{tag}"
        self.subnet = f"10.213.{tag}"
        self.hosts: dict[str, Host] = {}
        _ip("link", "add", self.bridge, "type", "bridge")
        try:
            _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for i, name in enumerate(names):
                self._add(name, f"{self.subnet}.{10 + i}")
        except Exception:
            self.close()
            raise

    def _add(self, name: str, address: str) -> None:
        ns = f"dt{self.tag}-{name}"
        outer = f"dto{self.tag}x{len(self.hosts)}"
        inner = f"dti{self.tag}x{len(self.hosts)}"
        _ip("netns", "add", ns)
        self.hosts[name] = Host(name, ns, address, outer)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("link", "set", outer, "master", self.bridge)
        _ip("link", "set", outer, "up")
        _ip("-n", ns, "addr", "add", f"{address}/24", "dev", inner)
        _ip("-n", ns, "link", "set", inner, "up")
        _ip("-n", ns, "link", "set", "lo", "up")

    def launcher(self, address: str) -> list[str]:
        for host in self.hosts.values():
            if host.address == address:
                return ["ip", "netns", "exec", host.namespace]
        raise KeyError(f"no test host has address {address}")

    def cut(self, name: str) -> None:
        """Partition a host from every other one."""
        _ip("link", "set", self.hosts[name].host_link, "down")

    def restore(self, name: str) -> None:
        _ip("link", "set", self.hosts[name].host_link, "up")

    def close(self) -> None:
        for host in self.hosts.values():
            _ip("link", "del", host.host_link, check=False)
            _ip("netns", "del", host.namespace, check=False)
        self.hosts.clear()
        _ip("link", "del", self.bridge, check=False)
