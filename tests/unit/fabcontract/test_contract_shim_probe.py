"""shim_probe against MemoryLedger: every wrapper, and the ledger it leaves behind."""

from __future__ import annotations

import json
from datetime import datetime

import shim_probe
from fabshim import Response, Stub, success
from fabshim.testing import MemoryLedger
from unit.fabcontract.probe_scenario import IDENTITY, STEPS, Error, Step, run_scenario


async def test_probe_scenario_on_the_memory_ledger() -> None:
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

    await run_scenario(run)
    submitted_ok = sum(1 for step in STEPS if step.submit and not isinstance(step.expect, Error))
    assert ledger.height == submitted_ok
    assert ledger.get_state("k1") is None
    assert ledger.get_private_data("coll", "p1") == b"secret1"
    assert ledger.keys("coll") == ["p1"]
    assert [(event.name, event.payload) for event in ledger.events] == [("Moved", b'{"n":1}')]


class Other:
    async def init(self, stub: Stub) -> Response:
        return success()

    async def invoke(self, stub: Stub) -> Response:
        if stub.function == "refuse":
            return Response(403, "FORBIDDEN: not you")
        await stub.put_state("called", b"yes")
        return success(b"from-other:" + b",".join(stub.get_args()[1:]))


async def test_probe_invokes_another_chaincode_in_the_same_transaction() -> None:
    ledger = MemoryLedger()
    other_ledger = ledger.register_chaincode("other", Other())
    response = await ledger.invoke(shim_probe.chaincode, "invoke_chaincode", "other", '["f","x"]')
    assert response.payload == b'{"payload":"from-other:x","status":200}'
    assert other_ledger.get_state("called") == b"yes"

    refused = await ledger.invoke(shim_probe.chaincode, "invoke_chaincode", "other", '["refuse"]')
    assert refused.status == 500
    assert "FORBIDDEN: not you" in refused.message
    missing = await ledger.invoke(shim_probe.chaincode, "invoke_chaincode", "ghost", "[]")
    assert "chaincode ghost is not registered" in missing.message


async def test_cross_channel_invocation_discards_the_called_writes() -> None:
    ledger = MemoryLedger()
    other_ledger = ledger.register_chaincode("other", Other())
    response = await ledger.invoke(
        shim_probe.chaincode, "invoke_chaincode", "other", '["f"]', "otherchannel"
    )
    assert response.status == 200
    assert other_ledger.get_state("called") is None


async def test_every_probe_transaction_is_exercised() -> None:
    response = await MemoryLedger().evaluate(
        shim_probe.chaincode, "org.hyperledger.fabric:GetMetadata"
    )
    transactions = {
        t["name"]: t["tag"]
        for t in json.loads(response.payload)["contracts"]["ShimProbe"]["transactions"]
    }
    assert transactions["put_state"] == ["SUBMIT"]
    assert transactions["get_state"] == ["EVALUATE"]
    exercised = {step.function for step in STEPS} - {"no_such_function"}
    assert set(transactions) == exercised | {"invoke_chaincode"}
