"""The benchmark's CPU accounting with the network's idle CPU subtracted (issue 15 item 4).

``dtbench.meter.idle_subtracted`` is what the scaling section compares across network
sizes: a peer's CPU per transfer, with what the peers burn with no load taken away. These
tests pin the formula with figures worked by hand, show that idle CPU alone costs a
transaction nothing (and that not subtracting it would make a bigger, idler network look
costlier per transfer), and that bad input is refused with the culprit named.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from dtbench.meter import Meter, idle_subtracted

ROLES = {
    "peer0.a": "peer",
    "peer0.b": "peer",
    "orderer0": "orderer",
    "chaincode.peer0.a": "chaincode:dtoken",
}


def test_the_formula_on_figures_worked_by_hand() -> None:
    busy = {"peer0.a": 3.0, "peer0.b": 2.0, "orderer0": 1.0, "chaincode.peer0.a": 0.5}
    idle = {"peer0.a": 0.1, "peer0.b": 0.1, "orderer0": 0.05, "chaincode.peer0.a": 0.0}
    out = idle_subtracted(busy, ROLES, idle, window_s=10.0, committed_tx=100, client_s=0.5)
    # peers: (3 + 2 - (0.1 + 0.1) * 10) s / 100 tx / 2 peers = 15 ms
    assert out["ms_per_tx_per_peer"] == pytest.approx(15.0)
    # everyone: (6.5 - 2.5) s + 0.5 s of client, / 100 tx = 45 ms
    assert out["ms_per_tx"] == pytest.approx(45.0)
    assert out["peers"] == 2
    assert out["peer_busy_s"] == pytest.approx(5.0)
    assert out["peer_idle_s"] == pytest.approx(2.0)
    assert out["all_idle_s"] == pytest.approx(2.5)
    assert out["idle_share_of_peers"] == pytest.approx(0.4)
    assert out["nodes_without_idle"] == []


def test_a_network_that_only_idled_cost_nothing_per_transaction() -> None:
    idle = {"peer0.a": 0.02, "peer0.b": 0.03, "orderer0": 0.01, "chaincode.peer0.a": 0.0}
    busy = {name: cores * 12.0 for name, cores in idle.items()}
    out = idle_subtracted(busy, ROLES, idle, window_s=12.0, committed_tx=50)
    assert out["ms_per_tx_per_peer"] == pytest.approx(0.0, abs=1e-9)
    assert out["ms_per_tx"] == pytest.approx(0.0, abs=1e-9)


def test_without_the_subtraction_a_larger_idler_network_would_look_costlier() -> None:
    """Two networks doing the same work per peer, one with five times the idle CPU per
    peer (more gossip partners): the subtracted figure is the same, the raw one is not."""
    roles = {f"peer{i}": "peer" for i in range(4)}
    work_per_peer_s = 0.8  # what 100 transfers cost each peer
    window = 10.0
    small_idle = {n: 0.01 for n in roles}
    large_idle = {n: 0.05 for n in roles}
    small = idle_subtracted({n: work_per_peer_s + 0.01 * window for n in roles}, roles,
                            small_idle, window_s=window, committed_tx=100)
    large = idle_subtracted({n: work_per_peer_s + 0.05 * window for n in roles}, roles,
                            large_idle, window_s=window, committed_tx=100)
    assert small["ms_per_tx_per_peer"] == pytest.approx(8.0)
    assert large["ms_per_tx_per_peer"] == pytest.approx(8.0)
    raw_small = small["peer_busy_s"] * 1000 / 100 / 4
    raw_large = large["peer_busy_s"] * 1000 / 100 / 4
    assert raw_large / raw_small == pytest.approx(1.3 / 0.9)  # 13 ms against 9 ms


def test_idle_is_scaled_by_the_window_length() -> None:
    busy = {"peer0.a": 2.0, "peer0.b": 2.0, "orderer0": 0.0, "chaincode.peer0.a": 0.0}
    idle = {"peer0.a": 0.1, "peer0.b": 0.1, "orderer0": 0.0, "chaincode.peer0.a": 0.0}
    short = idle_subtracted(busy, ROLES, idle, window_s=5.0, committed_tx=10)
    long = idle_subtracted(busy, ROLES, idle, window_s=15.0, committed_tx=10)
    assert short["ms_per_tx_per_peer"] == pytest.approx((4.0 - 1.0) * 1000 / 10 / 2)
    assert long["ms_per_tx_per_peer"] == pytest.approx((4.0 - 3.0) * 1000 / 10 / 2)


def test_a_node_started_after_the_idle_measurement_counts_whole_and_is_named() -> None:
    busy = {"peer0.a": 1.0, "peer0.b": 1.0, "orderer0": 0.0, "chaincode.peer0.a": 0.4}
    idle = {"peer0.a": 0.0, "peer0.b": 0.0, "orderer0": 0.0}
    out = idle_subtracted(busy, ROLES, idle, window_s=1.0, committed_tx=10)
    assert out["nodes_without_idle"] == ["chaincode.peer0.a"]
    assert out["ms_per_tx"] == pytest.approx(240.0)


def test_a_window_busier_before_than_during_is_reported_below_zero_not_hidden() -> None:
    busy = {"peer0.a": 0.1, "peer0.b": 0.1, "orderer0": 0.0, "chaincode.peer0.a": 0.0}
    idle = {"peer0.a": 0.5, "peer0.b": 0.5, "orderer0": 0.0, "chaincode.peer0.a": 0.0}
    out = idle_subtracted(busy, ROLES, idle, window_s=1.0, committed_tx=10)
    assert out["ms_per_tx_per_peer"] is not None
    assert out["ms_per_tx_per_peer"] < 0


def test_nothing_committed_gives_no_per_transaction_figure() -> None:
    busy = {"peer0.a": 1.0, "peer0.b": 1.0, "orderer0": 0.0, "chaincode.peer0.a": 0.0}
    out = idle_subtracted(busy, ROLES, {}, window_s=1.0, committed_tx=0)
    assert out["ms_per_tx_per_peer"] is None
    assert out["ms_per_tx"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window_s": 0.0}, "window_s"),
        ({"window_s": math.nan}, "window_s"),
        ({"committed_tx": -1}, "committed_tx"),
        ({"busy": {"peer0.a": -0.5}}, "busy_s.*peer0.a"),
        ({"idle": {"peer0.b": math.inf}}, "idle_cores.*peer0.b"),
        ({"busy": {"peer0.z": 1.0}}, "without a role: peer0.z"),
        ({"busy": {"orderer0": 1.0}}, "no peer"),
    ],
)
def test_bad_input_is_refused_naming_what_is_wrong(kwargs: dict[str, Any], message: str) -> None:
    busy = kwargs.pop("busy", {"peer0.a": 1.0, "orderer0": 0.2})
    idle = kwargs.pop("idle", {"peer0.a": 0.0})
    args: dict[str, Any] = {"window_s": 1.0, "committed_tx": 10, **kwargs}
    with pytest.raises(ValueError, match=message):
        idle_subtracted(busy, ROLES, idle, **args)


class _FakeCluster:
    """What Meter reads of a cluster: the nodes' roles and CPU seconds so far."""

    def __init__(self, snapshots: list[dict[str, float]]) -> None:
        self._snapshots = snapshots

    def pids(self) -> dict[str, tuple[str, int]]:
        return {name: (role, 1000 + i) for i, (name, role) in enumerate(ROLES.items())}

    def cpu_snapshot(self) -> dict[str, float]:
        return self._snapshots.pop(0)


def test_the_meter_reports_the_subtracted_figures_with_its_own_window() -> None:
    start = {"peer0.a": 10.0, "peer0.b": 20.0, "orderer0": 5.0, "chaincode.peer0.a": 1.0}
    end = {"peer0.a": 12.0, "peer0.b": 21.0, "orderer0": 5.5, "chaincode.peer0.a": 1.5}
    meter = Meter(_FakeCluster([start, end]), "peer0.a")  # type: ignore[arg-type]
    meter.open()
    meter.close()
    idle = {name: 0.0 for name in ROLES}
    report = meter.report(10, client_cpu_s=0.0, idle_cores=idle)
    sub = report["idle_subtracted"]
    assert sub["peers"] == 2
    assert sub["peer_busy_s"] == pytest.approx(3.0)
    assert sub["ms_per_tx_per_peer"] == pytest.approx(150.0)
    assert sub["ms_per_tx"] == pytest.approx(400.0)
    assert report["cpu_ms_per_tx_total"] == pytest.approx(400.0)
    assert "idle_subtracted" not in meter.report(10, client_cpu_s=0.0)


def test_a_port_block_in_the_kernels_ephemeral_range_is_named(tmp_path: Path) -> None:
    from dtbench.cluster import ephemeral_overlap

    source = tmp_path / "ip_local_port_range"
    source.write_text("32768\t60999\n")
    assert ephemeral_overlap(8000, 8999, source) is None
    assert ephemeral_overlap(32000, 32999, source) == (32768, 60999)
    assert ephemeral_overlap(60999, 61998, source) == (32768, 60999)
    assert ephemeral_overlap(61000, 61999, source) is None
    assert ephemeral_overlap(38000, 38999, tmp_path / "absent") is None  # nothing said
