"""``ContractChaincode``: routes ``contract:function`` requests to contract transactions.

It implements the shim's ``Chaincode`` protocol, so a chaincode module is::

    chaincode = ContractChaincode(TokenContract(), AdminContract())

and is served with ``python -m fabshim serve module:chaincode``.
"""

from __future__ import annotations

import inspect
import json
import logging
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fabshim import Response, Stub, error, success
from fabshim.handler import log_prefix

from .contract import TRANSACTION_ATTRIBUTE, Context, Contract, TransactionMarker, transaction
from .errors import (
    ArgumentError,
    ContractDefinitionError,
    UnknownContract,
)
from .serialization import Codec, Schema, codec_for, encode_result, json_schema, return_schema

logger = logging.getLogger("fabcontract")

SYSTEM_CONTRACT_NAME = "org.hyperledger.fabric"
METADATA_SCHEMA = (
    "https://hyperledger.github.io/fabric-chaincode-node/main/api/contract-schema.json"
)


@dataclass(frozen=True, slots=True)
class Parameter:
    """One decoded parameter of a transaction."""

    name: str
    codec: Codec
    has_default: bool


@dataclass(frozen=True, slots=True)
class TransactionSpec:
    """A transaction as the router sees it."""

    name: str
    method: Callable[..., Awaitable[Any]]
    evaluate: bool
    parameters: tuple[Parameter, ...]
    returns: Schema | None
    description: str
    #: ``(key, schema)`` of each declared transient input.
    transient: tuple[tuple[str, Schema], ...] = ()

    def decode(self, args: Sequence[bytes]) -> list[Any]:
        """Decode the string arguments; ``ArgumentError`` names the parameter at fault."""
        required = sum(1 for p in self.parameters if not p.has_default)
        if not required <= len(args) <= len(self.parameters):
            names = ", ".join(p.name for p in self.parameters) or "no arguments"
            expected = (
                str(required)
                if required == len(self.parameters)
                else f"{required} to {len(self.parameters)}"
            )
            raise ArgumentError(
                f"{self.name} expects {expected} argument(s) ({names}), got {len(args)}"
            )
        values = []
        for parameter, raw in zip(self.parameters, args, strict=False):
            try:
                values.append(parameter.codec.decode(raw))
            except ValueError as exc:
                raise ArgumentError(f"parameter {parameter.name!r} of {self.name}: {exc}") from exc
        return values

    def metadata(self) -> dict[str, Any]:
        """The transaction's entry in the contract metadata."""
        entry: dict[str, Any] = {
            "name": self.name,
            "tag": ["EVALUATE"] if self.evaluate else ["SUBMIT"],
            "parameters": [
                {"name": p.name, "description": "", "schema": p.codec.schema}
                for p in self.parameters
            ],
        }
        if self.transient:
            entry["transient"] = [
                {"name": key, "description": "", "schema": schema}
                for key, schema in self.transient
            ]
        if self.returns is not None:
            entry["returns"] = self.returns
        if self.description:
            entry["description"] = self.description
        return entry


def _transactions(contract: Contract) -> dict[str, TransactionSpec]:
    specs: dict[str, TransactionSpec] = {}
    for attribute in dir(type(contract)):
        function = getattr(type(contract), attribute, None)
        marker = getattr(function, TRANSACTION_ATTRIBUTE, None)
        if not isinstance(marker, TransactionMarker):
            continue
        assert function is not None
        spec = _spec(contract, attribute, function, marker)
        if spec.name in specs:
            raise ContractDefinitionError(
                f"contract {contract.name!r} has two transactions named {spec.name!r}"
            )
        specs[spec.name] = spec
    return specs


def _spec(
    contract: Contract, attribute: str, function: Any, marker: TransactionMarker
) -> TransactionSpec:
    name = marker.name or attribute
    where = f"{contract.name}.{name}"
    if ":" in name:
        raise ContractDefinitionError(f"{where}: a transaction name cannot contain ':'")
    try:
        hints = typing.get_type_hints(function)
    except (NameError, TypeError) as exc:
        raise ContractDefinitionError(f"{where}: cannot resolve annotations: {exc}") from exc
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    if len(params) < 2:
        raise ContractDefinitionError(f"{where}: signature must be (self, ctx, ...)")
    parameters = []
    for param in params[2:]:
        if param.kind not in (param.POSITIONAL_ONLY, param.POSITIONAL_OR_KEYWORD):
            raise ContractDefinitionError(
                f"{where}: parameter {param.name!r} must be positional (no *args, **kwargs)"
            )
        if param.name not in hints:
            raise ContractDefinitionError(f"{where}: parameter {param.name!r} has no annotation")
        codec = codec_for(hints[param.name], f"{where}({param.name})")
        parameters.append(Parameter(param.name, codec, param.default is not param.empty))
    returns = return_schema(hints.get("return"), f"{where} return") if "return" in hints else {}
    description = inspect.getdoc(function) or ""
    transient = tuple(
        (key, json_schema(kind, f"{where} transient {key!r}")) for key, kind in marker.transient
    )
    return TransactionSpec(
        name=name,
        method=getattr(contract, attribute),
        evaluate=marker.evaluate,
        parameters=tuple(parameters),
        returns=returns,
        description=description.split("\n\n")[0].replace("\n", " "),
        transient=transient,
    )


class SystemContract(Contract):
    """``org.hyperledger.fabric``: serves the chaincode's metadata."""

    def __init__(self, chaincode: ContractChaincode) -> None:
        super().__init__(SYSTEM_CONTRACT_NAME)
        self._chaincode = chaincode

    @transaction(evaluate=True, name="GetMetadata")
    async def get_metadata(self, ctx: Context) -> dict[str, Any]:
        """The contracts, their transactions, parameters and return types, as JSON."""
        return self._chaincode.metadata()


class ContractChaincode:
    """The shim ``Chaincode`` made of contracts.

    Requests are routed by their first argument: ``"<contract>:<function>"``, or
    ``"<function>"`` for the default contract (``default`` or else the first contract).
    ``org.hyperledger.fabric:GetMetadata`` returns the metadata. Both ``init`` and
    ``invoke`` route the same way; an ``init`` without arguments succeeds doing nothing.

    Any exception raised while routing, decoding, in a hook or in the transaction becomes
    an error response whose message is ``str(exc)``: contracts choose safe messages.
    """

    def __init__(
        self,
        *contracts: Contract,
        default: str | None = None,
        title: str = "",
        version: str = "",
    ) -> None:
        if not contracts:
            raise ContractDefinitionError("a chaincode needs at least one contract")
        self._title = title
        self._version = version
        self._contracts: dict[str, Contract] = {}
        self._specs: dict[str, dict[str, TransactionSpec]] = {}
        for contract in (*contracts, SystemContract(self)):
            if not isinstance(contract, Contract):
                raise ContractDefinitionError(f"{contract!r} is not a Contract instance")
            name = getattr(contract, "name", None) or type(contract).__name__
            if name in self._contracts:
                raise ContractDefinitionError(f"two contracts are named {name!r}")
            self._contracts[name] = contract
            self._specs[name] = _transactions(contract)
        self._default = default if default is not None else next(iter(self._contracts))
        if self._default not in self._contracts:
            raise ContractDefinitionError(f"default contract {self._default!r} is not registered")

    @property
    def default_contract(self) -> str:
        """The name of the contract that serves functions without a contract prefix."""
        return self._default

    @property
    def contracts(self) -> dict[str, Contract]:
        """Contracts by name (the system contract included)."""
        return dict(self._contracts)

    def transactions(self, contract: str) -> dict[str, TransactionSpec]:
        """The transactions of a contract, by name."""
        return dict(self._specs[contract])

    def metadata(self) -> dict[str, Any]:
        """Metadata in the shape of fabric-contract-api's contract schema."""
        contracts = {}
        for name, contract in self._contracts.items():
            doc = inspect.getdoc(type(contract)) or ""
            info: dict[str, Any] = {"title": name, "version": self._version}
            if doc and name != SYSTEM_CONTRACT_NAME:
                info["description"] = doc.split("\n\n")[0].replace("\n", " ")
            contracts[name] = {
                "name": name,
                "info": info,
                "transactions": [spec.metadata() for _, spec in sorted(self._specs[name].items())],
                "default": name == self._default,
            }
        return {
            "$schema": METADATA_SCHEMA,
            "info": {"title": self._title or self._default, "version": self._version},
            "contracts": contracts,
            "components": {"schemas": {}},
        }

    async def init(self, stub: Stub) -> Response:
        """Route an INIT like a transaction (no arguments: success, nothing done)."""
        if not stub.get_args():
            return success()
        return await self._route(stub)

    async def invoke(self, stub: Stub) -> Response:
        """Route a TRANSACTION to its contract and function."""
        return await self._route(stub)

    async def _route(self, stub: Stub) -> Response:
        prefix = log_prefix(stub.channel_id, stub.tx_id)
        requested = "?"
        try:
            args = stub.get_args()
            if not args:
                raise UnknownContract("no function named (the first argument is empty)")
            try:
                requested = args[0].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ArgumentError("the function name is not valid UTF-8") from exc
            contract_name, sep, function = requested.rpartition(":")
            if not sep:
                contract_name = self._default
            contract = self._contracts.get(contract_name)
            if contract is None:
                raise UnknownContract(f"contract {contract_name!r} is not defined")
            ctx = contract.create_context(stub)
            ctx.function = function
            spec = self._specs[contract_name].get(function)
            if spec is None:
                result = await contract.unknown_transaction(ctx)
            else:
                parameters = spec.decode(args[1:])
                await contract.before_transaction(ctx)
                result = await spec.method(ctx, *parameters)
                await contract.after_transaction(ctx, result)
            payload = encode_result(result)
        except Exception as exc:
            logger.info("%s %s failed: %s", prefix, _safe_name(requested), type(exc).__name__)
            return error(str(exc) or type(exc).__name__)
        logger.debug("%s %s succeeded", prefix, _safe_name(requested))
        return success(payload)


def _safe_name(requested: str) -> str:
    # The function name comes from the client; keep log lines short and printable.
    return json.dumps(requested[:80])
