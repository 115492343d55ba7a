"""Key-level (state-based) endorsement policies.

``KeyEndorsementPolicy`` builds the ``SignaturePolicyEnvelope`` that
``set_state_validation_parameter`` and ``set_private_data_validation_parameter`` expect:
every listed organization must endorse (an N-out-of-N policy over their MSP roles), as
fabric-chaincode-go's ``statebased`` package builds it, so the bytes are identical.
"""

from __future__ import annotations

import enum

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
            if identity.principal_classification != pb.msp_principal.MSPPrincipal.ROLE:
                raise InvalidArgumentError("policy has a principal that is not an MSP role")
            try:
                role = pb.msp_principal.MSPRole.FromString(identity.principal)
            except pb.DecodeError as exc:
                raise InvalidArgumentError(f"cannot decode an MSP role: {exc}") from exc
            role_type = _PROTO_TO_ROLE.get(role.role)
            if role_type is None:
                raise InvalidArgumentError(f"unsupported MSP role {role.role}")
            self._orgs[str(role.msp_identifier)] = role_type

    def add_orgs(self, role: RoleType | str, *msp_ids: str) -> None:
        """Require an endorsement from each organization, with ``role`` (PEER, MEMBER ...)."""
        try:
            role_type = RoleType(role)
        except ValueError as exc:
            raise InvalidArgumentError(f"role type {role!r} does not exist") from exc
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
        msp_ids = self.list_orgs()
        principals = [
            pb.msp_principal.MSPPrincipal(
                principal_classification=pb.msp_principal.MSPPrincipal.ROLE,
                principal=pb.msp_principal.MSPRole(
                    msp_identifier=msp_id, role=_ROLE_TO_PROTO[self._orgs[msp_id]]
                ).SerializeToString(),
            )
            for msp_id in msp_ids
        ]
        rules = [pb.policies.SignaturePolicy(signed_by=index) for index in range(len(msp_ids))]
        envelope = pb.policies.SignaturePolicyEnvelope(
            version=0,
            rule=pb.policies.SignaturePolicy(
                n_out_of=pb.policies.SignaturePolicy.NOutOf(n=len(msp_ids), rules=rules)
            ),
            identities=principals,
        )
        return bytes(envelope.SerializeToString())
