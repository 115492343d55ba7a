"""consortium.deploy.podman_kube: the generated Kubernetes manifests as ``podman kube play``
4.3 runs them, without a cluster or an engine: only kinds it knows, a Pod per workload named
as the Service the other nodes dial, each Secret and ConfigMap volume laid out as the files
it shows, a claim per ledger, every port published on loopback.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml
from consortium import config, containers
from consortium.deploy.podman_kube import for_kube_play

DEFAULT = Path(__file__).resolve().parents[3] / "config" / "consortium.yaml"


def test_the_manifests_become_pods_claims_and_files_podman_knows(tmp_path: Path) -> None:
    c = config.load(DEFAULT)
    path = containers.write_kubernetes(c, tmp_path / "deploy")
    docs: list[dict[str, Any]] = [d for d in yaml.safe_load_all(path.read_text()) if d]
    files = tmp_path / "files"
    played = for_kube_play(docs, files)
    assert {d["kind"] for d in played} == {"Pod", "PersistentVolumeClaim"}
    kinds = [d["kind"] for d in played]
    assert kinds == sorted(kinds, key=lambda k: k != "PersistentVolumeClaim")  # claims first
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    pods = {d["metadata"]["name"]: d for d in played if d["kind"] == "Pod"}
    assert set(pods) == services | {"bootstrap"}
    claims = {d["metadata"]["name"] for d in played if d["kind"] == "PersistentVolumeClaim"}
    ledgers = {d["metadata"]["name"] for d in docs if d["kind"] == "StatefulSet"}
    assert claims == {f"{name}-ledger" for name in ledgers} | {"bootstrap"}
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    originals = {d["metadata"]["name"]: d for d in docs
                 if d["kind"] in ("StatefulSet", "Deployment", "Job")}  # fmt: skip
    for name, pod in pods.items():
        spec = pod["spec"]
        original = originals[name]["spec"]["template"]["spec"]
        # The containers are the manifests' own: image, command, environment, mounts.
        for mine, theirs in zip(spec["containers"], original["containers"], strict=True):
            for key in ("image", "command", "env", "volumeMounts"):
                assert mine.get(key) == theirs.get(key), (name, key)
            assert "readinessProbe" not in mine
            for port in mine.get("ports", []):
                assert port["hostPort"] == port["containerPort"]
                assert port["hostIP"] == "127.0.0.1"
        volumes = {v["name"]: v for v in spec["volumes"]}
        for volume in original["volumes"]:
            mine = volumes[volume["name"]]
            if "secret" in volume:
                folder = Path(mine["hostPath"]["path"])
                secret = secrets[volume["secret"]["secretName"]]["data"]
                for item in volume["secret"]["items"]:
                    laid_out = folder / item["path"]
                    assert laid_out.read_bytes() == base64.b64decode(secret[item["key"]])
                    assert laid_out.stat().st_mode & 0o777 == volume["secret"]["defaultMode"]
            elif "configMap" in volume:
                assert Path(mine["hostPath"]["path"]).is_dir()
            else:
                assert mine == volume
        if name in ledgers:
            assert volumes["ledger"] == {
                "name": "ledger", "persistentVolumeClaim": {"claimName": f"{name}-ledger"}
            }
    assert pods["bootstrap"]["spec"]["restartPolicy"] == "Never"
    script = Path(pods["bootstrap"]["spec"]["volumes"][3]["hostPath"]["path"]) / "bootstrap.sh"
    assert "network $CHANNEL is bootstrapped" in script.read_text()
