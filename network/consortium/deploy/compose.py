"""The Docker Compose deployment: ``compose.yaml`` and the files beside it.

One service per orderer, peer and chaincode server, named after the nodes, each
publishing the port its node has in the config's port plan; a named volume per
orderer and peer for its ledger; the one-shot ``bootstrap`` service. :func:`compose`
returns the document, :func:`write_compose` prepares the folder and writes it.

This module must not start containers.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import yaml

from consortium import channel as channel_cfg
from consortium.config import Consortium
from consortium.deploy.bootstrap import bootstrap_script
from consortium.deploy.folder import main_deployment, native_view, prepare, tls_roots, write_text
from consortium.deploy.model import (
    BOOTSTRAP_DIR,
    CHANNEL_DIR,
    CRYPTO_DIR,
    LEDGER_DIR,
    PACKAGES_DIR,
    WORK_DIR,
    FabricImages,
    Target,
    container_view,
    default_chaincode_image,
    header,
)
from consortium.deploy.workloads import workloads
from consortium.errors import NetworkError

__all__ = ["compose", "write_compose"]


def _publish_ip(host: str) -> str:
    """Publish on loopback when the config keeps the node on this machine, else everywhere."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        return "127.0.0.1" if ipaddress.ip_address(host).is_loopback else "0.0.0.0"  # noqa: S104
    except ValueError:
        return "0.0.0.0"  # noqa: S104 - a host name: the node is meant to be reached


def _rel(path: Path, start: Path) -> str:
    rel = Path(os.path.relpath(path, start)).as_posix()
    return rel if rel.startswith("../") else f"./{rel}"


def _tcp_probe_test(kind: str, port: int) -> list[str]:
    if kind == "chaincode":  # python:3.11-slim has no bash /dev/tcp guarantee; use Python
        code = f"import socket; socket.create_connection(('127.0.0.1', {port}), 2).close()"
        return ["CMD", "python", "-c", code]
    return ["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{port}"]  # Ubuntu-based images


def compose(
    c: Consortium,
    crypto_dir: Path,
    *,
    chaincode_image: str | None = None,
    source_dir: Path = Path(),
    fabric_images: FabricImages | None = None,
) -> dict[str, Any]:
    """The Compose document of the consortium; ``compose.yaml`` lives in ``crypto_dir.parent``.

    One service per orderer, peer and chaincode server, named after the nodes; a named
    volume per orderer and peer for its ledger; the one-shot ``bootstrap`` service. Host
    paths are relative to the deployment folder. ``source_dir`` is the repository the
    chaincode image is built from (the build context; default: the current directory). The
    folder must be prepared (:func:`~consortium.deploy.folder.prepare`); ``channel/`` and
    ``bootstrap.sh`` are written by :func:`write_compose`. ``fabric_images``: the Fabric
    images (default: Fabric's official ones).
    """
    fabric_images = fabric_images or FabricImages()
    net = native_view(c, crypto_dir)
    folder = net.state_dir
    image = chaincode_image or default_chaincode_image(c)
    services: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    build = {
        "context": _rel(source_dir.resolve(), folder),
        "dockerfile": os.path.relpath(folder / "image" / "Dockerfile", source_dir.resolve()),
    }
    for w in workloads(c, net, Target.COMPOSE, image, fabric_images):
        binds: list[dict[str, Any]] = [
            {
                "type": "bind",
                "source": f"./{m.source.as_posix()}",
                "target": f"{m.target}/{m.file}" if m.file else m.target,
                "read_only": True,
            }
            for m in w.mounts
        ]
        if w.ledger:
            volumes[w.name] = {}
            binds.append({"type": "volume", "source": w.name, "target": LEDGER_DIR})
        service: dict[str, Any] = {"image": w.image}
        if w.kind == "chaincode":
            service["build"] = dict(build)
        service["hostname"] = w.name
        if w.command:
            service["command"] = list(w.command)
        service["environment"] = dict(w.env)
        ip = _publish_ip(w.bind_host)
        service["ports"] = [
            {"target": port, "published": str(port), "host_ip": ip, "protocol": "tcp"}
            for _name, port in w.ports
        ]
        service["volumes"] = binds
        service["healthcheck"] = {
            "test": _tcp_probe_test(w.kind, w.probe_port),
            "interval": "2s",
            "timeout": "2s",
            "retries": 90,
        }
        service["restart"] = "unless-stopped"
        services[w.name] = service

    def bind(source: str, target: str) -> dict[str, Any]:
        return {"type": "bind", "source": source, "target": target, "read_only": True}

    volumes["bootstrap"] = {}
    services["bootstrap"] = {
        "image": fabric_images.tools,
        "command": ["bash", f"{BOOTSTRAP_DIR}/bootstrap.sh"],
        "depends_on": {name: {"condition": "service_healthy"} for name in services},
        "volumes": [
            bind("./crypto", CRYPTO_DIR),
            bind("./channel", CHANNEL_DIR),
            bind("./chaincode", PACKAGES_DIR),
            bind("./bootstrap.sh", f"{BOOTSTRAP_DIR}/bootstrap.sh"),
            {"type": "volume", "source": "bootstrap", "target": WORK_DIR},
        ],
        "restart": "no",
    }
    return {"name": c.name, "services": services, "volumes": volumes}


def write_compose(
    c: Consortium,
    folder: Path,
    *,
    chaincode_image: str | None = None,
    source_dir: Path = Path(),
    fabric_images: FabricImages | None = None,
) -> Path:
    """Prepare ``folder`` and write ``compose.yaml``, ``bootstrap.sh`` and ``channel/``.

    ``channel/`` holds the genesis inputs with the Compose host names (``configtx.yaml``,
    whose crypto paths are the bootstrap container's), the collections JSON and the
    peers' TLS root bundle. Returns the path of ``compose.yaml``.
    """
    if not (source_dir / "pyproject.toml").is_file():
        raise NetworkError(
            f"{source_dir.resolve()}: not a checkout of this repository (no pyproject.toml); "
            f"the chaincode image is built from it: run from the repository's root"
        )
    net = prepare(c, folder)
    folder = net.state_dir
    crypto_dir = folder / "crypto"
    view = container_view(c, Target.COMPOSE)
    channel_dir = folder / "channel"
    channel_cfg.write_configtx(view, Path(CRYPTO_DIR), channel_dir)
    d = main_deployment(net)
    write_text(channel_dir / f"collections-{d.name}.json", channel_cfg.collections_json(c))
    write_text(channel_dir / "tls-roots.pem", tls_roots(c, crypto_dir))
    write_text(folder / "bootstrap.sh", bootstrap_script(c, crypto_dir, Target.COMPOSE), 0o755)
    doc = compose(
        c, crypto_dir, chaincode_image=chaincode_image, source_dir=source_dir,
        fabric_images=fabric_images,
    )  # fmt: skip
    path = folder / "compose.yaml"
    write_text(path, header(c, "compose") + yaml.safe_dump(doc, sort_keys=False, width=120))
    return path
