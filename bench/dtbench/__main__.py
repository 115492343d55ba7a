"""``python -m dtbench`` (what ``bench/run`` runs): the whole suite, or a part of it.

Writes ``<out>/record.json`` and ``<out>/chart.png`` (default ``bench/results/<UTC time>/``)
and prints the ratio table (and, with the scaling section, the scaling table and the
issue-15 checks). Exit 0 when the suite ran (whatever the figures), 1 if it
failed, 2 on bad usage; with ``--check``, 3 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from dtbench.cluster import BENCH_DIR, LAYOUTS, cleanup_stale_runs
from dtbench.report import (
    checks_table,
    points_table,
    ratio_table,
    scaling_table,
    write_chart,
    write_record,
)
from dtbench.suite import SECTIONS, Settings, run_suite


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(",") if v)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(",") if v)


def _pairs(text: str) -> tuple[tuple[int, int], ...]:
    out = []
    for item in (v for v in text.split(",") if v):
        timeout, _, count = item.partition("x")
        out.append((int(timeout), int(count)))
    return tuple(out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__.split("\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="a few seconds per workload on a small network (the test smoke)",
    )
    p.add_argument(
        "--sections",
        default=None,
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    p.add_argument("--duration", type=float, help="seconds measured per point (default 10)")
    p.add_argument("--warmup", type=float, help="seconds of load before each window (2)")
    p.add_argument("--concurrency", type=int, help="transactions in flight (default 128)")
    p.add_argument("--repeats", type=int, help="interleaved rounds of the ratio points (5)")
    p.add_argument("--sweep", type=_ints, help="closed-loop concurrencies (8,32,128,256)")
    p.add_argument("--payment-rates", type=_floats, help="open-loop payments/s (5,10,20,40)")
    p.add_argument(
        "--moderate-rate", type=float, help="payments/s at which the latency target is checked (10)"
    )
    p.add_argument("--scaling-banks", type=_ints, help="bank counts besides 3 (10,20)")
    p.add_argument("--scaling-duration", type=float,
                   help="seconds measured per scaling point (10)")
    p.add_argument("--scaling-concurrency", type=int,
                   help="transfers in flight at each scaling point (64)")
    p.add_argument("--idle-seconds", type=float,
                   help="seconds of idle CPU measured before each size's scaling points (10)")
    p.add_argument("--layout", choices=LAYOUTS,
                   help="chaincode layout of every network the run builds: single (one "
                        "dtoken namespace, the default) or namespaces (docs/architecture.md)")
    p.add_argument(
        "--batch-settings",
        type=_pairs,
        help="BatchTimeout ms x MaxMessageCount besides 150x100 "
        "(50x100,100x100,250x100,500x100,150x10)",
    )
    p.add_argument("--base-port", type=int, help="first port of the benchmark's networks")
    p.add_argument("--no-node", action="store_true", help="skip the Node anchors")
    p.add_argument("--out", type=Path, help="output folder (bench/results/<time>)")
    p.add_argument("--check", action="store_true", help="exit 3 if a target is missed")
    p.add_argument("--points", action="store_true", help="also print every point")
    return p  # fmt: skip


def settings_from(args: argparse.Namespace) -> Settings:
    s = Settings.quick_mode() if args.quick else Settings()
    if args.sections:
        wanted = tuple(x for x in args.sections.split(",") if x)
        unknown = [x for x in wanted if x not in SECTIONS]
        if unknown:
            raise SystemExit(f"bench/run: unknown section(s) {unknown}; known: {SECTIONS}")
        s.sections = wanted
    for name in ("duration", "warmup", "concurrency", "repeats", "sweep", "payment_rates",
                 "moderate_rate", "scaling_banks", "batch_settings", "base_port",
                 "scaling_duration", "scaling_concurrency", "idle_seconds",
                 "layout"):  # fmt: skip
        value = getattr(args, name)
        if value is not None:
            setattr(s, name, value)
    if args.no_node:
        s.node = False
    try:
        s.check()
    except ValueError as exc:
        raise SystemExit(f"bench/run: {exc}") from None
    return s


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    out: Path = args.out or BENCH_DIR / "results" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    signal.signal(signal.SIGTERM, _terminate)
    for root in cleanup_stale_runs(_log):
        _log(f"cleaned up a stale benchmark run: {root}")
    try:
        record = asyncio.run(run_suite(settings, _log))
    except KeyboardInterrupt:
        _log("interrupted: networks taken down")
        return 1
    json_path = write_record(record, out / "record.json")
    chart = write_chart(record, out / "chart.png", _log)
    print()
    print(f"dtbench {record['mode']} run, {record['started_at']}, {record['duration_s']:.0f} s, "
          f"{record['machine']['cores']} cores, {record['machine']['cpu_model']}, "
          f"layout {record['layout']}, load average {record['machine']['loadavg_start']} -> "
          f"{record['machine']['loadavg_end']}")  # fmt: skip
    print()
    print(ratio_table(record))
    if record.get("scaling"):
        print()
        print(scaling_table(record))
    if record.get("checks"):
        print()
        print(checks_table(record))
    if args.points:
        print()
        print(points_table(record))
    print()
    print(f"record: {json_path}")
    if chart is not None:
        print(f"chart:  {chart}")
    for note in record["notes"]:
        print(f"note: {note}")
    if args.check:
        missed = [r["name"] for r in record["ratios"] if r["met"] is False]
        if record.get("payment_latency") and not record["payment_latency"]["met"]:
            missed.append("payment_latency")
        if not record["conflicts"]["met"]:
            missed.append("mvcc_conflicts")
        missed += [c["name"] for c in record.get("checks", []) if c["met"] is False]
        if missed:
            print(f"targets missed: {', '.join(missed)}")
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
