"""The outputs of a run: derived ratios and targets, the JSON record, the chart, the table.

Ratios are computed per round of the ``ratios`` section (the points of one round ran one
after another, so drift and other users' load hit them alike) and reported as the median
over the rounds, with the lowest and highest round.

The scaling section gives one row per network size (:func:`scaling_rows`) and the checks of
issue 15 (:data:`CHECKS_WHAT`): CPU per transfer per peer with the idle CPU subtracted at the
largest size against 3 banks, the private transfer against the no-op ceiling and against
the private floor, and the cross-bank payment's latency at each size.

Must not: run anything; it reads records (also older ones, whose points lack the newer
fields: those show as ``-``).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "checks_table",
    "derive",
    "points_table",
    "ratio_table",
    "scaling_rows",
    "scaling_table",
    "write_chart",
    "write_record",
]

PAYMENT_P50_MS = 500.0
PAYMENT_P99_MS = 1000.0
# issue 15's checks
CPU_PER_PEER_GROWTH_MAX = 1.3  # CPU per transfer per peer at the largest size / at 3 banks
TRANSFER_VS_NOOP_MIN = 0.34  # private intra-bank transfer / no-op ceiling, same run
TRANSFER_VS_FLOOR_BEFORE = 0.61  # transfer / private floor before the layout: to be beaten
PAYMENTS_CARRIED_MIN = 0.9  # of the payments offered in the window, completed in it

# name, numerator point, denominator point, target (>=), what it says
RATIOS: tuple[tuple[str, str, str, float | None, str], ...] = (
    ("contract_vs_node_shim", "transfer-py", "transfer-node", 1.0,
     "Python deposit-token transfer / same state access on the Node fabric-shim"),
    ("private_transfer_vs_noop_ceiling", "transfer-py", "noop-py", 0.6,
     "private intra-bank transfer / no-op ceiling (Python no-op, our shim)"),
    ("python_client_vs_node_client", "noop-py", "client-node-noop", 1.3,
     "our Python client / stock Node @hyperledger/fabric-gateway, on the no-op (where the "
     "client is what differs)"),
    ("python_client_vs_node_client_transfer", "transfer-py", "client-node", None,
     "our Python client / stock Node @hyperledger/fabric-gateway, same private transfer "
     "(reference: the network's cost per transfer is the same for both)"),
    ("noop_python_shim_vs_node_shim", "noop-py", "noop-node", None,
     "no-op on our shim / no-op on the Node fabric-shim (reference)"),
    ("private_transfer_vs_node_noop", "transfer-py", "noop-node", None,
     "private intra-bank transfer / Node no-op ceiling (reference)"),
    ("private_floor_vs_noop_ceiling", "floor-py", "noop-py", None,
     "smallest private transfer (2 private reads + 2 writes, one collection, no logic) / "
     "no-op ceiling (reference: the most a private transfer can reach here)"),
    ("private_transfer_vs_floor", "transfer-py", "floor-py", None,
     "private intra-bank transfer / that smallest private transfer (reference)"),
)  # fmt: skip


def _round_points(points: list[dict[str, Any]], name: str) -> dict[int, dict[str, Any]]:
    return {
        int(p["round"]): p
        for p in points
        if p["section"] == "ratios" and p["id"].split("/", 1)[1].split("#")[0] == name
    }


def _med(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def derive(record: dict[str, Any]) -> dict[str, Any]:
    """Ratios, latency and conflict targets from a record's points."""
    points: list[dict[str, Any]] = record.get("points", [])
    ratios = []
    for name, num, den, target, what in RATIOS:
        a, b = _round_points(points, num), _round_points(points, den)
        rounds = sorted(set(a) & set(b))
        per_round = [a[r]["tx_per_s"] / b[r]["tx_per_s"] for r in rounds if b[r]["tx_per_s"] > 0]
        value = _med(per_round)
        # the same ratio from CPU per transaction (network + client): on a CPU-bound machine
        # throughput is the CPU we get divided by the CPU a transaction needs, so this one
        # does not move when other users take CPU away (it does move with block fill)
        by_cpu = [
            b[r]["cpu_ms_per_tx_total"] / a[r]["cpu_ms_per_tx_total"]
            for r in rounds
            if a[r].get("cpu_ms_per_tx_total") and b[r].get("cpu_ms_per_tx_total")
        ]
        ratios.append({
            "name": name,
            "what": what,
            "value": value,
            "min": round(min(per_round), 3) if per_round else None,
            "max": round(max(per_round), 3) if per_round else None,
            "rounds": len(per_round),
            "by_cpu_per_tx": _med(by_cpu),
            "numerator_tx_per_s": _med([a[r]["tx_per_s"] for r in rounds]),
            "denominator_tx_per_s": _med([b[r]["tx_per_s"] for r in rounds]),
            "target": target,
            "met": None if target is None or value is None else value >= target,
        })  # fmt: skip
    # client CPU per transaction: ours against the stock Node client's (same workload)
    py = _round_points(points, "transfer-py")
    nd = _round_points(points, "client-node")
    cpu = {
        "python_client_ms_per_tx": _med(
            [p["cpu_ms_per_tx"]["client"] for p in py.values() if p["cpu_ms_per_tx"]["client"]]
        ),
        "node_client_ms_per_tx": _med(
            [p["cpu_ms_per_tx"]["client"] for p in nd.values() if p["cpu_ms_per_tx"]["client"]]
        ),
    }
    # the chaincode servers' own CPU per transfer: ours against the Node shim's (same pattern)
    nc = _round_points(points, "transfer-node")
    cpu["python_chaincode_ms_per_transfer"] = _med(
        [v for p in py.values() if (v := p["cpu_ms_per_tx"].get("chaincode:dtoken"))]
    )
    cpu["node_chaincode_ms_per_transfer"] = _med(
        [v for p in nc.values() if (v := p["cpu_ms_per_tx"].get("chaincode:nodecc"))]
    )
    # the cross-bank payment latency at the moderate rate
    rate = record.get("settings", {}).get("moderate_rate")
    latency = None
    for p in points:
        if (
            p["section"] == "workloads"
            and p["workload"] == "payment"
            and p["loop"] == "open"
            and p.get("offered_rate") == rate
        ):
            lat = p["latency_ms"]
            latency = {
                "offered_rate_payments_per_s": rate,
                "p50_ms": lat["p50"],
                "p99_ms": lat["p99"],
                "completed": p["completed"],
                "failures": p["failures"],
                "target_p50_ms": PAYMENT_P50_MS,
                "target_p99_ms": PAYMENT_P99_MS,
                "met": lat["p50"] is not None
                and lat["p99"] is not None
                and lat["p50"] < PAYMENT_P50_MS
                and lat["p99"] < PAYMENT_P99_MS
                and not p["failures"],
                "phases_ms": p.get("payment_phases_ms"),
            }
    # how much of the machine other users' processes took while we measured (noise)
    shares = [
        p["cpu_s"]["others"] / p["cpu_s"]["machine"]
        for p in points
        if p.get("cpu_s", {}).get("machine") and p["cpu_s"].get("others") is not None
    ]
    noise = {
        "others_cpu_share_median": _med(shares),
        "others_cpu_share_max": round(max(shares), 3) if shares else None,
    }
    mvcc = sum(int(p.get("mvcc_conflicts", 0)) for p in points)
    other = sum(int(p.get("other_failures", 0)) for p in points)
    scaling = scaling_rows(record)
    return {
        "ratios": ratios,
        "cpu": cpu,
        "payment_latency": latency,
        "conflicts": {"mvcc_total": mvcc, "other_failures_total": other, "met": mvcc == 0},
        "noise": noise,
        "scaling": scaling,
        "checks": checks(ratios, scaling),
    }


def _by_role(memory: dict[str, Any] | None) -> dict[str, float] | None:
    return None if not memory else dict(memory.get("by_role", {}))


def scaling_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per size of the scaling section: the network (layout, namespaces, nodes, up
    time, idle CPU, memory by role idle and after load), the transfer point and the payment
    point (throughput, latency, CPU per transaction with the idle CPU subtracted)."""
    points = [p for p in record.get("points", []) if p.get("section") == "scaling"]
    nets = {n["shape"]["banks"]: n for n in record.get("networks", [])
            if n.get("role") in ("main", "scaling")}  # fmt: skip
    rows = []
    for banks in sorted({int(p["banks"]) for p in points if "banks" in p}):
        at = [p for p in points if p.get("banks") == banks]
        transfer = next((p for p in at if p.get("workload") == "transfer"), None)
        payment = next((p for p in at if p.get("workload") == "payment"), None)
        net = nets.get(banks, {})
        shape = net.get("shape", {})
        idle = net.get("idle_cpu_before_points") or net.get("idle_cpu") or {}
        by_node = (net.get("memory_idle") or {}).get("by_node", {})
        row: dict[str, Any] = {
            "banks": banks,
            "layout": shape.get("layout", "single"),
            "namespaces": net.get("namespaces"),
            "peers": banks + (1 if shape.get("regulator") else 0) if shape else None,
            "orderers": shape.get("orderers"),
            "chaincode_servers": sum(1 for n in by_node if n.startswith("chaincode")) or None,
            "up_s": net.get("up_s"),
            "idle_cores": idle.get("cores"),
            "memory_idle_mb": _by_role(net.get("memory_idle")),
            "memory_loaded_mb": _by_role(net.get("memory_loaded")),
            "memory_loaded_by_chaincode_mb": (net.get("memory_loaded") or {}).get("by_chaincode"),
        }
        if transfer is not None:
            sub = transfer.get("idle_subtracted") or {}
            row["transfer"] = {
                "concurrency": transfer.get("concurrency"),
                "tx_per_s": transfer["tx_per_s"],
                "p50_ms": transfer["latency_ms"]["p50"],
                "p99_ms": transfer["latency_ms"]["p99"],
                "failures": transfer.get("failures", {}),
                "cpu_ms_per_tx_raw": transfer.get("cpu_ms_per_tx_total"),
                "cpu_ms_per_tx": sub.get("ms_per_tx"),
                "cpu_ms_per_tx_per_peer": sub.get("ms_per_tx_per_peer"),
                "idle_share_of_peers": sub.get("idle_share_of_peers"),
            }
        if payment is not None:
            lat = payment["latency_ms"]
            sub = payment.get("idle_subtracted") or {}
            # a payment whose event never came neither completes nor fails inside the
            # window: the offered load must also have been carried (90 % of it)
            offered = (payment.get("offered_rate") or 0.0) * (payment.get("elapsed_s") or 0.0)
            carried = payment.get("completed", 0) >= PAYMENTS_CARRIED_MIN * offered
            met = (lat["p50"] is not None and lat["p99"] is not None
                   and lat["p50"] < PAYMENT_P50_MS and lat["p99"] < PAYMENT_P99_MS
                   and not payment.get("failures") and carried)  # fmt: skip
            row["payment"] = {
                "offered_rate": payment.get("offered_rate"),
                "completed": payment.get("completed"),
                "failures": payment.get("failures", {}),
                "p50_ms": lat["p50"],
                "p99_ms": lat["p99"],
                "phases_ms": payment.get("payment_phases_ms"),
                "cpu_ms_per_tx_per_peer": sub.get("ms_per_tx_per_peer"),
                "offered": round(offered, 1),
                "acceptor": payment.get("acceptor"),
                "met": met,
            }
        rows.append(row)
    return rows


def checks(ratios: list[dict[str, Any]], scaling: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issue 15's checks from one run; a check whose points did not run is left out."""
    out: list[dict[str, Any]] = []
    per_peer = [(r["banks"], r["transfer"]["cpu_ms_per_tx_per_peer"]) for r in scaling
                if r.get("transfer", {}).get("cpu_ms_per_tx_per_peer") is not None]  # fmt: skip
    if len(per_peer) >= 2:
        (small, base), (large, top) = per_peer[0], per_peer[-1]
        growth = round(top / base, 3) if base > 0 else None
        out.append({
            "name": "cpu_per_transfer_per_peer_growth",
            "what": f"CPU per transfer per peer, idle subtracted: {large} banks / {small} banks "
                    f"({top:.2f} / {base:.2f} ms)",
            "value": growth, "target": f"<= {CPU_PER_PEER_GROWTH_MAX:g}x",
            "met": None if growth is None else growth <= CPU_PER_PEER_GROWTH_MAX,
        })  # fmt: skip
    named = {r["name"]: r for r in ratios if r.get("rounds")}
    noop = named.get("private_transfer_vs_noop_ceiling")
    if noop is not None and noop["value"] is not None:
        out.append({
            "name": "private_transfer_vs_noop_ceiling_issue15",
            "what": "private intra-bank transfer / no-op ceiling, same run (median of rounds)",
            "value": noop["value"], "target": f">= {TRANSFER_VS_NOOP_MIN:g}x",
            "met": noop["value"] >= TRANSFER_VS_NOOP_MIN,
        })  # fmt: skip
    floor = named.get("private_transfer_vs_floor")
    if floor is not None and floor["value"] is not None:
        out.append({
            "name": "private_transfer_vs_floor",
            "what": "private intra-bank transfer / the private floor, same run (nearer the "
                    f"floor than {TRANSFER_VS_FLOOR_BEFORE:g}x before the layout)",
            "value": floor["value"], "target": f"> {TRANSFER_VS_FLOOR_BEFORE:g}x",
            "met": floor["value"] > TRANSFER_VS_FLOOR_BEFORE,
        })  # fmt: skip
    for r in scaling:
        pay = r.get("payment")
        if pay is None:
            continue
        out.append({
            "name": f"payment_latency_{r['banks']}banks",
            "what": f"cross-bank payment at {_fmt(pay['offered_rate'], 'g')} payments/s, "
                    f"{r['banks']} banks: p50 / p99 ms (completed {pay['completed']} of "
                    f"{_fmt(pay['offered'], '.0f')} offered, failed "
                    f"{sum(pay['failures'].values())})",
            "value": f"{_fmt(pay['p50_ms'], '.0f')} / {_fmt(pay['p99_ms'], '.0f')}",
            "target": f"< {PAYMENT_P50_MS:g} / {PAYMENT_P99_MS:g}",
            "met": pay["met"],
        })  # fmt: skip
    return out


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)


def ratio_table(record: dict[str, Any]) -> str:
    """The ratio table, as Markdown (also readable in a terminal)."""
    lines = [
        "| measure | value (median of rounds) | lowest-highest round | same ratio from CPU per "
        "tx | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in record["ratios"]:
        if not r["rounds"]:
            continue
        target = "(reference)" if r["target"] is None else f">= {r['target']:g}x"
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(
            f"| {r['what']} | **{_fmt(r['value'])}x** "
            f"({_fmt(r['numerator_tx_per_s'], '.0f')} / {_fmt(r['denominator_tx_per_s'], '.0f')}"
            f" tx/s) | {_fmt(r['min'])}-{_fmt(r['max'])} ({r['rounds']}) | "
            f"{_fmt(r.get('by_cpu_per_tx'))}x | {target} | {met} |"
        )
    lat = record.get("payment_latency")
    if lat:
        rate = f"{lat['offered_rate_payments_per_s']:g}"
        values = f"{_fmt(lat['p50_ms'], '.0f')} / {_fmt(lat['p99_ms'], '.0f')} ms"
        met = "yes" if lat["met"] else "**no**"
        lines.append(
            f"| cross-bank payment, both phases committed, at {rate} payments/s: p50 / p99 "
            f"| **{values}** | | | < 500 / 1000 ms | {met} |"
        )
    c = record["conflicts"]
    lines.append(
        f"| MVCC conflicts between unrelated transactions (all runs) | **{c['mvcc_total']}** "
        f"(other failures: {c['other_failures_total']}) | | | 0 | "
        f"{'yes' if c['met'] else '**no**'} |"
    )
    noise = record.get("noise", {})
    if noise.get("others_cpu_share_median") is not None:
        lines.append(
            f"| share of the machine's CPU used by other users' processes while measuring "
            f"(median / max) | {noise['others_cpu_share_median']:.0%} / "
            f"{noise['others_cpu_share_max']:.0%} | | | (noise) | |"
        )
    cpu = record.get("cpu", {})
    if cpu.get("node_chaincode_ms_per_transfer"):
        lines.append(
            f"| chaincode server CPU per transfer: Python contract / Node fabric-shim pattern | "
            f"{_fmt(cpu['python_chaincode_ms_per_transfer'])} / "
            f"{_fmt(cpu['node_chaincode_ms_per_transfer'])} ms | | | (reference) | |"
        )
    if cpu.get("node_client_ms_per_tx"):
        lines.append(
            f"| client CPU per transfer: Python / stock Node | "
            f"{_fmt(cpu['python_client_ms_per_tx'])} / {_fmt(cpu['node_client_ms_per_tx'])} ms"
            f" | | | (reference) | |"
        )
    scan = record.get("pending_scan")
    if scan:
        lines.append(
            f"| payee bank's `get_pending` after {scan['transfers_in_pair']} transfers in the "
            f"pair: every transfer / the last {scan['window_s']:g} s (the listener's window) | "
            f"{_fmt(scan['full_ms'], '.0f')} / {_fmt(scan['window_ms'], '.0f')} ms | | | "
            f"(reference) | |"
        )
    return "\n".join(lines)


def _mem(by_role: dict[str, float] | None) -> str:
    if not by_role:
        return "-"
    return " / ".join(_fmt(by_role.get(k), ",.0f") for k in ("peer", "chaincode", "orderer"))


def scaling_table(record: dict[str, Any]) -> str:
    """The scaling section as Markdown: one row per network size."""
    lines = [
        "| banks | layout: namespaces, most collections in one, in the transfer's | peers + "
        "chaincode servers + orderers | up, s | idle CPU, cores | memory idle, MiB: peers / "
        "chaincode servers / orderers | memory after load, MiB | transfer tx/s (in flight) | "
        "transfer p50 / p99 ms | CPU ms per transfer per peer, idle subtracted | CPU ms per "
        "transfer, all processes, idle subtracted (raw) | payment p50 / p99 ms (rate, "
        "completed, failed) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in record.get("scaling") or scaling_rows(record):
        ns = r.get("namespaces") or {}
        layout = (f"{r['layout']}: {ns.get('definitions', '-')}, {ns.get('max_collections', '-')}"
                  f", {ns.get('transfer_collections', '-')}")  # fmt: skip
        nodes = (f"{_fmt(r.get('peers'), 'd')} + {_fmt(r.get('chaincode_servers'), 'd')} + "
                 f"{_fmt(r.get('orderers'), 'd')}")
        t = r.get("transfer") or {}
        pay = r.get("payment") or {}
        fails = sum((pay.get("failures") or {}).values())
        pay_text = "-" if not pay else (
            f"{_fmt(pay.get('p50_ms'), '.0f')} / {_fmt(pay.get('p99_ms'), '.0f')} "
            f"({_fmt(pay.get('offered_rate'), 'g')}/s, {pay.get('completed')}, {fails})")
        tput = "-" if not t else f"{t['tx_per_s']:.0f} ({t.get('concurrency')})"
        lines.append(
            f"| {r['banks']} | {layout} | {nodes} | {_fmt(r.get('up_s'), '.1f')} | "
            f"{_fmt(r.get('idle_cores'), '.3f')} | {_mem(r.get('memory_idle_mb'))} | "
            f"{_mem(r.get('memory_loaded_mb'))} | {tput} | "
            f"{_fmt(t.get('p50_ms'), '.0f')} / {_fmt(t.get('p99_ms'), '.0f')} | "
            f"**{_fmt(t.get('cpu_ms_per_tx_per_peer'))}** | {_fmt(t.get('cpu_ms_per_tx'))} "
            f"({_fmt(t.get('cpu_ms_per_tx_raw'))}) | {pay_text} |"
        )
    return "\n".join(lines)


def checks_table(record: dict[str, Any]) -> str:
    """Issue 15's checks as Markdown."""
    lines = ["| check (issue 15) | value | target | met |", "|---|---|---|---|"]
    for c in record.get("checks", []):
        value = c["value"] if isinstance(c["value"], str) else f"{_fmt(c['value'])}x"
        met = "-" if c["met"] is None else ("yes" if c["met"] else "**no**")
        lines.append(f"| {c['what']} | **{value}** | {c['target']} | {met} |")
    return "\n".join(lines)


def points_table(record: dict[str, Any]) -> str:
    """Every point: throughput, latency, failures, CPU per transaction by role."""
    lines = [
        "| point | load | tx/s | p50 / p95 / p99 ms | MVCC / other failures | CPU ms/tx: "
        "gateway peer, other peers, orderers, chaincode, client = total |",
        "|---|---|---|---|---|---|",
    ]
    for p in record["points"]:
        cpu = p["cpu_ms_per_tx"]
        chaincode = sum(v for k, v in cpu.items() if k.startswith("chaincode") and v)
        load = (f"{p['offered_rate']:g}/s" if p["loop"] == "open"
                else f"{p.get('concurrency')} in flight")  # fmt: skip
        lat = p["latency_ms"]
        lines.append(
            f"| {p['id']} | {load} | {p['tx_per_s']:.0f} | {_fmt(lat['p50'], '.0f')} / "
            f"{_fmt(lat['p95'], '.0f')} / {_fmt(lat['p99'], '.0f')} | {p['mvcc_conflicts']} / "
            f"{p['other_failures']} | {_fmt(cpu.get('peer (gateway)'))}, "
            f"{_fmt(cpu.get('peers (others)'))}, {_fmt(cpu.get('orderer'))}, "
            f"{_fmt(chaincode)}, {_fmt(cpu.get('client'))} = "
            f"{_fmt(p['cpu_ms_per_tx_total'])} |"
        )
    return "\n".join(lines)


def write_record(record: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    return path


def _legend(ax: Any, **kwargs: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)


def write_chart(record: dict[str, Any], path: Path, log: Callable[[str], None]) -> Path | None:
    """Throughput and latency against load (and the batch and scaling sweeps) as a PNG.

    Needs matplotlib (the project's ``bench`` extra); without it, no chart and a note.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("  (no chart: matplotlib is not installed; pip install --group bench)")
        return None
    points = record["points"]
    scaling = record.get("scaling") or scaling_rows(record)
    rows = 3 if scaling else 2
    fig, axes = plt.subplots(rows, 2, figsize=(13, 4.5 * rows), squeeze=False)
    fig.suptitle(
        f"dtbench {record['started_at']} - {record['machine']['cores']} cores "
        f"({record['machine']['cpu_model'][:40]}), Fabric {record['machine']['fabric']}",
        fontsize=10,
    )
    ax = axes[0][0]
    for workload, color in (("noop", "tab:gray"), ("transfer", "tab:blue")):
        sweep = sorted((p for p in points if p["id"].startswith(f"sweep/{workload}@")),
                       key=lambda p: p["concurrency"])  # fmt: skip
        if not sweep:
            continue
        xs = [p["tx_per_s"] for p in sweep]
        ax.plot(xs, [p["latency_ms"]["p50"] for p in sweep], "o-", color=color,
                label=f"{workload} p50")  # fmt: skip
        ax.plot(xs, [p["latency_ms"]["p99"] for p in sweep], "o--", color=color,
                label=f"{workload} p99")  # fmt: skip
        for p in sweep:
            ax.annotate(str(p["concurrency"]), (p["tx_per_s"], p["latency_ms"]["p50"]),
                        fontsize=7, textcoords="offset points", xytext=(3, -9))  # fmt: skip
    ax.set_xlabel("committed tx/s (closed loop; labels: transactions in flight)")
    ax.set_ylabel("latency, ms")
    ax.set_title("Throughput and latency against load", fontsize=10)
    _legend(ax, fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[0][1]
    pay = sorted((p for p in points if p["id"].startswith("sweep/payment@")),
                 key=lambda p: p["offered_rate"])  # fmt: skip
    if pay:
        xs = [p["offered_rate"] for p in pay]
        ax.plot(xs, [p["latency_ms"]["p50"] for p in pay], "o-", label="p50")
        ax.plot(xs, [p["latency_ms"]["p95"] for p in pay], "o-", label="p95")
        ax.plot(xs, [p["latency_ms"]["p99"] for p in pay], "o-", label="p99")
        ax.axhline(PAYMENT_P50_MS, color="tab:green", lw=0.8, ls=":", label="p50 target")
        ax.axhline(PAYMENT_P99_MS, color="tab:red", lw=0.8, ls=":", label="p99 target")
    ax.set_xlabel("offered cross-bank payments/s (open loop)")
    ax.set_ylabel("initiate -> event -> accept committed, ms")
    ax.set_title("Cross-bank payment end to end", fontsize=10)
    _legend(ax, fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[1][0]
    batch = [p for p in points if p["section"] == "batch"]
    ax2 = ax.twinx()
    for count, marker in ((100, "o"), (10, "s"), (500, "^")):
        pm = sorted((p for p in batch if p["workload"] == "payment"
                     and p["batch"]["max_message_count"] == count),
                    key=lambda p: p["batch"]["timeout_ms"])  # fmt: skip
        if not pm:
            continue
        xs = [p["batch"]["timeout_ms"] for p in pm]
        ax.plot(xs, [p["latency_ms"]["p50"] for p in pm], marker + "-", color="tab:blue",
                label=f"payment p50 (MaxMessageCount {count})")  # fmt: skip
        ax.plot(xs, [p["latency_ms"]["p99"] for p in pm], marker + "--", color="tab:blue",
                label=f"payment p99 (MaxMessageCount {count})")  # fmt: skip
        ax2.plot(xs, [2 * (p["cpu_ms_per_tx_total"] or 0) for p in pm], marker + ":",
                 color="tab:orange", label=f"CPU ms per payment ({count})")  # fmt: skip
    ax.axhline(PAYMENT_P50_MS, color="tab:green", lw=0.8, ls=":")
    ax.axhline(PAYMENT_P99_MS, color="tab:red", lw=0.8, ls=":")
    ax2.set_ylabel("CPU per payment, ms (network + client)")
    _legend(ax2, fontsize=7, loc="lower right")
    ax.set_xlabel("BatchTimeout, ms (payments at the moderate rate)")
    ax.set_ylabel("cross-bank payment latency, ms")
    ax.set_title("Batch settings", fontsize=10)
    _legend(ax, fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)

    ax = axes[1][1]
    nets = sorted((n for n in record["networks"] if n["role"] in ("main", "scaling")),
                  key=lambda n: n["shape"]["banks"])  # fmt: skip
    scal = {p["banks"]: p for p in points
            if p["section"] == "scaling" and p.get("workload", "transfer") == "transfer"}
    if nets:
        banks = [n["shape"]["banks"] for n in nets]
        ax.bar([b - 0.3 for b in banks], [n["up_s"] or 0 for n in nets], width=0.6,
               color="tab:gray", label="network up, s")  # fmt: skip
        memory = [n["memory_idle"]["total_mb"] / 100 for n in nets]
        ax.plot(banks, memory, "s-", color="tab:purple", label="memory after up, 100 MiB")
        ax2 = ax.twinx()
        ax2.plot([b for b in banks if b in scal], [scal[b]["tx_per_s"] for b in banks if b in scal],
                 "o-", color="tab:blue", label="transfer tx/s")  # fmt: skip
        ax2.set_ylabel("transfer, committed tx/s")
        _legend(ax2, fontsize=8, loc="upper right")
    ax.set_xlabel("banks")
    ax.set_title(f"Scaling ({record.get('layout', 'single')} layout)", fontsize=10)
    _legend(ax, fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)
    if scaling:
        _scaling_cpu_chart(axes[2][0], scaling)
        _scaling_payment_chart(axes[2][1], scaling)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _scaling_cpu_chart(ax: Any, rows: list[dict[str, Any]]) -> None:
    """CPU per transfer per peer (idle subtracted) and per transfer over all processes."""
    have = [r for r in rows if r.get("transfer", {}).get("cpu_ms_per_tx_per_peer") is not None]
    if have:
        banks = [r["banks"] for r in have]
        ax.plot(banks, [r["transfer"]["cpu_ms_per_tx_per_peer"] for r in have], "o-",
                color="tab:blue", label="per peer, idle subtracted")  # fmt: skip
        base = have[0]["transfer"]["cpu_ms_per_tx_per_peer"]
        ax.axhline(base * CPU_PER_PEER_GROWTH_MAX, color="tab:red", lw=0.8, ls=":",
                   label=f"{CPU_PER_PEER_GROWTH_MAX:g}x the {banks[0]}-bank figure")  # fmt: skip
        ax2 = ax.twinx()
        ax2.plot(banks, [r["transfer"]["cpu_ms_per_tx"] for r in have], "s--",
                 color="tab:orange", label="all processes, idle subtracted")  # fmt: skip
        ax2.set_ylabel("CPU ms per transfer, all processes")
        ax2.set_ylim(bottom=0)
        _legend(ax2, fontsize=8, loc="lower right")
        ax.set_ylim(bottom=0)
    ax.set_xlabel("banks")
    ax.set_ylabel("CPU ms per transfer per peer")
    ax.set_title("Scaling: CPU per intra-bank transfer", fontsize=10)
    _legend(ax, fontsize=8, loc="upper left")
    ax.grid(alpha=0.3)


def _scaling_payment_chart(ax: Any, rows: list[dict[str, Any]]) -> None:
    """The cross-bank payment's latency at each size."""
    have = [r for r in rows if r.get("payment", {}).get("p50_ms") is not None]
    if have:
        banks = [r["banks"] for r in have]
        ax.plot(banks, [r["payment"]["p50_ms"] for r in have], "o-", label="p50")
        ax.plot(banks, [r["payment"]["p99_ms"] for r in have], "o-", label="p99")
        ax.axhline(PAYMENT_P50_MS, color="tab:green", lw=0.8, ls=":", label="p50 target")
        ax.axhline(PAYMENT_P99_MS, color="tab:red", lw=0.8, ls=":", label="p99 target")
    ax.set_xlabel("banks (payments at the moderate rate, open loop)")
    ax.set_ylabel("call -> accept committed at the payee, ms")
    ax.set_title("Scaling: cross-bank payment latency", fontsize=10)
    _legend(ax, fontsize=8)
    ax.grid(alpha=0.3)


def main(argv: list[str] | None = None) -> int:
    """``python -m dtbench.report RECORD.json [--chart OUT.png]``: the tables of a saved run
    (ratios derived again, so a record from an older version reads the same way)."""
    import argparse
    import sys

    p = argparse.ArgumentParser(prog="python -m dtbench.report")
    p.add_argument("record", type=Path)
    p.add_argument("--chart", type=Path)
    args = p.parse_args(argv)
    record = json.loads(args.record.read_text())
    record.update(derive(record))
    print(ratio_table(record))
    if record["scaling"]:
        print()
        print(scaling_table(record))
    if record["checks"]:
        print()
        print(checks_table(record))
    print()
    print(points_table(record))
    if args.chart:
        write_chart(record, args.chart, lambda m: print(m, file=sys.stderr))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
