"""The generated Kubernetes manifests, rendered for ``podman kube play`` on one machine.

Podman 4.3's ``kube play`` knows Pods, Deployments, PersistentVolumeClaims and ConfigMaps, and
hostPath, emptyDir and persistentVolumeClaim volumes; it has no Services, StatefulSets, Jobs
or Secret volumes. So that the manifests :func:`consortium.deploy.kubernetes.kubernetes`
writes can run on it, :func:`for_kube_play` renders them, document by document, as:

* every StatefulSet, Deployment and the bootstrap Job -> a Pod of the same name (Podman's DNS
  answers a pod's name, which is the Service name the other nodes dial), with the same
  containers, environment and volume mounts; each port is published on ``host_ip``
  (``hostPort`` = its port), standing in for the Service;
* each StatefulSet's ``ledger`` claim template -> a PersistentVolumeClaim ``<name>-ledger``;
* each Secret and ConfigMap volume -> a hostPath folder under ``files_dir`` holding exactly the
  files the volume lays out (``items`` paths and modes), written from the documents' data;
* Services, the Namespace and readiness probes (which Podman runs through systemd) are left
  out; the bootstrap retries until the nodes answer.

Nothing else changes: images, commands, environment, mount paths and names are the
manifests' own, so what runs is what a cluster would run, bar scheduling and Services.

This module writes the ``files_dir`` folder and must not start anything.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from consortium.errors import NetworkError

__all__ = ["for_kube_play"]


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def _lay_out(
    name: str, data: dict[str, bytes], source: dict[str, Any], files_dir: Path
) -> dict[str, Any]:
    """Write what a Secret or ConfigMap volume shows; return the hostPath volume source."""
    folder = files_dir / name
    mode = int(source.get("defaultMode", 0o644))
    items = source.get("items") or [{"key": key, "path": key} for key in data]
    for item in items:
        if item["key"] not in data:
            raise NetworkError(f"volume of {name!r}: no key {item['key']!r} in it")
        _write(folder / item["path"], data[item["key"]], int(item.get("mode", mode)))
    return {"path": str(folder), "type": "Directory"}


def for_kube_play(
    docs: Sequence[dict[str, Any]], files_dir: Path, *, host_ip: str = "127.0.0.1"
) -> list[dict[str, Any]]:
    """The documents ``podman kube play`` runs (see the module docstring)."""
    files_dir = files_dir.resolve()
    secrets: dict[str, dict[str, bytes]] = {}
    config_maps: dict[str, dict[str, bytes]] = {}
    for doc in docs:
        name = doc.get("metadata", {}).get("name", "")
        if doc["kind"] == "Secret":
            secrets[name] = {k: base64.b64decode(v) for k, v in doc.get("data", {}).items()}
        elif doc["kind"] == "ConfigMap":
            config_maps[name] = {k: v.encode() for k, v in doc.get("data", {}).items()}
    claims: list[dict[str, Any]] = []  # first: the pods mount them
    out: list[dict[str, Any]] = []
    for doc in docs:
        kind = doc["kind"]
        if kind == "PersistentVolumeClaim":
            claims.append(_plain(doc))
        elif kind in ("StatefulSet", "Deployment", "Job"):
            name = doc["metadata"]["name"]
            template = copy.deepcopy(doc["spec"]["template"])
            spec = template["spec"]
            spec.pop("enableServiceLinks", None)
            if kind == "Job":
                spec["restartPolicy"] = "Never"
            volumes = []
            for volume in spec.get("volumes", []):
                if "secret" in volume:
                    src = volume["secret"]
                    path = _lay_out(src["secretName"], secrets[src["secretName"]], src, files_dir)
                    volumes.append({"name": volume["name"], "hostPath": path})
                elif "configMap" in volume:
                    src = volume["configMap"]
                    path = _lay_out(f"configmap-{src['name']}", config_maps[src["name"]], src,
                                    files_dir)  # fmt: skip
                    volumes.append({"name": volume["name"], "hostPath": path})
                else:
                    volumes.append(volume)
            for claim in doc["spec"].get("volumeClaimTemplates", []):
                claim_name = f"{name}-{claim['metadata']['name']}"
                claims.append({
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": claim_name}, "spec": claim["spec"],
                })  # fmt: skip
                volumes.append({"name": claim["metadata"]["name"],
                                "persistentVolumeClaim": {"claimName": claim_name}})  # fmt: skip
            spec["volumes"] = volumes
            for container in spec["containers"]:
                container.pop("readinessProbe", None)
                for port in container.get("ports", []):
                    port["hostPort"] = port["containerPort"]
                    port["hostIP"] = host_ip
            labels = template.get("metadata", {}).get("labels", {})
            out.append({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": name, "labels": labels}, "spec": spec})  # fmt: skip
    return claims + out


def _plain(doc: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["metadata"] = {"name": doc["metadata"]["name"]}
    return out
