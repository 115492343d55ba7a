"""The bank SDK's idempotent submission over a fake peer that behaves as Fabric does.

Every scenario checks the two things that matter: what the caller is told, and how many times
the write was applied to the ledger (exactly once, or not at all).
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from dtoken.bank import Bank
from dtoken.errors import (
    CommitFailed,
    Contended,
    DuplicateReference,
    InsufficientFunds,
    NetworkFault,
    NotFound,
    OutcomeUnknown,
)
from dtoken.submitter import Receipt, RetryPolicy, derive_nonce
from dtoken_wire import canonical_json
from unit.dtoken.conftest import FAST
from unit.dtoken.sdk_fakes import ACCOUNT, BAD_RWSET, MVCC, POLICY_FAILURE, SdkPeer
from unit.fabgateway.gw_fakes import ChaincodeFailure, Invocation, Result

REF = "dep-2024-0001"


def mint_request(amount: int = 500, ref: str = REF) -> dict[str, object]:
    return {"reference": ref, "account_id": ACCOUNT, "amount": amount}


def attempt_id(bank: Bank, attempt: int, amount: int = 500, name: str = "mint") -> str:
    return bank.submitter.transaction_id(name, mint_request(amount), REF, attempt)


async def test_a_write_commits_once_under_the_id_derived_from_its_reference(
    bank: Bank, peer: SdkPeer
) -> None:
    receipt = await bank.mint(ACCOUNT, 500, reference=REF)
    assert (receipt.attempt, receipt.replayed, receipt.transaction) == (0, False, "mint")
    assert receipt.tx_id == attempt_id(bank, 0)
    assert peer.ledger.balances[ACCOUNT] == 500
    assert peer.ledger.applied == [receipt.tx_id]
    invocation = peer.invocations[receipt.tx_id]
    assert invocation.args == [b"mint"]  # private inputs only in the transient map
    assert canonical_json(mint_request()) == invocation.transient["request"]
    assert invocation.endorsing_organizations == ["HarbourBankMSP"]


async def test_a_retry_returns_the_first_outcome_and_submits_nothing(
    bank: Bank, peer: SdkPeer, connect: Any
) -> None:
    first = await bank.mint(ACCOUNT, 500, reference=REF)
    again = await bank.mint(ACCOUNT, 500, reference=REF)
    after_restart = await connect().mint(ACCOUNT, 500, reference=REF)
    for receipt in (again, after_restart):
        assert receipt.replayed
        assert (receipt.tx_id, receipt.block_number) == (first.tx_id, first.block_number)
    assert len(peer.submit_requests) == 1
    assert peer.ledger.balances[ACCOUNT] == 500


async def test_an_attempt_invalidated_by_mvcc_is_retried_under_the_next_derived_id(
    bank: Bank, peer: SdkPeer, connect: Any
) -> None:
    peer.commit_codes[attempt_id(bank, 0)] = MVCC
    receipt = await bank.mint(ACCOUNT, 500, reference=REF)
    assert (receipt.attempt, receipt.tx_id, receipt.replayed) == (1, attempt_id(bank, 1), False)
    assert peer.ledger.applied == [attempt_id(bank, 1)]
    # A new process walks attempt 0 (in the ledger, invalid) to attempt 1 (valid).
    replay = await connect().mint(ACCOUNT, 500, reference=REF)
    assert (replay.attempt, replay.tx_id, replay.replayed) == (1, receipt.tx_id, True)
    assert len(peer.submit_requests) == 2
    assert peer.ledger.balances[ACCOUNT] == 500


async def test_a_call_out_of_attempts_is_contended_and_a_later_call_walks_on(
    server: Any, peer: SdkPeer, connect: Any
) -> None:
    bank = connect(policy=RetryPolicy(max_attempts=3, backoff=0.01, commit_timeout=0.5))
    for n in range(3):
        peer.commit_codes[attempt_id(bank, n)] = MVCC
    with pytest.raises(Contended) as contended:
        await bank.mint(ACCOUNT, 500, reference=REF)
    assert isinstance(contended.value, NetworkFault)  # worth calling again, nothing applied
    assert (contended.value.next_attempt, contended.value.transaction_id) == (
        3, attempt_id(bank, 2))
    assert peer.ledger.applied == []
    # The reference is not spent: a later call (same cap) walks past 0..2 and sends 3.
    receipt = await connect(policy=RetryPolicy(max_attempts=3, backoff=0.01,
                                               commit_timeout=0.5)).mint(
        ACCOUNT, 500, reference=REF)
    assert (receipt.attempt, receipt.replayed) == (3, False)
    assert peer.ledger.applied == [attempt_id(bank, 3)]
    assert len(peer.submit_requests) == 4  # the walk past 0..2 sent nothing
    assert peer.ledger.balances[ACCOUNT] == 500


async def test_conflicts_are_retried_past_eight_attempts_without_a_cap(
    bank: Bank, peer: SdkPeer
) -> None:
    for n in range(12):
        peer.commit_codes[attempt_id(bank, n)] = MVCC
    receipt = await bank.mint(ACCOUNT, 500, reference=REF)
    assert (receipt.attempt, receipt.replayed) == (12, False)
    assert peer.ledger.applied == [attempt_id(bank, 12)]


async def test_a_later_call_walks_past_an_attempt_invalid_for_any_reason(
    bank: Bank, peer: SdkPeer, connect: Any
) -> None:
    peer.commit_codes[attempt_id(bank, 0)] = BAD_RWSET
    with pytest.raises(CommitFailed):
        await bank.mint(ACCOUNT, 500, reference=REF)
    receipt = await connect().mint(ACCOUNT, 500, reference=REF)
    assert (receipt.attempt, receipt.replayed) == (1, False)
    assert peer.ledger.balances[ACCOUNT] == 500


async def test_an_invalidation_retrying_cannot_cure_is_reported_not_retried(
    bank: Bank, peer: SdkPeer
) -> None:
    peer.commit_codes[attempt_id(bank, 0)] = BAD_RWSET
    with pytest.raises(CommitFailed) as failed:
        await bank.mint(ACCOUNT, 500, reference=REF)
    assert failed.value.code_name == "BAD_RWSET"
    assert failed.value.transaction_id == attempt_id(bank, 0)
    assert len(peer.endorse_requests) == 1


async def test_a_key_pinned_after_the_simulation_is_a_conflict_and_retried(
    bank: Bank, peer: SdkPeer
) -> None:
    """Two first account openings race to share the account key with the regulator: the
    second's write meets the first's pin, which Fabric checks before MVCC
    (ENDORSEMENT_POLICY_FAILURE). The next attempt, simulated afresh, goes through."""
    peer.commit_codes[attempt_id(bank, 0)] = POLICY_FAILURE
    receipt = await bank.mint(ACCOUNT, 500, reference=REF)
    assert (receipt.attempt, receipt.replayed) == (1, False)
    assert peer.ledger.applied == [attempt_id(bank, 1)]


async def test_a_submit_whose_reply_is_lost_is_settled_by_its_commit_status(
    bank: Bank, peer: SdkPeer
) -> None:
    peer.lose_submit_replies = 1
    receipt = await bank.mint(ACCOUNT, 500, reference=REF)
    assert receipt.tx_id == attempt_id(bank, 0)
    assert peer.ledger.applied == [receipt.tx_id]
    assert peer.ledger.balances[ACCOUNT] == 500


async def test_an_unknown_outcome_is_reported_and_a_later_retry_applies_once(
    peer: SdkPeer, connect: Any
) -> None:
    bank = connect(policy=RetryPolicy(backoff=0.01, commit_timeout=0.2, outcome_timeout=0.5))
    peer.hold_commits = True  # ordered, not committed: the client cannot learn the outcome
    with pytest.raises(OutcomeUnknown) as unknown:
        await bank.mint(ACCOUNT, 500, reference=REF)
    assert unknown.value.reference == REF
    assert unknown.value.transaction_ids == (attempt_id(bank, 0),)
    assert len(peer.submit_requests) >= 2  # the same id was sent again, never a new one
    assert {r.transaction_id for r in peer.submit_requests} == {attempt_id(bank, 0)}
    await peer.release_commits()  # every copy reaches a block: one applies
    receipt = await connect().mint(ACCOUNT, 500, reference=REF)
    assert receipt.replayed
    assert receipt.tx_id == attempt_id(bank, 0)
    assert peer.ledger.balances[ACCOUNT] == 500
    assert peer.ledger.applied == [receipt.tx_id]


async def test_a_refusal_caused_by_the_calls_own_pending_copy_waits_for_its_status(
    peer: SdkPeer, connect: Any
) -> None:
    bank = connect(policy=RetryPolicy(backoff=0.01, commit_timeout=0.2, outcome_timeout=3.0))
    peer.hold_commits = True
    peer.refuse_when_applied = "INSUFFICIENT_FUNDS"

    async def second_round(count: int) -> None:
        if count == 2:  # the copy commits just as the same attempt is endorsed again
            await peer.release_commits()
            peer.race_once = True

    peer.before_endorse = second_round
    receipt = await bank.mint(ACCOUNT, 500, reference=REF)
    assert (receipt.tx_id, receipt.replayed) == (attempt_id(bank, 0), False)
    assert peer.ledger.balances[ACCOUNT] == 500


async def test_a_refusal_caused_by_an_earlier_process_copy_is_caught_by_the_probe(
    bank: Bank, peer: SdkPeer, connect: Any
) -> None:
    first = await bank.mint(ACCOUNT, 500, reference=REF)
    peer.refuse_when_applied = "INSUFFICIENT_FUNDS"
    peer.race_once = True  # committed between the duplicate check and the simulation
    receipt = await connect().mint(ACCOUNT, 500, reference=REF)
    assert (receipt.tx_id, receipt.replayed) == (first.tx_id, True)
    assert peer.ledger.balances[ACCOUNT] == 500


async def test_a_reference_reused_for_another_request_is_refused(
    bank: Bank, peer: SdkPeer
) -> None:
    first = await bank.mint(ACCOUNT, 500, reference=REF)
    with pytest.raises(DuplicateReference) as duplicate:
        await bank.mint(ACCOUNT, 700, reference=REF)
    assert duplicate.value.original_tx_id == first.tx_id
    assert duplicate.value.code == "DUPLICATE_REFERENCE"
    assert peer.ledger.balances[ACCOUNT] == 500


async def test_contract_refusals_are_typed_and_submit_nothing(
    bank: Bank, peer: SdkPeer
) -> None:
    with pytest.raises(InsufficientFunds) as refused:
        await bank.burn(ACCOUNT, 1, reference="redeem-1")
    assert isinstance(refused.value, ValueError)
    assert refused.value.detail == "the available balance does not cover the debit"
    assert refused.value.transaction_id is not None
    with pytest.raises(NotFound):
        await bank.mint("acct-unknown-xxxxxxxxxxxxx", 5, reference="dep-x")
    with pytest.raises(LookupError):
        await bank.account("acct-unknown-xxxxxxxxxxxxx")
    assert peer.submit_requests == []


async def test_an_unreachable_endorser_is_a_network_fault_after_retries(
    bank: Bank, peer: SdkPeer
) -> None:
    peer.fail["endorse"] = (grpc.StatusCode.UNAVAILABLE, "no peers available", [])
    with pytest.raises(NetworkFault) as fault:
        await bank.mint(ACCOUNT, 500, reference=REF)
    assert not isinstance(fault.value, OutcomeUnknown)  # nothing was sent
    assert len(peer.endorse_requests) == FAST.call_retries + 1
    assert peer.ledger.applied == []


async def test_a_transient_endorse_failure_is_retried_with_the_same_id(
    bank: Bank, peer: SdkPeer
) -> None:
    peer.fail["endorse"] = (grpc.StatusCode.UNAVAILABLE, "connection refused", [])

    async def heal(count: int) -> None:
        if count == 2:
            peer.fail.pop("endorse")

    peer.before_endorse = heal
    receipt = await bank.mint(ACCOUNT, 500, reference=REF)
    assert {r.transaction_id for r in peer.endorse_requests} == {receipt.tx_id}
    assert receipt.tx_id == attempt_id(bank, 0)


def peer_unavailable_for(peer: SdkPeer, times: int) -> None:
    """The peer's chaincode cannot read its ledger for the next ``times`` mints (what the
    contract answers as ``PEER_UNAVAILABLE``, e.g. private data not received yet)."""
    mint = peer.functions["mint"]
    left = [times]

    def flaky(invocation: Invocation) -> Result:
        if left[0] > 0:
            left[0] -= 1
            raise ChaincodeFailure(500, "PEER_UNAVAILABLE: the peer could not answer a ledger read")
        return mint(invocation)

    peer.functions["mint"] = flaky


async def test_a_peer_that_cannot_read_its_ledger_is_a_node_fault_retried(
    bank: Bank, peer: SdkPeer
) -> None:
    peer_unavailable_for(peer, 2)
    receipt = await bank.mint(ACCOUNT, 500, reference=REF)
    assert (receipt.tx_id, receipt.replayed) == (attempt_id(bank, 0), False)
    assert peer.ledger.balances[ACCOUNT] == 500


async def test_a_peer_that_never_can_read_its_ledger_is_a_network_fault_not_a_refusal(
    bank: Bank, peer: SdkPeer
) -> None:
    peer_unavailable_for(peer, FAST.call_retries + 1)
    with pytest.raises(NetworkFault) as fault:
        await bank.mint(ACCOUNT, 500, reference=REF)
    assert not isinstance(fault.value, OutcomeUnknown)  # nothing was sent
    assert peer.ledger.applied == []
    receipt = await bank.mint(ACCOUNT, 500, reference=REF)  # the reference is not spent
    assert receipt.tx_id == attempt_id(bank, 0)


async def test_concurrent_calls_with_one_reference_apply_once(
    bank: Bank, peer: SdkPeer, connect: Any
) -> None:
    others = [connect() for _ in range(3)]
    receipts = await asyncio.gather(
        bank.mint(ACCOUNT, 500, reference=REF),
        *(other.mint(ACCOUNT, 500, reference=REF) for other in others),
    )
    assert {r.tx_id for r in receipts} == {attempt_id(bank, 0)}
    assert peer.ledger.balances[ACCOUNT] == 500


def test_nonces_are_derived_from_secret_name_reference_request_and_attempt() -> None:
    secret = bytes(32)
    body = canonical_json(mint_request())
    nonce = derive_nonce(secret, "mint", REF, body, 0)
    assert len(nonce) == 24
    assert nonce == derive_nonce(secret, "mint", REF, body, 0)
    others = {
        derive_nonce(bytes([1]) * 32, "mint", REF, body, 0),
        derive_nonce(secret, "burn", REF, body, 0),
        derive_nonce(secret, "mint", REF + "x", body, 0),
        derive_nonce(secret, "mint", REF, canonical_json(mint_request(501)), 0),
        derive_nonce(secret, "mint", REF, body, 1),
    }
    assert nonce not in others
    assert len(others) == 5
    assert canonical_json({"b": 1, "a": [2]}) == b'{"a":[2],"b":1}'


async def test_the_calls_own_copy_found_committed_on_resend_is_not_a_replay(
    peer: SdkPeer, connect: Any
) -> None:
    bank = connect(policy=RetryPolicy(backoff=0.01, commit_timeout=0.2, outcome_timeout=3.0))
    peer.hold_commits = True

    async def commit_before_second_round(count: int) -> None:
        if count == 2:
            await peer.release_commits()

    peer.before_endorse = commit_before_second_round
    receipt = await bank.mint(ACCOUNT, 500, reference=REF)
    assert (receipt.tx_id, receipt.replayed) == (attempt_id(bank, 0), False)
    assert len(peer.submit_requests) == 1  # the resend stopped at "duplicate"
    assert peer.ledger.balances[ACCOUNT] == 500


@pytest.mark.parametrize("result", [b"", b"not json", b"[]", b'{"results": "OK"}',
                                    b'{"results": ["OK"]}', b'{"tx_id": "t"}'])
def test_a_batch_response_without_one_code_per_item_is_a_network_fault(result: bytes) -> None:
    """A peer's answer the SDK cannot pair with the items it sent: nothing is guessed."""
    receipt = Receipt(reference="r", transaction="decide_transfers", tx_id="t",
                      block_number=1, attempt=0, replayed=False, result=result)
    with pytest.raises(NetworkFault, match="decide_transfers: the response has no result "
                                           "per transfer"):
        receipt.item_codes(2, "transfer")


def test_a_batch_response_gives_each_items_code_in_order() -> None:
    receipt = Receipt(reference="r", transaction="claim_escrows", tx_id="t", block_number=1,
                      attempt=0, replayed=False, result=b'{"results": ["OK", "EXPIRED"]}')
    assert receipt.item_codes(2, "escrow") == ["OK", "EXPIRED"]
