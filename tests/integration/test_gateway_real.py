"""fabgateway against a real Fabric peer: what the unit tests' fake peer assumes, proven.

Evaluate and submit through a bank's Gateway peer, the step-by-step API, the refusal of a
transaction id already in the ledger (at endorsement and at evaluation), the commit status of
any id (and of an unknown one: it waits), chaincode errors as the Gateway reports them,
chaincode events resumed from a checkpoint, block events, and the blocking facade.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path
from typing import Any

import fabgateway
import grpc
import pytest
from fabgateway import sync
from harness import TestNetwork


def _profile(network: TestNetwork, org: str) -> dict[str, Any]:
    return network.profile(network.consortium.org(org))


def _credentials(profile: dict[str, Any], who: str = "operator") -> Any:
    ident = profile["identities"][who]
    identity = fabgateway.identity_from_pem_file(profile["msp_id"], ident["cert"])
    return identity, fabgateway.signer_from_pem_file(ident["key"])


def _channel(profile: dict[str, Any]) -> grpc.aio.Channel:
    gateway = profile["gateway"]
    return fabgateway.tls_channel(
        gateway["endpoint"], Path(gateway["tls_ca_cert"]).read_bytes(), gateway["server_name"]
    )


@pytest.fixture
async def hk(network: TestNetwork) -> AsyncIterator[tuple[dict[str, Any], fabgateway.Gateway]]:
    profile = _profile(network, "hkbank")
    async with _channel(profile) as channel:
        yield profile, fabgateway.connect(channel, *_credentials(profile))


def _open_request(reference: str) -> dict[str, bytes]:
    body = {"reference": reference, "currency": "USD", "owner_ref": f"CIF-{reference}"}
    return {"request": json.dumps(body).encode()}


async def test_evaluate_and_submit_through_a_real_gateway(
    hk: tuple[dict[str, Any], fabgateway.Gateway],
) -> None:
    profile, gateway = hk
    network = gateway.get_network(profile["channel"])
    contract = network.get_contract(profile["chaincode"])
    registry = json.loads(await contract.evaluate_transaction("get_registry"))
    assert {b["name"] for b in registry["banks"]} == {"hkbank", "usbank", "cnbank"}
    mine = [profile["msp_id"]]
    result = await contract.submit_transaction(
        "open_account", transient_data=_open_request(f"gw-{secrets.token_hex(4)}"),
        endorsing_organizations=mine,
    )
    assert set(json.loads(result)) == {"tx_id"}  # a submit's result is in the block: no id

    # Step by step, with a chosen nonce: the id is known before anything is sent.
    nonce = secrets.token_bytes(24)
    proposal = contract.new_proposal(
        "open_account", transient_data=_open_request(f"gw-{nonce.hex()}"),
        endorsing_organizations=mine, nonce=nonce,
    )
    creator = gateway.identity.serialize()
    assert proposal.transaction_id == fabgateway.transaction_id_for(nonce, creator)
    transaction = await proposal.endorse()
    assert json.loads(transaction.result) == {"tx_id": proposal.transaction_id}
    submitted = await transaction.submit()
    status = await submitted.get_status()
    assert status.successful
    assert status.code_name == "VALID"
    assert status.block_number > 0

    # The same id again is refused by the endorser, at endorsement and at evaluation ...
    again = contract.new_proposal(
        "open_account", transient_data=_open_request(f"gw-{nonce.hex()}"),
        endorsing_organizations=mine, nonce=nonce,
    )
    with pytest.raises(fabgateway.EndorseError) as duplicate:
        await again.endorse()
    assert duplicate.value.is_duplicate_transaction
    assert duplicate.value.transaction_id == proposal.transaction_id
    probe = contract.new_proposal("get_registry", nonce=nonce)
    with pytest.raises(fabgateway.EvaluateError) as probed:
        await probe.evaluate()
    assert probed.value.is_duplicate_transaction
    # ... and its commit status can be asked by id at any time.
    later = await network.new_commit(proposal.transaction_id).get_status()
    assert (later.code_name, later.block_number) == ("VALID", status.block_number)


async def test_the_commit_status_of_an_unknown_id_waits_until_its_deadline(
    hk: tuple[dict[str, Any], fabgateway.Gateway],
) -> None:
    profile, gateway = hk
    network = gateway.get_network(profile["channel"])
    started = time.monotonic()
    with pytest.raises(fabgateway.CommitStatusError) as unknown:
        await network.new_commit(secrets.token_hex(32)).get_status(timeout=1.0)
    assert time.monotonic() - started >= 0.9  # it waited for the id to commit
    # The client's deadline, or the peer's reset of the stream at that same deadline
    # (RST_STREAM CANCEL, seen on Fabric 3.1.1): both mean "not committed in time".
    assert unknown.value.code in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)


async def test_chaincode_errors_come_back_with_their_message(
    hk: tuple[dict[str, Any], fabgateway.Gateway],
) -> None:
    profile, gateway = hk
    contract = gateway.get_network(profile["channel"]).get_contract(profile["chaincode"])
    request = {"request": json.dumps({"account_id": "x" * 22}).encode()}
    with pytest.raises(fabgateway.EvaluateError) as evaluated:
        await contract.evaluate_transaction("get_account", transient_data=request)
    assert evaluated.value.chaincode_message == "NOT_FOUND: the account does not exist"
    assert evaluated.value.chaincode_status == 500
    move = {"request": json.dumps({"reference": "r", "account_id": "x" * 22,
                                   "amount": 5}).encode()}
    with pytest.raises(fabgateway.EndorseError) as endorsed:
        await contract.submit_transaction("mint", transient_data=move,
                                          endorsing_organizations=[profile["msp_id"]])
    # The operator lacks the minter role; the contract says so with its stable code.
    assert endorsed.value.chaincode_message == "NOT_AUTHORIZED: the minter role is required"
    assert not endorsed.value.is_duplicate_transaction
    assert [d.msp_id for d in endorsed.value.details] == [profile["msp_id"]]


async def test_chaincode_and_block_events_resume_from_a_checkpoint(
    hk: tuple[dict[str, Any], fabgateway.Gateway], tmp_path: Path
) -> None:
    profile, gateway = hk
    fab_network = gateway.get_network(profile["channel"])
    contract = fab_network.get_contract(profile["chaincode"])
    payer = f"ev-{secrets.token_hex(4)}"
    minter = fabgateway.connect(gateway.channel, *_credentials(profile, "minter"))
    minting = minter.get_network(profile["channel"]).get_contract(profile["chaincode"])
    account = secrets.token_urlsafe(18)
    mine = [profile["msp_id"]]
    body = {"reference": payer, "currency": "USD", "owner_ref": "CIF-ev", "account_id": account}
    opened = await contract.submit_async("open_account", transient_data={
        "request": json.dumps(body).encode()}, endorsing_organizations=mine)
    first_block = (await opened.get_status()).block_number
    await minting.submit_transaction("mint", transient_data={"request": json.dumps({
        "reference": f"{payer}-dep", "account_id": account, "amount": 1000}).encode()},
        endorsing_organizations=mine)

    async def pay(n: int) -> str:
        req = {"reference": f"{payer}-{n}", "payer_account": account, "payee_bank": "usbank",
               "payee_account": secrets.token_urlsafe(18), "amount": 10}
        submitted = await contract.submit_async(
            "initiate_transfer", transient_data={"request": json.dumps(req).encode()},
            endorsing_organizations=mine)
        (await submitted.get_status()).raise_for_status()
        return submitted.transaction_id

    first, second = await pay(1), await pay(2)
    checkpointer = fabgateway.FileCheckpointer(tmp_path / "events.json")
    stream = fab_network.chaincode_events(profile["chaincode"], start_block=first_block)
    async with stream as events:
        seen = []
        while not seen or seen[-1].transaction_id != first:
            event = await asyncio.wait_for(anext(events), 10)
            seen.append(event)
    assert seen[-1].event_name == "TransferPending"
    payload = json.loads(seen[-1].payload)  # banks and the transaction's time only
    assert (set(payload), payload["payee_banks"]) == ({"payee_banks", "at"}, ["usbank"])
    checkpointer.checkpoint_chaincode_event(seen[-1])
    resumed = fabgateway.FileCheckpointer(tmp_path / "events.json")
    async with fab_network.chaincode_events(profile["chaincode"], checkpoint=resumed) as events:
        event = await asyncio.wait_for(anext(events), 10)
    assert event.transaction_id == second  # the next one, not the checkpointed one again

    async with fab_network.filtered_block_events(start_block=first_block) as blocks:
        block = await asyncio.wait_for(anext(blocks), 10)
    assert block.number == first_block


def test_the_blocking_facade_against_a_real_peer(network: TestNetwork) -> None:
    profile = _profile(network, "cnbank")
    gateway = profile["gateway"]
    factory = partial(fabgateway.tls_channel, gateway["endpoint"],
                      Path(gateway["tls_ca_cert"]).read_bytes(), gateway["server_name"])
    with sync.connect(factory, *_credentials(profile)) as gw:
        contract = gw.get_network(profile["channel"]).get_contract(profile["chaincode"])
        assert json.loads(contract.evaluate_transaction("get_registry"))["currencies"]
        result = contract.submit_transaction(
            "open_account", transient_data=_open_request(f"sync-{secrets.token_hex(4)}"),
            endorsing_organizations=[profile["msp_id"]])
        assert "tx_id" in json.loads(result)
