"""The scaling section's outputs and options (issue 15 item 4), without a network.

A record shaped like one run (3 banks on the main network, 20 on a scaling network) goes
through ``dtbench.report.derive``: the rows, the issue-15 checks (computed from the figures
with the idle CPU subtracted, never the raw ones), and the tables. The options: ``--layout``
reaches every network's shape and the record; bad values are refused by name; networks of
one run get port blocks inside the run's range.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from dtbench.__main__ import build_parser, settings_from
from dtbench.cluster import PORT_SPAN, Shape, write_consortium
from dtbench.report import checks_table, derive, scaling_table, write_chart
from dtbench.suite import Settings, Suite


def _point(banks: int, workload: str, *, per_peer: float | None, raw: float,
           p50: float = 300.0, p99: float = 450.0,
           failures: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    point: dict[str, Any] = {
        "id": f"scaling/{workload}@{banks}banks", "section": "scaling", "banks": banks,
        "workload": workload, "loop": "closed" if workload == "transfer" else "open",
        "tx_per_s": 100.0, "completed": 100, "latency_ms": {"p50": p50, "p95": p99, "p99": p99},
        "failures": failures or {}, "mvcc_conflicts": 0,
        "other_failures": sum((failures or {}).values()), "cpu_ms_per_tx_total": raw,
        "cpu_ms_per_tx": {"peer (gateway)": 1.0, "client": 1.0},
    }  # fmt: skip
    if workload == "transfer":
        point["concurrency"] = 64
    else:
        point["offered_rate"] = 10.0
        point["elapsed_s"] = 10.0
    if per_peer is not None:
        point["idle_subtracted"] = {"ms_per_tx_per_peer": per_peer, "ms_per_tx": raw - 1.0,
                                    "peers": banks + 1, "idle_share_of_peers": 0.1}
    return point


def _network(banks: int, role: str) -> dict[str, Any]:
    shape = {"banks": banks, "regulator": True, "orderers": 3, "batch_timeout_ms": 150,
             "max_message_count": 100, "layout": "namespaces"}
    memory = {"total_mb": 100.0, "by_role": {"peer": 80.0, "chaincode": 50.0, "orderer": 40.0},
              "by_node": {f"chaincode.peer0.b{i}": 25.0 for i in range(2 * (banks + 1))}}
    return {"name": f"n{banks}", "shape": shape, "label": "", "base_port": 38000,
            "up_s": 5.0 * banks, "role": role, "memory_idle": memory, "memory_loaded": memory,
            "idle_cpu": {"cores": 0.1}, "idle_cpu_before_points": {"cores": 0.02 * banks},
            "namespaces": {"layout": "namespaces", "definitions": 6, "max_collections": 8,
                           "transfer_collections": 2}}  # fmt: skip


def _ratio_points(transfer: float, noop: float, floor: float) -> list[dict[str, Any]]:
    out = []
    for name, tps in (("transfer-py", transfer), ("noop-py", noop), ("floor-py", floor)):
        out.append({"id": f"ratios/{name}#1", "section": "ratios", "round": 1, "tx_per_s": tps,
                    "cpu_ms_per_tx_total": 1000.0 / tps, "cpu_ms_per_tx": {"client": 1.0},
                    "latency_ms": {"p50": 1.0, "p95": 1.0, "p99": 1.0}, "workload": name,
                    "loop": "closed", "mvcc_conflicts": 0, "other_failures": 0})  # fmt: skip
    return out


def _record(top_per_peer: float, *, payment_failures: dict[str, int] | None = None,
            ratios: tuple[float, float, float] = (140.0, 389.0, 224.0),
            ) -> dict[str, Any]:  # fmt: skip
    points = [
        *_ratio_points(*ratios),
        _point(3, "transfer", per_peer=2.0, raw=14.0),
        _point(3, "payment", per_peer=9.0, raw=40.0),
        # the raw CPU per transfer grows a lot with 21 peers; per peer, idle subtracted, not
        _point(20, "transfer", per_peer=top_per_peer, raw=80.0),
        _point(20, "payment", per_peer=9.0, raw=90.0, p50=420.0, p99=800.0,
               failures=payment_failures),
    ]
    return {"points": points, "networks": [_network(3, "main"), _network(20, "scaling")],
            "settings": {"moderate_rate": 10.0}, "layout": "namespaces",
            "started_at": "2026-12-06T05:10:00Z",
            "machine": {"cores": 2, "cpu_model": "test", "fabric": "3.1.1"}}  # fmt: skip


def _checks(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    record.update(derive(record))
    return {c["name"]: c for c in record["checks"]}


def test_growth_is_taken_from_the_idle_subtracted_cpu_per_peer() -> None:
    checks = _checks(_record(2.5))
    growth = checks["cpu_per_transfer_per_peer_growth"]
    assert growth["value"] == pytest.approx(1.25)  # 2.5 / 2.0, not 80 / 14
    assert growth["met"] is True
    assert "20 banks / 3 banks" in growth["what"]


def test_growth_beyond_1_3x_is_a_missed_check() -> None:
    checks = _checks(_record(2.7))
    assert checks["cpu_per_transfer_per_peer_growth"]["value"] == pytest.approx(1.35)
    assert checks["cpu_per_transfer_per_peer_growth"]["met"] is False


def test_ratio_checks_against_the_ceiling_and_the_floor() -> None:
    checks = _checks(_record(2.0, ratios=(140.0, 389.0, 224.0)))
    ceiling = checks["private_transfer_vs_noop_ceiling_issue15"]
    assert ceiling["value"] == pytest.approx(0.36, abs=0.005)
    assert ceiling["met"] is True
    assert checks["private_transfer_vs_floor"]["value"] == pytest.approx(0.625, abs=0.001)
    assert checks["private_transfer_vs_floor"]["met"] is True
    worse = _checks(_record(2.0, ratios=(120.0, 389.0, 224.0)))
    assert worse["private_transfer_vs_noop_ceiling_issue15"]["met"] is False  # 0.31
    assert worse["private_transfer_vs_floor"]["met"] is False  # 0.54: further from the floor


def test_a_payment_size_with_failures_misses_its_latency_check() -> None:
    ok = _checks(_record(2.0))
    assert ok["payment_latency_3banks"]["met"] is True
    assert ok["payment_latency_20banks"]["met"] is True
    failed = _checks(_record(2.0, payment_failures={"timeout": 1}))
    assert failed["payment_latency_20banks"]["met"] is False


def test_a_payment_size_that_carried_too_few_of_its_payments_misses_its_check() -> None:
    """Payments whose event never reached the payee neither complete nor fail in the window:
    fast-looking percentiles over a few completions must not pass."""
    record = _record(2.0)
    record["points"][-1]["completed"] = 80  # of 100 offered (10/s for 10 s)
    assert _checks(record)["payment_latency_20banks"]["met"] is False
    record["points"][-1]["completed"] = 90
    assert _checks(record)["payment_latency_20banks"]["met"] is True


def test_rows_and_tables_carry_every_figure_of_a_size() -> None:
    record = _record(2.5)
    record.update(derive(record))
    rows = {r["banks"]: r for r in record["scaling"]}
    assert set(rows) == {3, 20}
    big = rows[20]
    assert big["layout"] == "namespaces"
    assert (big["peers"], big["orderers"], big["chaincode_servers"]) == (21, 3, 42)
    assert big["up_s"] == 100.0
    assert big["idle_cores"] == pytest.approx(0.4)  # the idle measured before the points
    assert big["memory_loaded_mb"] == {"peer": 80.0, "chaincode": 50.0, "orderer": 40.0}
    assert big["transfer"]["cpu_ms_per_tx_per_peer"] == 2.5
    assert big["payment"]["p99_ms"] == 800.0
    table = scaling_table(record)
    assert table.count("\n") == 3  # header, rule, two rows
    assert "| 20 | namespaces: 6, 8, 2 | 21 + 42 + 3 | 100.0 |" in table
    assert "**2.50**" in table
    assert "420 / 800 (10/s, 100, 0)" in table
    checks = checks_table(record)
    assert "**1.25x** | <= 1.3x | yes |" in checks


def test_an_older_record_without_the_new_fields_still_reads() -> None:
    record = _record(2.0)
    for p in record["points"]:
        p.pop("idle_subtracted", None)
    record["points"] = [p for p in record["points"] if p.get("workload") != "payment"]
    for n in record["networks"]:
        del n["namespaces"], n["idle_cpu_before_points"]
        n["shape"].pop("layout")
    record.update(derive(record))
    assert "cpu_per_transfer_per_peer_growth" not in {c["name"] for c in record["checks"]}
    assert record["scaling"][0]["layout"] == "single"
    assert "| 3 | single: -, -, - |" in scaling_table(record)


def test_the_chart_has_the_scaling_panels(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    record = _record(2.5)
    record.update(derive(record))
    path = write_chart(record, tmp_path / "chart.png", lambda _m: None)
    assert path is not None
    assert path.stat().st_size > 0


def test_the_layout_option_reaches_every_network_and_the_record() -> None:
    settings = settings_from(build_parser().parse_args(
        ["--layout", "namespaces", "--scaling-banks", "10,20", "--scaling-duration", "15"]))
    assert settings.layout == "namespaces"
    assert settings.main_shape.layout == "namespaces"
    assert settings.scaling_banks == (10, 20)
    assert settings.scaling_duration == 15.0
    quick = settings_from(build_parser().parse_args(["--quick", "--layout", "namespaces"]))
    assert quick.main_shape.layout == "namespaces"
    assert quick.main_shape.banks == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scaling-duration", "0"], r"scaling_duration must be positive"),
        (["--idle-seconds", "-1"], "idle_seconds must be positive"),
        (["--scaling-banks", "1,10"], r"scaling_banks must each be at least 2, got \[1\]"),
        (["--scaling-concurrency", "0"], "scaling_concurrency must be at least 1"),
    ],
)
def test_bad_options_are_refused_by_name(argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit, match=message):
        settings_from(build_parser().parse_args(argv))


def test_an_unknown_layout_is_refused() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--layout", "pairs"])
    with pytest.raises(ValueError, match=r"Shape\.layout must be one of"):
        Shape(layout="pairs")
    with pytest.raises(ValueError, match="layout must be one of"):
        Settings(layout="pairs")


def test_the_consortium_file_carries_the_layout(tmp_path: Path) -> None:
    path = write_consortium(tmp_path / "c.yaml", Shape(banks=5, layout="namespaces"),
                            name="benchx", base_port=38000)  # fmt: skip
    data = yaml.safe_load(path.read_text())
    assert data["chaincode"]["layout"] == "namespaces"
    assert data["chaincode"]["name"] == "dtoken"
    assert [b["name"] for b in data["banks"]][3:] == ["bank04", "bank05"]
    assert data["base_port"] == 38000


def test_networks_of_one_run_stay_inside_its_port_range() -> None:
    suite = Suite(Settings(base_port=18000), lambda _m: None)
    try:
        main = suite._port_block(Shape())  # 3 orderers + 3 banks + regulator: 70 ports
        ten = suite._port_block(Shape(banks=10))  # 14 slots: 140 ports
        twenty = suite._port_block(Shape(banks=20))  # 24 slots: 240 ports
        assert (main, ten, twenty) == (18000, 18100, 18300)
        for _ in range(10):
            base = suite._port_block(Shape(banks=20))
            assert base >= 18000
            assert base + 300 <= 18000 + PORT_SPAN
        with pytest.raises(ValueError, match="needs 1100 ports"):
            suite._port_block(Shape(banks=100, orderers=6))
    finally:
        shutil.rmtree(suite.root, ignore_errors=True)
