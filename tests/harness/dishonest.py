"""A dishonest bank on a test network: its peer dials ``tests/chaincodes/dishonest_token.py``.

The honest contract plus transactions that break it (see that module), served at the bank's
chaincode address with the same package id and environment, so the bank's peer runs it
without knowing. The honest server is back afterwards, whatever happened.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from consortium import processes

from harness.network import TestNetwork

__all__ = ["chaincode_node", "dishonest_server"]


def chaincode_node(org: str, peer: str = "peer0") -> str:
    """The name of the chaincode server node that ``org``'s ``peer`` dials."""
    return f"chaincode.{peer}.{org}.dtoken.example"


@contextmanager
def dishonest_server(network: TestNetwork, node_name: str) -> Iterator[None]:
    """The organization of chaincode node ``node_name`` (see :func:`chaincode_node`) runs
    the dishonest server for the duration of the block."""
    node = network.node(node_name)
    honest = node.spec
    dishonest = dataclasses.replace(
        honest, argv=[sys.executable, "-m", "fabshim", "serve", "dishonest_token:chaincode"]
    )
    host, port = node.endpoint.rsplit(":", 1)
    processes.stop(honest)
    try:
        processes.start(dishonest)
        processes.wait_port(dishonest, host, int(port))
        yield
    finally:
        processes.stop(dishonest)
        processes.start(honest)
        processes.wait_port(honest, host, int(port))
