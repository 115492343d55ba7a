"""What chaincodes a network runs, and their chaincode-as-a-service packages.

Owns the :class:`Deployment` record (slot 0 is the consortium's own chaincode, the
others are recorded in ``chaincodes.json`` by ``Network.deploy``), each organization's
ccaas package (a deterministic ``.tar.gz``, so its package id is stable across runs
and across deployment targets) and the registry ``init_network`` receives.

This module reads and writes files of the state folder only: it must not run Fabric's
tools, start processes or talk to a node (that is :mod:`consortium.lifecycle`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consortium import channel as channel_cfg
from consortium.config import Consortium, NamespaceLayout, Org
from consortium.errors import NetworkError
from consortium.layout import StateLayout

__all__ = [
    "LAYOUT_ENV",
    "MAX_CHAINCODES",
    "REGISTRY_PIN_ENV",
    "STORAGE_MODULE",
    "ChaincodeCatalog",
    "Deployment",
    "registry",
    "registry_argument",
    "registry_pin",
]

MAX_CHAINCODES = 7  # a peer's port slot has room for 7 chaincode servers (+3 .. +9)
#: The chaincode server's setting that pins the ``init_network`` argument (read by
#: ``deposit_token.config.ServerSettings``; this package does not import the chaincode).
REGISTRY_PIN_ENV = "DTOKEN_REGISTRY_SHA256"
#: The chaincode server's switch to the namespace layout (``deposit_token.config.ENV_LAYOUT``).
LAYOUT_ENV = "DTOKEN_NAMESPACE_LAYOUT"
#: The pair storage chaincode every peer serves under the namespace layout (slot 1).
STORAGE_MODULE = "deposit_token.storage:chaincode"


@dataclass(frozen=True)
class Deployment:
    """A chaincode the network runs as a service: one server per peer.

    ``slot`` 0 is the consortium's own chaincode; its servers listen on the
    peer's ``chaincode_server_port``, slot *n* on that port + *n*.
    """

    name: str
    version: str
    module: str
    slot: int
    policy: str
    collections_json: str | None
    init_function: str | None
    env_json: str | None = None  # extra environment for its servers (JSON object)
    argv_json: str | None = None  # a server command of another language (JSON list)


def registry(consortium: Consortium) -> dict[str, Any]:
    """The bootstrap data the chaincode's ``init_network`` receives."""
    return {
        "banks": [
            {"name": b.name, "msp_id": b.msp_id, "currencies": list(b.currencies)}
            for b in consortium.banks
        ],
        "regulator_msp_id": consortium.regulator.msp_id if consortium.regulator else None,
        "currencies": dict(consortium.currencies),
    }


def registry_argument(consortium: Consortium) -> str:
    """The exact ``init_network`` argument: :func:`registry` as canonical JSON (sorted keys,
    no spaces, UTF-8). Every invoke of ``init_network`` and every pin use this one function,
    so the bytes a server hashes are the bytes its operator pinned."""
    return json.dumps(registry(consortium), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def registry_pin(consortium: Consortium) -> str:
    """What each organization's chaincode server is configured with (:data:`REGISTRY_PIN_ENV`):
    the SHA-256, in hex, of the UTF-8 bytes of :func:`registry_argument`."""
    return hashlib.sha256(registry_argument(consortium).encode("utf-8")).hexdigest()


class ChaincodeCatalog:
    """The deployments of one state folder and their packages."""

    def __init__(self, consortium: Consortium, layout: StateLayout) -> None:
        self.consortium = consortium
        self.layout = layout

    @property
    def namespaced(self) -> bool:
        """Whether the consortium uses the namespace layout (``consortium.namespaces``)."""
        return self.consortium.chaincode.layout is NamespaceLayout.NAMESPACES

    def deployments(self) -> list[Deployment]:
        """The consortium's chaincode (slot 0), under the namespace layout the pair storage
        (slot 1), then any deployed with ``deploy``.

        Under the layout, slots 0 and 1 are *packages* and their servers: the chaincode
        definitions they serve are ``consortium.namespaces.definitions``, and their own
        ``policy`` and ``collections_json`` are unused."""
        own = self._own()
        names = {d.name for d in own}
        # A state folder written before the fix of declare() may record the pair storage
        # among the extras: it is the consortium's own, listed once.
        return [*own, *(d for d in self._extras() if d.name not in names)]

    def _own(self) -> list[Deployment]:
        """The consortium's own deployments: its chaincode, and the pair storage under the
        layout (never recorded in ``chaincodes.json``)."""
        c = self.consortium
        main = Deployment(
            name=c.chaincode.name,
            version=c.chaincode.version,
            module=c.chaincode.module,
            slot=0,
            policy=channel_cfg.chaincode_policy(c),
            collections_json=None if self.namespaced else channel_cfg.collections_json(c),
            init_function="init_network",
            env_json=json.dumps({LAYOUT_ENV: "true"}) if self.namespaced else None,
        )
        own = [main]
        if self.namespaced:
            own.append(Deployment(
                name=f"{c.chaincode.name}-storage",
                version=c.chaincode.version,
                module=STORAGE_MODULE,
                slot=1,
                policy=channel_cfg.chaincode_policy(c),
                collections_json=None,
                init_function=None,
            ))
        return own

    def _extras(self) -> list[Deployment]:
        """The chaincodes recorded by :meth:`declare` (``chaincodes.json``), in order."""
        extra_file = self.layout.chaincodes_file
        if not extra_file.exists():
            return []
        return [Deployment(**d) for d in json.loads(extra_file.read_text())]

    def storage(self) -> Deployment:
        """The pair storage package (namespace layout only)."""
        if not self.namespaced:
            raise NetworkError("the pair storage exists under the namespace layout only")
        return self.deployments()[1]

    def main(self) -> Deployment:
        """The consortium's own chaincode (slot 0)."""
        return self.deployments()[0]

    def deployment(self, name: str) -> Deployment:
        for d in self.deployments():
            if d.name == name:
                return d
        raise KeyError(f"no chaincode named {name!r} is deployed on {self.consortium.name}")

    def declare(
        self,
        name: str,
        module: str,
        *,
        policy: str | None = None,
        collections: list[dict[str, Any]] | None = None,
        version: str = "1.0",
        env: dict[str, str] | None = None,
        argv: list[str] | None = None,
    ) -> Deployment:
        """The deployment named ``name``: the recorded one, else a new one in the next
        free slot, recorded in ``chaincodes.json``."""
        existing = {d.name: d for d in self.deployments()}
        if name in existing:
            return existing[name]
        slot = len(existing)
        if slot > MAX_CHAINCODES - 1:
            raise NetworkError(f"at most {MAX_CHAINCODES} chaincodes per network")
        d = Deployment(
            name=name,
            version=version,
            module=module,
            slot=slot,
            policy=policy or channel_cfg.chaincode_policy(self.consortium),
            collections_json=json.dumps(collections) if collections else None,
            init_function=None,
            env_json=json.dumps(env) if env else None,
            argv_json=json.dumps(argv) if argv else None,
        )
        # Only what declare() added: the consortium's own deployments (the chaincode, and the
        # pair storage under the layout) are never recorded, or they would be listed twice.
        own = {x.name for x in self._own()}
        extras = [x for x in self._extras() if x.name not in own] + [d]
        self.layout.chaincodes_file.write_text(json.dumps([x.__dict__ for x in extras], indent=2))
        return d

    # ------------------------------------------------------------------ packages

    def package_label(self, org: Org, d: Deployment) -> str:
        return f"{d.name}_{org.name}_{d.version}"

    def package_path(self, org: Org, d: Deployment) -> Path:
        return self.layout.package_dir(org) / f"{self.package_label(org, d)}.tar.gz"

    def package_id(self, org: Org, d: Deployment | None = None) -> str:
        """``<label>:<sha256 of the package>``; writes the package the first time."""
        d = d or self.main()
        data = self.package_bytes(org, d)
        return f"{self.package_label(org, d)}:{hashlib.sha256(data).hexdigest()}"

    def package_bytes(self, org: Org, d: Deployment) -> bytes:
        """The package of ``org`` for ``d``: read it, or make and write it once."""
        path = self.package_path(org, d)
        if path.exists():
            return path.read_bytes()
        oc = self.layout.org_crypto(org)
        client_dir = oc.org_dir / "servers" / "chaincode-client"
        connection = {
            # Each peer expands this from its CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG,
            # so one package per organization serves all of its peers.
            "address": "{{.cc" + str(d.slot) + "}}",
            "dial_timeout": "10s",
            "tls_required": True,
            "client_auth_required": True,
            "client_key": (client_dir / "server.key").read_text(),
            "client_cert": (client_dir / "server.crt").read_text(),
            "root_cert": oc.tlsca_cert.read_text(),
        }
        code = _deterministic_tgz({"connection.json": json.dumps(connection, indent=2).encode()})
        metadata = json.dumps({"type": "ccaas", "label": self.package_label(org, d)}).encode()
        package = _deterministic_tgz({"code.tar.gz": code, "metadata.json": metadata})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(package)
        return package


def _deterministic_tgz(files: dict[str, bytes]) -> bytes:
    """A .tar.gz whose bytes depend only on the files (so package ids are stable)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue(), mtime=0)
