"""The benchmark's own networks: consortium variants, up/down, anchors, process accounting.

Every network lives in a temporary state folder under a run root
(``$TMPDIR/dtbench-<pid>-<time>/``) marked with ``owner.pid``, on the run's ports
(``--base-port``, 8000 by default, and the :data:`PORT_SPAN` ports after it). A network is
built on the namespace layout or the single namespace (:attr:`Shape.layout`, the
consortium file's ``chaincode.layout``).
:func:`cleanup_stale_runs` takes down the networks of earlier runs whose owner process is
gone (e.g. a benchmark killed with SIGKILL), and nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from consortium import channel as channel_cfg
from consortium import config as config_mod
from consortium import namespaces as layout_defs
from consortium.config import Consortium, NamespaceLayout, Org
from consortium.network import Network, NodeHandle
from dtoken_wire.namespaces import bank_namespace

from dtbench.procstat import cpu_seconds, rss_mb

__all__ = [
    "BENCH_DIR",
    "LAYOUTS",
    "NODE_DIR",
    "PORT_SPAN",
    "Cluster",
    "Shape",
    "cleanup_stale_runs",
    "new_run_root",
]

BENCH_DIR = Path(__file__).resolve().parents[1]
NODE_DIR = BENCH_DIR / "node"
REPO_ROOT = BENCH_DIR.parent  # the bench runs from the repository's checkout
DEFAULT_CONFIG = REPO_ROOT / "config" / "consortium.yaml"
ROOT_PREFIX = "dtbench-"

NOOP_PY = "noop"  # the Python no-op chaincode's name on the channel
FLOOR_PY = "privfloor"  # dtbench.privprobe with one collection: the private-transfer floor
NODE_ANCHOR = "nodecc"  # the Node fabric-shim anchor's name on the channel
#: The consortium file's ``chaincode.layout`` values (docs/architecture.md, "Namespace layout").
LAYOUTS = tuple(v.value for v in NamespaceLayout)
#: Ports a run may use from its base port on: networks are placed in it one after another
#: (each needs 10 per node, rounded up to 100) and start again at the base port, since a run
#: takes a network down before it brings the next one up.
PORT_SPAN = 1000
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def ephemeral_overlap(first: int, last: int,
                      source: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int] | None:
    """The kernel's range of local ports for outgoing connections
    (``net.ipv4.ip_local_port_range``) if ``first``..``last`` overlaps it, else ``None`` (also
    where the kernel does not say). Nodes listening in that range fail to bind whenever a
    connection, the network's own peers' among them, was given one of its ports."""
    try:
        low, high = (int(x) for x in source.read_text().split())
    except (OSError, ValueError):
        return None
    return (low, high) if first <= high and last >= low else None


@dataclass(frozen=True)
class Shape:
    """What a benchmark network looks like."""

    banks: int = 3
    regulator: bool = True
    orderers: int = 3
    batch_timeout_ms: int = 150
    max_message_count: int = 100
    layout: str = NamespaceLayout.SINGLE.value  # the consortium file's chaincode.layout

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"Shape.layout must be one of {LAYOUTS}, got {self.layout!r}")
        if self.banks < 2:
            raise ValueError(f"Shape.banks must be at least 2 (a payer and a payee bank), "
                             f"got {self.banks}")  # fmt: skip

    def label(self) -> str:
        reg = "+reg" if self.regulator else ""
        layout = ", namespace layout" if self.layout == NamespaceLayout.NAMESPACES.value else ""
        return (
            f"{self.banks} banks{reg}, {self.orderers} orderer(s), "
            f"{self.batch_timeout_ms} ms / {self.max_message_count}{layout}"
        )

    def slots(self) -> int:
        """Port slots of ten the network takes (config: one per orderer and per peer)."""
        return self.orderers + self.banks + (1 if self.regulator else 0)


def write_consortium(path: Path, shape: Shape, *, name: str, base_port: int) -> Path:
    """The default consortium with ``shape`` applied (extra banks are USD-only)."""
    data: dict[str, Any] = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["name"] = name
    data["base_port"] = base_port
    data["chaincode"] = {**data["chaincode"], "layout": shape.layout}
    data["ordering"] = {
        **data["ordering"],
        "orderers": shape.orderers,
        "batch_timeout_ms": shape.batch_timeout_ms,
        "max_message_count": shape.max_message_count,
    }
    banks: list[dict[str, Any]] = list(data["banks"])[: shape.banks]
    for i in range(len(banks), shape.banks):
        n = i + 1
        banks.append(
            {
                "name": f"bank{n:02d}",
                "display_name": f"Benchmark Bank {n}",
                "msp_id": f"Bank{n:02d}MSP",
                "jurisdiction": "US",
                "currencies": ["USD"],
                "peers": 1,
            }
        )
    data["banks"] = banks
    data["regulator"] = {**data["regulator"], "enabled": shape.regulator}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def new_run_root() -> Path:
    """A fresh run root in the temp folder, marked as owned by this process."""
    root = Path(tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{os.getpid()}-"))
    (root / "owner.pid").write_text(f"{os.getpid()}\n")
    return root


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale_runs(log: Callable[[str], None]) -> list[Path]:
    """Take down the networks of earlier runs whose owner process is gone."""
    cleaned = []
    for root in Path(tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*"):
        marker = root / "owner.pid"
        try:
            owner = int(marker.read_text().strip())
        except (OSError, ValueError):
            continue
        if owner == os.getpid() or _alive(owner):
            continue
        for config_file in root.glob("*/consortium.yaml"):
            state = config_file.parent / "state"
            if not state.exists():
                continue
            try:
                net = Network(config_mod.load(config_file), state, progress=lambda _m: None)
                stopped = net.down()
            except Exception as exc:  # a broken leftover must not stop the benchmark
                log(f"cleanup: {state}: {type(exc).__name__}: {exc}")
                continue
            if stopped:
                log(f"cleanup: stopped {len(stopped)} leftover processes of {state}")
        shutil.rmtree(root, ignore_errors=True)
        cleaned.append(root)
    return cleaned


class Cluster:
    """One benchmark network: bring it up, deploy the anchors, account for its processes."""

    def __init__(
        self, root: Path, *, name: str, base_port: int, shape: Shape, log: Callable[[str], None]
    ) -> None:
        self.shape = shape
        self.dir = root / name
        self.config_path = write_consortium(
            self.dir / "consortium.yaml", shape, name=name, base_port=base_port
        )
        self.consortium: Consortium = config_mod.load(self.config_path)
        self.log = log
        self.network = Network(
            self.consortium,
            self.dir / "state",
            progress=lambda msg: log(f"    [{name}] {msg.strip()}"),
            extra_pythonpath=[BENCH_DIR],
        )
        self.up_seconds: float | None = None

    # ------------------------------------------------------------------ lifecycle

    def up(self) -> float:
        started = time.monotonic()
        self.network.up()
        self.up_seconds = time.monotonic() - started
        return self.up_seconds

    def down(self) -> None:
        try:
            self.network.down(purge=True)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ anchors

    @property
    def namespaced(self) -> bool:
        """Whether the network runs the namespace layout."""
        return self.consortium.chaincode.layout is NamespaceLayout.NAMESPACES

    def namespace_facts(self) -> dict[str, Any]:
        """How the deposit-token state is laid out: namespaces (chaincode definitions),
        the most collections any of them holds, and how many the namespace of the first
        bank's intra-bank transfer holds (every private key written there costs each peer
        a decode of that namespace's collection package)."""
        if self.namespaced:
            defs = layout_defs.definitions(self.consortium)
            own = bank_namespace(self.consortium.chaincode.name, self.bank(0).name)
            counts = {d.name: len(d.collections) for d in defs}
            return {"layout": "namespaces", "definitions": len(defs),
                    "max_collections": max(counts.values()),
                    "transfer_namespace": own, "transfer_collections": counts[own]}  # fmt: skip
        n = len(channel_cfg.collections_config(self.consortium))
        return {"layout": "single", "definitions": 1, "max_collections": n,
                "transfer_namespace": self.consortium.chaincode.name,
                "transfer_collections": n}  # fmt: skip

    def anchor_collections(self) -> list[dict[str, Any]]:
        """The collections the Node anchor gets: those of the namespace the Python
        contract's intra-bank transfer runs in (the first bank's own namespace under the
        layout, ``dtoken``'s every collection otherwise), so the two pay the same
        per-key collection decode and the comparison stays like for like."""
        if not self.namespaced:
            return channel_cfg.collections_config(self.consortium)
        own = bank_namespace(self.consortium.chaincode.name, self.bank(0).name)
        for d in layout_defs.definitions(self.consortium):
            if d.name == own:
                return list(d.collections)
        raise LookupError(f"no definition {own} in the layout")  # a bank always has one

    def any_bank_policy(self) -> str:
        return "OR(" + ", ".join(f"'{b.msp_id}.peer'" for b in self.consortium.banks) + ")"

    def deploy_noop(self) -> float:
        """The Python no-op chaincode (our shim); any one bank endorses."""
        t0 = time.monotonic()
        self.network.deploy(NOOP_PY, "dtbench.noop:chaincode", policy=self.any_bank_policy())
        return time.monotonic() - t0

    def deploy_floor(self) -> float:
        """:mod:`dtbench.privprobe` with a single collection, the first bank's ``acct-*``
        (members the bank and the regulator, endorsed by the bank, as in ``dtoken``)."""
        t0 = time.monotonic()
        coll = f"acct-{self.bank(0).name}"
        self.network.deploy(
            FLOOR_PY, "dtbench.privprobe:chaincode", policy=self.any_bank_policy(),
            collections=[c for c in channel_cfg.collections_config(self.consortium)
                         if c["name"] == coll],
        )  # fmt: skip
        return time.monotonic() - t0

    def deploy_node_anchor(self) -> float:
        """The Node fabric-shim anchor (no-op and the transfer's state-access pattern), with
        the collections of the namespace the Python contract's transfer runs in
        (:meth:`anchor_collections`)."""
        t0 = time.monotonic()
        self.network.deploy(
            NODE_ANCHOR,
            "node:bench/node/server.js",
            policy=self.any_bank_policy(),
            collections=self.anchor_collections(),
            argv=["node", str(NODE_DIR / "server.js")],
            env={"CORE_CHAINCODE_LOGGING_LEVEL": "WARNING"},
        )
        return time.monotonic() - t0

    # ------------------------------------------------------------------ organizations

    def bank(self, index: int) -> Org:
        return self.consortium.banks[index]

    def profile(self, org: Org) -> dict[str, Any]:
        return dict(json.loads(self.network.profile_path(org).read_text()))

    def registry(self) -> dict[str, Any]:
        return self.network.registry()

    # ------------------------------------------------------------------ accounting

    def nodes(self) -> list[NodeHandle]:
        return self.network.nodes()

    def pids(self) -> dict[str, tuple[str, int]]:
        """node name -> (role, pid) for every running node; role is ``orderer``, ``peer``
        or ``chaincode:<chaincode name>``."""
        out: dict[str, tuple[str, int]] = {}
        for handle in self.nodes():
            pid = handle.pid()
            if pid is None:
                continue
            role = handle.kind
            if role == "chaincode":
                role = "chaincode:" + _chaincode_of(handle.name, self.consortium.chaincode.name)
            out[handle.name] = (role, pid)
        return out

    def cpu_snapshot(self) -> dict[str, float]:
        out = {}
        for name, (_role, pid) in self.pids().items():
            value = cpu_seconds(pid)
            if value is not None:
                out[name] = value
        return out

    def idle_cpu(self, seconds: float) -> dict[str, Any]:
        """CPU the network burns with no load (gossip, Raft heartbeats, reconciliation),
        in cores (CPU seconds per second), in total, by role and by node, over ``seconds``.
        ``by_node`` is what :func:`dtbench.meter.idle_subtracted` takes away from a
        measurement window."""
        before = self.cpu_snapshot()
        t0 = time.monotonic()
        time.sleep(seconds)
        after = self.cpu_snapshot()
        elapsed = time.monotonic() - t0
        roles = {name: role.split(":", 1)[0] for name, (role, _pid) in self.pids().items()}
        by_node = {name: (end - before[name]) / elapsed
                   for name, end in after.items() if name in before}  # fmt: skip
        by_role: dict[str, float] = {}
        for name, cores in by_node.items():
            role = roles.get(name, "?")
            by_role[role] = by_role.get(role, 0.0) + cores
        return {
            "seconds": round(elapsed, 2),
            "cores": round(sum(by_node.values()), 4),
            "by_role": {k: round(v, 4) for k, v in sorted(by_role.items())},
            "by_node": {k: round(v, 5) for k, v in sorted(by_node.items())},
        }

    def memory(self) -> dict[str, Any]:
        """Resident memory (MiB) per node, summed per role (``peer``, ``orderer``,
        ``chaincode``) and per chaincode (``dtoken``, ``dtoken-storage``, the anchors')."""
        per_node: dict[str, float] = {}
        per_role: dict[str, float] = {}
        per_chaincode: dict[str, float] = {}
        for name, (role, pid) in self.pids().items():
            value = rss_mb(pid)
            if value is None:
                continue
            per_node[name] = round(value, 1)
            group, _, chaincode = role.partition(":")
            per_role[group] = round(per_role.get(group, 0.0) + value, 1)
            if chaincode:
                per_chaincode[chaincode] = round(per_chaincode.get(chaincode, 0.0) + value, 1)
        return {
            "total_mb": round(sum(per_node.values()), 1),
            "by_role": per_role,
            "by_chaincode": per_chaincode,
            "by_node": per_node,
        }


def _chaincode_of(node_name: str, main: str) -> str:
    # "chaincode.<peer>" is the consortium's chaincode; "chaincode-<name>.<peer>" another one
    head = node_name.split(".", 1)[0]
    return head.split("-", 1)[1] if "-" in head else main
