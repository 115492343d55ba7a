"""The deposit-token chaincode through ``fabcontract``: real identities with role attributes,
transient requests, arguments, responses and events as a peer would see them, and what
reaches the block carries no private value.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from deposit_token.chaincode import chaincode
from deposit_token.config import ENV_MSP, ENV_REGISTRY_SHA256, ENV_SECRET_FILE, ServerSettings
from deposit_token.contract import CONTRACT_NAME, DepositTokenContract
from deposit_token.errors import (
    InsufficientFunds,
    PeerUnavailable,
    ServerMisconfigured,
    refusal_from_message,
)
from deposit_token.operations import declare
from deposit_token.service import TRANSACTIONS
from dtoken_wire.requests import MoveRequest
from fabcontract import ContractChaincode
from fabshim.errors import PeerError
from fabshim.testing import MemoryLedger, TestIdentity, make_identity
from unit.deposit_token.dt_harness import (
    BANKS,
    REGULATOR,
    Net,
    ids,
    init_payload,
    registry_pin,
    secret_of,
)

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
# Distinctive private values: none of them may appear in a block.
PAYER = "PAYERacct_9f3b2c7d1e5a4b6c"
PAYEE = "PAYEEacct_1a2b3c4d5e6f7a8b"
OWNER = "CIF-OWNER-77341"
REFERENCE = "INVOICE-2025-000417"
AMOUNT = 1_234_567
ORIGINATOR = {"name": "Kowloon Exporters Ltd", "address": "88 Canton Road"}


def chaincodes() -> dict[str, ContractChaincode]:
    out = {}
    pin = registry_pin(init_payload())
    for name, (msp, _) in BANKS.items():
        out[name] = ContractChaincode(DepositTokenContract(
            ServerSettings(msp, secret_of(msp), pin)))
    out["regulator"] = ContractChaincode(
        DepositTokenContract(ServerSettings(REGULATOR, secret_of(REGULATOR), pin)))
    return out


def who(msp: str, **attrs: str) -> TestIdentity:
    return make_identity(msp, "ops", attributes=attrs)


class Peer:
    """Runs transactions on one organization's chaincode over a shared ledger, keeping
    everything a block would hold."""

    def __init__(self) -> None:
        self.ledger = MemoryLedger()
        self.cc = chaincodes()
        self.block_texts: list[str] = []

    async def invoke(self, org: str, identity: TestIdentity, fn: str, *args: str,
                     request: dict[str, Any] | None = None) -> Any:
        transient = {"request": json.dumps(request).encode()} if request else None
        resp = await self.ledger.invoke(self.cc[org], fn, *args, transient=transient,
                                        creator=identity.creator, timestamp=T0)
        self.block_texts += [fn, *args, resp.message, resp.payload.decode()]
        if resp.is_error:
            return resp
        return json.loads(resp.payload)

    async def evaluate(self, org: str, identity: TestIdentity, fn: str,
                       request: dict[str, Any] | None = None) -> Any:
        transient = {"request": json.dumps(request).encode()} if request else None
        resp = await self.ledger.evaluate(self.cc[org], fn, transient=transient,
                                          creator=identity.creator, timestamp=T0)
        assert not resp.is_error, resp.message
        return json.loads(resp.payload)


HK_OPS = who("HarbourBankMSP", operator="true", minter="true")
US_OPS = who("LibertyBankMSP", operator="true")
REG = who(REGULATOR, auditor="true")
# The bootstrap's identity: cryptogen-style Admin, NodeOU "admin", no role attribute.
HK_ADMIN = make_identity("HarbourBankMSP", "Admin", organizational_units=("admin",))
US_ADMIN = make_identity("LibertyBankMSP", "Admin", organizational_units=("admin",))


async def test_module_chaincode_lists_every_transaction() -> None:
    specs = chaincode.transactions(CONTRACT_NAME)
    assert set(specs) == {*TRANSACTIONS, "init_network", "admit_bank"}
    for name, spec in specs.items():
        argued = name in ("init_network", "admit_bank")
        assert spec.evaluate == (not argued and TRANSACTIONS[name].evaluate)
        assert len(spec.parameters) == (1 if argued else 0)


async def test_metadata_describes_each_transient_request_from_its_one_declaration() -> None:
    contract = chaincode.metadata()["contracts"][CONTRACT_NAME]
    entries = {t["name"]: t for t in contract["transactions"]}
    assert set(entries) == {*TRANSACTIONS, "init_network", "admit_bank"}
    for name, spec in TRANSACTIONS.items():
        if spec.request is None:
            assert "transient" not in entries[name]
            continue
        (transient,) = entries[name]["transient"]
        schema = transient["schema"]
        assert transient["name"] == "request"
        assert list(schema["properties"]) == [f.name for f in dataclasses.fields(spec.request)]
        assert schema["additionalProperties"] is False
        assert entries[name]["description"] == spec.description.split("\n\n")[0].replace(
            "\n", " ")
    mint = entries["mint"]["transient"][0]["schema"]
    assert mint["properties"]["amount"] == {"type": "integer"}
    assert mint["required"] == ["reference", "account_id", "amount"]
    status = entries["set_account_status"]["transient"][0]["schema"]["properties"]["status"]
    assert status == {"type": "string", "enum": ["active", "frozen", "closed"]}
    batch = entries["batch_payout"]["transient"][0]["schema"]["properties"]["payments"]
    assert batch["type"] == "array"
    assert batch["items"]["required"] == ["payee_bank", "payee_account", "amount"]


def test_a_body_is_declared_once_with_a_wire_request() -> None:
    async def mint(tx: Any, req: MoveRequest) -> dict[str, object]:
        return {}

    with pytest.raises(TypeError, match="declared twice"):
        declare()(mint)

    async def odd(tx: Any, req: dict[str, object]) -> dict[str, object]:
        return {}

    with pytest.raises(TypeError, match="dtoken_wire request type"):
        declare()(odd)


async def test_settings_come_from_the_environment(tmp_path: Any, monkeypatch: Any) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(bytes(range(32)))
    settings = ServerSettings.from_env({ENV_MSP: "HarbourBankMSP", ENV_SECRET_FILE: str(secret)})
    assert settings.msp_id == "HarbourBankMSP"
    assert "secret" not in repr(settings).lower().replace("secret=", "")
    assert settings.registry_sha256 is None
    pin = "ab" * 32
    pinned = ServerSettings.from_env({ENV_MSP: "HarbourBankMSP", ENV_SECRET_FILE: str(secret),
                                      ENV_REGISTRY_SHA256: pin})
    assert pinned.registry_sha256 == pin
    explicit = ServerSettings.from_env({ENV_REGISTRY_SHA256: pin}, msp_id="X1MSP",
                                       secret_file=secret, registry_sha256="cd" * 32)
    assert explicit.msp_id == "X1MSP"
    assert explicit.registry_sha256 == "cd" * 32
    with pytest.raises(ServerMisconfigured, match=ENV_REGISTRY_SHA256):
        ServerSettings.from_env({ENV_REGISTRY_SHA256: "not-a-digest"}, msp_id="X1MSP",
                                secret_file=secret)
    with pytest.raises(ServerMisconfigured):
        ServerSettings.from_env({})
    with pytest.raises(ServerMisconfigured):
        ServerSettings.from_env({ENV_MSP: "HarbourBankMSP", ENV_SECRET_FILE: str(tmp_path)})
    short = tmp_path / "short"
    short.write_bytes(b"x")
    with pytest.raises(ServerMisconfigured):
        ServerSettings.from_env({ENV_MSP: "HarbourBankMSP", ENV_SECRET_FILE: str(short)})
    # a server without configuration refuses with a stable code, naming no path
    monkeypatch.delenv(ENV_MSP, raising=False)
    ledger = MemoryLedger()
    resp = await ledger.evaluate(ContractChaincode(DepositTokenContract()), "get_registry",
                                 creator=HK_OPS.creator)
    assert resp.message.startswith("SERVER_MISCONFIGURED: ")
    assert str(tmp_path) not in resp.message


async def test_payment_lifecycle_through_the_contract_leaks_nothing_to_blocks() -> None:
    p = Peer()
    payload = init_payload()
    # The admin check reads the certificate's OU: an operator with every role is refused.
    refused = await p.invoke("hkbank", HK_OPS, "init_network", payload)
    assert refused.message.startswith("NOT_AUTHORIZED: ")
    assert (await p.invoke("hkbank", HK_ADMIN, "init_network", payload))["tokens"] == 5
    again = await p.invoke("usbank", US_ADMIN, "init_network", payload)
    assert again.message.startswith("ALREADY_INITIALIZED: ")
    p.block_texts.clear()  # the registry is public on purpose

    await p.invoke("hkbank", HK_OPS, "open_account", request={
        "reference": "open-" + PAYER, "account_id": PAYER, "currency": "USD",
        "owner_ref": OWNER})
    await p.invoke("usbank", US_OPS, "open_account", request={
        "reference": "open-" + PAYEE, "account_id": PAYEE, "currency": "USD",
        "owner_ref": OWNER + "-B"})
    await p.invoke("hkbank", HK_OPS, "mint", request={
        "reference": "DEP-" + REFERENCE, "account_id": PAYER, "amount": AMOUNT * 3})
    result = await p.invoke("hkbank", HK_OPS, "initiate_transfer", request={
        "reference": REFERENCE, "payer_account": PAYER, "payee_bank": "usbank",
        "payee_account": PAYEE, "amount": AMOUNT, "originator": ORIGINATOR})
    assert set(result) == {"tx_id"}
    assert p.ledger.events[-1].name == "TransferPending"
    assert json.loads(p.ledger.events[-1].payload)["payee_banks"] == ["usbank"]
    ref = await p.evaluate("hkbank", HK_OPS, "get_reference", {"reference": REFERENCE})
    (tid,) = ref["ids"]
    # refusals: insufficient funds, duplicate reference, wrong role, wrong organization
    refusals = [
        await p.invoke("hkbank", HK_OPS, "initiate_transfer", request={
            "reference": REFERENCE + "-2", "payer_account": PAYER, "payee_bank": "usbank",
            "payee_account": PAYEE, "amount": AMOUNT * 5}),
        await p.invoke("hkbank", HK_OPS, "initiate_transfer", request={
            "reference": REFERENCE, "payer_account": PAYER, "payee_bank": "usbank",
            "payee_account": PAYEE, "amount": AMOUNT}),
        await p.invoke("usbank", who("LibertyBankMSP", minter="true"), "accept_transfer",
                       request={"transfer_id": tid, "payer_bank": "hkbank"}),
        await p.invoke("hkbank", US_OPS, "accept_transfer",
                       request={"transfer_id": tid, "payer_bank": "hkbank"}),
        await p.invoke("hkbank", HK_OPS, "mint", request={
            "reference": "x" + REFERENCE, "account_id": PAYER, "amount": 1.5}),
        await p.invoke("hkbank", HK_OPS, "no_such_transaction"),
    ]
    codes = [r.message.split(":")[0] for r in refusals]
    assert codes == ["INSUFFICIENT_FUNDS", "DUPLICATE_REFERENCE", "NOT_AUTHORIZED",
                     "WRONG_ENDORSER", "INVALID_AMOUNT", "UNKNOWN_TRANSACTION"]
    assert type(refusal_from_message("chaincode response 500, " + refusals[0].message)) \
        is InsufficientFunds
    await p.invoke("usbank", US_OPS, "accept_transfer",
                   request={"transfer_id": tid, "payer_bank": "hkbank"})
    acc = await p.evaluate("usbank", US_OPS, "get_account", {"account_id": PAYEE})
    assert acc["balance"] == AMOUNT
    audit = await p.evaluate("regulator", REG, "audit", None)
    assert audit["done"]
    assert audit["ok"], audit["failures"]

    text = "\n".join(p.block_texts) + "".join(
        e.name + e.payload.decode() for e in p.ledger.events)
    for secret in (PAYER, PAYEE, OWNER, REFERENCE, str(AMOUNT), str(AMOUNT * 3), tid,
                   *ORIGINATOR.values()):
        assert secret not in text

    # private values are salted and private keys opaque: neither a reference, an owner nor
    # an amount shows in any key; no two writes of one key share a value hash
    for collection in ("acct-hkbank", "acct-usbank", "pair-hkbank-usbank", "pair-usbank-hkbank"):
        for key in p.ledger.keys(collection):
            assert REFERENCE not in key
            assert OWNER not in key
            assert str(AMOUNT) not in key
            value = json.loads(p.ledger.get_private_data(collection, key) or b"{}")
            assert len(value["salt"]) == 32


async def test_a_peer_that_cannot_read_its_ledger_is_peer_unavailable_not_internal() -> None:
    """A read the peer answers with ERROR (e.g. private data it has not received yet after
    a restart) is a node fault the client retries, not a refusal of the payment."""
    net = Net()
    await net.init()
    (account,) = ids("pu", 1)
    await net.open("hkbank", "USD", account)

    class Unreadable:
        def __init__(self, stub: Any) -> None:
            self._stub = stub

        def __getattr__(self, name: str) -> Any:
            return getattr(self._stub, name)

        async def get_private_data(self, collection: str, key: str) -> bytes | None:
            raise PeerError("GET_STATE", "private data matching public hash version is not "
                                         "available")

        async def get_multiple_private_data(self, collection: str, keys: Any) -> Any:
            raise PeerError("GET_STATE_MULTIPLE", "not available")

    net.stub_wrapper = lambda org, stub: Unreadable(stub)
    with pytest.raises(PeerUnavailable, match="could not answer a ledger read"):
        await net.submit("hkbank", "mint", {"reference": "m-1", "account_id": account,
                                            "amount": 5}, caller=net.caller("hkbank", "minter"))
