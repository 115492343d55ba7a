"""Issue 16, item 3: the generated deployment artefacts run on a real engine.

``dtoken network generate compose`` output brought up by a real Compose implementation
(``podman-compose``, over the Podman engine the container tests use), on ports
``DTOKEN_TEST_BASE_PORT + 300``. Fabric's official images cannot be pulled here (no registry),
so the documents name the project's own images with the same contract
(:func:`consortium.images.ensure_fabric_images`) and the chaincode server image is the node
image (``--chaincode-image``). The smoke, from the bank's side with the ``dtoken`` CLI and the
folder's connection profiles: the bootstrap container finishes, one cross-bank payment is
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


@pytest.fixture(scope="module")
def compose_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: scripts/container-engine install (as root)")
    pytest.importorskip("podman_compose", reason="podman-compose (the dev group) is missing")
    if not os.environ.get("CONTAINERS_CONF"):
        # podman-compose drives the podman CLI, which must see the images the engine built.
        pytest.skip('podman-compose needs the Podman engine of scripts/container-engine: '
                    'eval "$(scripts/container-engine start)" sets CONTAINERS_CONF and DOCKER_HOST')
    from consortium.binaries import ensure_binaries
    from consortium.container_runtime import engine_client
    from consortium.images import ensure_fabric_images, ensure_node_image

    client = engine_client()
    fabric = ensure_binaries(_log)
    fabric_images = ensure_fabric_images(client, fabric, _log)
    node_image = ensure_node_image(client, fabric, _log)
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


def _bootstrap_exit(folder: Path, timeout: float = 240) -> tuple[int, str]:
    from consortium.container_runtime import engine_client

    client = engine_client()
    project = f"cmp{RUN}"
    deadline = time.monotonic() + timeout
    while True:
        found = client.containers.list(
            all=True, filters={"label": [f"com.docker.compose.project={project}",
                                         "com.docker.compose.service=bootstrap"]},
        )  # fmt: skip
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
    code, logs = _bootstrap_exit(compose_folder)
    assert code == 0, logs[-3000:]
    assert "is bootstrapped" in logs
    profiles = compose_folder / "profiles"

    def dtoken(bank: str, *args: str) -> Any:
        proc = subprocess.run(
            [str(REPO_ROOT / ".venv" / "bin" / "dtoken"), "--profiles", str(profiles),
             "--bank", bank, "--json", *args],
            capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, f"dtoken {' '.join(args[:2])}: {proc.stdout}{proc.stderr}"
        return json.loads(proc.stdout)

    shop = dtoken("hkbank", "account", "open", "--currency", "USD", "--owner", f"SHOP-{RUN}")
    dtoken("hkbank", "mint", shop["account_id"], "250.00 USD", "--reference", f"dep-{RUN}")
    seller = dtoken("usbank", "account", "open", "--currency", "USD", "--owner", f"SELL-{RUN}")
    sent = dtoken("hkbank", "transfer", shop["account_id"], seller["account_id"], "120.00 USD",
                  "--to-bank", "usbank", "--reference", f"pay-{RUN}")  # fmt: skip
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
