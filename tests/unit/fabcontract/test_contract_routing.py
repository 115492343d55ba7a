"""ContractChaincode: routing, hooks, argument decoding, results, errors, metadata."""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from fabcontract import (
    Context,
    Contract,
    ContractChaincode,
    ContractDefinitionError,
    transaction,
)
from fabshim import Response, Stub
from fabshim.testing import MemoryLedger, make_identity


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass(frozen=True)
class Balance:
    account: str
    amount: int


class Wallet(Contract):
    """Keeps balances."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def before_transaction(self, ctx: Context) -> None:
        self.calls.append(f"before:{ctx.function}")

    async def after_transaction(self, ctx: Context, result: Any) -> None:
        self.calls.append(f"after:{ctx.function}:{result!r}")

    @transaction()
    async def credit(self, ctx: Context, account: str, amount: int) -> int:
        """Add to a balance.

        Longer explanation not in the metadata summary.
        """
        self.calls.append("credit")
        current = int((await ctx.stub.get_state(account) or b"0").decode())
        await ctx.stub.put_state(account, str(current + amount).encode())
        return current + amount

    @transaction(evaluate=True)
    async def balance(self, ctx: Context, account: str) -> Balance:
        value = await ctx.stub.get_state(account)
        return Balance(account, int(value or b"0"))

    @transaction(evaluate=True)
    async def kinds(
        self,
        ctx: Context,
        flag: bool,
        items: list[int],
        table: dict[str, list[str]],
        raw: bytes,
        color: Color,
        mode: Literal["fast", "safe"],
        note: str = "none",
    ) -> dict[str, Any]:
        return {
            "flag": flag,
            "items": items,
            "table": table,
            "raw": raw.hex(),
            "color": color,
            "mode": mode,
            "note": note,
        }

    @transaction()
    async def fail(self, ctx: Context, code: str) -> None:
        raise RuntimeError(f"{code}: refused")

    @transaction(evaluate=True)
    async def give(self, ctx: Context, what: str) -> Any:
        return {
            "none": None,
            "bytes": b"\x00raw",
            "text": "plain",
            "float": 1.5,
            "nested": {"b": [1, 2], "a": True},
            "tuple": (1, "x"),
            "set": {1},
        }[what]

    @transaction(evaluate=True, name="WhoAmI")
    async def who_am_i(self, ctx: Context) -> dict[str, Any]:
        identity = ctx.client_identity
        return {
            "msp": identity.msp_id,
            "role": identity.get_attribute_value("role"),
            "transient": sorted(ctx.transient),
            "tx": ctx.tx_id == ctx.stub.tx_id,
        }

    async def helper(self, ctx: Context) -> None:
        """Not a transaction: not callable by clients."""


class Admin(Contract):
    name = "admin"

    @transaction()
    async def ping(self, ctx: Context) -> str:
        return "pong"

    async def unknown_transaction(self, ctx: Context) -> Any:
        return {"unknown": ctx.function}


@pytest.fixture
def wallet() -> Wallet:
    return Wallet()


@pytest.fixture
def chaincode(wallet: Wallet) -> ContractChaincode:
    return ContractChaincode(wallet, Admin(), title="bank", version="1.2")


async def call(chaincode: ContractChaincode, ledger: MemoryLedger, *args: str | bytes) -> Response:
    function, *rest = args
    return await ledger.invoke(chaincode, str(function), *rest)


def body(response: Response) -> Any:
    assert response.status == 200, response.message
    return json.loads(response.payload) if response.payload else None


# ---------------------------------------------------------------------------- routing


async def test_default_contract_and_prefixed_names_route_the_same(
    chaincode: ContractChaincode,
) -> None:
    ledger = MemoryLedger()
    assert body(await call(chaincode, ledger, "credit", "acct", "5")) == 5
    assert body(await call(chaincode, ledger, "Wallet:credit", "acct", "7")) == 12
    assert body(await call(chaincode, ledger, "admin:ping")) == "pong"
    assert chaincode.default_contract == "Wallet"


async def test_unknown_contract_and_function(chaincode: ContractChaincode) -> None:
    ledger = MemoryLedger()
    response = await call(chaincode, ledger, "nope:credit")
    assert (response.status, response.message) == (
        500,
        "UNKNOWN_CONTRACT: contract 'nope' is not defined",
    )
    response = await call(chaincode, ledger, "missing")
    assert response.message == (
        "UNKNOWN_TRANSACTION: function 'missing' is not a transaction of contract 'Wallet'"
    )
    assert (await call(chaincode, ledger, "helper")).message.startswith("UNKNOWN_TRANSACTION")
    assert body(await call(chaincode, ledger, "admin:whatever")) == {"unknown": "whatever"}


async def test_no_function_is_an_error_for_invoke_and_a_no_op_for_init(
    chaincode: ContractChaincode,
) -> None:
    ledger = MemoryLedger()
    assert (await ledger.invoke(chaincode)).message.startswith("UNKNOWN_CONTRACT")
    assert (await ledger.invoke(chaincode, init=True)).status == 200


async def test_init_routes_like_invoke(chaincode: ContractChaincode) -> None:
    ledger = MemoryLedger()
    response = await ledger.invoke(chaincode, "credit", "a", "3", init=True)
    assert body(response) == 3


async def test_explicit_default_contract() -> None:
    chaincode = ContractChaincode(Wallet(), Admin(), default="admin")
    assert body(await MemoryLedger().invoke(chaincode, "ping")) == "pong"
    with pytest.raises(ContractDefinitionError, match="not registered"):
        ContractChaincode(Wallet(), default="ghost")


# ---------------------------------------------------------------------------- hooks


async def test_hooks_run_around_successful_transactions(
    chaincode: ContractChaincode, wallet: Wallet
) -> None:
    await call(chaincode, MemoryLedger(), "credit", "a", "2")
    assert wallet.calls == ["before:credit", "credit", "after:credit:2"]


async def test_hooks_do_not_run_when_arguments_are_bad(
    chaincode: ContractChaincode, wallet: Wallet
) -> None:
    response = await call(chaincode, MemoryLedger(), "credit", "a", "two")
    assert response.message == "INVALID_ARGUMENT: parameter 'amount' of credit: not an integer"
    assert wallet.calls == []


async def test_a_failing_hook_fails_the_transaction_and_nothing_commits() -> None:
    class Guarded(Contract):
        async def before_transaction(self, ctx: Context) -> None:
            if ctx.function == "blocked":
                raise PermissionError("ACCESS_DENIED: not for you")

        async def after_transaction(self, ctx: Context, result: Any) -> None:
            if result == "undo":
                raise RuntimeError("POSTCONDITION: failed")

        @transaction()
        async def blocked(self, ctx: Context) -> None:
            await ctx.stub.put_state("x", b"1")

        @transaction()
        async def write(self, ctx: Context, value: str) -> str:
            await ctx.stub.put_state("y", b"1")
            return value

    chaincode = ContractChaincode(Guarded())
    ledger = MemoryLedger()
    assert (await ledger.invoke(chaincode, "blocked")).message == "ACCESS_DENIED: not for you"
    assert (await ledger.invoke(chaincode, "write", "undo")).message == "POSTCONDITION: failed"
    assert ledger.keys() == []
    assert body(await ledger.invoke(chaincode, "write", "keep")) == "keep"
    assert ledger.keys() == ["y"]


async def test_custom_context() -> None:
    class BankContext(Context):
        @property
        def bank(self) -> str:
            return "BANK-" + self.stub.tx_id[:4]

    class Custom(Contract):
        def create_context(self, stub: Stub) -> Context:
            return BankContext(stub)

        @transaction(evaluate=True)
        async def bank(self, ctx: Context) -> str:
            assert isinstance(ctx, BankContext)
            return ctx.bank

    response = await MemoryLedger().evaluate(ContractChaincode(Custom()), "bank", tx_id="abcd1234")
    assert body(response) == "BANK-abcd"


# ---------------------------------------------------------------------------- arguments


async def test_typed_arguments(chaincode: ContractChaincode) -> None:
    response = await MemoryLedger().evaluate(
        chaincode,
        "kinds",
        "true",
        "[1,-2,3]",
        '{"a":["x"]}',
        b"\x00\xff",
        "blue",
        "safe",
    )
    assert body(response) == {
        "flag": True,
        "items": [1, -2, 3],
        "table": {"a": ["x"]},
        "raw": "00ff",
        "color": "blue",
        "mode": "safe",
        "note": "none",
    }


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (0, "yes", "parameter 'flag' of kinds: not true or false"),
        (1, "[1, 2.5]", "parameter 'items' of kinds: floats are not accepted"),
        (1, '["1"]', "parameter 'items' of kinds: not an integer"),
        (1, "{}", "parameter 'items' of kinds: not a JSON array"),
        (2, '{"a":[1]}', "parameter 'table' of kinds: not a string"),
        (2, "{", "parameter 'table' of kinds: not valid JSON"),
        (4, "green", "parameter 'color' of kinds: not one of the allowed values"),
        (5, "slow", "parameter 'mode' of kinds: not one of the allowed values"),
    ],
)
async def test_bad_arguments_name_the_parameter(
    chaincode: ContractChaincode, index: int, value: str, message: str
) -> None:
    args: list[str | bytes] = ["true", "[1]", '{"a":["x"]}', b"", "red", "fast"]
    args[index] = value
    response = await MemoryLedger().evaluate(chaincode, "kinds", *args)
    assert response.status == 500
    assert response.message.startswith("INVALID_ARGUMENT: " + message)


@pytest.mark.parametrize("count", [0, 5, 8])
async def test_wrong_argument_count(chaincode: ContractChaincode, count: int) -> None:
    response = await MemoryLedger().evaluate(chaincode, "kinds", *(["x"] * count))
    assert response.message == (
        "INVALID_ARGUMENT: kinds expects 6 to 7 argument(s) "
        f"(flag, items, table, raw, color, mode, note), got {count}"
    )


@pytest.mark.parametrize("text", ["+1", " 1", "1 ", "01", "1.0", "1e3", "", "0x10", "\u0661"])
async def test_integers_are_parsed_strictly(chaincode: ContractChaincode, text: str) -> None:
    response = await call(chaincode, MemoryLedger(), "credit", "a", text)
    assert response.message == "INVALID_ARGUMENT: parameter 'amount' of credit: not an integer"


async def test_non_utf8_string_argument(chaincode: ContractChaincode) -> None:
    response = await call(chaincode, MemoryLedger(), "credit", b"\xff", "1")
    assert response.message == "INVALID_ARGUMENT: parameter 'account' of credit: not valid UTF-8"


# ---------------------------------------------------------------------------- results


@pytest.mark.parametrize(
    ("what", "payload"),
    [
        ("none", b""),
        ("bytes", b"\x00raw"),
        ("text", b'"plain"'),
        ("nested", b'{"a":true,"b":[1,2]}'),
        ("tuple", b'[1,"x"]'),
    ],
)
async def test_results_are_encoded(chaincode: ContractChaincode, what: str, payload: bytes) -> None:
    response = await MemoryLedger().evaluate(chaincode, "give", what)
    assert response.status == 200
    assert response.payload == payload


@pytest.mark.parametrize(("what", "message"), [("float", "float results"), ("set", "set result")])
async def test_unencodable_results_are_errors(
    chaincode: ContractChaincode, what: str, message: str
) -> None:
    response = await MemoryLedger().evaluate(chaincode, "give", what)
    assert response.status == 500
    assert message in response.message


async def test_dataclass_result(chaincode: ContractChaincode) -> None:
    ledger = MemoryLedger()
    await call(chaincode, ledger, "credit", "a", "9")
    response = await ledger.evaluate(chaincode, "balance", "a")
    assert response.payload == b'{"account":"a","amount":9}'


async def test_exception_message_becomes_the_error_response(
    chaincode: ContractChaincode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="fabcontract")
    response = await call(chaincode, MemoryLedger(), "fail", "LIMIT_EXCEEDED")
    assert (response.status, response.message) == (500, "LIMIT_EXCEEDED: refused")
    assert "RuntimeError" in caplog.text
    assert "LIMIT_EXCEEDED" not in caplog.text  # messages and arguments stay out of logs


async def test_context_identity_and_transient(chaincode: ContractChaincode) -> None:
    identity = make_identity("BankA", attributes={"role": "minter"})
    response = await MemoryLedger().evaluate(
        chaincode, "WhoAmI", creator=identity.creator, transient={"salt": b"1", "a": b"2"}
    )
    assert body(response) == {
        "msp": "BankA",
        "role": "minter",
        "transient": ["a", "salt"],
        "tx": True,
    }


async def test_identity_errors_become_error_responses(chaincode: ContractChaincode) -> None:
    response = await MemoryLedger().evaluate(chaincode, "WhoAmI")
    assert (response.status, response.message) == (500, "the transaction has no creator")


# ---------------------------------------------------------------------------- metadata


async def test_get_metadata(chaincode: ContractChaincode) -> None:
    response = await MemoryLedger().evaluate(chaincode, "org.hyperledger.fabric:GetMetadata")
    metadata = body(response)
    assert metadata["info"] == {"title": "bank", "version": "1.2"}
    assert list(metadata["contracts"]) == ["Wallet", "admin", "org.hyperledger.fabric"]
    wallet = metadata["contracts"]["Wallet"]
    assert wallet["default"] is True
    assert wallet["info"]["description"] == "Keeps balances."
    transactions = {t["name"]: t for t in wallet["transactions"]}
    assert set(transactions) == {"WhoAmI", "balance", "credit", "fail", "give", "kinds"}
    assert transactions["credit"] == {
        "name": "credit",
        "tag": ["SUBMIT"],
        "description": "Add to a balance.",
        "parameters": [
            {"name": "account", "description": "", "schema": {"type": "string"}},
            {"name": "amount", "description": "", "schema": {"type": "integer"}},
        ],
        "returns": {"type": "integer"},
    }
    assert transactions["balance"]["tag"] == ["EVALUATE"]
    assert "returns" not in transactions["fail"]
    kinds = {p["name"]: p["schema"] for p in transactions["kinds"]["parameters"]}
    assert kinds == {
        "flag": {"type": "boolean"},
        "items": {"type": "array", "items": {"type": "integer"}},
        "table": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "raw": {"type": "string", "format": "byte"},
        "color": {"type": "string", "enum": ["red", "blue"]},
        "mode": {"type": "string", "enum": ["fast", "safe"]},
        "note": {"type": "string"},
    }
    system = metadata["contracts"]["org.hyperledger.fabric"]
    assert system["transactions"][0]["name"] == "GetMetadata"
    assert system["transactions"][0]["tag"] == ["EVALUATE"]


# ---------------------------------------------------------------------------- definitions


def test_contract_names() -> None:
    assert Wallet().name == "Wallet"
    assert Admin().name == "admin"
    assert Contract("explicit").name == "explicit"


def test_transactions_must_be_async() -> None:
    with pytest.raises(TypeError, match="async def"):

        class Bad(Contract):
            @transaction()
            def sync(self, ctx: Context) -> None:  # type: ignore[type-var]
                pass


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("async def t(self, ctx, amount: float) -> None: ...", "float is not supported"),
        ("async def t(self, ctx, amount) -> None: ...", "has no annotation"),
        ("async def t(self, ctx, *amounts: int) -> None: ...", "must be positional"),
        ("async def t(self, ctx, x: int | None) -> None: ...", "union"),
        ("async def t(self, ctx, x: dict[int, str]) -> None: ...", "keys must be str"),
        ("async def t(self, ctx, x: list[float]) -> None: ...", "float is not supported"),
        ("async def t(self, ctx, x: set[str]) -> None: ...", "unsupported type"),
        ("async def t(self) -> None: ...", "signature must be"),
        ("async def t(self, ctx) -> float: ...", "float is not supported"),
    ],
)
def test_malformed_transactions_are_refused_at_registration(source: str, message: str) -> None:
    namespace: dict[str, Any] = {}
    exec(source, namespace)  # builds a method with the given signature
    method = transaction()(namespace["t"])
    contract_class = type("Broken", (Contract,), {"t": method})
    with pytest.raises(ContractDefinitionError, match=message):
        ContractChaincode(contract_class())


def test_duplicate_names_are_refused() -> None:
    class Twice(Contract):
        @transaction(name="same")
        async def one(self, ctx: Context) -> None: ...

        @transaction(name="same")
        async def two(self, ctx: Context) -> None: ...

    with pytest.raises(ContractDefinitionError, match="two transactions named 'same'"):
        ContractChaincode(Twice())
    with pytest.raises(ContractDefinitionError, match="two contracts are named 'admin'"):
        ContractChaincode(Admin(), Admin())
    with pytest.raises(ContractDefinitionError, match="at least one"):
        ContractChaincode()
    with pytest.raises(ContractDefinitionError, match="not a Contract"):
        ContractChaincode(object())  # type: ignore[arg-type]


def test_bare_decorator() -> None:
    class Bare(Contract):
        @transaction
        async def hello(self, ctx: Context) -> str:
            return "hi"

    chaincode = ContractChaincode(Bare())
    assert set(chaincode.transactions("Bare")) == {"hello"}
