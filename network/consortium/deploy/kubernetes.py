"""The Kubernetes deployment: ``kubernetes.yaml``, every manifest in the order to apply.

A Namespace; per node a Service, Secrets holding its MSP and TLS files, and a
StatefulSet with a ledger PVC (orderers, peers) or a Deployment (chaincode servers);
ConfigMaps with the genesis inputs, collections, TLS root bundle and bootstrap script;
and the one-shot bootstrap Job with a small PVC keeping the genesis block.
:func:`kubernetes` returns the documents, :func:`write_kubernetes` prepares the folder
and writes them (mode 0600: the Secrets hold private keys).

This module must not talk to a cluster.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

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
from consortium.deploy.workloads import Mount, Workload, workloads
from consortium.errors import NetworkError
from consortium.network import Network

__all__ = ["kubernetes", "write_kubernetes"]

_SECRET_KEY: Final = re.compile(r"^[-._a-zA-Z0-9]+$")


def _bootstrap_crypto_files(c: Consortium) -> list[Path]:
    """What the bootstrap container needs of the crypto tree (relative to ``crypto/``):
    every verifying MSP and TLS CA, the admins' MSPs and TLS pairs (peer CLI, osnadmin),
    the consenters' TLS certificates (configtx.yaml)."""
    files: list[Path] = []
    for org in c.orgs:
        files += [
            Path(org.name, "msp", "cacerts", "ca-cert.pem"),
            Path(org.name, "msp", "tlscacerts", "tlsca-cert.pem"),
            Path(org.name, "msp", "config.yaml"),
            Path(org.name, "tlsca", "tlsca-cert.pem"),
        ]
        admin = Path(org.name, "users", "Admin")
        files += [
            admin / "msp" / "cacerts" / "ca-cert.pem",
            admin / "msp" / "tlscacerts" / "tlsca-cert.pem",
            admin / "msp" / "config.yaml",
            admin / "msp" / "signcerts" / "cert.pem",
            admin / "msp" / "keystore" / "priv_sk",
            admin / "tls" / "ca.crt",
            admin / "tls" / "client.crt",
            admin / "tls" / "client.key",
        ]
    for o in c.ordering.orderers:
        files.append(Path(c.orderer_org.name, "nodes", o.name, "tls", "server.crt"))
    return files


def _secret_key(rel: str) -> str:
    key = rel.replace("/", "__")
    if not _SECRET_KEY.match(key):
        raise NetworkError(f"{rel!r}: cannot be a Secret or ConfigMap key")
    return key


def _files_of(folder: Path, m: Mount) -> dict[str, bytes]:
    """The mount's files: path relative to its target -> content."""
    source = folder / m.source
    if m.file is not None:
        return {m.file: source.read_bytes()}
    if not source.is_dir():
        raise NetworkError(f"{source}: missing; prepare the deployment folder first")
    return {
        p.relative_to(source).as_posix(): p.read_bytes()
        for p in sorted(source.rglob("*"))
        if p.is_file()
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass(frozen=True)
class _Manifests:
    """Builds the documents of one namespace: names, labels, Secrets, ConfigMaps."""

    network: str
    namespace: str

    def labels(self, name: str, component: str, org: str | None = None) -> dict[str, str]:
        out = {
            "app.kubernetes.io/name": name,
            "app.kubernetes.io/part-of": self.network,
            "app.kubernetes.io/component": component,
        }
        if org:
            out["dtoken/org"] = org
        return out

    def selector(self, name: str) -> dict[str, str]:
        return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": self.network}

    def meta(self, name: str, component: str, org: str | None = None) -> dict[str, Any]:
        return {
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels(name, component, org),
        }

    def secret(
        self, name: str, component: str, files: Mapping[str, bytes], source: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A Secret of ``files`` (relative path -> content) and the volume source that lays
        them out again at those paths. ``source`` (annotation) names where they came from."""
        meta = self.meta(name, component)
        meta["annotations"] = {"dtoken/source": source}
        doc = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta,
            "type": "Opaque",
            "data": {_secret_key(rel): _b64(data) for rel, data in files.items()},
        }
        items = [{"key": _secret_key(rel), "path": rel} for rel in files]
        return doc, {"secretName": name, "defaultMode": 0o400, "items": items}

    def config_map(self, name: str, files: Mapping[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.meta(name, "config"),
            "data": {_secret_key(k): v for k, v in files.items()},
        }


def _k8s_node(
    m: _Manifests, w: Workload, folder: Path, storage: str
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """One node: its Secrets, its Service, its StatefulSet (ledger) or Deployment."""
    secrets: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for mount in w.mounts:
        if mount.volume == "roots":  # the same public bundle for every peer
            volumes.append({"name": mount.volume, "configMap": {"name": "tls-roots"}})
        else:
            files = _files_of(folder, mount)
            doc, source = m.secret(
                f"{w.name}-{mount.volume}", w.kind, files, mount.source.as_posix()
            )
            secrets.append(doc)
            volumes.append({"name": mount.volume, "secret": source})
        mounts.append({"name": mount.volume, "mountPath": mount.target, "readOnly": True})
    if w.ledger:
        mounts.append({"name": "ledger", "mountPath": LEDGER_DIR})
    container: dict[str, Any] = {"name": w.kind, "image": w.image}
    if w.kind == "chaincode":
        container["imagePullPolicy"] = "IfNotPresent"
    if w.command:
        container["command"] = list(w.command)
    container["env"] = [{"name": k, "value": v} for k, v in w.env.items()]
    container["ports"] = [{"name": n, "containerPort": port} for n, port in w.ports]
    container["volumeMounts"] = mounts
    container["readinessProbe"] = {"tcpSocket": {"port": w.probe_port}, "periodSeconds": 5}
    pod = {
        "metadata": {"labels": m.labels(w.name, w.kind, w.org)},
        "spec": {
            "enableServiceLinks": False,  # the environment is exactly the one above
            "containers": [container],
            "volumes": volumes,
        },
    }
    selector = m.selector(w.name)
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": m.meta(w.name, w.kind, w.org),
        "spec": {
            "selector": selector,
            "ports": [
                {"name": n, "port": port, "targetPort": port, "protocol": "TCP"}
                for n, port in w.ports
            ],
        },
    }
    spec: dict[str, Any] = {"replicas": 1, "selector": {"matchLabels": selector}, "template": pod}
    if w.ledger:
        spec = {"serviceName": w.name, **spec}
        spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "ledger"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": storage}},
                },
            }
        ]
    workload = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet" if w.ledger else "Deployment",
        "metadata": m.meta(w.name, w.kind, w.org),
        "spec": spec,
    }
    return secrets, service, workload


def _k8s_bootstrap(
    m: _Manifests, c: Consortium, net: Network, tools_image: str
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, Any]]:
    """The bootstrap Job, its Secrets (the crypto it needs, the packages) and its PVC."""
    d = main_deployment(net)
    crypto_files = {
        rel.as_posix(): (net.crypto_dir / rel).read_bytes() for rel in _bootstrap_crypto_files(c)
    }
    crypto_secret, crypto_source = m.secret("bootstrap-crypto", "bootstrap", crypto_files, "crypto")
    packages = {
        f"{org.name}/{net.package_path(org, d).name}": net.package_path(org, d).read_bytes()
        for org in c.application_orgs
    }
    packages_secret, packages_source = m.secret(
        "chaincode-packages", "bootstrap", packages, "chaincode"
    )
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": m.meta("bootstrap", "bootstrap"),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}},
    }
    container = {
        "name": "bootstrap",
        "image": tools_image,
        "command": ["bash", f"{BOOTSTRAP_DIR}/bootstrap.sh"],
        "volumeMounts": [
            {"name": "crypto", "mountPath": CRYPTO_DIR, "readOnly": True},
            {"name": "channel", "mountPath": CHANNEL_DIR, "readOnly": True},
            {"name": "packages", "mountPath": PACKAGES_DIR, "readOnly": True},
            {"name": "script", "mountPath": BOOTSTRAP_DIR, "readOnly": True},
            {"name": "work", "mountPath": WORK_DIR},
        ],
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": m.meta("bootstrap", "bootstrap"),
        "spec": {
            "backoffLimit": 6,
            "template": {
                "metadata": {"labels": m.labels("bootstrap", "bootstrap")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "enableServiceLinks": False,
                    "containers": [container],
                    "volumes": [
                        {"name": "crypto", "secret": crypto_source},
                        {"name": "channel", "configMap": {"name": "channel"}},
                        {"name": "packages", "secret": packages_source},
                        {"name": "script", "configMap": {"name": "bootstrap"}},
                        {"name": "work", "persistentVolumeClaim": {"claimName": "bootstrap"}},
                    ],
                },
            },
        },
    }
    return [crypto_secret, packages_secret], claim, job


def kubernetes(
    c: Consortium,
    crypto_dir: Path,
    *,
    chaincode_image: str | None = None,
    namespace: str | None = None,
    storage: str = "2Gi",
    fabric_images: FabricImages | None = None,
) -> list[dict[str, Any]]:
    """The Kubernetes manifests of the consortium, in the order to apply them.

    A Namespace (default: the network's name); per node a Service, Secrets holding its
    MSP and TLS files, and a StatefulSet with a ledger PVC of ``storage`` (orderers,
    peers) or a Deployment (chaincode servers, image ``chaincode_image``, to be pushed
    where the cluster can pull it); ConfigMaps with the genesis inputs, collections, TLS
    root bundle and bootstrap script; and the one-shot bootstrap Job with a small PVC
    keeping the genesis block. The folder must be prepared
    (:func:`~consortium.deploy.folder.prepare`). ``fabric_images``: the Fabric images
    (default: Fabric's official ones).
    """
    fabric_images = fabric_images or FabricImages()
    net = native_view(c, crypto_dir)
    m = _Manifests(network=c.name, namespace=namespace or c.name)
    view = container_view(c, Target.KUBERNETES)
    d = main_deployment(net)
    configtx = yaml.safe_dump(channel_cfg.configtx(view, Path(CRYPTO_DIR)), sort_keys=False)
    config = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": m.namespace, "labels": {"app.kubernetes.io/part-of": c.name}},
        },
        m.config_map("tls-roots", {"tls-roots.pem": tls_roots(c, crypto_dir)}),
        m.config_map(
            "channel",
            {
                "configtx.yaml": configtx,
                f"collections-{d.name}.json": channel_cfg.collections_json(c),
            },
        ),
        m.config_map(
            "bootstrap", {"bootstrap.sh": bootstrap_script(c, crypto_dir, Target.KUBERNETES)}
        ),
    ]
    secrets: list[dict[str, Any]] = []
    services: list[dict[str, Any]] = []
    controllers: list[dict[str, Any]] = []
    image = chaincode_image or default_chaincode_image(c)
    for w in workloads(c, net, Target.KUBERNETES, image, fabric_images):
        node_secrets, service, workload = _k8s_node(m, w, net.state_dir, storage)
        secrets += node_secrets
        services.append(service)
        controllers.append(workload)
    job_secrets, claim, job = _k8s_bootstrap(m, c, net, fabric_images.tools)
    return [*config, *secrets, *job_secrets, *services, *controllers, claim, job]


def write_kubernetes(
    c: Consortium,
    folder: Path,
    *,
    chaincode_image: str | None = None,
    namespace: str | None = None,
    storage: str = "2Gi",
    fabric_images: FabricImages | None = None,
) -> Path:
    """Prepare ``folder`` and write ``kubernetes.yaml`` (every manifest, in apply order)."""
    net = prepare(c, folder)
    docs = kubernetes(
        c,
        net.crypto_dir,
        chaincode_image=chaincode_image,
        namespace=namespace,
        storage=storage,
        fabric_images=fabric_images,
    )
    path = net.state_dir / "kubernetes.yaml"
    body = yaml.safe_dump_all(docs, sort_keys=False, width=120, explicit_start=True)
    write_text(path, header(c, "kubernetes") + body, 0o600)  # it holds private keys
    return path
