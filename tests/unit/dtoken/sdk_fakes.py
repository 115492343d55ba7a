"""A fake peer for the bank SDK: fabgateway's FakePeer (a real gRPC server that checks
signatures and transaction ids) with a tiny ledger behind it.

It behaves as a Fabric peer does where the SDK's retry logic depends on it:

* a transaction's writes apply when it commits VALID, never at endorsement;
* an id already in a block is refused at endorsement *and* at evaluation ("duplicate
  transaction found"), committed valid or invalid;
* a second copy of an id that reaches a block is marked DUPLICATE_TXID and applies nothing; the
  commit status of an id is its first copy's;
* ``commit_codes[tx_id]`` makes a transaction commit invalid (MVCC_READ_CONFLICT ...);
* ``lose_submit_replies`` forwards a Submit to "ordering" and then fails the call, as a
  connection cut after the request left would;
* ``hold_commits`` orders submitted transactions but commits them only when released.

Its contract knows ``mint``, ``burn`` and ``get_reference`` / ``get_account`` with the deposit
token's codes, enough to exercise the SDK's mapping and idempotency.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from fabric_protos.peer import transaction_pb2
from unit.fabgateway.gw_fakes import (
    PEER_ADDRESS,
    PEER_MSP,
    ChaincodeFailure,
    FakePeer,
    Invocation,
    Result,
    abort_with_details,
)

VALID = transaction_pb2.TxValidationCode.Value("VALID")
MVCC = transaction_pb2.TxValidationCode.Value("MVCC_READ_CONFLICT")
POLICY_FAILURE = transaction_pb2.TxValidationCode.Value("ENDORSEMENT_POLICY_FAILURE")
BAD_RWSET = transaction_pb2.TxValidationCode.Value("BAD_RWSET")
DUPLICATE_TXID = transaction_pb2.TxValidationCode.Value("DUPLICATE_TXID")
ACCOUNT = "acct-0001-xxxxxxxxxxxxxxxx"


@dataclass
class Ledger:
    balances: dict[str, int] = field(default_factory=lambda: {ACCOUNT: 0})
    references: dict[str, str] = field(default_factory=dict)  # reference -> tx id
    applied: list[str] = field(default_factory=list)  # tx ids whose writes applied


class SdkPeer(FakePeer):
    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger()
        self.effects: dict[str, Callable[[], None]] = {}
        self.lose_submit_replies = 0
        self.hold_commits = False
        self._held: list[tuple[str, int, Any]] = []
        self.refuse_when_applied: str | None = None  # a code the contract answers after apply
        # Called (awaited) at the start of each Endorse with its 1-based count.
        self.before_endorse: Callable[[int], Any] | None = None
        # Skip the duplicate check of the next Endorse: the id committed between the peer's
        # duplicate check and the simulation (the race the SDK's refusal re-check closes).
        self.race_once = False
        self.endorse_count = 0
        self.function("mint")(self._mint)
        self.function("burn")(self._burn)
        self.function("get_reference")(self._get_reference)
        self.function("get_account")(self._get_account)
        self.function("get_registry")(lambda invocation: Result(payload=b'{"banks":[]}'))

    # --- Fabric behaviour --------------------------------------------------------------

    def in_ledger(self, tx_id: str) -> bool:
        return any(t[0] == tx_id for b in self.blocks for t in b.transactions)

    async def add_block(self, transactions: list[tuple[str, int, Any]]) -> Any:
        if self.hold_commits:
            self._held.extend(transactions)
            return None
        checked = []
        for tx_id, code, event in transactions:
            if self.in_ledger(tx_id) or any(t[0] == tx_id for t in checked):
                code = DUPLICATE_TXID
            elif code == VALID and tx_id in self.effects:
                self.effects.pop(tx_id)()
                self.ledger.applied.append(tx_id)
            checked.append((tx_id, code, event))
        return await super().add_block(checked)

    @property
    def held(self) -> int:
        """How many submitted transactions wait for ``release_commits``."""
        return len(self._held)

    async def release_commits(self) -> None:
        self.hold_commits = False
        held, self._held = self._held, []
        if held:
            await self.add_block(held)

    async def Evaluate(self, request: Any, context: Any) -> Any:
        if self.in_ledger(request.transaction_id):
            await abort_with_details(
                context,
                grpc.StatusCode.FAILED_PRECONDITION,
                "evaluate call to endorser returned error: duplicate transaction found",
                [(PEER_ADDRESS, PEER_MSP,
                  f"duplicate transaction found [{request.transaction_id}]. Creator [00]")],
            )
        return await super().Evaluate(request, context)

    async def Endorse(self, request: Any, context: Any) -> Any:
        self.endorse_count += 1
        if self.before_endorse is not None:
            await self.before_endorse(self.endorse_count)
        if not self.race_once:
            return await super().Endorse(request, context)
        self.race_once = False
        blocks, self.blocks = self.blocks, self.blocks[:1]
        try:
            return await super().Endorse(request, context)
        finally:
            self.blocks = blocks + self.blocks[1:]

    async def Submit(self, request: Any, context: Any) -> Any:
        response = await super().Submit(request, context)
        if self.lose_submit_replies > 0:
            self.lose_submit_replies -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "connection reset by peer")
        return response

    # --- the contract ------------------------------------------------------------------

    @staticmethod
    def request(invocation: Invocation) -> dict[str, Any]:
        assert invocation.args[1:] == [], "private inputs must not travel as arguments"
        return dict(json.loads(invocation.transient["request"]))

    def _mint(self, invocation: Invocation) -> Result:
        return self._move(invocation, +1)

    def _burn(self, invocation: Invocation) -> Result:
        return self._move(invocation, -1)

    def _move(self, invocation: Invocation, sign: int) -> Result:
        req = self.request(invocation)
        ref, account, amount = req["reference"], req["account_id"], req["amount"]
        if ref in self.ledger.references:
            if self.refuse_when_applied:
                raise ChaincodeFailure(500, f"{self.refuse_when_applied}: refused")
            raise ChaincodeFailure(500, "DUPLICATE_REFERENCE: the client reference was applied")
        if account not in self.ledger.balances:
            raise ChaincodeFailure(500, "NOT_FOUND: the account does not exist")
        if sign < 0 and self.ledger.balances[account] < amount:
            raise ChaincodeFailure(500, "INSUFFICIENT_FUNDS: the available balance does not "
                                        "cover the debit")
        tx_id = invocation.transaction_id

        def apply() -> None:
            self.ledger.balances[account] += sign * amount
            self.ledger.references[ref] = tx_id

        self.effects[tx_id] = apply
        return Result(payload=json.dumps({"tx_id": tx_id}).encode())

    def _get_reference(self, invocation: Invocation) -> Result:
        ref = self.request(invocation)["reference"]
        if ref not in self.ledger.references:
            raise ChaincodeFailure(500, "NOT_FOUND: the reference was not applied")
        return Result(payload=json.dumps({"kind": "mint", "tx_id": self.ledger.references[ref],
                                          "at": "", "ids": []}).encode())

    def _get_account(self, invocation: Invocation) -> Result:
        account = self.request(invocation)["account_id"]
        if account not in self.ledger.balances:
            raise ChaincodeFailure(500, "NOT_FOUND: the account does not exist")
        balance = self.ledger.balances[account]
        return Result(payload=json.dumps({
            "account_id": account, "bank": "hkbank", "currency": "USD", "owner_ref": "CIF-1",
            "status": "active", "limits": {"single_payment": None, "daily_outflow": None},
            "balance": balance, "outflow_day": "", "outflow": 0, "seq": 1, "opened_at": "",
            "outflow_today": 0, "hold": None, "available": balance,
        }).encode())


async def until(probe: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not probe():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)
