"""The regulator's block monitor and the audit's hash check on the real network (issue 13,
item 5): what no Fabric validation prevents is at least seen and named.

* The regulator freezes a usbank account; usbank's peer runs a dishonest server whose burn
  never reads the hold (``debit_ignoring_hold``, ``tests/chaincodes/dishonest_token.py``). It
  writes only ``acct-usbank``, so Fabric commits it VALID. The regulator's monitor, following
  the blocks with its private data, names usbank and the transaction, with the balance before
  and after; the whole honest history before it raises no alert (no parameter planted, no
  private data withheld from the regulator's peer). The ``dtoken monitor`` CLI says the same.
* The audit checks each value it scans against ``GetPrivateDataHash``: the cost of that check
  is measured against the same audit without it (the dishonest server's ``audit_unchecked``
  on the regulator's peer) and printed per audited record.

Unparsable validation parameters are never planted here: on a shared network they halt
every peer's block processing (hyperledger/fabric#3105); the unit tests carry that alert.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import fabgateway
from dtoken.bank import Bank
from dtoken.monitor import (
    Alert,
    BlockMonitor,
    HoldBreach,
    MonitorState,
    follow,
)
from fabgateway.blocks import decode_block_and_private_data
from harness import TestNetwork
from harness.dishonest import chaincode_node, dishonest_server
from harness.sdk import bank, regulator

RUN = secrets.token_hex(3)
AMOUNT = 50_000
STOLEN = 12_345


def ref(tag: str) -> str:
    return f"{tag}-{RUN}-{secrets.token_hex(3)}"


@asynccontextmanager
async def gateway(
    network: TestNetwork, org: str, who: str
) -> AsyncIterator[tuple[dict[str, Any], fabgateway.Network]]:
    """A raw fabgateway connection as ``org``'s identity ``who``: (profile, Network)."""
    profile = network.profile(network.consortium.org(org))
    ident = profile["identities"][who]
    identity = fabgateway.identity_from_pem_file(profile["msp_id"], ident["cert"])
    signer = fabgateway.signer_from_pem_file(ident["key"])
    gw = profile["gateway"]
    ca = await asyncio.to_thread(Path(gw["tls_ca_cert"]).read_bytes)
    async with fabgateway.tls_channel(gw["endpoint"], ca, gw["server_name"]) as channel:
        yield profile, fabgateway.connect(channel, identity, signer).get_network(profile["channel"])


async def funded(client: Bank, amount: int) -> str:
    account = (await client.open_account("USD", "CIF-MON", reference=ref("open"))).account_id
    await client.mint(account, amount, reference=ref("dep"))
    return account


async def test_the_regulators_monitor_names_a_bank_that_debits_a_frozen_account(
    network: TestNetwork, tmp_path: Path
) -> None:
    async with bank(network, "usbank", "minter") as us, regulator(network) as reg:
        held = await funded(us, AMOUNT)
        hold = await reg.freeze("usbank", held, reason="sanctions screening")
        await us.wait_for_commit(hold.tx_id)

        # The monitor reads the whole honest history first: it learns the hold and every
        # balance, and nothing in it is an alert.
        monitor = BlockMonitor.for_profile(reg.profile, MonitorState())
        history: list[Alert] = []
        assert await follow(reg, monitor, on_alert=history.append, once=True) > 0
        assert history == []
        [ident] = [i for i, h in monitor.state.holds.items() if h.account_id == held]
        assert monitor.state.holds[ident].frozen
        assert monitor.state.balances[ident] == AMOUNT

        async with gateway(network, "usbank", "minter") as (profile, us_net):
            contract = us_net.get_contract(profile["chaincode"])
            with dishonest_server(network, chaincode_node("usbank")):
                result = await contract.submit_transaction(
                    "debit_ignoring_hold",
                    transient_data={"request": json.dumps(
                        {"account_id": held, "amount": STOLEN}).encode()},
                    endorsing_organizations=[profile["msp_id"]],
                )
        breach_tx = str(json.loads(result)["tx_id"])
        block_number = await reg.wait_for_commit(breach_tx)
        assert (await reg.account("usbank", held)).balance.minor == AMOUNT - STOLEN

        alerts: list[Alert] = []
        await follow(reg, monitor, on_alert=alerts.append, once=True)
        assert [type(a).__name__ for a in alerts] == ["HoldBreach"], alerts
        [breach] = alerts
        assert isinstance(breach, HoldBreach)
        assert (breach.bank, breach.account_id, breach.transaction_id) == ("usbank", held,
                                                                           breach_tx)
        assert breach.block_number == block_number
        assert (breach.previous_balance, breach.balance) == (AMOUNT, AMOUNT - STOLEN)
        assert breach.creator_msp_id == profile["msp_id"]
        assert breach.endorser_msp_ids == (profile["msp_id"],)

        # The CLI, from block 0 with a state file of its own, names the same transaction.
        state = tmp_path / "monitor.json"
        cli = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "dtoken.cli", "--profile",
             str(network.profile_path("regulator")), "monitor", "--once", "--json",
             "--state", str(state)],
            capture_output=True, text=True, timeout=120, check=False,
        )
        assert cli.returncode == 0, cli.stderr
        printed = [json.loads(line) for line in cli.stdout.splitlines()]
        assert [(a["kind"], a["bank"], a["transaction_id"]) for a in printed] == [
            ("hold_breach", "usbank", breach_tx)
        ]
        assert json.loads(state.read_text())["next_block"] > block_number

        # usbank's own monitor watches no holds: it has nothing to say.
        own: list[Alert] = []
        await follow(us, BlockMonitor.for_profile(us.profile), on_alert=own.append, once=True)
        assert own == []

        release = await reg.release("usbank", held)
        await us.wait_for_commit(release.tx_id)
        report = await reg.audit()
        assert report.ok, report.failures


async def _audit_pages(contract: Any, msp: str, name: str) -> dict[str, Any]:
    cursor = None
    while True:
        raw = await contract.evaluate(
            name, transient_data={"request": json.dumps(
                {"page_size": 10_000, "cursor": cursor}).encode()},
            endorsing_organizations=[msp])
        page = json.loads(raw)
        if page["done"]:
            return dict(page)
        cursor = page["cursor"]


async def _live_records(network: fabgateway.Network) -> int:
    """How many records the audit scans: the live keys under its prefixes, from the private
    data the regulator's peer received."""
    height = (await network.get_ledger_queries().get_chain_info()).height
    live: dict[tuple[str, str], bool] = {}
    async with network.block_and_private_data_events(start_block=0) as blocks:
        async for message in blocks:
            block = decode_block_and_private_data(message)
            for data in block.private_data or ():
                tx = block.transactions[data.tx_index]
                if not tx.is_valid:
                    continue
                for write in data.writes:
                    if write.key.split("/")[0] in ("acct", "sup", "xfer", "dec", "settle", "cap"):
                        live[(data.collection, write.key)] = not write.is_delete
            if block.number >= height - 1:
                break
    return sum(live.values())


async def test_the_cost_of_the_audits_hash_check_per_record(network: TestNetwork) -> None:
    async with bank(network, "usbank", "minter") as us:
        for _ in range(20):
            await funded(us, 100)
    async with gateway(network, "regulator", "auditor") as (profile, reg_net):
        contract = reg_net.get_contract(profile["chaincode"])
        msp = profile["msp_id"]
        records = await _live_records(reg_net)
        with dishonest_server(network, chaincode_node("regulator")):
            await _audit_pages(contract, msp, "audit")  # warm both paths once
            timings: dict[str, list[float]] = {"audit": [], "audit_unchecked": []}
            for _ in range(3):
                for name, spent in timings.items():
                    started = time.perf_counter()
                    page = await _audit_pages(contract, msp, name)
                    spent.append(time.perf_counter() - started)
                    assert page["ok"], page["failures"]
    checked, unchecked = min(timings["audit"]), min(timings["audit_unchecked"])
    per_record = (checked - unchecked) / records * 1e6
    print(f"\naudit over {records} records: {checked * 1e3:.1f} ms with the hash check, "
          f"{unchecked * 1e3:.1f} ms without: {per_record:.0f} us per record", file=sys.stderr)
    assert records > 40
