"""Issue 16, item 3: the generated deployment artefacts run on a real engine.

``dtoken network generate compose`` output brought up by a real Compose implementation
(``podman-compose``, over the Podman engine the container tests use), on ports
``DTOKEN_TEST_BASE_PORT + 300``; the generated Kubernetes manifests by ``podman kube play``,
on ports ``+ 400``, through :func:`consortium.deploy.podman_kube.for_kube_play` (Podman 4.3
has no StatefulSets, Jobs, Services or Secret volumes: each becomes the Pod, claim or files
it stands for; what runs is otherwise the manifests' own). Fabric's official images cannot
be pulled here (no registry), so the documents name the project's own images with the same contract
(:func:`consortium.images.ensure_fabric_images`) and the chaincode server image is the node
image (``--chaincode-image``). The smoke, from the bank's side with the ``dtoken`` CLI and the
folder's connection profiles: the bootstrap container exits 0, one cross-bank payment is
accepted, both balances are right, and the regulator's audit is OK.

Skipped, with how to enable it, without ``podman`` and its service.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from consortium import config, containers
from harness.faults import base_port
from harness.network import REPO_ROOT, consortium_variant

pytestmark = pytest.mark.containers

RUN = uuid.uuid4().hex[:8]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _compose(folder: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "podman_compose", "-f", str(folder / "compose.yaml"), *args],
        cwd=folder, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _podman_images() -> tuple[Any, str]:
    """The Fabric images and the node image, built on the Podman engine the CLI sees."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: scripts/container-engine install (as root)")
    if not os.environ.get("CONTAINERS_CONF"):
        # podman-compose and kube play drive the podman CLI: it must see the engine's images.
        pytest.skip('needs the Podman engine of scripts/container-engine: '
                    'eval "$(scripts/container-engine start)" sets CONTAINERS_CONF and DOCKER_HOST')
    from consortium.binaries import ensure_binaries
    from consortium.container_runtime import engine_client
    from consortium.images import ensure_fabric_images, ensure_node_image

    client = engine_client()
    fabric = ensure_binaries(_log)
    return ensure_fabric_images(client, fabric, _log), ensure_node_image(client, fabric, _log)


@pytest.fixture(scope="module")
def compose_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    pytest.importorskip("podman_compose", reason="podman-compose (the dev group) is missing")
    fabric_images, node_image = _podman_images()
    root = tmp_path_factory.mktemp("compose")
    cfg = consortium_variant(root / "consortium.yaml", name=f"cmp{RUN}", base_port=base_port(300))
    folder = root / "deploy"
    containers.write_compose(
        config.load(cfg), folder, chaincode_image=node_image, source_dir=REPO_ROOT,
        fabric_images=fabric_images,
    )  # fmt: skip
    up = _compose(folder, "up", "-d", "--no-build")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield folder
    finally:
        logs = _compose(folder, "logs", "--tail", "30")
        down = _compose(folder, "down", "-v")
        if down.returncode != 0:
            _log(f"podman-compose down failed:\n{down.stdout}{down.stderr}")
        if os.environ.get("DTOKEN_KEEP_LOGS"):
            _log(logs.stdout + logs.stderr)


def _bootstrap_exit(filters: dict[str, Any], timeout: float = 240) -> tuple[int, str]:
    """The exit code and log of the bootstrap container the filters find, once it exits."""
    from consortium.container_runtime import engine_client

    client = engine_client()
    deadline = time.monotonic() + timeout
    while True:
        found = client.containers.list(all=True, filters=filters)
        if found and found[0].status == "exited":
            state = found[0].attrs["State"]
            return int(state["ExitCode"]), found[0].logs().decode(errors="replace")
        if time.monotonic() > deadline:
            logs = found[0].logs().decode(errors="replace") if found else "(no container)"
            raise AssertionError(f"the bootstrap container did not finish:\n{logs[-3000:]}")
        time.sleep(1)


def test_the_compose_file_runs_on_podman_compose_and_a_payment_crosses_banks(
    compose_folder: Path, tmp_path: Path
) -> None:
    code, logs = _bootstrap_exit({"label": [f"com.docker.compose.project=cmp{RUN}",
                                            "com.docker.compose.service=bootstrap"]})  # fmt: skip
    assert code == 0, logs[-3000:]
    assert "is bootstrapped" in logs
    _pay_across_banks_and_audit(compose_folder / "profiles", tmp_path, "cmp")


@pytest.fixture(scope="module")
def kube_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import yaml
    from consortium.deploy.podman_kube import for_kube_play

    fabric_images, node_image = _podman_images()
    root = tmp_path_factory.mktemp("kube")
    cfg = consortium_variant(root / "consortium.yaml", name=f"kube{RUN}", base_port=base_port(400))
    folder = root / "deploy"
    manifests = containers.write_kubernetes(
        config.load(cfg), folder, chaincode_image=node_image, fabric_images=fabric_images
    )
    docs = [d for d in yaml.safe_load_all(manifests.read_text()) if d]
    played = for_kube_play(docs, folder / "kube-play")
    kube_file = folder / "kube-play.yaml"
    kube_file.write_text(yaml.safe_dump_all(played, sort_keys=False))
    claims = [d["metadata"]["name"] for d in played if d["kind"] == "PersistentVolumeClaim"]

    def podman(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=300,
                              check=False, cwd=folder)  # fmt: skip

    try:
        up = podman("kube", "play", str(kube_file))
        assert up.returncode == 0, up.stdout + up.stderr
        yield folder
    finally:
        down = podman("kube", "down", str(kube_file))
        if down.returncode != 0:
            _log(f"podman kube down failed:\n{down.stdout}{down.stderr}")
        podman("volume", "rm", "--force", *claims)


def test_the_kubernetes_manifests_run_on_podman_kube_play_and_a_payment_crosses_banks(
    kube_folder: Path, tmp_path: Path
) -> None:
    code, logs = _bootstrap_exit({"name": "bootstrap-bootstrap"})
    assert code == 0, logs[-3000:]
    assert "is bootstrapped" in logs
    _pay_across_banks_and_audit(kube_folder / "profiles", tmp_path, "kube")


def _pay_across_banks_and_audit(profiles: Path, tmp_path: Path, tag: str) -> None:
    """From the banks' side, with the dtoken CLI and the folder's connection profiles."""

    def dtoken(bank: str, *args: str) -> Any:
        proc = subprocess.run(
            [str(REPO_ROOT / ".venv" / "bin" / "dtoken"), "--profiles", str(profiles),
             "--bank", bank, "--json", *args],
            capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, f"dtoken {' '.join(args[:2])}: {proc.stdout}{proc.stderr}"
        return json.loads(proc.stdout)

    run = f"{tag}-{RUN}"
    shop = dtoken("hkbank", "account", "open", "--currency", "USD", "--owner", f"SHOP-{run}")
    dtoken("hkbank", "mint", shop["account_id"], "250.00 USD", "--reference", f"dep-{run}")
    seller = dtoken("usbank", "account", "open", "--currency", "USD", "--owner", f"SELL-{run}")
    sent = dtoken("hkbank", "transfer", shop["account_id"], seller["account_id"], "120.00 USD",
                  "--to-bank", "usbank", "--reference", f"pay-{run}")  # fmt: skip
    assert sent["kind"] == "cross_bank", sent
    deadline = time.monotonic() + 60
    while sent["transfer_id"] not in {t["transfer_id"] for t in dtoken("usbank", "incoming")}:
        assert time.monotonic() < deadline, "usbank never saw the payment"
        time.sleep(0.5)
    dtoken("usbank", "accept", sent["transfer_id"], "--from-bank", "hkbank")
    assert dtoken("usbank", "balance", seller["account_id"])["balance"]["minor"] == 12_000
    assert dtoken("hkbank", "balance", shop["account_id"])["balance"]["minor"] == 13_000
    audit = dtoken("regulator", "audit")
    assert audit["ok"] is True, audit
    assert audit["failures"] == []
