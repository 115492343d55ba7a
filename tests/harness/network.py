"""A real network for tests (see the package docstring)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from consortium import config as config_mod
from consortium import processes
from consortium.config import Consortium, Org
from consortium.network import Network, NodeHandle

#: The repository's checkout (the tests run from it, never from an installed wheel).
REPO_ROOT = Path(__file__).resolve().parents[2]

DEFAULT_CONFIG = REPO_ROOT / "config" / "consortium.yaml"
TESTS_CHAINCODES = REPO_ROOT / "tests" / "chaincodes"


#: The namespace layouts a test run can bring its networks up on (``--layout``).
LAYOUTS = ("single", "namespaces")


def test_layout() -> str:
    """The test run's namespace layout: ``$DTOKEN_TEST_LAYOUT`` (set from ``--layout`` by
    the integration conftest), else ``single``. ``ValueError`` naming the variable for
    anything else."""
    layout = os.environ.get("DTOKEN_TEST_LAYOUT") or "single"
    if layout not in LAYOUTS:
        raise ValueError(f"DTOKEN_TEST_LAYOUT must be one of {', '.join(LAYOUTS)}, "
                         f"not {layout!r}")
    return layout


def consortium_variant(target: Path, **overrides: Any) -> Path:
    """Write a copy of the default consortium with top-level fields overridden.

    ``overrides`` may replace whole sections (``banks=[...]``) or use dotted
    keys via nested dicts (``ordering={"orderers": 1}`` merges into ``ordering``).
    The chaincode's ``layout`` is the test run's (:func:`test_layout`) unless the
    overrides name one (``chaincode={"layout": "single"}`` for a test that needs it).
    """
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    chaincode = overrides.get("chaincode")
    if not (isinstance(chaincode, dict) and "layout" in chaincode):
        overrides = {**overrides, "chaincode": {**(chaincode or {}), "layout": test_layout()}}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(data, sort_keys=False))
    return target


class TestNetwork:
    """A network a test session brought up, with fault-injection helpers."""

    __test__ = False  # not a test class

    def __init__(
        self,
        config_path: Path,
        state_dir: Path,
        log: Callable[[str], None],
        launcher: Callable[[str], Sequence[str]] | None = None,
        runtime: str | None = None,
    ) -> None:
        """``runtime``: where the nodes run (default: $DTOKEN_TEST_RUNTIME, else native)."""
        self.consortium: Consortium = config_mod.load(config_path)
        self.network = Network(
            self.consortium,
            state_dir,
            progress=log,
            extra_pythonpath=[TESTS_CHAINCODES],
            launcher=launcher,
            runtime=runtime or (None if launcher else os.environ.get("DTOKEN_TEST_RUNTIME")),
        )

    # -- lifecycle
    def up(self) -> float:
        return self.network.up()

    def down(self, purge: bool = False) -> list[str]:
        return self.network.down(purge=purge)

    @property
    def state_dir(self) -> Path:
        return self.network.state_dir

    # -- nodes
    def nodes(self, kind: str | None = None) -> list[NodeHandle]:
        return [n for n in self.network.nodes() if kind is None or n.kind == kind]

    def node(self, name: str) -> NodeHandle:
        return self.network.node(name)

    def kill(self, node: NodeHandle) -> None:
        """SIGKILL, as a crash would."""
        node.stop(kill=True)

    def stop(self, node: NodeHandle) -> None:
        node.stop()

    def restart(self, node: NodeHandle, timeout: float = 60.0) -> None:
        node.start()
        # Also for orderers and peers: /healthz answers before their gRPC server listens.
        node.wait_ready(timeout=timeout)

    def unhealthy(self) -> list[NodeHandle]:
        return [n for n in self.nodes() if not n.healthy()]

    def log_tail(self, node: NodeHandle, lines: int = 60) -> str:
        return processes.tail(node.log_file, lines)

    # -- organizations
    def bank(self, index: int = 0) -> Org:
        return self.consortium.banks[index]

    def profile_path(self, org_name: str) -> Path:
        """The organization's connection profile, as the SDK and the CLI take it."""
        return self.network.profile_path(self.consortium.org(org_name))

    def profile(self, org: Org) -> dict[str, Any]:
        return dict(json.loads(self.network.profile_path(org).read_text()))

    @property
    def layout(self) -> str:
        """The network's namespace layout (``single`` or ``namespaces``)."""
        return str(self.consortium.chaincode.layout.value)

    def namespace(self, org_name: str) -> str:
        """``org_name``'s top-level namespace: the chaincode's name on the single namespace,
        ``<cc>-<org>`` under the layout (the ``chaincode`` of its profile)."""
        return str(self.profile(self.consortium.org(org_name))["chaincode"])

    def peer_cli(
        self,
        org: Org,
        args: Sequence[str],
        *,
        check: bool = True,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run Fabric's ``peer`` CLI as ``org``'s admin against its first peer."""
        full_env = {**dict(_os_environ()), **self.network.admin_env(org), **(env or {})}
        proc = subprocess.run(
            [str(self.network.fabric.tool("peer")), *args],
            env=full_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"peer {' '.join(args[:3])} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def peer_targets(self, orgs: Sequence[Org]) -> list[str]:
        return self.network.admin.peer_targets(orgs)

    def orderer_args(self) -> list[str]:
        return self.network.orderer_args()

    def ledger_height(self, org: Org) -> int:
        out = self.peer_cli(org, ["channel", "getinfo", "-c", self.consortium.channel]).stdout
        out += ""
        info = json.loads(out[out.index("{") :])
        return int(info["height"])

    def wait_for(self, probe: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not probe():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.2)


def _os_environ() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("CORE_")}
