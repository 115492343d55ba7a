"""The container runtime: every orderer, peer and chaincode server in a container of its own,
driven through the Docker Engine API (the ``docker`` package), so a Docker Engine and a
Podman service (``podman system service``) serve alike; ``DOCKER_HOST`` says which.

Per network (one state folder): a user-defined bridge network ``dtoken-<name>-<hash>`` whose
DNS answers each node's host name from the consortium file (``peer0.hkbank.dtoken.example``,
``orderer0.ordering.dtoken.example``, ``chaincode.peer0.hkbank.dtoken.example``); per node a
container ``<network>.<node>`` on it, publishing its ports on the host the consortium file
gives (clients on this machine use them: the TLS certificates name both the host and the
host name); per orderer and peer a named volume ``<network>.<node>.ledger`` mounted over its
``data/`` folder, so ``down`` then ``up`` keeps the ledger (``down --purge`` removes them).

The containers see the state folder at the same path as this machine (bind mount), so the
node configuration, crypto material and chaincode packages the native bootstrap writes serve
unchanged; each node's output goes to its ``node.log`` there, as a native process's does.
Images: :mod:`consortium.images` (built locally, tagged by content, no registry).

This module starts, inspects and stops containers, and makes and removes the network's
container network and volumes; it must not configure nodes nor run Fabric's tools.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, cast

import docker
import docker.errors
from docker.models.containers import Container

from consortium import images, processes
from consortium.binaries import FabricInstall
from consortium.config import Consortium, PeerNode
from consortium.deploy.model import Target, container_view
from consortium.errors import NetworkError, NodeError
from consortium.layout import StateLayout
from consortium.nodeconfig import BUILDER_DIR
from consortium.nodes import NodeHandle, chaincode_alias

__all__ = ["CONTAINERS", "ContainerRuntime", "EngineError", "engine_client"]

CONTAINERS: Final = "containers"
_LABEL: Final = "org.dtoken.network"


class EngineError(NetworkError):
    """No container engine answers, or it refused a request (names the engine and why)."""


def engine_client() -> docker.DockerClient:
    """A client of the engine ``DOCKER_HOST`` names (the Docker SDK's defaults otherwise);
    EngineError, saying how to start one, if it does not answer."""
    where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    how = (
        'start one (in a checkout, `eval "$(scripts/container-engine start)"` runs Podman\'s '
        "service and sets DOCKER_HOST; see docs/deployment.md)"
    )
    if where.startswith("unix://") and not Path(where.removeprefix("unix://")).exists():
        raise EngineError(f"no container engine answers at {where}: no such socket; {how}")
    # API 1.41: what a Podman 4 service speaks; a Docker Engine serves it too.
    client = docker.from_env(timeout=120, version="1.41")
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        client.close()
        raise EngineError(f"no container engine answers at {where}: {exc}; {how}") from exc
    return client


def _publish_ip(host: str) -> str:
    """Publish on loopback when the consortium file keeps the node on this machine."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        return "127.0.0.1" if ipaddress.ip_address(host).is_loopback else "0.0.0.0"  # noqa: S104
    except ValueError:
        return "0.0.0.0"  # noqa: S104 - a host name: the node is meant to be reached


class ContainerRuntime:
    """Runs one state folder's nodes in containers (see the module docstring)."""

    name = CONTAINERS

    def __init__(
        self,
        consortium: Consortium,
        layout: StateLayout,
        fabric: Callable[[], FabricInstall],
        *,
        extra_mounts: Sequence[Path] = (),
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.consortium = consortium
        self.layout = layout
        self._fabric = fabric
        self.say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
        digest = hashlib.sha256(str(layout.state_dir).encode()).hexdigest()[:8]
        safe = re.sub(r"[^a-zA-Z0-9_.-]", "-", consortium.name)
        #: The container network's name; containers and volumes are named after it.
        self.network_name = f"dtoken-{safe}-{digest}"
        self.extra_mounts = tuple(dict.fromkeys(p.resolve() for p in extra_mounts))
        self._client: docker.DockerClient | None = None
        self._image: str | None = None

    # ------------------------------------------------------------------ what nodes see

    def node_view(self, consortium: Consortium) -> Consortium:
        return container_view(consortium, Target.COMPOSE)

    def fabric_tool(self, name: str) -> str:
        return f"{images.FABRIC_BIN}/{name}"

    def python(self) -> str:
        return images.NODE_PYTHON

    def chaincode_host(self, p: PeerNode, slot: int) -> str:
        return chaincode_alias(p, slot)

    # ------------------------------------------------------------------ engine

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = engine_client()
        return self._client

    def image(self) -> str:
        """The node image (built on first use, then found by its content tag)."""
        if self._image is None:
            self._image = images.ensure_node_image(self.client, self._fabric(), self.say)
        return self._image

    def container_name(self, node: NodeHandle) -> str:
        return f"{self.network_name}.{node.name}"

    def volume_name(self, node: NodeHandle) -> str:
        return f"{self.network_name}.{node.name}.ledger"

    def _container(self, node: NodeHandle) -> Container | None:
        try:
            return self.client.containers.get(self.container_name(node))
        except docker.errors.NotFound:
            return None

    def _ensure_network(self) -> None:
        if self.client.networks.list(names=[self.network_name]):
            return
        self.client.networks.create(
            self.network_name, driver="bridge", labels={_LABEL: self.network_name}
        )

    # ------------------------------------------------------------------ one node

    def start(self, node: NodeHandle) -> None:
        existing = self._container(node)
        if existing is not None:
            if existing.status == "running":
                return
            existing.remove(force=True)  # dead: a new container, same volume and folder
        image = self.image()
        self._ensure_network()
        node.home.mkdir(parents=True, exist_ok=True)
        with open(node.log_file, "ab") as log:
            log.write(
                f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {node.name} "
                f"(container {self.container_name(node)})\n".encode()
            )
        state = str(self.layout.state_dir)
        volumes: dict[str, dict[str, str]] = {state: {"bind": state, "mode": "rw"}}
        for path in (BUILDER_DIR, *self.extra_mounts):
            volumes[str(path)] = {"bind": str(path), "mode": "ro"}
        if node.ledger:
            volumes[self.volume_name(node)] = {"bind": str(node.home / "data"), "mode": "rw"}
        host = node.endpoint.rsplit(":", 1)[0]
        ip = _publish_ip(host)
        endpoint = self.client.api.create_endpoint_config(aliases=list(node.aliases))
        labels = {
            _LABEL: self.network_name,
            "org.dtoken.node": node.name,
            "org.dtoken.kind": node.kind,
        }
        try:
            self.client.containers.run(
                image,
                command=[str(a) for a in node.spec.argv],
                entrypoint=list(images.ENTRYPOINT),
                environment={**node.spec.env, "DTOKEN_NODE_LOG": str(node.log_file)},
                name=self.container_name(node),
                hostname=node.aliases[0] if node.aliases else None,
                network=self.network_name,
                networking_config={self.network_name: endpoint},
                ports={f"{port}/tcp": (ip, port) for port in node.ports},
                volumes=volumes,
                working_dir=str(node.spec.cwd or node.home),
                labels=labels,
                detach=True,
            )
        except docker.errors.APIError as exc:
            raise NodeError(f"{node.name}: the engine refused its container: {exc}") from exc

    def pid(self, node: NodeHandle) -> int | None:
        container = self._container(node)
        if container is None or container.status != "running":
            return None
        pid = container.attrs.get("State", {}).get("Pid")
        return int(pid) if pid else None

    def stop(self, node: NodeHandle, *, kill: bool = False, timeout: float = 10.0) -> bool:
        container = self._container(node)
        if container is None:
            return False
        ran = container.status == "running"
        with contextlib.suppress(docker.errors.APIError):
            if kill and ran:
                container.kill(signal="SIGKILL")
            elif ran:
                container.stop(timeout=max(1, int(timeout)))
        if kill:
            # A crash leaves the dead container (and its logs) until the node is restarted.
            deadline = time.monotonic() + timeout
            while self.pid(node) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
        else:
            container.remove(force=True)
        return ran

    def rss_mb(self, node: NodeHandle) -> float | None:
        """From /proc when the engine runs on this machine, else from the engine's stats."""
        pid = self.pid(node)
        if pid is None:
            return None
        local = processes.rss_mb(pid)
        if local is not None:
            return local
        container = self._container(node)
        stats = cast("dict[str, Any]", container.stats(stream=False)) if container else {}
        usage = stats.get("memory_stats", {}).get("usage")
        return round(int(usage) / 2**20, 1) if usage else None

    def ledger_dir(self, node: NodeHandle) -> Path:
        """The mount point of the node's ledger volume, when the engine runs here."""
        if not node.ledger:
            raise NodeError(f"{node.name} keeps no ledger")
        try:
            volume = self.client.volumes.get(self.volume_name(node))
        except docker.errors.NotFound as exc:
            raise NodeError(f"{node.name}: no ledger volume (it never started)") from exc
        mountpoint = Path(str(volume.attrs.get("Mountpoint", "")))
        if not mountpoint.is_dir():
            raise NodeError(
                f"{node.name}: its ledger volume {volume.name} is on the engine's machine "
                f"({mountpoint}), not visible here"
            )
        return mountpoint

    # ------------------------------------------------------------------ the whole network

    def close(self, *, purge: bool = False) -> None:
        """Remove the network's remaining (dead) containers and its container network;
        with ``purge`` also its ledger volumes."""
        if self._client is None:
            try:
                self._client = engine_client()
            except EngineError:
                return  # no engine: nothing of ours can be running
        client = self.client
        for container in client.containers.list(
            all=True, filters={"label": f"{_LABEL}={self.network_name}"}
        ):
            container.remove(force=True)
        for net in client.networks.list(names=[self.network_name]):
            with contextlib.suppress(docker.errors.APIError):
                net.remove()
        if purge:
            for volume in client.volumes.list():
                if volume.name.startswith(f"{self.network_name}."):
                    volume.remove(force=True)
