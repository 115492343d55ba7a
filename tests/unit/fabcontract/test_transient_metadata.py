"""``@transaction(transient=...)``: private inputs are described in ``GetMetadata``, from
their type, as fabric-contract-api describes parameters."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from fabcontract import Context, Contract, ContractChaincode, ContractDefinitionError, transaction
from fabcontract.serialization import json_schema
from fabshim.testing import MemoryLedger


class Side(enum.Enum):
    BUY = "buy"
    SELL = "sell"


@dataclass(frozen=True)
class Leg:
    venue: str
    size: int


@dataclass(frozen=True)
class Order:
    side: Side
    legs: tuple[Leg, ...]
    note: str | None = None
    window: tuple[int, int] = (0, 0)
    tags: Mapping[str, str] = field(default_factory=dict)


class Desk(Contract):
    @transaction(transient={"order": Order})
    async def place(self, ctx: Context) -> dict[str, Any]:
        """Place an order read from the transient map."""
        return {"read": sorted(ctx.transient)}

    @transaction(evaluate=True)
    async def ping(self, ctx: Context) -> str:
        return "pong"


async def test_the_transient_schema_is_published_and_the_input_stays_transient() -> None:
    chaincode = ContractChaincode(Desk())
    response = await MemoryLedger().evaluate(chaincode, "org.hyperledger.fabric:GetMetadata")
    metadata = json.loads(response.payload)
    entries = {t["name"]: t for t in metadata["contracts"]["Desk"]["transactions"]}
    assert "transient" not in entries["ping"]
    assert entries["place"]["parameters"] == []
    assert entries["place"]["transient"] == [{
        "name": "order",
        "description": "",
        "schema": {
            "type": "object",
            "properties": {
                "side": {"type": "string", "enum": ["buy", "sell"]},
                "legs": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"venue": {"type": "string"}, "size": {"type": "integer"}},
                    "additionalProperties": False,
                    "required": ["venue", "size"],
                }},
                "note": {"type": "string"},
                "window": {"type": "array", "items": {"type": "integer"},
                           "minItems": 2, "maxItems": 2},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "additionalProperties": False,
            "required": ["side", "legs"],
        },
    }]
    placed = await MemoryLedger().invoke(chaincode, "place", transient={"order": b"{}"})
    assert json.loads(placed.payload) == {"read": ["order"]}


@pytest.mark.parametrize("annotation", [int | str, tuple[int, str], float])
def test_a_type_without_a_json_schema_is_refused_when_the_contract_is_built(
    annotation: Any,
) -> None:
    with pytest.raises(ContractDefinitionError):
        json_schema(annotation, "Desk.place")
