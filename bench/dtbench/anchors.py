"""The Node anchors' plumbing: ``npm ci`` in ``bench/node`` and the Node load client.

The Node chaincode server is deployed by :meth:`dtbench.cluster.Cluster.deploy_node_anchor`;
the Node client (``bench/node/client.js`` on ``@hyperledger/fabric-gateway``) runs as a
child process, opens its window after its own warm-up and says so on stderr
(``WINDOW_OPEN`` / ``WINDOW_CLOSED``), so that the network's CPU is read over the same
window; it prints its latencies, failures and CPU seconds as one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dtbench.cluster import NODE_DIR
from dtbench.loadgen import RunResult

__all__ = ["NodeUnavailable", "ensure_node_deps", "node_versions", "run_node_client"]


class NodeUnavailable(RuntimeError):
    """Node.js, npm or the anchors' packages cannot be had on this machine."""


def ensure_node_deps(log: Callable[[str], None], *, install: bool = True) -> None:
    """``npm ci`` in ``bench/node`` unless its node_modules matches the lock file."""
    if shutil.which("node") is None:
        raise NodeUnavailable("node is not installed")
    modules = NODE_DIR / "node_modules"
    lock = NODE_DIR / "package-lock.json"
    stamp = modules / ".dtbench-lock"
    wanted = lock.read_text()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    if not install:
        raise NodeUnavailable("bench/node/node_modules is missing (run npm ci there)")
    if shutil.which("npm") is None:
        raise NodeUnavailable("npm is not installed")
    log("  npm ci in bench/node (fabric-shim, @hyperledger/fabric-gateway)")
    proc = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if proc.returncode != 0:
        raise NodeUnavailable(f"npm ci failed ({proc.returncode}): {proc.stderr[-2000:]}")
    stamp.write_text(wanted)


def node_versions() -> dict[str, str]:
    """Node.js and the anchor packages' installed versions."""
    out = {"node": subprocess.run(["node", "--version"], capture_output=True, text=True,
                                  check=False).stdout.strip()}  # fmt: skip
    for package in ("fabric-shim", "@hyperledger/fabric-gateway", "@grpc/grpc-js"):
        manifest = NODE_DIR / "node_modules" / package / "package.json"
        if manifest.exists():
            out[package] = str(json.loads(manifest.read_text()).get("version"))
    return out


def _write_config(config: dict[str, Any]) -> Path:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(config, fh)
        return Path(fh.name)


async def run_node_client(
    config: dict[str, Any],
    *,
    on_open: Callable[[], None],
    on_close: Callable[[], None],
    deadline_s: float,
) -> tuple[RunResult, float]:
    """Run ``client.js`` with ``config``; return its result and its CPU seconds in the window."""
    config_path = await asyncio.to_thread(_write_config, config)
    try:
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(NODE_DIR / "client.js"),
            str(config_path),
            cwd=NODE_DIR,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert proc.stderr is not None
        errors: list[str] = []

        async def watch(stream: asyncio.StreamReader) -> None:
            while line := await stream.readline():
                text = line.decode(errors="replace").strip()
                if text == "WINDOW_OPEN":
                    on_open()
                elif text == "WINDOW_CLOSED":
                    on_close()
                elif text:
                    errors.append(text)

        watcher = asyncio.create_task(watch(proc.stderr))
        try:
            out = await asyncio.wait_for(proc.stdout.read(), deadline_s)
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        await watcher
        if proc.returncode != 0:
            tail = " | ".join(errors[-5:])
            raise RuntimeError(f"node client failed ({proc.returncode}): {tail}")
        data = json.loads(out.decode())
    finally:
        await asyncio.to_thread(config_path.unlink, missing_ok=True)
    result = RunResult(
        elapsed_s=float(data["elapsed_s"]),
        latencies_s=[v / 1000.0 for v in data["latencies_ms"]],
        failures=Counter({str(k): int(v) for k, v in data["failures"].items()}),
        concurrency=int(config["concurrency"]),
    )
    result.labels = [""] * len(result.latencies_s)
    return result, float(data["cpu_s"])
