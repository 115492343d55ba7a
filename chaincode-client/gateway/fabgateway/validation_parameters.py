"""Key-level endorsement policies (validation parameters) as blocks carry them.

What it owns: parsing a metadata ``VALIDATION_PARAMETER`` value as a
``common.SignaturePolicyEnvelope`` the way a Fabric peer compiles it (version 0, a rule that is
a tree of ``n_out_of`` and ``signed_by``, every ``signed_by`` index inside ``identities``, each
principal decodable); comparing a parameter byte for byte with the one a reader expects; and
scanning decoded blocks for parameters that do not parse.

Why the scan matters: Fabric never validates a parameter's content when it is written, and a
peer that later has to evaluate bytes that do not unmarshal as a policy stops processing the
channel's blocks (hyperledger/fabric#3105 shows the validator failing with "unexpected EOF" and
the block not stored). A bank can plant such bytes alone in a collection its own peer may
endorse; no chaincode can prevent it, so a monitor names the writer. Bytes that unmarshal but
do not compile (a version other than 0, an empty rule, an index out of range) are reported
too, with ``unmarshals`` set: no write of that key can ever be validated against them.

What it must not do: decide which policy a record should carry (the caller passes the expected
envelope); normalize bytes before comparing them (a re-encoding of the same policy is another
parameter to a peer's cache and to every reader).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

from fabgateway._protos import msp_principal_pb2, policies_pb2
from fabgateway.blocks import Block, TxPosition
from fabgateway.errors import MalformedMessageError

__all__ = [
    "MalformedValidationParameter",
    "Principal",
    "ValidationParameter",
    "malformed_validation_parameters",
    "parse_validation_parameter",
    "validation_parameter_matches",
]


@dataclass(frozen=True)
class Principal:
    """One identity of a policy: ``classification`` (``ROLE``, ``IDENTITY`` ...), and for a
    ``ROLE`` principal the MSP id and the role name (``PEER``, ``MEMBER``, ``ADMIN``, ...)."""

    classification: str
    msp_id: str | None
    role: str | None


@dataclass(frozen=True)
class ValidationParameter:
    """A parsed ``common.SignaturePolicyEnvelope``; ``raw`` is the exact bytes parsed."""

    raw: bytes
    version: int
    identities: tuple[Principal, ...]
    envelope: Any = field(compare=False, repr=False)
    """The ``common.SignaturePolicyEnvelope`` message (the rule tree, for callers that walk it)."""

    @property
    def msp_ids(self) -> frozenset[str]:
        """The MSP ids named by ``ROLE`` principals."""
        return frozenset(p.msp_id for p in self.identities if p.msp_id is not None)


def _check_rule(rule: Any, identity_count: int, depth: int = 0) -> None:
    if depth > 64:
        raise MalformedMessageError("validation parameter: rule nested too deeply")
    kind = rule.WhichOneof("Type")
    if kind == "signed_by":
        index = int(rule.signed_by)
        if not 0 <= index < identity_count:
            raise MalformedMessageError(
                f"validation parameter: signed_by {index} outside its {identity_count} identities"
            )
    elif kind == "n_out_of":
        for sub in rule.n_out_of.rules:
            _check_rule(sub, identity_count, depth + 1)
    else:
        raise MalformedMessageError("validation parameter: empty policy rule")


def _principal(message: Any) -> Principal:
    classes = msp_principal_pb2.MSPPrincipal.Classification
    number = int(message.principal_classification)
    name = classes.Name(number) if number in classes.values() else f"UNKNOWN_{number}"
    if name != "ROLE":
        return Principal(name, None, None)
    role = msp_principal_pb2.MSPRole()
    try:
        role.ParseFromString(message.principal)
    except Exception as error:
        raise MalformedMessageError(f"validation parameter: a ROLE principal: {error}") from error
    roles = msp_principal_pb2.MSPRole.MSPRoleType
    role_number = int(role.role)
    known = role_number in roles.values()
    role_name = roles.Name(role_number) if known else f"UNKNOWN_{role_number}"
    return Principal(name, str(role.msp_identifier), role_name)


def parse_validation_parameter(value: bytes) -> ValidationParameter:
    """Parse ``value`` as a peer would compile it; raise :class:`MalformedMessageError` naming
    what is wrong (does not parse, version other than 0, empty rule, index out of range)."""
    envelope = policies_pb2.SignaturePolicyEnvelope()
    try:
        envelope.ParseFromString(bytes(value))
    except Exception as error:
        raise MalformedMessageError(
            f"validation parameter is not a SignaturePolicyEnvelope: {error}"
        ) from error
    if envelope.version != 0:
        raise MalformedMessageError(
            f"validation parameter: version {envelope.version} (a peer understands only 0)"
        )
    if not envelope.HasField("rule"):
        raise MalformedMessageError("validation parameter: no rule")
    _check_rule(envelope.rule, len(envelope.identities))
    return ValidationParameter(
        raw=bytes(value),
        version=int(envelope.version),
        identities=tuple(_principal(p) for p in envelope.identities),
        envelope=envelope,
    )


def validation_parameter_matches(value: bytes | None, expected: bytes | Any) -> bool:
    """True when ``value`` is byte for byte the ``expected`` envelope (bytes, or a
    ``common.SignaturePolicyEnvelope`` message, serialized deterministically). A missing
    parameter (None or empty) never matches."""
    if not value:
        return False
    if not isinstance(expected, bytes | bytearray | memoryview):
        if not isinstance(expected, policies_pb2.SignaturePolicyEnvelope):
            raise TypeError(
                f"expected bytes or a SignaturePolicyEnvelope, got {type(expected).__name__}"
            )
        expected = expected.SerializeToString(deterministic=True)
    return bytes(value) == bytes(expected)


@dataclass(frozen=True)
class MalformedValidationParameter:
    """A ``VALIDATION_PARAMETER`` in a block that does not parse as a policy.

    ``collection`` is None for a public key; then ``key`` is the key in clear, else
    ``key_hash`` is the private key's hash. ``creator_msp_id`` and ``endorser_msp_ids`` name
    who wrote it; ``is_valid`` says whether the write committed (an invalid one changed
    nothing, but still shows the intent). ``unmarshals`` is False for bytes that are no
    ``SignaturePolicyEnvelope`` at all (the hyperledger/fabric#3105 case: the next write of
    the key halts block processing), True for an envelope a peer cannot compile.
    """

    position: TxPosition
    creator_msp_id: str
    endorser_msp_ids: tuple[str, ...]
    is_valid: bool
    namespace: str
    collection: str | None
    key: str | None
    key_hash: bytes | None
    value: bytes
    reason: str
    unmarshals: bool


def malformed_validation_parameters(blocks: Iterable[Block]) -> list[MalformedValidationParameter]:
    """Every non-empty ``VALIDATION_PARAMETER`` in ``blocks`` that does not parse, valid or
    not (an empty value removes a parameter and is not reported)."""
    found: list[MalformedValidationParameter] = []
    for block in blocks:
        for tx in block.transactions:
            for ns in tx.namespaces:
                candidates: list[tuple[str | None, str | None, bytes | None, bytes | None]] = [
                    (None, m.key, None, m.validation_parameter) for m in ns.metadata_writes
                ]
                candidates += [
                    (c.collection, None, m.key_hash, m.validation_parameter)
                    for c in ns.collections
                    for m in c.metadata_writes
                ]
                for collection, key, hashed, value in candidates:
                    if not value:
                        continue
                    try:
                        parse_validation_parameter(value)
                    except MalformedMessageError as error:
                        found.append(
                            MalformedValidationParameter(
                                position=tx.position,
                                creator_msp_id=tx.creator_msp_id,
                                endorser_msp_ids=tx.endorser_msp_ids,
                                is_valid=tx.is_valid,
                                namespace=ns.namespace,
                                collection=collection,
                                key=key,
                                key_hash=hashed,
                                value=value,
                                reason=str(error),
                                unmarshals=_unmarshals(value),
                            )
                        )
    return found


def _unmarshals(value: bytes) -> bool:
    try:
        policies_pb2.SignaturePolicyEnvelope().ParseFromString(value)
    except DecodeError:
        return False
    return True
