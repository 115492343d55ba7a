"""Key-level (state-based) endorsement policies.

``KeyEndorsementPolicy`` builds the ``SignaturePolicyEnvelope`` that
``set_state_validation_parameter`` and ``set_private_data_validation_parameter`` expect:
every listed organization must endorse (an N-out-of-N policy over their MSP roles), as
fabric-chaincode-go's ``statebased`` package builds it, so the bytes are identical.

``n_out_of_policy`` / ``all_of_policy`` build the same kind of envelope in one call (N of M
organizations, one role), and ``parse_n_out_of`` reads one back into a
:class:`SignaturePolicy` (strictly flat). ``all_and_one_of_policy`` builds the one nested shape
we write, "every one of these AND one of those" (``AND('A.peer', OR('B.peer', 'R.peer'))``:
a hash lock's record, which its payer and either its payee or the regulator may change), and
``parse_policy`` reads any tree of ``n_out_of`` over distinct MSP-role principals into a
:class:`PolicyTree` that says whether a set of endorsers satisfies it.

Fabric never checks what a validation parameter says, only that later writes satisfy it, so
a reader that relies on a key being pinned compares the parameter it reads **byte for byte**
with the envelope it expects: these builders give the same bytes for the same organizations
in any order (sorted by MSP id, version 0).

Must not: accept a principal other than an MSP role (such a policy is refused, never
narrowed), or build an envelope whose bytes depend on argument order.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import _protos as pb
from .errors import InvalidArgumentError


class RoleType(enum.StrEnum):
    """The MSP role each listed organization endorses with (PEER for peers' signatures)."""

    MEMBER = "MEMBER"
    PEER = "PEER"
    ADMIN = "ADMIN"
    CLIENT = "CLIENT"
    ORDERER = "ORDERER"


_ROLE_TO_PROTO = {role: getattr(pb.msp_principal.MSPRole, role.value) for role in RoleType}
_PROTO_TO_ROLE = {value: key for key, value in _ROLE_TO_PROTO.items()}


class KeyEndorsementPolicy:
    """A mutable set of organizations (MSP ids), each with a role, that must all endorse."""

    def __init__(self, policy: bytes | None = None) -> None:
        """Start empty, or from an existing policy (``get_state_validation_parameter``).

        Only MSP-role principals are understood; a policy with other principals (OUs,
        identities) is refused rather than silently narrowed.
        """
        self._orgs: dict[str, RoleType] = {}
        if policy:
            self._load(policy)

    def _load(self, policy: bytes) -> None:
        try:
            envelope = pb.policies.SignaturePolicyEnvelope.FromString(policy)
        except pb.DecodeError as exc:
            raise InvalidArgumentError(f"not a SignaturePolicyEnvelope: {exc}") from exc
        for identity in envelope.identities:
            msp_id, role_type = _principal(identity)
            self._orgs[msp_id] = role_type

    def add_orgs(self, role: RoleType | str, *msp_ids: str) -> None:
        """Require an endorsement from each organization, with ``role`` (PEER, MEMBER ...)."""
        role_type = _role(role)
        for msp_id in msp_ids:
            if not msp_id:
                raise InvalidArgumentError("MSP id must be a non-empty string")
            self._orgs[msp_id] = role_type

    def del_orgs(self, *msp_ids: str) -> None:
        """Stop requiring these organizations (unknown ones are ignored)."""
        for msp_id in msp_ids:
            self._orgs.pop(msp_id, None)

    def list_orgs(self) -> list[str]:
        """The organizations required, sorted."""
        return sorted(self._orgs)

    def role_of(self, msp_id: str) -> RoleType | None:
        """The role required of an organization, or None if it is not listed."""
        return self._orgs.get(msp_id)

    def policy(self) -> bytes:
        """The serialized ``SignaturePolicyEnvelope``: N out of N, orgs sorted by MSP id."""
        principals = tuple((msp_id, self._orgs[msp_id]) for msp_id in self.list_orgs())
        return _envelope(len(principals), principals)


@dataclass(frozen=True, slots=True)
class SignaturePolicy:
    """An ``n``-out-of-``principals`` policy over MSP roles: the shape of our key policies.

    ``principals`` are ``(msp_id, role)`` pairs in envelope order; :meth:`policy` gives the
    envelope's bytes back (identical to what :func:`n_out_of_policy` builds when the
    principals are sorted by MSP id).
    """

    n: int
    principals: tuple[tuple[str, RoleType], ...]

    @property
    def msp_ids(self) -> list[str]:
        """The MSP ids named, in envelope order."""
        return [msp_id for msp_id, _ in self.principals]

    def policy(self) -> bytes:
        """The serialized ``SignaturePolicyEnvelope`` (principals in this order)."""
        return _envelope(self.n, self.principals)

    def is_satisfied_by(self, endorsers: Iterable[tuple[str, RoleType]]) -> bool:
        """Whether signatures from ``endorsers`` (``(msp_id, role)`` each) satisfy the policy.

        As Fabric's MSP does for role principals: a ``MEMBER`` principal is satisfied by any
        role of that MSP, any other role only by that role. Each endorser counts once.
        """
        remaining = list(endorsers)
        satisfied = 0
        for msp_id, role in self.principals:
            for index, (endorser_msp, endorser_role) in enumerate(remaining):
                if endorser_msp == msp_id and role in (RoleType.MEMBER, endorser_role):
                    del remaining[index]
                    satisfied += 1
                    break
        return satisfied >= self.n


def n_out_of_policy(n: int, msp_ids: Iterable[str], role: RoleType | str = RoleType.PEER) -> bytes:
    """The envelope ``n`` out of these organizations (each with ``role``, PEER by default).

    The organizations are sorted by MSP id, so the bytes do not depend on their order; no
    MSP id, an empty or repeated one, or ``n`` outside ``1..len(msp_ids)`` raises
    ``InvalidArgumentError``.
    """
    ids = _msp_ids(msp_ids)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(ids):
        raise InvalidArgumentError(f"n must be an integer from 1 to {len(ids)}, got {n!r}")
    role_type = _role(role)
    return _envelope(n, tuple((msp_id, role_type) for msp_id in sorted(ids)))


def all_of_policy(msp_ids: Iterable[str], role: RoleType | str = RoleType.PEER) -> bytes:
    """The envelope "every one of these organizations" (``AND('A.peer', 'B.peer')``).

    Byte-identical to ``KeyEndorsementPolicy`` with the same organizations and role.
    """
    ids = _msp_ids(msp_ids)
    return n_out_of_policy(len(ids), ids, role)


def parse_n_out_of(policy: bytes) -> SignaturePolicy:
    """Read an envelope of the shape our builders make: one ``n_out_of`` rule whose rules
    are each ``signed_by`` a distinct MSP-role principal.

    Anything else (bytes that do not decode, nested rules, other principals, an index out
    of range, ``n`` outside ``1..len(rules)``) raises ``InvalidArgumentError`` naming what
    is wrong: such a parameter is not one we ever write.
    """
    try:
        envelope = pb.policies.SignaturePolicyEnvelope.FromString(bytes(policy))
    except pb.DecodeError as exc:
        raise InvalidArgumentError(f"not a SignaturePolicyEnvelope: {exc}") from exc
    if envelope.version != 0:
        raise InvalidArgumentError(f"policy version {envelope.version} is not 0")
    if envelope.rule.WhichOneof("Type") != "n_out_of":
        raise InvalidArgumentError("policy rule is not an n_out_of")
    rules = envelope.rule.n_out_of.rules
    principals: list[tuple[str, RoleType]] = []
    seen: set[int] = set()
    for rule in rules:
        if rule.WhichOneof("Type") != "signed_by":
            raise InvalidArgumentError("policy has a nested rule (only signed_by is expected)")
        index = int(rule.signed_by)
        if not 0 <= index < len(envelope.identities) or index in seen:
            raise InvalidArgumentError(f"policy rule names identity {index} wrongly")
        seen.add(index)
        principals.append(_principal(envelope.identities[index]))
    n = int(envelope.rule.n_out_of.n)
    if not 1 <= n <= len(principals):
        raise InvalidArgumentError(f"policy n={n} is not within 1..{len(principals)}")
    if len(principals) != len(envelope.identities):
        raise InvalidArgumentError("policy lists identities that no rule uses")
    return SignaturePolicy(n, tuple(principals))


@dataclass(frozen=True, slots=True)
class PolicyTree:
    """An ``n``-out-of-``rules`` policy whose rules are MSP-role principals (``(msp_id,
    role)``) or nested trees: what :func:`parse_policy` reads."""

    n: int
    rules: tuple[tuple[str, RoleType] | PolicyTree, ...]

    @property
    def msp_ids(self) -> list[str]:
        """Every MSP id named, depth first, in envelope order."""
        out: list[str] = []
        for rule in self.rules:
            out.extend(rule.msp_ids if isinstance(rule, PolicyTree) else [rule[0]])
        return out

    def describe(self) -> str:
        """The policy as text: ``2 of [A, 1 of [B, R]]``."""
        parts = [rule.describe() if isinstance(rule, PolicyTree) else rule[0]
                 for rule in self.rules]
        return f"{self.n} of [{', '.join(parts)}]"

    def is_satisfied_by(self, endorsers: Iterable[tuple[str, RoleType]]) -> bool:
        """Whether signatures from ``endorsers`` satisfy the policy, each signature counting
        for one principal at most (as Fabric's evaluator: a sub-rule that is not satisfied
        gives back the signatures it tried; a ``MEMBER`` principal accepts any role)."""
        signers = list(endorsers)
        return self._satisfied(signers, [False] * len(signers))

    def _satisfied(self, signers: list[tuple[str, RoleType]], used: list[bool]) -> bool:
        satisfied = 0
        for rule in self.rules:
            trial = list(used)
            if isinstance(rule, PolicyTree):
                ok = rule._satisfied(signers, trial)
            else:
                ok = False
                msp_id, role = rule
                for index, (signer_msp, signer_role) in enumerate(signers):
                    if not trial[index] and signer_msp == msp_id and role in (
                            RoleType.MEMBER, signer_role):
                        trial[index] = ok = True
                        break
            if ok:
                used[:] = trial
                satisfied += 1
        return satisfied >= self.n


def all_and_one_of_policy(
    required: Iterable[str], one_of: Iterable[str], role: RoleType | str = RoleType.PEER
) -> bytes:
    """The envelope "every one of ``required`` AND one of ``one_of``" (each with ``role``):
    ``n_out_of(len(required) + 1, [signed_by(r) ..., n_out_of(1, [signed_by(o) ...])])``.

    Identities are the required MSP ids sorted, then the others sorted, so the bytes do not
    depend on argument order; an MSP id in both lists, an empty or repeated one, or fewer
    than two in ``one_of`` (that would be :func:`all_of_policy`) raises
    ``InvalidArgumentError``.
    """
    needed = sorted(_msp_ids(required))
    either = sorted(_msp_ids(one_of))
    if len(either) < 2:
        raise InvalidArgumentError("one_of needs at least two MSP ids (else use all_of_policy)")
    if set(needed) & set(either):
        raise InvalidArgumentError(f"MSP ids both required and one of: "
                                   f"{sorted(set(needed) & set(either))}")
    role_type = _role(role)
    identities = [_identity(msp_id, role_type) for msp_id in (*needed, *either)]
    signed = pb.policies.SignaturePolicy
    inner = signed(n_out_of=signed.NOutOf(n=1, rules=[
        signed(signed_by=len(needed) + index) for index in range(len(either))]))
    rules = [signed(signed_by=index) for index in range(len(needed))] + [inner]
    envelope = pb.policies.SignaturePolicyEnvelope(
        version=0, rule=signed(n_out_of=signed.NOutOf(n=len(needed) + 1, rules=rules)),
        identities=identities)
    return bytes(envelope.SerializeToString())


#: How deep a policy tree :func:`parse_policy` reads (ours are two levels deep).
MAX_POLICY_DEPTH = 8


def parse_policy(policy: bytes) -> PolicyTree:
    """Read an envelope whose rule is a tree of ``n_out_of`` over ``signed_by`` MSP-role
    principals, each identity used by exactly one ``signed_by`` (flat or nested: every shape
    our builders make).

    Anything else (bytes that do not decode, a version other than 0, a rule that is neither,
    other principals, an index out of range or used twice, an identity no rule uses, ``n``
    outside ``1..len(rules)``, a tree deeper than :data:`MAX_POLICY_DEPTH`) raises
    ``InvalidArgumentError`` naming what is wrong.
    """
    try:
        envelope = pb.policies.SignaturePolicyEnvelope.FromString(bytes(policy))
    except pb.DecodeError as exc:
        raise InvalidArgumentError(f"not a SignaturePolicyEnvelope: {exc}") from exc
    if envelope.version != 0:
        raise InvalidArgumentError(f"policy version {envelope.version} is not 0")
    principals = [_principal(identity) for identity in envelope.identities]
    seen: set[int] = set()
    tree = _tree(envelope.rule, principals, seen, 1)
    if len(seen) != len(principals):
        raise InvalidArgumentError("policy lists identities that no rule uses")
    return tree


def _tree(rule: Any, principals: list[tuple[str, RoleType]], seen: set[int],
          depth: int) -> PolicyTree:
    if depth > MAX_POLICY_DEPTH:
        raise InvalidArgumentError(f"policy nested deeper than {MAX_POLICY_DEPTH}")
    if rule.WhichOneof("Type") != "n_out_of":
        raise InvalidArgumentError("policy rule is not an n_out_of")
    rules: list[tuple[str, RoleType] | PolicyTree] = []
    for sub in rule.n_out_of.rules:
        kind = sub.WhichOneof("Type")
        if kind == "n_out_of":
            rules.append(_tree(sub, principals, seen, depth + 1))
        elif kind == "signed_by":
            index = int(sub.signed_by)
            if not 0 <= index < len(principals) or index in seen:
                raise InvalidArgumentError(f"policy rule names identity {index} wrongly")
            seen.add(index)
            rules.append(principals[index])
        else:
            raise InvalidArgumentError("policy has an empty rule")
    n = int(rule.n_out_of.n)
    if not 1 <= n <= len(rules):
        raise InvalidArgumentError(f"policy n={n} is not within 1..{len(rules)}")
    return PolicyTree(n, tuple(rules))


def _msp_ids(msp_ids: Iterable[str]) -> list[str]:
    if isinstance(msp_ids, str):
        raise InvalidArgumentError("msp_ids must be a sequence of MSP ids, not a string")
    ids = list(msp_ids)
    if not ids:
        raise InvalidArgumentError("a policy needs at least one MSP id")
    for msp_id in ids:
        if not isinstance(msp_id, str) or not msp_id:
            raise InvalidArgumentError("MSP id must be a non-empty string")
    if len(set(ids)) != len(ids):
        raise InvalidArgumentError(f"MSP ids repeat: {sorted(ids)}")
    return ids


def _role(role: RoleType | str) -> RoleType:
    try:
        return RoleType(role)
    except ValueError as exc:
        raise InvalidArgumentError(f"role type {role!r} does not exist") from exc


def _principal(identity: object) -> tuple[str, RoleType]:
    principal: Any = identity
    if principal.principal_classification != pb.msp_principal.MSPPrincipal.ROLE:
        raise InvalidArgumentError("policy has a principal that is not an MSP role")
    try:
        role = pb.msp_principal.MSPRole.FromString(principal.principal)
    except pb.DecodeError as exc:
        raise InvalidArgumentError(f"cannot decode an MSP role: {exc}") from exc
    role_type = _PROTO_TO_ROLE.get(role.role)
    if role_type is None:
        raise InvalidArgumentError(f"unsupported MSP role {role.role}")
    if not role.msp_identifier:
        raise InvalidArgumentError("policy names an empty MSP id")
    return str(role.msp_identifier), role_type


def _identity(msp_id: str, role: RoleType) -> Any:
    return pb.msp_principal.MSPPrincipal(
        principal_classification=pb.msp_principal.MSPPrincipal.ROLE,
        principal=pb.msp_principal.MSPRole(
            msp_identifier=msp_id, role=_ROLE_TO_PROTO[role]
        ).SerializeToString(),
    )


@lru_cache(maxsize=1024)
def _envelope(n: int, principals: tuple[tuple[str, RoleType], ...]) -> bytes:
    # Cached (bytes are immutable): a chaincode pins or checks the same few policies on every
    # record of a batch, and building one costs protobuf work each time.
    identities = [_identity(msp_id, role) for msp_id, role in principals]
    rules = [pb.policies.SignaturePolicy(signed_by=index) for index in range(len(principals))]
    envelope = pb.policies.SignaturePolicyEnvelope(
        version=0,
        rule=pb.policies.SignaturePolicy(
            n_out_of=pb.policies.SignaturePolicy.NOutOf(n=n, rules=rules)
        ),
        identities=identities,
    )
    return bytes(envelope.SerializeToString())
