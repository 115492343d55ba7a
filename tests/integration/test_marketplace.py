"""A marketplace's account on the real network (issue 14): many payments from one account.

16 and 64 concurrent ``transfer()`` calls from one account, and two processes paying from
one account at once: no permanent failure, every reference applied exactly once (the
payer's history, the references and the payees' credits agree), and the audit OK.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
from collections import Counter

import fabgateway
import pytest
from dtoken import errors
from dtoken.bank import Bank
from dtoken.listener import IncomingListener
from dtoken.models import Payment
from harness import TestNetwork
from harness.sdk import bank, regulator

RUN = secrets.token_hex(3)

_OTHER_PROCESS = """
import asyncio, json, sys
from dtoken import errors
from dtoken.bank import Bank

async def main() -> None:
    profile, payer, payees = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    refs = json.loads(sys.argv[4])
    async with Bank.connect(profile) as hk:
        results = await asyncio.gather(*(
            hk.transfer(payer, bank, account, 100, reference=ref)
            for (bank, account), ref in zip(payees, refs)), return_exceptions=True)
    print(json.dumps([r.transfer_id if not isinstance(r, BaseException) else repr(r)
                      for r in results]))

asyncio.run(main())
"""


def refs(tag: str, n: int) -> list[str]:
    return [f"mk-{tag}-{RUN}-{i}" for i in range(n)]


async def exporters(us: Bank, cn: Bank, n: int) -> list[tuple[str, str]]:
    """``n`` exporter accounts, alternately at usbank and cnbank."""
    async def one(i: int) -> tuple[str, str]:
        client = us if i % 2 == 0 else cn
        opened = await client.open_account("USD", f"EXP-{i}", reference=f"exp-{RUN}-{i}")
        return client.name, opened.account_id

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def pay_at_once(hk: Bank, payer: str, payees: list[tuple[str, str]],
                      references: list[str]) -> list[Payment]:
    return list(await asyncio.gather(*(
        hk.transfer(payer, b, a, 100, reference=r)
        for (b, a), r in zip(payees, references, strict=True))))


@pytest.fixture
async def payer(network: TestNetwork) -> str:
    async with bank(network, "hkbank", "minter") as hk:
        account = (await hk.open_account("USD", "MARKETPLACE", reference=f"mkt-{RUN}")).account_id
        await hk.mint(account, hk.money("10,000.00 USD"), reference=f"mkt-dep-{RUN}")
        return account


async def test_concurrent_and_two_process_payments_from_one_account_apply_once(
    network: TestNetwork, payer: str
) -> None:
    async with (bank(network, "hkbank") as hk, bank(network, "usbank") as us,
                bank(network, "cnbank") as cn):
        payees = await exporters(us, cn, 64)
        paid: dict[str, str] = {}  # reference -> transfer id

        # 16, then 64 calls at once from one account: gathered into few transactions
        for n in (16, 64):
            references = refs(f"c{n}", n)
            before = hk.coalescer.batches
            payments = await pay_at_once(hk, payer, payees[:n], references)
            assert hk.coalescer.batches - before < n // 2
            paid.update({r: p.transfer_id for r, p in zip(references, payments, strict=True)
                         if p.transfer_id is not None})
        assert len(paid) == 16 + 64

        # two processes at once, from the same account
        mine, theirs = refs("p1", 40), refs("p2", 40)
        other = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _OTHER_PROCESS, str(network.profile_path("hkbank")), payer,
            json.dumps(payees[:40]), json.dumps(theirs),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        payments = await pay_at_once(hk, payer, payees[:40], mine)
        out, err = await asyncio.wait_for(other.communicate(), 180)
        assert other.returncode == 0, err.decode()[-2000:]
        their_ids = json.loads(out)
        assert all(not t.startswith(("<", "Contended", "OutcomeUnknown")) for t in their_ids), \
            their_ids
        paid.update({r: p.transfer_id for r, p in zip(mine, payments, strict=True)
                     if p.transfer_id is not None})
        paid.update(zip(theirs, their_ids, strict=True))
        assert len(paid) == 16 + 64 + 80  # 0 permanent failures

        # a replay of every reference applies nothing new
        replays = await pay_at_once(hk, payer, payees[:16], refs("c16", 16))
        assert all(p.receipt.replayed for p in replays)
        # a reference reused for another payment is refused, not taken for a replay
        with pytest.raises(errors.DuplicateReference):
            await hk.transfer(payer, payees[0][0], payees[0][1], 101,
                              reference=refs("c16", 16)[0])

        # the payer's history: one payment_out per reference, each transfer id once
        history = [h for h in await hk.history(payer) if h.kind == "payment_out"]
        counted = Counter(h.transfer_id for h in history)
        assert set(counted) == set(paid.values())
        assert set(counted.values()) == {1}
        assert (await hk.balance(payer)).minor == 1_000_000 - 100 * len(paid)
        for reference, transfer_id in list(paid.items())[::10]:
            found = await hk.lookup_reference(reference)
            assert found is not None
            assert found.ids == (transfer_id,)

        # the payee banks accept; the credits agree with the payer's debits
        stop = asyncio.Event()
        listeners = [IncomingListener(c, checkpointer=fabgateway.InMemoryCheckpointer())
                     for c in (us, cn)]
        tasks = [asyncio.create_task(li.run(stop=stop)) for li in listeners]
        expected = Counter[str]()
        for n, group in ((16, "c16"), (64, "c64"), (40, "p1"), (40, "p2")):
            for (_b, account), _r in zip(payees[:n], refs(group, n), strict=True):
                expected[account] += 100
        try:
            async def credited() -> bool:
                for (b, account) in payees:
                    client = us if b == "usbank" else cn
                    if (await client.balance(account)).minor != expected[account]:
                        return False
                return True

            for _ in range(240):
                if await credited():
                    break
                await asyncio.sleep(0.5)
            assert await credited()
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 20)

    async with regulator(network) as reg:
        report = await reg.audit()
        assert report.ok, report.failures


_LANE_PROCESS = """
import asyncio, json, sys
from dtoken.bank import Bank

async def main() -> None:
    profile, payer, payees = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    refs, amounts = json.loads(sys.argv[4]), json.loads(sys.argv[5])
    async with Bank.connect(profile) as hk:  # its lane comes from DTOKEN_LANE
        results = await asyncio.gather(*(
            hk.transfer(payer, bank, account, amount, reference=ref)
            for (bank, account), ref, amount in zip(payees, refs, amounts)),
            return_exceptions=True)
        rebalances = hk.coalescer.rebalances
    print(json.dumps({"ids": [r.transfer_id if not isinstance(r, BaseException) else repr(r)
                              for r in results], "rebalances": rebalances}))

asyncio.run(main())
"""


async def test_two_processes_on_their_own_lanes_of_one_account(network: TestNetwork) -> None:
    """Issue 14 item 3: an account with two balance lanes, one process on each, paying at
    once (one payment larger than its lane, so a rebalance runs between the payments), with a
    daily limit: 0 permanent failures, each reference applied once, the day's outflow within
    the limit (a payment past it refused), the audit OK."""
    limit = 900_000
    async with (bank(network, "hkbank", "minter") as hk, bank(network, "usbank") as us,
                bank(network, "cnbank") as cn):
        payer = (await hk.open_account("USD", "MARKETPLACE-LANES", reference=f"mkl-{RUN}",
                                       daily_outflow_limit=limit)).account_id
        await hk.mint(payer, 1_000_000, reference=f"mkl-dep-{RUN}")
        await hk.set_lanes(payer, 2)
        assert [m.minor for m in (await hk.account(payer)).lane_balances] == [1_000_000, 0]
        hk.lane = 0
        payees = await exporters(us, cn, 40)
        mine, theirs = refs("l0", 40), refs("l1", 41)
        their_amounts = [100] * 40 + [500_000]  # the last is larger than lane 1 ever held
        other = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _LANE_PROCESS, str(network.profile_path("hkbank")), payer,
            json.dumps([*payees, payees[0]]), json.dumps(theirs), json.dumps(their_amounts),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "DTOKEN_LANE": "1"})
        payments = await pay_at_once(hk, payer, payees, mine)
        out, err = await asyncio.wait_for(other.communicate(), 240)
        assert other.returncode == 0, err.decode()[-2000:]
        result = json.loads(out)
        their_ids = result["ids"]
        assert all(not t.startswith("<") and "Error" not in t and "(" not in t
                   for t in their_ids), their_ids  # 0 permanent failures
        assert result["rebalances"] >= 1  # lane 1 started empty, and the large payment
        paid = {r: p.transfer_id for r, p in zip(mine, payments, strict=True)}
        paid.update(zip(theirs, their_ids, strict=True))
        assert len(set(paid.values())) == 81
        spent = 100 * 80 + 500_000

        account = await hk.account(payer)
        assert account.balance.minor == 1_000_000 - spent
        assert account.outflow_today.minor == spent <= limit
        # the daily limit holds across lanes: a payment past it is refused (after the
        # coalescer tried to rebalance headroom), whatever lane it comes from
        with pytest.raises(errors.LimitExceeded):
            await hk.transfer(payer, payees[1][0], payees[1][1], limit - spent + 1,
                              reference=f"mkl-over-{RUN}")
        history = [h for h in await hk.history(payer) if h.kind == "payment_out"]
        counted = Counter(h.transfer_id for h in history)
        assert set(counted) == set(paid.values())
        assert set(counted.values()) == {1}

    async with regulator(network) as reg:
        report = await reg.audit()
        assert report.ok, report.failures
