"""The SDK's side of an escrow's parties and disputes, over a fake contract: each party the
terms name is parsed with the contract's comparison, ``parties_verified`` holds only if every
one is ``match``, and ``get_escrow`` proves a dispute's ledger order and asks again."""

from __future__ import annotations

from typing import Any

from dtoken.bank import Member
from dtoken.conditional import ConditionalPayments, Escrow, EscrowParty, EscrowState
from dtoken.models import ProvenPosition
from dtoken_wire.conditional import EscrowLookup

CUR = {"USD": 2}
CLAIM_HASH, REFUND_HASH = "c" * 64, "d" * 64


def answer(state: str, parties: list[dict[str, str]],
           dispute: dict[str, Any] | None = None,
           anomalies: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "escrow": {"escrow_id": "e1", "payer_bank": "hkbank", "payee_bank": "usbank",
                   "payee_account": "seller", "amount": 500, "currency": "USD",
                   "created_at": "2025-03-01T12:00:00.000000Z",
                   "deadline": "2025-03-08T12:00:00.000000Z", "on_deadline": "refund",
                   "attester": "marketplace", "arbiter": "arbiter-hk", "remittance": ""},
        "state": state, "release": None, "refund": {"cause": "statement"},
        "claim": {"basis": "statement"}, "anomalies": list(anomalies), "parties": parties,
        "dispute": dispute,
    }


PARTIES = [{"role": "attester", "name": "marketplace", "key_sha256": "a" * 64,
            "here": "match"},
           {"role": "arbiter", "name": "arbiter-hk", "key_sha256": "b" * 64,
            "here": "unregistered"}]
DISPUTE = {
    "escrow_id": "e1",
    "accept": {"collection": "pair-usbank-hkbank", "key": "escclaim/e1",
               "value_hash": CLAIM_HASH, "writer": "usbank", "claimed_tx_id": "t1"},
    "refund": {"collection": "pair-hkbank-usbank", "key": "escref/e1",
               "value_hash": REFUND_HASH, "writer": "hkbank", "claimed_tx_id": "forged"},
}


class FakeContractBank(ConditionalPayments):
    """The conditional-payment methods over canned answers: ``get_escrow`` answers
    ``disputed`` until it is given a ledger order, then what that order decides."""

    currencies = CUR
    _proven_order = Member._proven_order

    name = "hkbank"

    def __init__(self, positions: dict[str, ProvenPosition | None]) -> None:
        self.positions = positions
        self.lookups: list[EscrowLookup] = []

    async def _evaluate(self, name: str, request: Any) -> Any:
        if name == "list_escrows":  # one page: the disputed escrow and a settled one
            return {"escrows": [answer("disputed", PARTIES, DISPUTE),
                                {**answer("held", PARTIES), "dispute": None}], "next": None}
        assert name == "get_escrow"
        self.lookups.append(request)
        order = dict(request.ledger_order)
        if CLAIM_HASH in order and REFUND_HASH in order:
            first = order[CLAIM_HASH] < order[REFUND_HASH]
            return answer("paid" if first else "refunded", PARTIES, None,
                          ("escrow_refund_after_claim",) if first
                          else ("escrow_claim_after_refund",))
        return answer("disputed", PARTIES, DISPUTE)

    async def record_position(self, collection: str, key: str, value_hash: str,
                              claimed_tx_id: str) -> ProvenPosition | None:
        return self.positions.get(value_hash)


async def test_a_dispute_is_decided_by_the_proven_ledger_order() -> None:
    fake = FakeContractBank({
        CLAIM_HASH: ProvenPosition(7, 0, "t1", claimed=True),
        REFUND_HASH: ProvenPosition(9, 1, "t9", claimed=False),  # its tx_id was made up
    })
    escrow = await fake.get_escrow("e1", "hkbank", "usbank")
    assert escrow.state is EscrowState.PAID
    assert escrow.anomalies == ("escrow_refund_after_claim", "unverified_position")
    assert escrow.dispute is None
    assert [dict(x.ledger_order) for x in fake.lookups] == [
        {}, {CLAIM_HASH: (7, 0), REFUND_HASH: (9, 1)}]


async def test_an_unplaced_dispute_stays_disputed() -> None:
    fake = FakeContractBank({})
    escrow = await fake.get_escrow("e1", "hkbank", "usbank")
    assert escrow.state is EscrowState.DISPUTED
    assert escrow.dispute == DISPUTE
    assert escrow.anomalies == ("unverified_position", "unverified_position")
    assert len(fake.lookups) == 1


async def test_the_parties_are_verified_only_if_each_is_the_banks_own() -> None:
    fake = FakeContractBank({})
    escrow = await fake.get_escrow("e1", "hkbank", "usbank")
    assert escrow.parties == (
        EscrowParty("attester", "marketplace", "a" * 64, "match"),
        EscrowParty("arbiter", "arbiter-hk", "b" * 64, "unregistered"))
    assert [p.verified for p in escrow.parties] == [True, False]
    assert not escrow.parties_verified
    matched = [{**p, "here": "match"} for p in PARTIES]
    assert Escrow.from_json(answer("held", matched), CUR).parties_verified
    assert Escrow.from_json(answer("held", []), CUR).parties_verified  # names none
    mismatched = [{**PARTIES[0], "here": "mismatch"}]
    assert not Escrow.from_json(answer("held", mismatched), CUR).parties_verified


async def test_a_listed_dispute_is_placed_in_ledger_order_and_the_rest_kept() -> None:
    fake = FakeContractBank({
        CLAIM_HASH: ProvenPosition(12, 3, "t1", claimed=True),
        REFUND_HASH: ProvenPosition(8, 0, "forged", claimed=True),  # the refund came first
    })
    listed = await fake.escrows("usbank")
    assert [e.state for e in listed] == [EscrowState.REFUNDED, EscrowState.HELD]
    assert listed[0].anomalies == ("escrow_claim_after_refund",)
    assert [dict(x.ledger_order) for x in fake.lookups] == [
        {}, {CLAIM_HASH: (12, 3), REFUND_HASH: (8, 0)}]
