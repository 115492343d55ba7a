"""DESIGN §8 on the real network: the Fabric facts that protect one bank from another.

A probe chaincode (``tests/chaincodes/shim_probe.py``) is deployed as ``facts`` with the
chaincode-level policy ``AND(HarbourBank.peer, LibertyTrust.peer)`` and one collection,
``hk-us``: members HarbourBank and LibertyTrust, collection-level endorsement policy
``OR(HarbourBank.peer)``, member-only reads and writes (the shape of the deposit token's
collections). PearlRiver is not a member. Clients use fabgateway through their own
organization's peer and name the endorsing organizations explicitly, so each test decides
exactly whose endorsement a transaction carries; the outcome is the validation code the
committing peers recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import uuid
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import fabgateway
import pytest
from harness import TestNetwork
from harness.gateway import OrgClient, connected_clients, until_committed

CHAINCODE = "facts"
COLLECTION = "hk-us"


@dataclass(frozen=True)
class Orgs:
    hk: str  # member, the collection's only endorser
    us: str  # member
    cn: str  # not a member


@pytest.fixture(scope="module")
def orgs(network: TestNetwork) -> Orgs:
    c = network.consortium
    hk, us, cn = (c.org(name).msp_id for name in ("hkbank", "usbank", "cnbank"))
    collections = [
        {
            "name": COLLECTION,
            "policy": f"OR('{hk}.member', '{us}.member')",
            "requiredPeerCount": 0,
            "maxPeerCount": 1,
            "blockToLive": 0,
            "memberOnlyRead": True,
            "memberOnlyWrite": True,
            "endorsementPolicy": {"signaturePolicy": f"OR('{hk}.peer')"},
        }
    ]
    network.network.deploy(
        CHAINCODE,
        "shim_probe:chaincode",
        policy=f"AND('{hk}.peer', '{us}.peer')",
        collections=collections,
    )
    orgs = Orgs(hk, us, cn)
    asyncio.run(_until_discovered(network, orgs))
    return orgs


async def _until_discovered(network: TestNetwork, orgs: Orgs) -> None:
    """Until HarbourBank's Gateway finds every organization's peer for the new chaincode:
    discovery learns a peer's chaincodes from gossip, a few seconds after the commit (a test
    naming LibertyTrust as endorser at once got "failed to find any endorsing peers")."""
    async with clients(network, "hkbank") as (hk,):
        for target in (orgs.hk, orgs.us, orgs.cn):
            async with asyncio.timeout(60):
                while True:
                    try:
                        await hk.evaluate("get_state", "discovered", target=target)
                        break
                    except fabgateway.CallError as error:
                        if "endorsing peers" not in str(error):
                            raise
                        await asyncio.sleep(0.5)


class Client(OrgClient):
    """One organization's operator on the probe chaincode, through its own peer's Gateway."""

    @property
    def contract(self) -> fabgateway.Contract:
        return self.network.get_contract(CHAINCODE)

    def proposal(
        self,
        function: str,
        *args: str,
        endorsers: Sequence[str],
        transient: Mapping[str, bytes] | None = None,
        nonce: bytes | None = None,
    ) -> fabgateway.Proposal:
        return self.contract.new_proposal(
            function,
            arguments=args,
            transient_data=transient,
            endorsing_organizations=endorsers,
            nonce=nonce,
        )

    async def submit(
        self,
        function: str,
        *args: str,
        endorsers: Sequence[str],
        transient: Mapping[str, bytes] | None = None,
        nonce: bytes | None = None,
    ) -> fabgateway.Status:
        """Endorse with exactly ``endorsers``, submit, and return the commit status."""
        proposal = self.proposal(
            function, *args, endorsers=endorsers, transient=transient, nonce=nonce
        )
        transaction = await proposal.endorse()
        submitted = await transaction.submit()
        return await submitted.get_status()

    async def evaluate(self, function: str, *args: str, target: str) -> Any:
        result = await self.contract.evaluate(
            function, arguments=args, endorsing_organizations=[target]
        )
        return json.loads(result) if result else None


def clients(network: TestNetwork, *org_names: str) -> AbstractAsyncContextManager[list[Client]]:
    return connected_clients(Client, network, *org_names)


def _key() -> str:
    return f"f{uuid.uuid4().hex[:12]}"


async def test_the_collection_policy_replaces_the_chaincode_policy_for_private_writes(
    network: TestNetwork, orgs: Orgs
) -> None:
    """The DESIGN §8 observation, on our network: a private write needs HarbourBank alone,
    LibertyTrust alone is not enough although it is a member, and a public write still
    needs both banks."""
    key, public_key = _key(), _key()
    value = {"value": b"v-" + uuid.uuid4().hex.encode()}
    async with clients(network, "hkbank") as (hk,):
        by_hk, by_us, public_by_hk, public_by_both = await asyncio.gather(
            hk.submit("put_private_data", COLLECTION, key, endorsers=[orgs.hk], transient=value),
            hk.submit("put_private_data", COLLECTION, key, endorsers=[orgs.us], transient=value),
            hk.submit("put_state", public_key, "p", endorsers=[orgs.hk]),
            hk.submit("put_state", public_key, "p", endorsers=[orgs.hk, orgs.us]),
        )
        assert by_hk.code_name == "VALID"
        assert by_us.code_name == "ENDORSEMENT_POLICY_FAILURE"
        assert public_by_hk.code_name == "ENDORSEMENT_POLICY_FAILURE"
        assert public_by_both.code_name == "VALID"
        assert await hk.evaluate("get_state", public_key, target=orgs.hk) == "p"
        assert await hk.evaluate("get_private_data", COLLECTION, key, target=orgs.hk) == (
            value["value"].decode()
        )


async def test_a_private_key_level_policy_replaces_the_collection_policy(
    network: TestNetwork, orgs: Orgs
) -> None:
    """set_private_data_validation_parameter naming LibertyTrust: from then on HarbourBank
    alone (which satisfies the collection policy) is refused, and LibertyTrust alone (which
    does not) is accepted."""
    key = _key()
    async with clients(network, "hkbank", "usbank") as (hk, us):
        created = await hk.submit(
            "put_private_data", COLLECTION, key, endorsers=[orgs.hk], transient={"value": b"v0"}
        )
        assert created.code_name == "VALID"
        # No key-level policy yet: the collection's (HarbourBank alone) governs this change.
        policy_set = await hk.submit(
            "set_private_key_endorsement", COLLECTION, key, json.dumps([orgs.us]),
            endorsers=[orgs.hk],
        )  # fmt: skip
        assert policy_set.code_name == "VALID"
        assert await hk.evaluate(
            "get_private_key_endorsement", COLLECTION, key, target=orgs.hk
        ) == [orgs.us]  # fmt: skip
        by_hk = await hk.submit(
            "put_private_data", COLLECTION, key, endorsers=[orgs.hk], transient={"value": b"v1"}
        )
        by_us = await hk.submit(
            "put_private_data", COLLECTION, key, endorsers=[orgs.us], transient={"value": b"v2"}
        )
        assert by_hk.code_name == "ENDORSEMENT_POLICY_FAILURE"
        assert by_us.code_name == "VALID"
        await until_committed(us, by_us.block_number)
        assert await us.evaluate("get_private_data", COLLECTION, key, target=orgs.us) == "v2"


async def test_a_non_member_reads_and_endorses_the_hash_but_not_the_value(
    network: TestNetwork, orgs: Orgs
) -> None:
    key = _key()
    value = b"hash-" + uuid.uuid4().hex.encode()
    digest = hashlib.sha256(value).hexdigest()
    async with clients(network, "hkbank", "cnbank") as (hk, cn):
        status = await hk.submit(
            "put_private_data", COLLECTION, key, endorsers=[orgs.hk], transient={"value": value}
        )
        assert status.code_name == "VALID"
        await until_committed(cn, status.block_number)
        # memberOnlyRead: PearlRiver's client is refused the value on its own peer, for a
        # missing key too, so (unlike a non-member peer's refusal) it reveals nothing ...
        for asked in (key, _key()):
            with pytest.raises(fabgateway.EvaluateError) as refused:
                await cn.evaluate("get_private_data", COLLECTION, asked, target=orgs.cn)
            message = refused.value.chaincode_message or ""
            assert "tx creator does not have read access permission" in message
        # ... but reads the hash there, and PearlRiver's peer endorses that read.
        assert await cn.evaluate("get_private_data_hash", COLLECTION, key, target=orgs.cn) == digest
        endorsed = await cn.proposal(
            "get_private_data_hash", COLLECTION, key, endorsers=[orgs.cn]
        ).endorse()
        assert json.loads(endorsed.result) == digest
        assert (
            await cn.evaluate("get_private_data_hash", COLLECTION, _key(), target=orgs.cn) is None
        )


async def test_member_only_write_restricts_the_client_organization(
    network: TestNetwork, orgs: Orgs
) -> None:
    """PearlRiver's client cannot write the collection even through HarbourBank's peer,
    whose endorsement alone satisfies the collection policy."""
    async with clients(network, "cnbank") as (cn,):
        with pytest.raises(fabgateway.EndorseError) as refused:
            await cn.submit(
                "put_private_data", COLLECTION, _key(), endorsers=[orgs.hk],
                transient={"value": b"x"},
            )  # fmt: skip
    assert "does not have write access permission" in str(refused.value)


async def test_transient_data_never_appears_in_the_block(network: TestNetwork, orgs: Orgs) -> None:
    key = _key()
    secret = f"transient-secret-{uuid.uuid4().hex}".encode()
    async with clients(network, "hkbank") as (hk,):
        proposal = hk.proposal(
            "put_private_data", COLLECTION, key, endorsers=[orgs.hk], transient={"value": secret}
        )
        status = await (await (await proposal.endorse()).submit()).get_status()
        assert status.code_name == "VALID"
        async with hk.network.block_events(start_block=status.block_number) as blocks:
            async with asyncio.timeout(30):
                block = await anext(blocks)
    assert block.header.number == status.block_number
    raw = block.SerializeToString()
    assert proposal.transaction_id.encode() in raw  # the right block
    assert key.encode() in raw  # arguments are in the block in clear ...
    assert secret not in raw  # ... the transient value is not ...
    assert hashlib.sha256(secret).digest() in raw  # ... only its hash, in the hashed write set


async def test_a_transaction_that_writes_nothing_must_satisfy_the_chaincode_policy(
    network: TestNetwork, orgs: Orgs
) -> None:
    key = _key()
    async with clients(network, "hkbank") as (hk,):
        seeded = await hk.submit(
            "put_private_data", COLLECTION, key, endorsers=[orgs.hk], transient={"value": b"r"}
        )
        assert seeded.code_name == "VALID"
        public_read, private_read, by_both = await asyncio.gather(
            hk.submit("get_state", key, endorsers=[orgs.hk]),
            # even a read of the collection HarbourBank alone may write
            hk.submit("get_private_data", COLLECTION, key, endorsers=[orgs.hk]),
            hk.submit("get_state", key, endorsers=[orgs.hk, orgs.us]),
        )
    assert public_read.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert private_read.code_name == "ENDORSEMENT_POLICY_FAILURE"
    assert by_both.code_name == "VALID"


async def test_a_transaction_id_on_the_ledger_is_refused_by_the_endorser(
    network: TestNetwork, orgs: Orgs
) -> None:
    """Whether it committed valid or invalid; and a second copy ordered anyway is marked
    DUPLICATE_TXID by the committing peers."""
    both = [orgs.hk, orgs.us]
    valid_nonce, invalid_nonce, twice_nonce = (os.urandom(24) for _ in range(3))
    async with clients(network, "hkbank") as (hk,):
        valid, invalid = await asyncio.gather(
            hk.submit("put_state", _key(), "a", endorsers=both, nonce=valid_nonce),
            hk.submit("put_state", _key(), "a", endorsers=[orgs.hk], nonce=invalid_nonce),
        )
        assert (valid.code_name, invalid.code_name) == ("VALID", "ENDORSEMENT_POLICY_FAILURE")
        for nonce, first in ((valid_nonce, valid), (invalid_nonce, invalid)):
            # Same transaction id, other content: refused before anything runs.
            retry = hk.proposal("put_state", _key(), "b", endorsers=both, nonce=nonce)
            assert retry.transaction_id == first.transaction_id
            with pytest.raises(fabgateway.EndorseError) as refused:
                await retry.endorse()
            assert refused.value.is_duplicate_transaction, str(refused.value)

        # Two endorsed copies of one transaction, both sent to ordering before either commits.
        proposal = hk.proposal("put_state", _key(), "c", endorsers=both, nonce=twice_nonce)
        first_copy = await proposal.endorse()
        second_copy = await proposal.endorse()
        submitted = [await first_copy.submit(), await second_copy.submit()]
        status = await submitted[0].get_status()
        assert status.code_name == "VALID"
        codes = await _validation_codes(hk, proposal.transaction_id, status.block_number, 2)
    assert codes == ["VALID", "DUPLICATE_TXID"]


async def _validation_codes(client: Client, tx_id: str, start_block: int, count: int) -> list[str]:
    """The validation codes of the first ``count`` occurrences of ``tx_id`` in the blocks."""
    from fabgateway.errors import validation_code_name

    codes: list[str] = []
    async with client.network.filtered_block_events(start_block=start_block) as blocks:
        async with asyncio.timeout(60):
            async for block in blocks:
                for tx in block.filtered_transactions:
                    if tx.txid == tx_id:
                        codes.append(validation_code_name(tx.tx_validation_code))
                if len(codes) >= count:
                    return codes
    return codes
