"""The deposit-token contract's guarantees on the real network (issue 4), the ones only a real
Fabric network can prove:

* a dishonest bank (its peer runs ``tests/chaincodes/dishonest_token.py``) cannot write into
  another bank's account collection, the other bank's directional collection or the
  regulator's holds: the committers invalidate it (ENDORSEMENT_POLICY_FAILURE), nothing
  changes; an accept that skips the refund read commits, and the audit sees the dispute and
  counts the earlier refund (ledger order);
* a third bank's peer holds nothing readable of a payment between two others (files, blocks,
  hashes of the values), and its queries are refused;
* 20 simultaneous payments between distinct accounts commit without an MVCC conflict;
* an undecided transfer expires, is refunded, and can no longer be accepted.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fabgateway
import pytest
from deposit_token.keys import Deriver
from dtoken import errors
from dtoken.bank import Bank, Regulator
from dtoken.listener import Sweeper
from dtoken.models import TransferStatus
from dtoken_wire.requests import AccountRef, AuditRequest
from harness import TestNetwork
from harness.dishonest import dishonest_server, runs_namespace
from harness.faults import own_network
from harness.sdk import bank, regulator

RUN = secrets.token_hex(3)
US_CHAINCODE = "chaincode.peer0.usbank.dtoken.example"


def ref(tag: str) -> str:
    return f"{tag}-{RUN}-{secrets.token_hex(3)}"


@asynccontextmanager
async def gateway(
    network: TestNetwork, org: str, who: str = "operator"
) -> AsyncIterator[tuple[dict[str, Any], Any]]:
    """A raw fabgateway connection as ``org``'s identity ``who``: (profile, Network)."""
    profile = network.profile(network.consortium.org(org))
    ident = profile["identities"][who]
    identity = fabgateway.identity_from_pem_file(profile["msp_id"], ident["cert"])
    signer = fabgateway.signer_from_pem_file(ident["key"])
    gw = profile["gateway"]
    ca = await asyncio.to_thread(Path(gw["tls_ca_cert"]).read_bytes)
    async with fabgateway.tls_channel(gw["endpoint"], ca, gw["server_name"]) as channel:
        yield profile, fabgateway.connect(channel, identity, signer).get_network(profile["channel"])


async def funded(client: Bank, amount: int, owner: str = "CIF") -> str:
    """A new USD account holding ``amount`` minor units (``client`` is a minter)."""
    account = (await client.open_account("USD", owner, reference=ref("open"))).account_id
    if amount:
        await client.mint(account, amount, reference=ref("dep"))
    return account


async def status_of(client: Bank | Regulator, tid: str, payer: str, payee: str) -> TransferStatus:
    return (await client.get_transfer(tid, payer, payee)).status


# --------------------------------------------------------------------------- dishonest bank


@asynccontextmanager
async def dishonest_usbank(network: TestNetwork) -> AsyncIterator[None]:
    """usbank's peer dials a dishonest server (same package id, address, environment);
    the honest one is back afterwards whatever happened. Under the namespace layout usbank's
    peer also runs hkbank's namespace (its admin's own approval), so that its forged writes
    into ``acct-hkbank`` land where hkbank's accounts live (``harness.dishonest``)."""
    async with runs_namespace(network, "usbank", network.namespace("hkbank")):
        with dishonest_server(network, US_CHAINCODE):
            yield


def _assert_no_write_access(
    network: TestNetwork, refused: fabgateway.EndorseError, collection: str
) -> None:
    """usbank's peer refused the forged write into ``collection`` for want of write access
    (``memberOnlyWrite``). On the single namespace the Gateway's error says so; under the
    layout the write was made by the storage chaincode in the namespace holding the
    collection, whose error names only the failed storage call (it never relays the peer's
    text), so the peer's own log says why, for that transaction and that namespace."""
    text = str(refused)
    if network.layout == "single":
        assert "does not have write access permission" in text
        assert collection in text
        return
    holder = network.namespace("hkbank")
    assert f"the pair storage {holder} failed" in text, text
    log = network.node("peer0.usbank.dtoken.example").log_file.read_text(errors="replace")
    prefix = f"[{refused.transaction_id[:8]}]"
    why = [line for line in log.splitlines() if prefix in line and "write access" in line]
    assert why, f"no write-access refusal of {prefix} in usbank's peer log"
    assert f"chaincodeName:{holder} collectionName: {collection}" in why[0], why[0]


async def _submit(contract: Any, msp: str, name: str, request: dict[str, Any]) -> str:
    """Submit endorsed by ``msp`` alone and wait for the commit; the transaction id.
    Raises ``fabgateway.CommitError`` if the transaction committed invalid."""
    result = await contract.submit_transaction(
        name,
        transient_data={"request": json.dumps(request).encode()},
        endorsing_organizations=[msp],
    )
    return str(json.loads(result)["tx_id"])


async def test_a_dishonest_bank_is_stopped_by_the_policies_and_counted_by_nobody(
    network: TestNetwork,
) -> None:
    async with (
        bank(network, "hkbank", "minter") as hk,
        bank(network, "usbank", "minter") as us,
        regulator(network) as reg,
    ):
        payer = await funded(hk, 100_000, "DISHONEST-PAYER")
        payee = (await us.open_account("USD", "DISHONEST-PAYEE", reference=ref("open"))).account_id
        held = await funded(us, 50_000, "DISHONEST-HELD")
        hold = await reg.freeze("usbank", held, reason="screening")
        await us.wait_for_commit(hold.tx_id)
        pending = await hk.transfer(payer, "usbank", payee, 1_234, reference=ref("pend"))
        refunded = await hk.transfer(payer, "usbank", payee, 777, reference=ref("refd"))
        assert pending.transfer_id
        assert refunded.transfer_id
        await us.wait_for_commit(refunded.receipt.tx_id)
        rejected = await us.reject(refunded.transfer_id, "hkbank", "unknown beneficiary")
        await hk.wait_for_commit(rejected.tx_id)
        refund = await hk.refund(refunded.transfer_id, "usbank")
        await us.wait_for_commit(refund.tx_id)
        await reg.wait_for_commit(refund.tx_id)
        payer_before = await hk.balance(payer)
        owed_before = (await reg.obligations("hkbank", "usbank")).owed("hkbank", "USD")
        assert (await reg.audit()).ok

        async with (
            gateway(network, "usbank") as (profile, us_net),
            gateway(network, "hkbank") as (_, hk_net),
        ):
            contract = us_net.get_contract(profile["chaincode"])
            # A proposal whose creator is hkbank's client, endorsed by usbank's peer alone:
            # what usbank could send if its peer skipped Fabric's creator check (below).
            via_member = hk_net.get_contract(profile["chaincode"])
            msp = profile["msp_id"]
            async with dishonest_usbank(network):
                credit_hk = ("forge_foreign_credit", {"bank": "hkbank", "account_id": payer})
                # (a) usbank's own client may not even have it endorsed: acct-hkbank is
                # memberOnlyWrite and usbank is no member (the peer refuses, nothing is sent).
                with pytest.raises(fabgateway.EndorseError) as refused:
                    await _submit(contract, msp, *credit_hk)
                _assert_no_write_access(network, refused.value, "acct-hkbank")
                forged = {
                    "a: credit in acct-hkbank": (via_member, *credit_hk),
                    "b: decision in pair-hkbank-usbank": (
                        contract,
                        "forge_counterparty_decision",
                        {
                            "asserter": "hkbank",
                            "counterparty": "usbank",
                            "transfer_id": pending.transfer_id,
                        },
                    ),
                    "c: overwrite the hold": (
                        contract,
                        "lift_regulator_hold",
                        {"bank": "usbank", "account_id": held},
                    ),
                    "c: delete the hold": (
                        contract,
                        "lift_regulator_hold",
                        {"bank": "usbank", "account_id": held, "delete": True},
                    ),
                }
                for what, (sender, name, request) in forged.items():
                    with pytest.raises(fabgateway.CommitError) as invalid:
                        await _submit(sender, msp, name, request)
                    assert invalid.value.code_name == "ENDORSEMENT_POLICY_FAILURE", what
                    await hk.wait_for_commit(invalid.value.transaction_id)
                    await reg.wait_for_commit(invalid.value.transaction_id)

                # (d) turning its pinned rejection of the refunded transfer into an accept:
                # the rejection needs both banks' peers for any change.
                with pytest.raises(fabgateway.CommitError) as invalid:
                    await _submit(contract, msp, "accept_skipping_refund_read",
                                  {"transfer_id": refunded.transfer_id, "payer_bank": "hkbank"})
                assert invalid.value.code_name == "ENDORSEMENT_POLICY_FAILURE"
                await reg.wait_for_commit(invalid.value.transaction_id)
                # (e) an accept of the pending transfer that it does not pin (so it could
                # delete it alone later): it commits, in usbank's own collections only.
                accept_tx = await _submit(
                    contract,
                    msp,
                    "accept_skipping_refund_read",
                    {"transfer_id": pending.transfer_id, "payer_bank": "hkbank"},
                )
                await reg.wait_for_commit(accept_tx)
                await hk.wait_for_commit(accept_tx)
                try:
                    # Nothing forged changed anything.
                    assert await hk.balance(payer) == payer_before
                    assert (
                        await status_of(hk, pending.transfer_id, "hkbank", "usbank")
                        is TransferStatus.PENDING
                    )
                    held_now = await reg.account("usbank", held)
                    assert held_now.hold is not None
                    assert held_now.hold.frozen
                    with pytest.raises(errors.AccountFrozen):
                        await us.burn(held, 1, reference=ref("burn"))

                    # The unpinned accept counts for nobody: the transfer is still pending
                    # for both banks, nothing is owed for it, and the audit names usbank's
                    # record (usbank's own books show the credit it gave itself).
                    for view in (hk, us, reg):
                        assert (
                            await status_of(view, pending.transfer_id, "hkbank", "usbank")
                            is TransferStatus.PENDING
                        )
                    report = await reg.audit()
                    assert not report.ok
                    assert report.disputes == ()
                    assert report.anomalies == {"usbank/pair-usbank-hkbank/unpinned": 1}
                    pair = next(
                        p
                        for p in report.pairs
                        if (p["payer"], p["payee"], p["currency"]) == ("hkbank", "usbank", "USD")
                    )
                    assert pair["credits_match_accepts"] is False
                    for owed in (await reg.obligations("hkbank", "usbank"),
                                 await hk.obligations("usbank"), await us.obligations("hkbank")):
                        assert owed.owed("hkbank", "USD") == owed_before
                        assert owed.disputes == ()
                        assert owed.anomalies == {"usbank/pair-usbank-hkbank/unpinned": 1}
                finally:
                    # The shared ledger must conserve again for the other test files.
                    undo = await _submit(
                        contract,
                        msp,
                        "undo_dishonest_accept",
                        {"transfer_id": pending.transfer_id, "payer_bank": "hkbank"},
                    )
                    await reg.wait_for_commit(undo)
        report = await reg.audit()
        assert report.ok, report.failures
        assert (
            await status_of(reg, refunded.transfer_id, "hkbank", "usbank")
            is TransferStatus.REFUNDED
        )
        # The honest server is back: it serves usbank again.
        assert (await us.balance(payee)).minor == 0


async def test_ledger_order_is_proven_from_the_blocks_never_claimed(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    """usbank accepted hkbank's payment; then hkbank's dishonest server refunds it anyway
    (a new, pinned key in its own collection: it commits) and writes in the refund the id
    of the payment's initiate, so that the refund would seem to come first. On a network of
    its own (its records can never be undone). Every bank and the regulator count the
    accept, which the blocks prove came first; the false claim is named; hkbank still owes
    the payment, and the audit shows hkbank's double credit."""
    with own_network(tmp_path_factory, request, "ledgerorder", 950,
                     ordering={"orderers": 1}) as net:
        async with (
            bank(net, "hkbank", "minter") as hk,
            bank(net, "usbank") as us,
            regulator(net) as reg,
        ):
            payer = await funded(hk, 10_000, "ORDER-PAYER")
            payee = (await us.open_account("USD", "ORDER-PAYEE", reference=ref("open"))
                     ).account_id
            payment = await hk.transfer(payer, "usbank", payee, 777, reference=ref("pay"))
            assert payment.transfer_id
            await us.wait_for_commit(payment.receipt.tx_id)
            accepted = await us.accept(payment.transfer_id, "hkbank")
            await hk.wait_for_commit(accepted.tx_id)
            async with gateway(net, "hkbank") as (profile, hk_net):
                contract = hk_net.get_contract(profile["chaincode"])
                with dishonest_server(net, "chaincode.peer0.hkbank.dtoken.example"):
                    refund_tx = await _submit(contract, profile["msp_id"],
                                              "refund_claiming_earlier", {
                        "transfer_id": payment.transfer_id, "payee_bank": "usbank",
                        "claimed_tx_id": payment.receipt.tx_id})  # fmt: skip
            for client in (us, reg):
                await client.wait_for_commit(refund_tx)
            named = {"hkbank/pair-hkbank-usbank/unverified_position": 1,  # the false claim
                     "hkbank/pair-hkbank-usbank/late_refund": 1}  # the refund that lost
            for owed in (await us.obligations("hkbank"), await hk.obligations("usbank"),
                         await reg.obligations("hkbank", "usbank")):
                assert owed.owed("hkbank", "USD") == 777
                assert owed.disputes == ()
                assert owed.anomalies == named
                assert {a.writers for a in owed.anomaly_records} == {("hkbank",)}
            report = await reg.audit()
            assert not report.ok
            assert report.anomalies == named
            usd = next(c for c in report.currencies if c["currency"] == "USD")
            assert usd["excess"] == 777  # hkbank's customer got the money back as well
            # the positions themselves: the accept's claim verifies; the refund's does not,
            # and its true place, read from the blocks, is after the accept
            raw = (await reg._pages("audit", AuditRequest()))[-1]
            (dispute,) = raw["disputes"]
            acc, ref_ = dispute["accept"], dispute["refund"]
            assert ref_["claimed_tx_id"] == payment.receipt.tx_id
            proven_accept = await reg.record_position(
                acc["collection"], acc["key"], acc["value_hash"], acc["claimed_tx_id"])
            proven_refund = await reg.record_position(
                ref_["collection"], ref_["key"], ref_["value_hash"], ref_["claimed_tx_id"])
            assert proven_accept is not None
            assert proven_accept.claimed
            assert proven_accept.transaction_id == accepted.tx_id
            assert proven_refund is not None
            assert not proven_refund.claimed
            assert proven_refund.transaction_id == refund_tx
            assert (proven_accept.block_number, proven_accept.tx_index) < (
                proven_refund.block_number, proven_refund.tx_index)
            # a made-up id answers at once
            started = time.monotonic()
            assert await reg.record_position(
                ref_["collection"], "refund/none", ref_["value_hash"], "f" * 64) is None
            assert time.monotonic() - started < 10


# --------------------------------------------------------------------------- confidentiality


async def test_a_third_bank_sees_nothing_of_a_payment_between_two_others(
    network: TestNetwork,
) -> None:
    tag = secrets.token_hex(4).upper()
    owners = [f"CONF-HK-OWNER-{tag}", f"CONF-US-OWNER-{tag}", f"CONF-HK-SECOND-{tag}"]
    originator = f"Confidential Originator {tag}"
    remittance = f"CONF-REMIT-{tag}"
    amounts = [17_354_219, 6_140_833, 5_021_977]
    async with (
        bank(network, "hkbank", "minter") as hk,
        bank(network, "usbank", "minter") as us,
        bank(network, "cnbank") as cn,
        regulator(network) as reg,
    ):
        hk_acct = await funded(hk, amounts[0], owners[0])
        us_acct = await funded(us, 0, owners[1])
        hk_second = await funded(hk, 0, owners[2])
        sent = await hk.transfer(
            hk_acct,
            "usbank",
            us_acct,
            amounts[1],
            reference=ref("conf"),
            originator={"name": originator},
            remittance=remittance,
        )
        assert sent.transfer_id
        await us.wait_for_commit(sent.receipt.tx_id)
        accepted = await us.accept(sent.transfer_id, "hkbank")
        internal = await hk.transfer(
            hk_acct, "hkbank", hk_second, amounts[2], reference=ref("conf")
        )
        # A hold on the payee's account: its key is written by the regulator's server.
        held = await reg.freeze("usbank", us_acct, frozen=False, held_amount=1,
                                reason="screening")
        await us.wait_for_commit(held.tx_id)
        last = max(accepted.block_number, internal.receipt.block_number, held.block_number)
        for tx_id in (accepted.tx_id, internal.receipt.tx_id, held.tx_id):
            await cn.wait_for_commit(tx_id)
        first = min(sent.receipt.block_number, accepted.block_number) - 8

        values = [hk_acct, us_acct, hk_second, sent.transfer_id, *owners, originator, remittance]
        needles = {v: v.encode() for v in values}
        for amount in amounts:
            for text in (f'"amount": {amount}', f'"amount":{amount}'):
                needles[text] = text.encode()
        for value in [*values, *(str(a) for a in amounts)]:
            digest = hashlib.sha256(value.encode())
            needles[f"sha256({value})"] = digest.hexdigest().encode()
            needles[f"sha256({value}) raw"] = digest.digest()

        # The keys of the old scheme: what a payer could compute from its payee's account id
        # (and anyone from an id it learnt) to follow the account through the blocks.
        old_keys = {}
        for account in (hk_acct, us_acct, hk_second):
            for key in (f"acct/{account}", f"hold/{account}",
                        *(f"hist/{account}/{seq:012d}" for seq in range(4))):
                digest = hashlib.sha256(key.encode())
                old_keys[f"sha256({key})"] = digest.hexdigest().encode()
                old_keys[f"sha256({key}) raw"] = digest.digest()
        needles.update(old_keys)
        # The keys as they are (under each bank's account key): the scan does find key hashes.
        us_keys = Deriver(network.network.secret_file(network.consortium.org("usbank"))
                          .read_bytes()).account_keys()
        new_keys = {f"sha256({k})": hashlib.sha256(k.encode()).digest()
                    for k in (us_keys.account(us_acct), us_keys.hold(us_acct))}

        def found_in(peer: str) -> set[str]:
            data_dir = network.node(peer).ledger_dir()  # a volume of its own in a container
            files = [p for p in data_dir.rglob("*") if p.is_file()]
            assert files
            return {
                what for p in files for what, needle in needles.items() if needle in p.read_bytes()
            }

        # The scan finds what is there: usbank's peer holds the payee's owner reference and
        # the transfer (a member of pair-hkbank-usbank and acct-usbank) ...
        await us.wait_for_commit(internal.receipt.tx_id)
        assert {owners[1], us_acct, originator, remittance} <= found_in(
            "peer0.usbank.dtoken.example"
        )
        # ... and cnbank's holds none of it, nor any hash of it.
        assert found_in("peer0.cnbank.dtoken.example") == set()
        # No peer's files (blocks included) hold a key hash of the old scheme; the keyed ones
        # are in the blocks every member holds (the scan would see a key hash).
        peers = sorted(p.name for p in (network.state_dir / "nodes").iterdir()
                       if p.name.startswith("peer"))
        assert len(peers) >= 4
        for peer in peers:
            assert not found_in(peer) & set(old_keys), peer
        blocks_of_cn = [p for p in network.node("peer0.cnbank.dtoken.example").ledger_dir()
                        .rglob("blockfile_*")]
        assert blocks_of_cn
        assert all(any(needle in p.read_bytes() for p in blocks_of_cn)
                   for needle in new_keys.values())

        async with (
            gateway(network, "cnbank") as (_, cn_net),
            cn_net.block_events(start_block=max(first, 0)) as blocks,
        ):
            seen = 0
            tx_ids = {sent.receipt.tx_id, accepted.tx_id, internal.receipt.tx_id, held.tx_id}
            while True:
                block = await asyncio.wait_for(anext(blocks), 15)
                raw = block.SerializeToString()
                leaked = [what for what, needle in needles.items() if needle in raw]
                assert leaked == [], block.header.number
                seen += 1
                tx_ids = {t for t in tx_ids if t.encode() not in raw}
                if block.header.number >= last:
                    break
        assert seen >= 3
        assert tx_ids == set()  # the payments' own blocks were among those read

        for account, owner_bank in ((hk_acct, "hkbank"), (us_acct, "usbank")):
            with pytest.raises(errors.NotAuthorized):
                await cn._evaluate("get_account", AccountRef(account, owner_bank))
        with pytest.raises(errors.NotAuthorized):
            await cn.get_transfer(sent.transfer_id, "hkbank", "usbank")


# --------------------------------------------------------------------------- concurrency


async def test_twenty_simultaneous_payments_commit_without_a_conflict(
    network: TestNetwork,
) -> None:
    async with (
        bank(network, "hkbank", "minter") as hk,
        bank(network, "usbank", "minter") as us,
        regulator(network) as reg,
    ):
        payers = await asyncio.gather(*(funded(hk, 10_000, f"CONC-P{i}") for i in range(20)))
        payees = await asyncio.gather(*(funded(us, 0, f"CONC-Q{i}") for i in range(20)))
        assert len(set(payers)) == len(set(payees)) == 20
        sent = await asyncio.gather(
            *(
                hk.transfer(p, "usbank", q, 100 + i, reference=ref("conc"))
                for i, (p, q) in enumerate(zip(payers, payees, strict=True))
            )
        )
        assert [s.receipt.attempt for s in sent] == [0] * 20  # no attempt was invalidated
        assert all(not s.receipt.replayed for s in sent)
        for s in sent:
            await us.wait_for_commit(s.receipt.tx_id)
        accepted = await asyncio.gather(
            *(us.accept(s.transfer_id, "hkbank") for s in sent if s.transfer_id)
        )
        assert [a.attempt for a in accepted] == [0] * 20
        # And from the peers' own records: every one of those 40 transactions is VALID.
        async with gateway(network, "hkbank") as (_, hk_net):
            codes = [
                (await hk_net.new_commit(tx).get_status(timeout=30)).code_name
                for tx in [*(s.receipt.tx_id for s in sent), *(a.tx_id for a in accepted)]
            ]
        assert codes == ["VALID"] * 40
        for i, q in enumerate(payees):
            assert (await us.balance(q)).minor == 100 + i
        await reg.wait_for_commit(accepted[-1].tx_id)
        report = await reg.audit()
        assert report.ok, report.failures


# --------------------------------------------------------------------------- expiry


async def test_an_undecided_transfer_expires_is_refunded_and_can_no_longer_be_accepted(
    network: TestNetwork,
) -> None:
    async with bank(network, "hkbank", "minter") as hk, bank(network, "usbank") as us:
        payer = await funded(hk, 5_000, "EXP-PAYER")
        payee = (await us.open_account("USD", "EXP-PAYEE", reference=ref("open"))).account_id
        with pytest.raises(
            (errors.InvalidArgument, errors.UsageError)
        ):  # below the contract's minimum TTL
            await hk.transfer(payer, "usbank", payee, 700, reference=ref("exp"), ttl_seconds=59)
        sent = await hk.transfer(payer, "usbank", payee, 700, reference=ref("exp"), ttl_seconds=60)
        assert sent.transfer_id
        await us.wait_for_commit(sent.receipt.tx_id)
        assert await status_of(us, sent.transfer_id, "hkbank", "usbank") is TransferStatus.PENDING
        with pytest.raises(errors.NotExpired):  # the payer may not refund it yet
            await hk.refund(sent.transfer_id, "usbank")
        # The contract says when it expired (the proposal timestamp against expires_at).
        deadline = time.monotonic() + 120
        while (
            await status_of(hk, sent.transfer_id, "hkbank", "usbank") is not TransferStatus.EXPIRED
        ):
            assert time.monotonic() < deadline, "the transfer never expired"
            await asyncio.sleep(1)
        swept = [
            h for h in await Sweeper(hk).sweep_once() if h.transfer.transfer_id == sent.transfer_id
        ]
        assert [h.action for h in swept] == ["refunded"]
        assert swept[0].receipt is not None
        assert await status_of(hk, sent.transfer_id, "hkbank", "usbank") is TransferStatus.REFUNDED
        assert (await hk.balance(payer)).minor == 5_000
        # usbank, once its peer has the refund's block, may not accept any more.
        await us.wait_for_commit(swept[0].receipt.tx_id)
        assert await status_of(us, sent.transfer_id, "hkbank", "usbank") is TransferStatus.REFUNDED
        with pytest.raises((errors.InvalidState, errors.Expired)):
            await us.accept(sent.transfer_id, "hkbank")
        assert (await us.balance(payee)).minor == 0
