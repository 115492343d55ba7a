"""Records made immutable by a key-level endorsement policy on private data (issue 13,
item 2), measured on the real network (Fabric v3.1.1).

A probe chaincode (``tests/chaincodes/key_policy_probe.py``) is deployed as ``keypol`` with
one collection, ``a-b``, between two banks: members HarbourBank (A) and LibertyTrust (B),
collection-level endorsement policy ``OR(HarbourBank.peer)`` (A alone may write it, as a
bank writes its own side of a pair), ``blockToLive`` 0. A record is pinned by setting its
validation parameter to ``AND(HarbourBank.peer, LibertyTrust.peer)``, built by
``fabshim.all_of_policy``. Clients use fabgateway through their own organization's peer and
name the endorsing organizations explicitly; each outcome is the validation code the
committing peers recorded (the commit status).

Planting bytes that do not parse as a policy is never tried on the shared network: on
Fabric v3.1.1 the next write of such a key halts block processing on every peer
(hyperledger/fabric#3105). The one test that shows it (marked ``slow``) brings up a
throwaway network of its own on ``DTOKEN_TEST_BASE_PORT + 800``, in its own state folder.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import fabgateway
import pytest
from fabshim import all_of_policy, n_out_of_policy, parse_n_out_of
from harness import TestNetwork
from harness.faults import orderer_height, own_network
from harness.gateway import OrgClient, connected_clients, until_committed

CHAINCODE = "keypol"
COLLECTION = "a-b"


@dataclass(frozen=True)
class Orgs:
    a: str  # member, the collection's only endorser: writes the records
    b: str  # member, relies on them


def _deploy(network: TestNetwork) -> Orgs:
    c = network.consortium
    a, b = (c.org(name).msp_id for name in ("hkbank", "usbank"))
    collections = [
        {
            "name": COLLECTION,
            "policy": f"OR('{a}.member', '{b}.member')",
            "requiredPeerCount": 0,
            "maxPeerCount": 1,
            "blockToLive": 0,
            "memberOnlyRead": True,
            "memberOnlyWrite": True,
            "endorsementPolicy": {"signaturePolicy": f"OR('{a}.peer')"},
        }
    ]
    network.network.deploy(
        CHAINCODE,
        "key_policy_probe:chaincode",
        policy=f"AND('{a}.peer', '{b}.peer')",
        collections=collections,
    )
    return Orgs(a, b)


@pytest.fixture(scope="module")
def orgs(network: TestNetwork) -> Orgs:
    return _deploy(network)


class Client(OrgClient):
    """One organization's operator on the probe, through its own peer's Gateway."""

    async def submit(
        self,
        function: str,
        *args: str,
        endorsers: Sequence[str],
        value: bytes | None = None,
    ) -> tuple[fabgateway.Status, Any]:
        """Endorse with exactly ``endorsers``, submit; the commit status and the result."""
        transient: Mapping[str, bytes] | None = None if value is None else {"value": value}
        proposal = self.network.get_contract(CHAINCODE).new_proposal(
            function,
            arguments=args,
            transient_data=transient,
            endorsing_organizations=endorsers,
        )
        transaction = await proposal.endorse()
        result = json.loads(transaction.result) if transaction.result else None
        submitted = await transaction.submit()
        return await submitted.get_status(), result

    async def evaluate(self, function: str, *args: str, on: str) -> Any:
        """``function`` run on the peer of organization ``on``."""
        result = await self.network.get_contract(CHAINCODE).evaluate(
            function, arguments=args, endorsing_organizations=[on]
        )
        return json.loads(result) if result else None

    async def record(self, key: str, on: str) -> tuple[str | None, str | None]:
        """The key's value and validation parameter (hex) on ``on``'s peer."""
        value = await self.evaluate("get", COLLECTION, key, on=on)
        parameter = await self.evaluate("get_parameter", COLLECTION, key, on=on)
        return value, parameter


@asynccontextmanager
async def clients(network: TestNetwork) -> AsyncIterator[tuple[Client, Client]]:
    """A's and B's clients, connected."""
    async with connected_clients(Client, network, "hkbank", "usbank") as (a, b):
        yield a, b


def _key() -> str:
    return f"k{uuid.uuid4().hex[:12]}"


async def _pinned_record(a: Client, orgs: Orgs, value: bytes = b"v0") -> tuple[str, str]:
    """A creates a record and pins it to both banks in one transaction, alone."""
    key = _key()
    status, written = await a.submit(
        "create_pinned", COLLECTION, key, json.dumps([orgs.a, orgs.b]),
        endorsers=[orgs.a], value=value,
    )  # fmt: skip
    assert status.code_name == "VALID"
    return key, written


async def test_the_creator_alone_creates_and_pins_a_record_and_both_read_its_exact_bytes(
    network: TestNetwork, orgs: Orgs
) -> None:
    """(a) no parameter is committed yet, so the collection's policy (A alone) governs the
    creation and the pinning in one transaction; (h) what either bank's peer reads back is
    byte for byte what was written, and what any reader builds for AND(A.peer, B.peer).
    The parameter is also in the block in clear (the hashed write set hashes the key and
    value, not metadata), where any channel member can check it."""
    expected = all_of_policy([orgs.b, orgs.a])
    async with clients(network) as (a, b):
        key = _key()
        status, written = await a.submit(
            "create_pinned", COLLECTION, key, json.dumps([orgs.a, orgs.b]),
            endorsers=[orgs.a], value=b"v0",
        )  # fmt: skip
        assert status.code_name == "VALID"
        assert bytes.fromhex(written) == expected
        assert await a.record(key, on=orgs.a) == ("v0", expected.hex())
        await _until_held(b, key, orgs.b)
        assert await b.record(key, on=orgs.b) == ("v0", expected.hex())
        async with b.network.block_events(start_block=status.block_number) as blocks:
            async with asyncio.timeout(30):
                block = await anext(blocks)
    assert block.header.number == status.block_number
    assert expected in block.SerializeToString()
    parsed = parse_n_out_of(expected)
    assert (parsed.n, sorted(parsed.msp_ids)) == (2, sorted([orgs.a, orgs.b]))


async def test_the_creator_alone_can_no_longer_rewrite_delete_purge_or_repin_it(
    network: TestNetwork, orgs: Orgs
) -> None:
    """(b) rewrite, (c) delete, (d) purge, (g) a weaker parameter: each endorsed by A alone
    (which satisfies the collection's policy) is invalidated, and so is a rewrite by B
    alone; the record and its parameter are unchanged on both peers."""
    async with clients(network) as (a, b):
        key, written = await _pinned_record(a, orgs)
        attempts = {
            "rewrite by A": ("put", (COLLECTION, key), [orgs.a], b"forged"),
            "delete by A": ("delete", (COLLECTION, key), [orgs.a], None),
            "purge by A": ("purge", (COLLECTION, key), [orgs.a], None),
            "re-pin to A alone": (
                "set_parameter", (COLLECTION, key, json.dumps([orgs.a])), [orgs.a], None,
            ),
            "rewrite by B": ("put", (COLLECTION, key), [orgs.b], b"forged"),
        }  # fmt: skip
        codes = {}
        for what, (function, args, endorsers, value) in attempts.items():
            status, _ = await a.submit(function, *args, endorsers=endorsers, value=value)
            codes[what] = status.code_name
        assert codes == dict.fromkeys(attempts, "ENDORSEMENT_POLICY_FAILURE")
        await until_committed(b, status.block_number)
        assert await a.record(key, on=orgs.a) == ("v0", written)
        assert await b.record(key, on=orgs.b) == ("v0", written)


async def test_both_banks_peers_together_can_rewrite_and_purge_it(
    network: TestNetwork, orgs: Orgs
) -> None:
    """(e) A's and B's peers together satisfy the pin: a rewrite is VALID and keeps the
    parameter; then a purge by both is VALID and removes the record on both peers, pin
    included: A alone may then create the key again, unpinned."""
    async with clients(network) as (a, b):
        key, written = await _pinned_record(a, orgs)
        rewritten, _ = await a.submit(
            "put", COLLECTION, key, endorsers=[orgs.a, orgs.b], value=b"v1"
        )
        assert rewritten.code_name == "VALID"
        await until_committed(b, rewritten.block_number)
        assert await a.record(key, on=orgs.a) == ("v1", written)
        assert await b.record(key, on=orgs.b) == ("v1", written)
        purged, _ = await a.submit("purge", COLLECTION, key, endorsers=[orgs.a, orgs.b])
        assert purged.code_name == "VALID"
        await until_committed(b, purged.block_number)
        for client, on in ((a, orgs.a), (b, orgs.b)):
            assert await client.record(key, on=on) == (None, None)
            assert await client.evaluate("get_hash", COLLECTION, key, on=on) is None
        recreated, _ = await a.submit("put", COLLECTION, key, endorsers=[orgs.a], value=b"v2")
        assert recreated.code_name == "VALID"
        assert await a.record(key, on=orgs.a) == ("v2", None)


async def test_an_unpinned_record_is_purged_by_its_writer_alone_on_every_peer(
    network: TestNetwork, orgs: Orgs
) -> None:
    """(f) without a parameter the collection's policy governs every change: A alone
    purges a record B's peer already holds, and it is gone there too (value and hash), so
    B keeps its own copy of anything it relies on that is not pinned."""
    key = _key()
    async with clients(network) as (a, b):
        created, _ = await a.submit("put", COLLECTION, key, endorsers=[orgs.a], value=b"u0")
        assert created.code_name == "VALID"
        await _until_held(b, key, orgs.b)
        assert await b.evaluate("get_hash", COLLECTION, key, on=orgs.b) is not None
        purged, _ = await a.submit("purge", COLLECTION, key, endorsers=[orgs.a])
        assert purged.code_name == "VALID"
        await until_committed(b, purged.block_number)
        for client, on in ((a, orgs.a), (b, orgs.b)):
            assert await client.record(key, on=on) == (None, None)
            assert await client.evaluate("get_hash", COLLECTION, key, on=on) is None


async def test_the_writer_alone_may_pin_a_record_to_itself_so_readers_compare_bytes(
    network: TestNetwork, orgs: Orgs
) -> None:
    """Fabric does not check what a parameter says: A alone creates a record pinned to A
    alone (VALID) and then rewrites it alone (VALID). Only a reader comparing the bytes
    with AND(A.peer, B.peer) tells such a record from a pinned one."""
    key = _key()
    async with clients(network) as (a, b):
        status, written = await a.submit(
            "create_pinned", COLLECTION, key, json.dumps([orgs.a]),
            endorsers=[orgs.a], value=b"s0",
        )  # fmt: skip
        assert status.code_name == "VALID"
        rewritten, _ = await a.submit("put", COLLECTION, key, endorsers=[orgs.a], value=b"s1")
        assert rewritten.code_name == "VALID"
        await until_committed(b, rewritten.block_number)
        assert await b.record(key, on=orgs.b) == ("s1", written)
    assert bytes.fromhex(written) == all_of_policy([orgs.a])
    assert bytes.fromhex(written) != all_of_policy([orgs.a, orgs.b])


async def test_fabric_evaluates_an_n_out_of_m_parameter_as_written(
    network: TestNetwork, orgs: Orgs
) -> None:
    """A 1-of-(A, B) pin, built by ``n_out_of_policy``: B alone, which the collection's
    policy does not let write, may now rewrite the record; nobody but A and B may."""
    expected = n_out_of_policy(1, [orgs.a, orgs.b])
    key = _key()
    async with clients(network) as (a, b):
        status, written = await a.submit(
            "create_pinned", COLLECTION, key, json.dumps([orgs.a, orgs.b]), "1",
            endorsers=[orgs.a], value=b"w0",
        )  # fmt: skip
        assert (status.code_name, bytes.fromhex(written)) == ("VALID", expected)
        by_b, _ = await a.submit("put", COLLECTION, key, endorsers=[orgs.b], value=b"w1")
        assert by_b.code_name == "VALID"
        await until_committed(b, by_b.block_number)
        assert await b.record(key, on=orgs.b) == ("w1", expected.hex())


async def _until_held(client: Client, key: str, on: str) -> None:
    """Wait (up to 60 s) until ``on``'s peer holds the record's value: pushed at endorsement,
    or pulled by reconciliation."""
    for _ in range(120):
        if await client.evaluate("get", COLLECTION, key, on=on) is not None:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{on}'s peer never received {key}")


async def test_a_reader_checks_the_pin_in_chaincode_and_conflicts_if_the_record_changes(
    network: TestNetwork, orgs: Orgs
) -> None:
    """A reader's chaincode compares the parameter byte for byte before relying on a record:
    it refuses an unpinned one; reading the parameter alone puts the key's version in the
    read set, so a record changed between endorsement and commit makes the reader's
    transaction MVCC_READ_CONFLICT."""
    both = json.dumps([orgs.a, orgs.b])
    async with clients(network) as (a, _):
        key, _ = await _pinned_record(a, orgs)
        relied, _ = await a.submit(
            "rely_on", COLLECTION, key, both, _key(), endorsers=[orgs.a], value=b"note"
        )
        assert relied.code_name == "VALID"

        unpinned = _key()
        created, _ = await a.submit("put", COLLECTION, unpinned, endorsers=[orgs.a], value=b"u")
        assert created.code_name == "VALID"
        with pytest.raises(fabgateway.EndorseError) as refused:
            await a.submit(
                "rely_on", COLLECTION, unpinned, both, _key(), endorsers=[orgs.a], value=b"n"
            )
        assert "NOT_PINNED" in str(refused.value)

        contract = a.network.get_contract(CHAINCODE)
        endorsed = await contract.new_proposal(
            "rely_on",
            arguments=(COLLECTION, key, both, _key()),
            transient_data={"value": b"late"},
            endorsing_organizations=[orgs.a],
        ).endorse()
        rewritten, _ = await a.submit(
            "put", COLLECTION, key, endorsers=[orgs.a, orgs.b], value=b"v1"
        )
        assert rewritten.code_name == "VALID"
        late = await (await endorsed.submit()).get_status()
        assert late.code_name == "MVCC_READ_CONFLICT"


@pytest.mark.slow
async def test_a_parameter_that_does_not_parse_freezes_the_record_or_halts_every_peer(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    """hyperledger/fabric#3105, on a throwaway network. A alone plants bytes that are not a
    SignaturePolicyEnvelope as a record's parameter (VALID: nobody checks them). From then
    on no peer endorses a write of the record (its simulation fails to parse them); but a
    write A endorsed *before* planting, submitted after, stops block processing for the
    channel on every peer, member or not: the orderer goes on cutting blocks, no peer
    commits them. A alone can do all of it with unmodified peers."""
    with own_network(
        tmp_path_factory, request, "kphalt", 800,
        ordering={"orderers": 1}, regulator={"enabled": False},
    ) as net:  # fmt: skip
        orgs = _deploy(net)
        banks = net.consortium.banks
        key = _key()
        async with clients(net) as (a, _):
            contract = a.network.get_contract(CHAINCODE)

            def write(target: str, endorsers: Sequence[str]) -> fabgateway.Proposal:
                return contract.new_proposal(
                    "put", arguments=(COLLECTION, target), transient_data={"value": b"y"},
                    endorsing_organizations=endorsers,
                )  # fmt: skip

            created, _ = await a.submit("put", COLLECTION, key, endorsers=[orgs.a], value=b"x")
            assert created.code_name == "VALID"
            early = await write(key, [orgs.a]).endorse()  # endorsed while the key is sound
            planted, _ = await a.submit(
                "set_raw_parameter", COLLECTION, key, "ffffff", endorsers=[orgs.a]
            )
            assert planted.code_name == "VALID"
            assert await a.evaluate("get_parameter", COLLECTION, key, on=orgs.a) == "ffffff"

            with pytest.raises(fabgateway.EndorseError) as refused:
                await write(key, [orgs.a, orgs.b]).endorse()
            assert "error unmarshalling SignaturePolicyEnvelope" in str(refused.value)

            halted_at = planted.block_number + 1
            net.wait_for(
                lambda: {net.ledger_height(bank) for bank in banks} == {halted_at},
                "every peer to commit the planted parameter",
            )
            for endorsed in (early, await write(_key(), [orgs.a]).endorse()):
                submitted = await endorsed.submit()
                with pytest.raises(fabgateway.CommitStatusError):
                    await submitted.get_status(timeout=10)
        orderer = net.consortium.ordering.orderers[0].name
        assert (orderer_height(net, orderer) or 0) >= halted_at + 2
        assert {bank.name: net.ledger_height(bank) for bank in banks} == {
            bank.name: halted_at for bank in banks
        }
        for peer in net.nodes("peer"):
            assert peer.healthy(), f"{peer.name} stopped"  # the process lives on ...
            log = peer.log_file.read_bytes()  # ... its channel does not
            aborted = [line for line in log.splitlines() if b"Aborting chain processing" in line]
            assert aborted, peer.name
            assert b"Failed executing VSCC due to proto:" in aborted[0], aborted[0]
