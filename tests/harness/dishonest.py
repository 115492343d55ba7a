"""A dishonest bank on a test network: its peer dials ``tests/chaincodes/dishonest_token.py``.

The honest contract plus transactions that break it (see that module), served at the bank's
chaincode address with the same package id and environment, so the bank's peer runs it
without knowing. The honest server is back afterwards, whatever happened.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

from harness.network import TestNetwork

__all__ = ["chaincode_node", "dishonest_server"]


def chaincode_node(org: str, peer: str = "peer0") -> str:
    """The name of the chaincode server node that ``org``'s ``peer`` dials."""
    return f"chaincode.{peer}.{org}.dtoken.example"


@contextmanager
def dishonest_server(network: TestNetwork, node_name: str) -> Iterator[None]:
    """The organization of chaincode node ``node_name`` (see :func:`chaincode_node`) runs
    the dishonest server for the duration of the block."""
    honest = network.node(node_name)
    python = honest.spec.argv[0]  # the runtime's Python (native, or in the node image)
    dishonest = dataclasses.replace(
        honest,
        spec=dataclasses.replace(
            honest.spec, argv=[python, "-m", "fabshim", "serve", "dishonest_token:chaincode"]
        ),
    )
    honest.stop()
    try:
        dishonest.start()
        dishonest.wait_ready(timeout=30)
        yield
    finally:
        dishonest.stop()
        honest.start()
        honest.wait_ready(timeout=30)
