"""Issue 7: the benchmark suite runs end to end (a very short smoke, not a timed test).

``bench/run --quick``'s Python part on a real network of its own (ports 8800+, not the
integration network's): every workload commits transactions, the Node anchors run when
Node.js is installed, and the JSON record has the shape docs/benchmarks.md describes. No
figure is checked: on a shared 2-core machine timings are not a test.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASE_PORT = int(os.environ.get("DTBENCH_SMOKE_BASE_PORT", "8800"))


def test_the_quick_suite_runs_every_workload_and_writes_its_record(tmp_path: Path) -> None:
    path = os.pathsep.join([str(REPO / "bench"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    args = [sys.executable, "-m", "dtbench", "--quick", "--base-port", str(BASE_PORT),
            "--out", str(tmp_path / "out"), "--check"]  # fmt: skip
    node = shutil.which("node") is not None and shutil.which("npm") is not None
    if not node:
        args.append("--no-node")
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
                          check=False)  # fmt: skip
    assert proc.returncode in (0, 3), proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "| measure |" in proc.stdout  # the ratio table is printed

    record = json.loads((tmp_path / "out" / "record.json").read_text())
    assert record["schema"] == "dtbench/1"
    assert record["mode"] == "quick"
    for key in ("cpu_model", "cores", "memory_gib", "fabric", "python"):
        assert key in record["machine"]
    assert record["networks"][0]["role"] == "main"
    assert record["networks"][0]["up_s"] > 0

    points = {p["id"]: p for p in record["points"]}
    expected = {"ratios/noop-py#1", "ratios/floor-py#1", "ratios/transfer-py#1", "workload/mint",
                "workload/payment-closed", "workload/mixed", "sweep/payment@5/s"}  # fmt: skip
    if node:
        expected |= {"ratios/noop-node#1", "ratios/transfer-node#1", "ratios/client-node#1",
                     "ratios/client-node-noop#1"}
    assert expected <= set(points), sorted(points)
    for point in points.values():
        assert point["completed"] > 0, point["id"]
        assert point["mvcc_conflicts"] == 0, point["id"]
        for key in ("p50", "p95", "p99"):
            assert point["latency_ms"][key] > 0, point["id"]
        cpu = point["cpu_ms_per_tx"]
        assert {"peer (gateway)", "orderer", "client"} <= set(cpu), point["id"]
        assert any(k.startswith("chaincode:") for k in cpu), point["id"]
        assert point["cpu_ms_per_tx_total"] > 0
    assert points["workload/payment-closed"]["payment_phases_ms"]["accept_committed_p50"] > 0
    assert points["workload/mixed"]["by_label"].keys() >= {"transfer", "payment", "mint"}

    ratios = {r["name"]: r for r in record["ratios"]}
    assert ratios["private_transfer_vs_noop_ceiling"]["value"] > 0
    assert ratios["private_floor_vs_noop_ceiling"]["value"] > 0
    if node:
        assert ratios["contract_vs_node_shim"]["value"] > 0
        assert ratios["python_client_vs_node_client"]["value"] > 0
    assert record["payment_latency"]["p50_ms"] > 0
    scan = record["pending_scan"]
    assert scan["transfers_in_pair"] > 0
    assert scan["full_ms"] > 0
    assert scan["window_ms"] > 0
    assert record["conflicts"]["mvcc_total"] == 0
