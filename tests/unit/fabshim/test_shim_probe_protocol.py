"""shim_probe over the real protocol: the fake peer and MemoryLedger give the same answers."""

from __future__ import annotations

from datetime import datetime

import pytest
import shim_probe
from fabshim.testing import MemoryLedger
from unit.fabcontract.probe_scenario import IDENTITY, Step, run_scenario
from unit.fabshim.shim_fakepeer import FakePeer, completed
from unit.fabshim.shim_harness import connected


async def memory_answers() -> list[tuple[int, str, bytes]]:
    ledger = MemoryLedger()

    async def run(step: Step, tx_id: str, when: datetime) -> tuple[int, str, bytes]:
        call = ledger.invoke if step.submit else ledger.evaluate
        response = await call(
            shim_probe.chaincode,
            step.function,
            *step.args,
            transient=step.transient,
            creator=IDENTITY.creator,
            tx_id=tx_id,
            timestamp=when,
        )
        return response.status, response.message, response.payload

    return await run_scenario(run)


@pytest.mark.parametrize(
    "features",
    [
        {},
        {"use_write_batch": True, "max_size_write_batch": 2},
        {"use_get_multiple_keys": True, "max_size_get_multiple_keys": 2},
        {
            "use_write_batch": True,
            "max_size_write_batch": 1000,
            "use_get_multiple_keys": True,
            "max_size_get_multiple_keys": 1000,
        },
    ],
    ids=["plain", "batched-writes", "multi-reads", "both"],
)
async def test_probe_gives_the_same_answers_over_the_protocol(features: dict[str, object]) -> None:
    expected = await memory_answers()
    peer = FakePeer(max_result_limit=2, **features)  # type: ignore[arg-type]

    async with connected(shim_probe.chaincode, peer) as (_, peer):

        async def run(step: Step, tx_id: str, when: datetime) -> tuple[int, str, bytes]:
            result = await peer.execute(
                step.function,
                *step.args,
                tx_id=tx_id,
                timestamp=when,
                transient=step.transient,
                creator=IDENTITY.serialized(),
            )
            return result.status, result.error_text, result.payload

        answers = await run_scenario(run)
        assert peer.violations == []
    assert answers == expected


async def test_probe_invoke_chaincode_over_the_protocol() -> None:
    peer = FakePeer()
    peer.chaincodes["other"] = lambda args: completed(200, b"answer:" + b",".join(args))
    async with connected(shim_probe.chaincode, peer) as (_, peer):
        result = await peer.execute("invoke_chaincode", "other", '["f","x"]')
        assert result.payload == b'{"payload":"answer:f,x","status":200}'
        event = await peer.execute("set_event", "Paid", "{}")
        assert event.event == ("Paid", b"{}")
