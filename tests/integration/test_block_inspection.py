"""Block inspection and qscc against a real network: what the unit tests' hand-built blocks
assume about Fabric's blocks, proven on blocks a real peer committed.

A cross-bank payment (hkbank pays usbank) writes private data in ``acct-hkbank`` and in
``pair-hkbank-usbank``. Read back through Deliver with private data, as hkbank: the payment's
transaction is VALID, its hashed writes are where the contract wrote them, the first valid
writer of each stored value is that transaction, and every private value delivered hashes to
the committed hash. qscc answers the same transaction, VALID, and says at once that a made-up
transaction id or a block beyond the chain is not in the ledger.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import fabgateway
import pytest
from dtoken.profile import Profile
from fabgateway.blocks import Block, decode_block_and_private_data, key_hash
from fabshim import KeyEndorsementPolicy
from harness import TestNetwork

PAYER, PAYEE = "hkbank", "usbank"
ACCOUNTS = f"acct-{PAYER}"
PAIR = f"pair-{PAYER}-{PAYEE}"


def _profile(network: TestNetwork, org: str) -> dict[str, Any]:
    return network.profile(network.consortium.org(org))


def _channel(profile: dict[str, Any]) -> Any:
    gateway = profile["gateway"]
    return fabgateway.tls_channel(
        gateway["endpoint"], Path(gateway["tls_ca_cert"]).read_bytes(), gateway["server_name"]
    )


def _gateway(channel: Any, profile: dict[str, Any], who: str) -> fabgateway.Gateway:
    ident = profile["identities"][who]
    identity = fabgateway.identity_from_pem_file(profile["msp_id"], ident["cert"])
    return fabgateway.connect(channel, identity, fabgateway.signer_from_pem_file(ident["key"]))


def _request(body: dict[str, Any]) -> dict[str, bytes]:
    return {"request": json.dumps(body).encode()}


class Payment:
    """What the payment committed, as the client saw it."""

    def __init__(self, transaction_id: str, block_number: int, first_block: int) -> None:
        self.transaction_id = transaction_id
        self.block_number = block_number
        self.first_block = first_block


@pytest.fixture
async def hk(network: TestNetwork) -> AsyncIterator[tuple[dict[str, Any], Any]]:
    profile = _profile(network, PAYER)
    async with _channel(profile) as channel:
        yield profile, channel


async def _pay(channel: Any, profile: dict[str, Any]) -> Payment:
    chaincode, mine = profile["chaincode"], [profile["msp_id"]]
    network = _gateway(channel, profile, "operator").get_network(profile["channel"])
    contract = network.get_contract(chaincode)
    tag = secrets.token_hex(4)
    account = secrets.token_urlsafe(18)
    opened = await contract.submit_async(
        "open_account",
        transient_data=_request(
            {"reference": f"bi-{tag}", "currency": "USD", "owner_ref": "CIF-bi",
             "account_id": account}
        ),
        endorsing_organizations=mine,
    )
    first_block = (await opened.get_status()).raise_for_status().block_number
    minter = _gateway(channel, profile, "minter").get_network(network.name)
    await minter.get_contract(chaincode).submit_transaction(
        "mint",
        transient_data=_request({"reference": f"bi-{tag}-dep", "account_id": account,
                                 "amount": 1000}),
        endorsing_organizations=mine,
    )
    paid = await contract.submit_async(
        "initiate_transfer",
        transient_data=_request(
            {"reference": f"bi-{tag}-pay", "payer_account": account, "payee_bank": PAYEE,
             "payee_account": secrets.token_urlsafe(18), "amount": 250}
        ),
        endorsing_organizations=mine,
    )
    status = (await paid.get_status()).raise_for_status()
    return Payment(paid.transaction_id, status.block_number, first_block)


async def _deliver_with_private_data(network: fabgateway.Network, number: int) -> Block:
    async with network.block_and_private_data_events(start_block=number) as blocks:
        message = await asyncio.wait_for(anext(blocks), 30)
    return decode_block_and_private_data(message)


async def test_a_payment_read_back_from_its_block_and_from_qscc(
    hk: tuple[dict[str, Any], Any], network: TestNetwork
) -> None:
    profile, channel = hk
    chaincode = profile["chaincode"]
    payment = await _pay(channel, profile)
    hk_network = _gateway(channel, profile, "operator").get_network(profile["channel"])

    block = await _deliver_with_private_data(hk_network, payment.block_number)
    assert block.number == payment.block_number
    tx = block.transaction(payment.transaction_id)
    assert tx is not None
    assert tx.is_valid
    assert tx.validation_code_name == "VALID"
    assert tx.malformed is None
    assert tx.header_type_name == "ENDORSER_TRANSACTION"
    assert tx.creator_msp_id == profile["msp_id"]
    assert tx.chaincode_name == chaincode
    assert profile["msp_id"] in tx.endorser_msp_ids
    # Each collection where it lives: the payer's namespace on the single namespace and under
    # the layout for acct-hkbank; under the layout the pair's own namespace for the pair.
    hk_profile = Profile.load(network.profile_path(PAYER))
    acct_ns, pair_ns = hk_profile.namespace_of(ACCOUNTS), hk_profile.namespace_of(PAIR)
    assert acct_ns == chaincode
    assert (pair_ns == chaincode) is (network.layout == "single")
    for ns_name, collection in ((acct_ns, ACCOUNTS), (pair_ns, PAIR)):
        namespace = tx.namespace(ns_name)
        assert namespace is not None, ns_name
        assert collection in {c.collection for c in namespace.collections}

    # Every private value hkbank's peer delivered hashes to the committed hash, and nothing it
    # must hold (its own collection, its pair with usbank) is missing.
    assert block.private_data is not None
    assert fabgateway.private_data_mismatches(
        block, collections={(acct_ns, ACCOUNTS), (pair_ns, PAIR)}
    ) == []
    delivered = block.private_data_of(tx.tx_index, pair_ns, PAIR)
    assert delivered is not None
    assert delivered.writes
    pair_writes = {w.key_hash: w for w in tx.hashed_writes(pair_ns, PAIR)}
    for write in delivered.writes:
        assert write.key_hash == key_hash(write.key)
        assert pair_writes[write.key_hash].value_hash == write.value_hash
        assert not pair_writes[write.key_hash].is_delete

    # cnbank's peer is no member of either collection: Deliver gives it none of this data, and
    # a check that (wrongly) expects it names every committed write as missing, which is how
    # an audit sees a peer that lacks, or is refused, private data it must hold.
    outsider_profile = _profile(network, "cnbank")
    async with _channel(outsider_profile) as outsider_channel:
        outsider = _gateway(outsider_channel, outsider_profile, "operator").get_network(
            outsider_profile["channel"]
        )
        seen_by_outsider = await _deliver_with_private_data(outsider, payment.block_number)
    assert seen_by_outsider.private_data == ()
    assert fabgateway.private_data_mismatches(
        seen_by_outsider, collections={(hk_profile.namespace_of("acct-cnbank"), "acct-cnbank")}
    ) == []
    missing = fabgateway.private_data_mismatches(
        seen_by_outsider, collections={(pair_ns, PAIR)}
    )
    assert {m.problem for m in missing} == {fabgateway.PrivateDataProblem.MISSING}
    assert {m.key_hash for m in missing} == set(pair_writes)

    # The first valid writer of each value the payment stored is the payment's transaction,
    # found by scanning the ledger from before the account existed.
    accounts = block.private_data_of(tx.tx_index, acct_ns, ACCOUNTS)
    assert accounts is not None
    stored = [(pair_ns, PAIR, w) for w in delivered.writes] + [
        (acct_ns, ACCOUNTS, w) for w in accounts.writes]
    for ns_name, collection, write in stored:
        async with hk_network.block_events(start_block=payment.first_block) as raw_blocks:
            found = await asyncio.wait_for(
                fabgateway.first_valid_writer_async(
                    fabgateway.decoded_blocks(raw_blocks), ns_name, collection, write.key,
                    write.value,
                    last_block=payment.block_number,
                ),
                30,
            )
        assert found == tx.position, (collection, write.key)
    # A value never stored under that key has no writer.
    key = delivered.writes[0].key
    assert fabgateway.first_valid_writer([block], pair_ns, PAIR, key, b"{}") is None

    # qscc: the same transaction, VALID, with the same hashed writes; its block; the chain.
    ledger = hk_network.get_ledger_queries()
    processed = await ledger.get_transaction_by_id(payment.transaction_id)
    assert processed.is_valid
    assert processed.validation_code == 0
    assert processed.transaction.transaction_id == payment.transaction_id
    assert processed.transaction.namespaces == tx.namespaces
    by_tx = await ledger.get_block_by_tx_id(payment.transaction_id)
    assert by_tx.number == payment.block_number
    assert by_tx.private_data is None
    by_number = await ledger.get_block_by_number(payment.block_number)
    assert [t.position for t in by_number.transactions] == [t.position for t in block.transactions]
    info = await ledger.get_chain_info()
    assert info.height > payment.block_number
    # The genesis block decodes too: one CONFIG transaction, no write sets.
    (genesis,) = (await ledger.get_block_by_number(0)).transactions
    assert genesis.header_type_name == "CONFIG"
    assert genesis.malformed is None
    assert genesis.namespaces == ()
    assert genesis.is_valid

    # A made-up transaction id, or a block the chain does not have: not in the ledger, at once.
    made_up = secrets.token_hex(32)
    started = time.monotonic()
    with pytest.raises(fabgateway.NotInLedgerError) as missing:
        await ledger.get_transaction_by_id(made_up)
    assert missing.value.argument == made_up
    assert missing.value.function == "GetTransactionByID"
    with pytest.raises(fabgateway.NotInLedgerError):
        await ledger.get_block_by_tx_id(made_up)
    with pytest.raises(fabgateway.NotInLedgerError):
        await ledger.get_block_by_number(info.height + 1000)
    assert time.monotonic() - started < 10


# --- deletes, purges, key-level policies and invalid writes, on a probe chaincode -------------

PROBE = "blockprobe"
PROBE_COLLECTION = "hk-us"


@pytest.fixture(scope="module")
def probe(network: TestNetwork) -> tuple[str, str]:
    """``tests/chaincodes/shim_probe.py`` deployed with one collection of hkbank and usbank
    whose writes hkbank's peer alone may endorse (the shape of a bank's pair collection)."""
    c = network.consortium
    hk, us = (c.org(name).msp_id for name in (PAYER, PAYEE))
    network.network.deploy(
        PROBE,
        "shim_probe:chaincode",
        policy=f"OR('{hk}.peer')",
        collections=[
            {
                "name": PROBE_COLLECTION,
                "policy": f"OR('{hk}.member', '{us}.member')",
                "requiredPeerCount": 0,
                "maxPeerCount": 1,
                "blockToLive": 0,
                "memberOnlyRead": True,
                "memberOnlyWrite": True,
                "endorsementPolicy": {"signaturePolicy": f"OR('{hk}.peer')"},
            }
        ],
    )
    return hk, us


async def test_deletes_purges_policies_and_invalid_writes_as_real_blocks_hold_them(
    hk: tuple[dict[str, Any], Any], probe: tuple[str, str]
) -> None:
    profile, channel = hk
    hk_msp, us_msp = probe
    network = _gateway(channel, profile, "operator").get_network(profile["channel"])
    contract = network.get_contract(PROBE)
    tag = secrets.token_hex(4)
    pinned, deleted, purged_key = f"pin-{tag}", f"del-{tag}", f"purge-{tag}"

    async def submit(function: str, *args: str, value: bytes | None = None) -> fabgateway.Status:
        submitted = await contract.submit_async(
            function,
            arguments=args,
            transient_data={"value": value} if value is not None else None,
            endorsing_organizations=[hk_msp],
        )
        return await submitted.get_status()

    written = await submit("put_private_data", PROBE_COLLECTION, pinned, value=b"pinned-1")
    policy = await submit(
        "set_private_key_endorsement", PROBE_COLLECTION, pinned, json.dumps([hk_msp, us_msp])
    )
    await submit("put_private_data", PROBE_COLLECTION, deleted, value=b"d")
    delete = await submit("del_private_data", PROBE_COLLECTION, deleted)
    await submit("put_private_data", PROBE_COLLECTION, purged_key, value=b"p")
    purge = await submit("purge_private_data", PROBE_COLLECTION, purged_key)
    # The key now needs both banks' peers: hkbank alone rewriting it commits INVALID.
    forged = await submit("put_private_data", PROBE_COLLECTION, pinned, value=b"forged")
    for status in (written, policy, delete, purge):
        assert status.successful, status
    assert forged.code_name == "ENDORSEMENT_POLICY_FAILURE"

    blocks: list[Block] = []
    async with network.block_and_private_data_events(start_block=written.block_number) as raw:
        decoded = fabgateway.decoded_blocks(raw)
        while not blocks or blocks[-1].number < forged.block_number:
            blocks.append(await asyncio.wait_for(anext(decoded), 30))

    def tx_of(status: fabgateway.Status) -> fabgateway.BlockTransaction:
        block = next(b for b in blocks if b.number == status.block_number)
        found = block.transaction(status.transaction_id)
        assert found is not None
        return found

    # Every delivered value matches its committed hash, once the purge is known: a purge
    # erases the earlier values of its key on every peer (hkbank's peer delivers an empty set
    # for the transaction that wrote it), which would otherwise show as missing.
    collection = {(PROBE, PROBE_COLLECTION)}
    purged = fabgateway.purged_keys(blocks)
    assert purged == {(PROBE, PROBE_COLLECTION, key_hash(purged_key))}
    for block in blocks:
        assert fabgateway.private_data_mismatches(
            block, collections=collection, purged=purged
        ) == []
    erased = [
        problem.problem
        for block in blocks
        for problem in fabgateway.private_data_mismatches(block, collections=collection)
    ]
    assert fabgateway.PrivateDataProblem.MISSING in erased

    (write,) = tx_of(written).hashed_writes(PROBE, PROBE_COLLECTION)
    assert write.key_hash == key_hash(pinned)
    assert write.value_hash == hashlib.sha256(b"pinned-1").digest()

    # The policy: a metadata write whose VALIDATION_PARAMETER is in clear, parses, and is
    # byte for byte the envelope the shim builds for "hkbank and usbank peers".
    ns = tx_of(policy).namespace(PROBE)
    assert ns is not None
    coll = ns.collection(PROBE_COLLECTION)
    assert coll is not None
    assert coll.writes == ()
    (metadata,) = coll.metadata_writes
    assert metadata.key_hash == key_hash(pinned)
    parameter = fabgateway.parse_validation_parameter(metadata.validation_parameter or b"")
    assert parameter.msp_ids == {hk_msp, us_msp}
    assert {p.role for p in parameter.identities} == {"PEER"}
    expected = KeyEndorsementPolicy()
    expected.add_orgs("PEER", hk_msp, us_msp)
    assert fabgateway.validation_parameter_matches(metadata.validation_parameter, expected.policy())
    assert fabgateway.malformed_validation_parameters(blocks) == []

    (removal,) = tx_of(delete).hashed_writes(PROBE, PROBE_COLLECTION)
    assert removal.key_hash == key_hash(deleted)
    assert removal.is_delete
    assert not removal.is_purge
    assert removal.value_hash == b""
    (purging,) = tx_of(purge).hashed_writes(PROBE, PROBE_COLLECTION)
    assert purging.key_hash == key_hash(purged_key)
    assert purging.is_purge
    assert purging.is_delete  # Fabric records a purge as a delete that also purges
    assert purging.value_hash == b""

    # The invalid rewrite carries its write set; the first valid writer ignores it.
    invalid = tx_of(forged)
    assert not invalid.is_valid
    (rewrite,) = invalid.hashed_writes(PROBE, PROBE_COLLECTION)
    assert rewrite.value_hash == hashlib.sha256(b"forged").digest()
    # Its private data is even delivered; the checks above ignore it.
    forged_data = next(b for b in blocks if b.number == forged.block_number).private_data_of(
        invalid.tx_index, PROBE, PROBE_COLLECTION
    )
    assert forged_data is not None
    assert [w.value for w in forged_data.writes] == [b"forged"]
    args = (PROBE, PROBE_COLLECTION, pinned)
    assert fabgateway.first_valid_writer(blocks, *args, b"forged") is None
    assert fabgateway.first_valid_writer(blocks, *args, b"pinned-1") == tx_of(written).position
