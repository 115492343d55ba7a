"""The namespace layout on the real network (issue 15): one namespace per organization,
pair collections in bounded pair namespaces reached by chaincode-to-chaincode calls to the
storage chaincode (docs/architecture.md, "Namespace layout").

Its own three-bank network (``chaincode.layout: namespaces``) on
``DTOKEN_TEST_BASE_PORT + 1000``. Through the bank SDK: intra-bank and cross-bank
payments, the payee's accept, the regulator's hold and audit from its own namespace. From
the dishonest side: a client calling a pair namespace at the top level is refused by the
storage server, and one bank's peer cannot get another bank's pair collection written
through its own storage (the Gateway's endorsement or the commit refuses it).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import fabgateway
import pytest
from consortium import namespaces
from harness import TestNetwork
from harness.faults import own_network
from harness.gateway import OrgClient
from harness.sdk import bank, regulator

RUN = secrets.token_hex(3)


def ref(tag: str) -> str:
    return f"{tag}-{RUN}-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def layout_net(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[TestNetwork]:
    with own_network(tmp_path_factory, request, "dtlayout", 1000,
                     chaincode={"layout": "namespaces"}) as net:
        yield net


def test_the_network_commits_every_definition_of_the_layout(layout_net: TestNetwork) -> None:
    lifecycle = layout_net.network.lifecycle
    names = {d.name for d in namespaces.definitions(layout_net.consortium)}
    assert names <= lifecycle.committed_names()
    assert "dtoken" not in lifecycle.committed_names()  # no namespace of every collection
    profile = json.loads(layout_net.network.profile_path(
        layout_net.consortium.org("hkbank")).read_text())
    assert profile["chaincode"] == "dtoken-hkbank"


async def test_payments_and_the_regulator_on_the_layout(layout_net: TestNetwork) -> None:
    async with bank(layout_net, "hkbank", "minter") as hk, bank(layout_net, "usbank") as us:
        usd = hk.money
        payer = (await hk.open_account("USD", "CIF-1", reference=ref("open"))).account_id
        await hk.mint(payer, usd("1,000.00 USD"), reference=ref("dep"))
        other = (await hk.open_account("USD", "CIF-2", reference=ref("open"))).account_id
        paid = await hk.transfer(payer, "hkbank", other, usd("100.00 USD"), reference=ref("in"))
        assert paid.kind == "internal"
        payee = (await us.open_account("USD", "EXP", reference=ref("open"))).account_id
        sent = await hk.transfer(payer, "usbank", payee, usd("120.00 USD"), reference=ref("x"))
        assert sent.kind == "cross_bank"
        assert sent.transfer_id is not None
        await us.wait_for_commit(sent.receipt.tx_id)
        await us.accept(sent.transfer_id, "hkbank")
        assert await us.balance(payee) == us.money("120.00 USD")
        assert await hk.balance(payer) == usd("780.00 USD")
        owed = await hk.obligations("usbank")
        assert owed.owed("hkbank", "USD") == usd("120.00 USD").minor
    async with regulator(layout_net) as reg:
        report = await reg.audit()
        assert report.ok


class _Raw(OrgClient):
    async def call(self, chaincode: str, args: list[str]) -> bytes:
        contract = self.network.get_contract(chaincode)
        return await contract.submit_transaction(
            args[0], *args[1:], endorsing_organizations=[self.msp_id])


async def test_a_pair_namespace_at_the_top_level_is_refused(layout_net: TestNetwork) -> None:
    op = ["pair-usbank-hkbank", "xfer/" + "f" * 32, "AAAA", None]
    async with _Raw(layout_net, "hkbank").connected() as hk:
        with pytest.raises(fabgateway.EndorseError, match="NOT_AUTHORIZED"):
            await hk.call("dtoken-pairs-usbank-0", ["write", json.dumps({"ops": [op]})])
