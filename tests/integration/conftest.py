"""One real Fabric network for the whole integration run.

The session fixture brings the default consortium up (on its own ports and in
its own state folder, so a demo network on the default ports is left alone),
yields it, prints the logs of failed or unhealthy nodes when any test failed,
and takes it down.

``--runtime containers`` (or ``DTOKEN_TEST_RUNTIME=containers``) runs the networks the tests
bring up in containers (``consortium.container_runtime``) instead of native processes; the
multi-host tests (network namespaces) stay native. Without a container engine, the tests that
need one are skipped with a message saying how to enable them.

``--layout namespaces`` (or ``DTOKEN_TEST_LAYOUT=namespaces``) brings the session network and
every ``own_network`` up on the namespace layout (docs/architecture.md, "Namespace layout"),
unless a test names its layout itself; ``single`` (one ``dtoken`` namespace) is the default.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import TestNetwork, consortium_variant
from harness.engine import engine_problem
from harness.network import LAYOUTS

TEST_BASE_PORT = int(os.environ.get("DTOKEN_TEST_BASE_PORT", "7400"))


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def network(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TestNetwork]:
    root = tmp_path_factory.mktemp("network")
    config = consortium_variant(
        root / "consortium.yaml", name="dtokentest", base_port=TEST_BASE_PORT
    )
    net = TestNetwork(config, root / "state", _log)
    started = time.monotonic()
    try:
        net.up()
    except Exception:
        _dump_logs(net, only_unhealthy=False)
        net.down()
        raise
    _log(f"integration network ({net.layout} layout) up in {time.monotonic() - started:.1f} s")
    yield net
    if request.session.testsfailed:
        _dump_logs(net, only_unhealthy=False)
    net.down(purge=not request.session.testsfailed)


def _dump_logs(net: TestNetwork, only_unhealthy: bool) -> None:
    for node in net.nodes():
        if only_unhealthy and node.healthy():
            continue
        tail = net.log_tail(node, 40)
        if tail:
            _log(f"\n----- {node.name} ({node.log_file}) -----\n{tail}")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--runtime", choices=("native", "containers"),
        default=os.environ.get("DTOKEN_TEST_RUNTIME") or "native",
        help="where the integration networks run (default: $DTOKEN_TEST_RUNTIME, else native)",
    )  # fmt: skip
    parser.addoption(
        "--layout", choices=LAYOUTS,
        default=os.environ.get("DTOKEN_TEST_LAYOUT") or "single",
        help="the namespace layout of the integration networks (default: $DTOKEN_TEST_LAYOUT, "
             "else single)",
    )  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    # The harness's TestNetwork reads it (own_network and the session network alike).
    os.environ["DTOKEN_TEST_RUNTIME"] = str(config.getoption("--runtime"))
    # consortium_variant reads it (own_network and the session network alike).
    os.environ["DTOKEN_TEST_LAYOUT"] = str(config.getoption("--layout"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    on_containers = config.getoption("--runtime") == "containers"
    for item in items:
        if here not in Path(str(item.fspath)).parents:
            continue
        item.add_marker(pytest.mark.integration)
        if on_containers or item.get_closest_marker("containers"):
            problem = engine_problem()
            if problem is not None:
                item.add_marker(pytest.mark.skip(reason=f"no container engine: {problem}"))
