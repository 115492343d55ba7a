"""The bank SDK on a test network: a bank's or the regulator's client, opened and closed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dtoken.bank import Bank, Regulator

from harness.network import TestNetwork

__all__ = ["bank", "regulator"]


@asynccontextmanager
async def bank(network: TestNetwork, org: str, identity: str = "operator") -> AsyncIterator[Bank]:
    """``org``'s SDK client as ``identity``."""
    async with Bank.connect(network.profile_path(org), identity=identity) as client:
        yield client


@asynccontextmanager
async def regulator(network: TestNetwork) -> AsyncIterator[Regulator]:
    """The regulator's SDK client."""
    async with Regulator.connect(network.profile_path("regulator")) as client:
        yield client
