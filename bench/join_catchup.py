"""How long a bank takes to join a running network, by the length of the chain it replays.

    .venv/bin/python bench/join_catchup.py --base-port 13500 --seconds 60

Brings a network of the default consortium up in a temporary folder (its own ports), writes
blocks for ``--seconds`` (concurrent mints at every founding bank, each a transaction; blocks
are cut by the batch timeout), then adds a bank (``Network.add_bank``) that replays the chain
from the genesis block, and at once a second bank that joins from a founding peer's ledger
snapshot (``from_snapshot``): the same chain, both ways. Prints each step of each join, the
height it caught up with and the seconds it took. The network is taken down at the end.
docs/operations.md, "Adding a bank", quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from consortium import config as config_mod
from consortium.network import Network
from dtoken.bank import Bank

ROOT = Path(__file__).resolve().parents[1]
NEW_BANKS = [
    {"name": "sgbank", "msp_id": "LionCityMSP", "jurisdiction": "SG", "currencies": ["USD"]},
    {"name": "jpbank", "msp_id": "RisingSunMSP", "jurisdiction": "JP", "currencies": ["USD"]},
]


async def write_blocks(net: Network, seconds: float, concurrency: int) -> int:
    """Mints at every founding bank for ``seconds``; the number committed."""
    done = 0

    async def worker(client: Bank, account: str, stop: float) -> None:
        nonlocal done
        while time.monotonic() < stop:
            await client.mint(account, 1, reference=f"blk-{secrets.token_hex(8)}")
            done += 1

    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(Bank.connect(net.profile_path(b), identity="minter"))
            for b in net.consortium.founding_banks
        ]
        tasks = []
        stop = time.monotonic() + seconds
        for client in clients:
            for i in range(concurrency):
                opened = await client.open_account("USD", f"BLK-{i}",
                                                   reference=f"open-{secrets.token_hex(6)}")
                tasks.append(worker(client, opened.account_id, stop))
        await asyncio.gather(*tasks)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-port", type=int, default=13500)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=4, help="mints in flight per bank")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="join-catchup-") as tmp:
        data = yaml.safe_load((ROOT / "config" / "consortium.yaml").read_text())
        data.update(name="joinbench", base_port=args.base_port)
        source = Path(tmp) / "consortium.yaml"
        source.write_text(yaml.safe_dump(data, sort_keys=False))
        net = Network(config_mod.load(source), Path(tmp) / "state", progress=lambda _m: None)
        results: list[dict[str, Any]] = []
        try:
            up = net.up()
            minted = asyncio.run(write_blocks(net, args.seconds, args.concurrency))
            for bank, from_snapshot in zip(NEW_BANKS, (False, True), strict=True):
                data.setdefault("joined_banks", []).append(bank)
                source.write_text(yaml.safe_dump(data, sort_keys=False))
                net = Network(config_mod.load(source), net.state_dir, progress=lambda _m: None)
                started = time.monotonic()
                report = net.add_bank(str(bank["name"]), from_snapshot=from_snapshot)
                results.append({**report.to_json(), "transactions_before": minted,
                                "total_seconds": round(time.monotonic() - started, 2)})
        finally:
            net.down()
    print(json.dumps({"up_seconds": round(up, 1), "joins": results}, indent=2))
    print("\n| bank | joins | chain height | join → caught up | add-bank in all |")
    print("|---|---|---|---|---|")
    for r in results:
        how = "from a snapshot" if r["from_snapshot"] else "by replay"
        print(f"| {r['bank']} | {how} | {r['chain_height']} blocks | "
              f"{r['catch_up_seconds']:.2f} s | {r['total_seconds']:.1f} s |")


if __name__ == "__main__":
    main()
