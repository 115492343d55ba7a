"""Fabric's signature policy language, compiled as Fabric's ``policydsl.FromString`` compiles it
(common/policydsl/policyparser.go at v3.1.1): one principal per occurrence, nested gates'
principals numbered before their parent's own, version 0; and clear refusals."""

from __future__ import annotations

from typing import Any

import pytest
from consortium.errors import PolicyError
from consortium.policies import signature_policy_envelope
from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2
from fabshim.statebased import RoleType, parse_policy


def principals(envelope: Any) -> list[tuple[str, int]]:
    out = []
    for identity in envelope.identities:
        assert identity.principal_classification == msp_principal_pb2.MSPPrincipal.ROLE
        role = msp_principal_pb2.MSPRole.FromString(identity.principal)
        out.append((role.msp_identifier, role.role))
    return out


def rule(r: Any) -> Any:
    """A rule as nested tuples: ("of", n, [...]) or signed-by index."""
    if r.WhichOneof("Type") == "signed_by":
        return r.signed_by
    return ("of", r.n_out_of.n, [rule(x) for x in r.n_out_of.rules])


PEER = msp_principal_pb2.MSPRole.PEER
MEMBER = msp_principal_pb2.MSPRole.MEMBER


def test_one_peer() -> None:
    env = signature_policy_envelope("OR('BankAMSP.peer')")
    assert env.version == 0
    assert principals(env) == [("BankAMSP", PEER)]
    assert rule(env.rule) == ("of", 1, [0])
    # signed_by 0 is on the wire (a oneof member), not left out as a default
    again = policies_pb2.SignaturePolicyEnvelope.FromString(env.SerializeToString())
    assert again.rule.n_out_of.rules[0].WhichOneof("Type") == "signed_by"


def test_and_needs_every_one_and_keeps_the_order_written() -> None:
    env = signature_policy_envelope("AND('B.peer', 'A.peer', \"C.member\")")
    assert principals(env) == [("B", PEER), ("A", PEER), ("C", MEMBER)]
    assert rule(env.rule) == ("of", 3, [0, 1, 2])


def test_principals_are_never_deduplicated() -> None:
    env = signature_policy_envelope("OR('A.peer', 'A.peer')")
    assert principals(env) == [("A", PEER), ("A", PEER)]


def test_nested_gates_number_their_principals_first() -> None:
    # Fabric's evaluator calls a gate after its arguments: AND's B and C are 0 and 1, OR's A 2
    env = signature_policy_envelope("OR('A.peer', AND('B.peer', 'C.peer'), 'D.admin')")
    assert principals(env) == [("B", PEER), ("C", PEER), ("A", PEER),
                               ("D", msp_principal_pb2.MSPRole.ADMIN)]
    assert rule(env.rule) == ("of", 1, [2, ("of", 2, [0, 1]), 3])


def test_out_of_and_every_spelling_of_the_gates() -> None:
    a = signature_policy_envelope("OutOf(2, 'A.peer', 'B.peer', 'C.peer')")
    b = signature_policy_envelope("outof(2,'A.peer','B.peer','C.peer')")
    c = signature_policy_envelope("  OUTOF( 2 , 'A.peer' ,'B.peer', 'C.peer' )  ")
    assert a == b == c
    assert rule(a.rule) == ("of", 2, [0, 1, 2])
    assert signature_policy_envelope("and('A.peer')") == signature_policy_envelope("And('A.peer')")
    assert signature_policy_envelope("or('A.peer')") == signature_policy_envelope("OR('A.peer')")


def test_what_the_compiled_policy_means() -> None:
    env = signature_policy_envelope("AND('A.peer', OR('B.peer', 'R.peer'))")
    tree = parse_policy(env.SerializeToString())
    assert tree.is_satisfied_by([("A", RoleType.PEER), ("R", RoleType.PEER)])
    assert not tree.is_satisfied_by([("A", RoleType.PEER)])
    assert not tree.is_satisfied_by([("B", RoleType.PEER), ("R", RoleType.PEER)])


def test_msp_ids_with_dots_and_dashes() -> None:
    env = signature_policy_envelope("OR('org-1.example.peer')")
    assert principals(env) == [("org-1.example", PEER)]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("OR(A.peer)", "a principal is written in quotes ('A.peer')"),
        ("OR('A.king')", "is not a principal"),
        ("OR('A')", "is not a principal"),
        ("XOR('A.peer')", "not a gate"),
        ("'A.peer'", "not a gate"),
        ("OR('A.peer'", "ends early"),
        ("OR('A.peer',)", "a principal or a gate expected"),
        ("OR()", "a principal or a gate expected"),
        ("OR('A.peer') OR('B.peer')", "unexpected 'OR' after the policy"),
        ("OutOf(0, 'A.peer')", "between 1 and 1"),
        ("OutOf(3, 'A.peer', 'B.peer')", "between 1 and 2"),
        ("OutOf('A.peer', 'B.peer')", "needs a number first"),
        ("OR('A.peer'; 'B.peer')", "unexpected character ';'"),
        ("OR 'A.peer'", "'(' expected"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_text_and_the_problem(text: str, problem: str) -> None:
    with pytest.raises(PolicyError, match="signature policy") as refused:
        signature_policy_envelope(text)
    assert problem in str(refused.value)
    assert repr(text) in str(refused.value)
    assert isinstance(refused.value, ValueError)
