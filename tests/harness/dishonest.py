"""A dishonest bank on a test network: its peer dials ``tests/chaincodes/dishonest_token.py``.

The honest contract plus transactions that break it (see that module), served at the bank's
chaincode address with the same package id and environment, so the bank's peer runs it
without knowing. The honest server is back afterwards, whatever happened.

Under the namespace layout a bank's peer runs chaincode only in the namespaces its
organization approved with a package of its own: its own namespace and its pair namespaces.
To write where another bank's data lives (``acct-<other>``, ``holds-<other>`` in
``<cc>-<other>``), a dishonest bank first approves that namespace's committed definition with
its own storage package (:func:`runs_namespace`: an approval its admin alone makes, which
changes no definition), so that its peer simulates the forged write there. The committers
then judge it by the policies of the namespace it wrote: that is the attack on the layout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from consortium import namespaces
from consortium.lifecycle_client import Approval, LifecycleClient

from harness.network import TestNetwork

__all__ = ["chaincode_node", "dishonest_server", "runs_namespace"]


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


@asynccontextmanager
async def runs_namespace(
    network: TestNetwork, org_name: str, namespace: str
) -> AsyncIterator[None]:
    """``org_name``'s peer runs the storage chaincode in ``namespace`` (another
    organization's namespace under the layout) for the duration of the block: its admin
    approves the committed definition with the organization's storage package, and
    afterwards approves it again without a package (what the bootstrap leaves). Nothing to
    do on the single namespace, where every bank's peer runs the one chaincode."""
    if network.layout != "namespaces":
        yield
        return
    c = network.consortium
    lifecycle = network.network.lifecycle
    [found] = [d for d in namespaces.definitions(c) if d.name == namespace]
    definition = lifecycle.namespace_definition(found)
    org = c.org(org_name)
    storage = lifecycle.catalog.package_id(org, lifecycle.catalog.storage())

    async def approve(package_id: str | None) -> None:
        async with LifecycleClient(c, lifecycle.layout) as client:
            await client.approve_all([Approval(definition, org, package_id)])

    await approve(storage)
    try:
        yield
    finally:
        await approve(storage if found.package_of(org_name) else None)
