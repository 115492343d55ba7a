"""Key-level policies on private data: the envelope builders and parser of
``fabshim.statebased``, and the endorsement model of ``fabshim.testing``.

What a real peer does with these bytes is measured in
``tests/integration/test_key_policies.py``; here, that the bytes are the ones Fabric's
``policydsl`` makes for ``AND('A.peer', 'B.peer')`` / ``OutOf(n, ...)``, the same on every
call, and that the fake refuses what a peer would invalidate.
"""

from __future__ import annotations

import key_policy_probe
import pytest
from fabric_protos.common import policies_pb2
from fabric_protos.msp import msp_principal_pb2
from fabshim import (
    EndorsementPolicyFailureError,
    InvalidArgumentError,
    KeyEndorsementPolicy,
    MVCCReadConflictError,
    PolicyTree,
    Response,
    RoleType,
    ShimError,
    SignaturePolicy,
    Stub,
    all_and_one_of_policy,
    all_of_policy,
    n_out_of_policy,
    parse_n_out_of,
    parse_policy,
    success,
)
from fabshim.testing import MemoryLedger

A, B, R = "BankAMSP", "BankBMSP", "RegulatorMSP"
COLLECTION = "pair-a-b"
PEER = msp_principal_pb2.MSPRole.PEER


def _policydsl(n: int, msp_ids: list[str], role: int = PEER) -> bytes:
    """What Fabric's ``policydsl.FromString("OutOf(n, 'X.peer', ...)")`` builds: identities
    in the order written, rules ``signed_by`` 0, 1, ..., version 0."""
    identities = [
        msp_principal_pb2.MSPPrincipal(
            principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
            principal=msp_principal_pb2.MSPRole(msp_identifier=m, role=role).SerializeToString(),
        )
        for m in msp_ids
    ]
    rules = [policies_pb2.SignaturePolicy(signed_by=i) for i in range(len(msp_ids))]
    return policies_pb2.SignaturePolicyEnvelope(
        version=0,
        rule=policies_pb2.SignaturePolicy(
            n_out_of=policies_pb2.SignaturePolicy.NOutOf(n=n, rules=rules)
        ),
        identities=identities,
    ).SerializeToString()


# ---------------------------------------------------------------------------- builders


def test_all_of_is_policydsl_and_with_sorted_orgs_whatever_the_order() -> None:
    expected = _policydsl(2, [A, B])
    assert all_of_policy([A, B]) == expected
    assert all_of_policy((B, A)) == expected
    assert all_of_policy(iter([B, A])) == expected
    assert all_of_policy([B, A], "PEER") == all_of_policy([A, B], RoleType.PEER)
    legacy = KeyEndorsementPolicy()
    legacy.add_orgs("PEER", B, A)
    assert legacy.policy() == expected


def test_n_out_of_is_policydsl_outof_with_sorted_orgs() -> None:
    assert n_out_of_policy(1, [R, B, A]) == _policydsl(1, [A, B, R])
    assert n_out_of_policy(2, [B, A], "MEMBER") == _policydsl(
        2, [A, B], msp_principal_pb2.MSPRole.MEMBER
    )
    assert n_out_of_policy(3, [B, A, R]) == all_of_policy([R, A, B])


@pytest.mark.parametrize(
    ("n", "msp_ids", "message"),
    [
        (0, [A, B], "n must be an integer from 1 to 2, got 0"),
        (3, [A, B], "n must be an integer from 1 to 2, got 3"),
        (True, [A], "got True"),
        (1, [], "at least one MSP id"),
        (1, [A, A], "MSP ids repeat"),
        (1, [A, ""], "non-empty string"),
        (1, A, "not a string"),
    ],
)
def test_n_out_of_refuses_what_is_not_a_policy_we_write(
    n: int, msp_ids: list[str], message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        n_out_of_policy(n, msp_ids)


def test_unknown_role_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match="role type 'BOSS'"):
        all_of_policy([A], "BOSS")


# ---------------------------------------------------------------------------- parser


def test_parse_round_trips() -> None:
    parsed = parse_n_out_of(n_out_of_policy(1, [B, A]))
    assert parsed == SignaturePolicy(1, ((A, RoleType.PEER), (B, RoleType.PEER)))
    assert parsed.msp_ids == [A, B]
    assert parsed.policy() == n_out_of_policy(1, [A, B])
    # the order of a policy someone else wrote is kept, so its bytes come back unchanged
    unsorted = _policydsl(2, [B, A])
    assert parse_n_out_of(unsorted).policy() == unsorted
    assert unsorted != all_of_policy([A, B])  # a byte-for-byte reader tells them apart


def _envelope(**fields: object) -> bytes:
    return policies_pb2.SignaturePolicyEnvelope(**fields).SerializeToString()


def _role(msp_id: str) -> msp_principal_pb2.MSPPrincipal:
    return msp_principal_pb2.MSPPrincipal(
        principal_classification=msp_principal_pb2.MSPPrincipal.ROLE,
        principal=msp_principal_pb2.MSPRole(msp_identifier=msp_id, role=PEER).SerializeToString(),
    )


def _nout(n: int, *rules: policies_pb2.SignaturePolicy) -> policies_pb2.SignaturePolicy:
    return policies_pb2.SignaturePolicy(
        n_out_of=policies_pb2.SignaturePolicy.NOutOf(n=n, rules=list(rules))
    )


def _by(index: int) -> policies_pb2.SignaturePolicy:
    return policies_pb2.SignaturePolicy(signed_by=index)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\xff\xff\xff", "not a SignaturePolicyEnvelope"),
        (b"", "not an n_out_of"),
        (_envelope(version=1, rule=_nout(1, _by(0)), identities=[_role(A)]), "version 1"),
        (_envelope(rule=_by(0), identities=[_role(A)]), "not an n_out_of"),
        (_envelope(rule=_nout(1, _nout(1, _by(0))), identities=[_role(A)]), "nested rule"),
        (_envelope(rule=_nout(1, _by(1)), identities=[_role(A)]), "identity 1 wrongly"),
        (_envelope(rule=_nout(2, _by(0), _by(0)), identities=[_role(A)]), "identity 0 wrongly"),
        (_envelope(rule=_nout(0, _by(0)), identities=[_role(A)]), "n=0"),
        (_envelope(rule=_nout(1, _by(0)), identities=[_role(A), _role(B)]), "no rule uses"),
        (_envelope(rule=_nout(1, _by(0)), identities=[_role("")]), "empty MSP id"),
        (
            _envelope(
                rule=_nout(1, _by(0)),
                identities=[
                    msp_principal_pb2.MSPPrincipal(
                        principal_classification=msp_principal_pb2.MSPPrincipal.ORGANIZATION_UNIT
                    )
                ],
            ),
            "not an MSP role",
        ),
    ],
)
def test_parse_refuses_every_other_shape(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        parse_n_out_of(raw)


def test_satisfaction_counts_each_endorser_once_and_member_takes_any_role() -> None:
    both = parse_n_out_of(all_of_policy([A, B]))
    assert both.is_satisfied_by([(A, RoleType.PEER), (B, RoleType.PEER)])
    assert not both.is_satisfied_by([(A, RoleType.PEER), (A, RoleType.PEER)])
    assert not both.is_satisfied_by([(A, RoleType.PEER), (B, RoleType.CLIENT)])
    member = parse_n_out_of(all_of_policy([A], "MEMBER"))
    assert member.is_satisfied_by([(A, RoleType.CLIENT)])
    one = parse_n_out_of(n_out_of_policy(1, [A, B]))
    assert one.is_satisfied_by([(B, RoleType.PEER)])
    assert not one.is_satisfied_by([(R, RoleType.PEER)])


# ---------------------------------------------------------------------- nested: A AND (B OR R)


def test_all_and_one_of_is_policydsl_and_of_or_with_sorted_orgs() -> None:
    """``AND('A.peer', OR('B.peer', 'R.peer'))`` as Fabric's policydsl compiles it: the
    identities A, B, R, the rule n_out_of(2, [signed_by 0, n_out_of(1, [signed_by 1, 2])])."""
    raw = all_and_one_of_policy([A], [R, B])
    assert raw == all_and_one_of_policy([A], [B, R])
    expected = _envelope(version=0, rule=_nout(2, _by(0), _nout(1, _by(1), _by(2))),
                         identities=[_role(A), _role(B), _role(R)])
    assert raw == expected
    tree = parse_policy(raw)
    assert tree == PolicyTree(2, ((A, RoleType.PEER),
                                  PolicyTree(1, ((B, RoleType.PEER), (R, RoleType.PEER)))))
    assert tree.msp_ids == [A, B, R]
    assert tree.describe() == f"2 of [{A}, 1 of [{B}, {R}]]"
    with pytest.raises(InvalidArgumentError, match="nested rule"):
        parse_n_out_of(raw)  # the flat parser stays strict


@pytest.mark.parametrize(("required", "one_of", "message"), [
    ([A], [B], "at least two"),
    ([A], [A, B], "both required and one of"),
    ([], [B, R], "at least one MSP id"),
    ([A], [B, B], "repeat"),
])
def test_all_and_one_of_refuses_what_is_not_that_shape(
    required: list[str], one_of: list[str], message: str,
) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        all_and_one_of_policy(required, one_of)


def test_the_nested_policy_needs_the_first_and_one_of_the_others() -> None:
    tree = parse_policy(all_and_one_of_policy([A], [B, R]))
    peer = RoleType.PEER
    assert tree.is_satisfied_by([(A, peer), (B, peer)])
    assert tree.is_satisfied_by([(R, peer), (A, peer)])
    assert tree.is_satisfied_by([(A, peer), (B, peer), (R, peer)])
    assert not tree.is_satisfied_by([(B, peer), (R, peer)])  # never without A
    assert not tree.is_satisfied_by([(A, peer)])
    assert not tree.is_satisfied_by([(A, peer), (A, peer)])  # one signature counts once
    assert not tree.is_satisfied_by([(A, peer), (B, RoleType.CLIENT)])


def test_parse_policy_reads_flat_ones_as_parse_n_out_of_does() -> None:
    flat = parse_policy(all_of_policy([A, B]))
    assert flat == PolicyTree(2, ((A, RoleType.PEER), (B, RoleType.PEER)))


@pytest.mark.parametrize(("raw", "message"), [
    (b"\xff\xff\xff", "not a SignaturePolicyEnvelope"),
    (_envelope(rule=_by(0), identities=[_role(A)]), "not an n_out_of"),
    (_envelope(rule=_nout(1, _nout(1, _by(0)), _by(0)), identities=[_role(A)]),
     "identity 0 wrongly"),
    (_envelope(rule=_nout(2, _by(0), _nout(0, _by(1))), identities=[_role(A), _role(B)]),
     "n=0"),
    (_envelope(rule=_nout(1, _by(0), policies_pb2.SignaturePolicy()),
               identities=[_role(A)]), "empty rule"),
    (_envelope(rule=_nout(1, _nout(1, _nout(1, _nout(1, _nout(1, _nout(1, _nout(1, _nout(
        1, _nout(1, _by(0)))))))))), identities=[_role(A)]), "deeper than"),
    (_envelope(rule=_nout(1, _nout(1, _by(0))), identities=[_role(A), _role(B)]),
     "no rule uses"),
])
def test_parse_policy_refuses_every_other_shape(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        parse_policy(raw)


async def test_the_memory_ledger_enforces_the_nested_pin() -> None:
    """A record pinned A AND (B OR R): A with R rewrites it, B with R cannot."""
    ledger = MemoryLedger()
    stub = ledger.stub(tx_id="t1", endorsers=[A])
    await stub.put_private_data(COLLECTION, "lock/1", b"locked")
    await stub.set_private_data_validation_parameter(
        COLLECTION, "lock/1", all_and_one_of_policy([A], [B, R]))
    stub.commit()
    stub = ledger.stub(tx_id="t2", endorsers=[B, R])
    await stub.put_private_data(COLLECTION, "lock/1", b"expired")
    with pytest.raises(EndorsementPolicyFailureError, match="2 of"):
        stub.commit()
    stub = ledger.stub(tx_id="t3", endorsers=[A, R])
    await stub.put_private_data(COLLECTION, "lock/1", b"expired")
    stub.commit()
    assert ledger.get_private_data(COLLECTION, "lock/1") == b"expired"


# ---------------------------------------------------------------------------- MemoryLedger


async def _pinned(ledger: MemoryLedger, key: str = "xfer/1") -> bytes:
    """A alone creates ``key`` and pins it to AND(A.peer, B.peer) in one transaction."""
    policy = all_of_policy([A, B])
    stub = ledger.stub(endorsers=[A])
    await stub.put_private_data(COLLECTION, key, b"v0")
    await stub.set_private_data_validation_parameter(COLLECTION, key, policy)
    stub.commit()
    return policy


async def test_the_creator_alone_pins_a_record_and_reads_the_exact_bytes() -> None:
    ledger = MemoryLedger()
    policy = await _pinned(ledger)
    assert await ledger.stub().get_private_data_validation_parameter(COLLECTION, "xfer/1") == (
        policy
    )
    assert ledger.get_metadata(COLLECTION, "xfer/1") == {"VALIDATION_PARAMETER": policy}


@pytest.mark.parametrize("change", ["rewrite", "delete", "purge", "re-pin"])
async def test_the_creator_alone_cannot_change_a_pinned_record(change: str) -> None:
    ledger = MemoryLedger()
    policy = await _pinned(ledger)
    height = ledger.height
    stub = ledger.stub(endorsers=[A])
    if change == "rewrite":
        await stub.put_private_data(COLLECTION, "xfer/1", b"forged")
    elif change == "delete":
        await stub.del_private_data(COLLECTION, "xfer/1")
    elif change == "purge":
        await stub.purge_private_data(COLLECTION, "xfer/1")
    else:
        await stub.set_private_data_validation_parameter(COLLECTION, "xfer/1", all_of_policy([A]))
    with pytest.raises(EndorsementPolicyFailureError, match="ENDORSEMENT_POLICY_FAILURE") as exc:
        stub.commit()
    assert "'xfer/1' of collection 'pair-a-b'" in str(exc.value)
    assert ledger.height == height
    assert ledger.get_private_data(COLLECTION, "xfer/1") == b"v0"
    assert ledger.get_metadata(COLLECTION, "xfer/1") == {"VALIDATION_PARAMETER": policy}


async def test_both_banks_together_rewrite_and_keep_the_pin_then_purge() -> None:
    ledger = MemoryLedger()
    policy = await _pinned(ledger)
    stub = ledger.stub(endorsers=[B, A])
    await stub.put_private_data(COLLECTION, "xfer/1", b"v1")
    stub.commit()
    assert ledger.get_private_data(COLLECTION, "xfer/1") == b"v1"
    assert ledger.get_metadata(COLLECTION, "xfer/1") == {"VALIDATION_PARAMETER": policy}
    stub = ledger.stub(endorsers=[A, B])
    await stub.purge_private_data(COLLECTION, "xfer/1")
    stub.commit()
    assert ledger.get_private_data(COLLECTION, "xfer/1") is None
    assert ledger.get_metadata(COLLECTION, "xfer/1") == {}


async def test_an_unpinned_record_is_purged_by_its_writer_alone() -> None:
    ledger = MemoryLedger()
    ledger.seed(private={COLLECTION: {"xfer/2": b"u0"}})
    stub = ledger.stub(endorsers=[A])
    await stub.purge_private_data(COLLECTION, "xfer/2")
    stub.commit()
    assert ledger.get_private_data(COLLECTION, "xfer/2") is None


async def test_without_endorsers_no_endorsement_is_modelled() -> None:
    ledger = MemoryLedger()
    await _pinned(ledger)
    stub = ledger.stub()
    await stub.put_private_data(COLLECTION, "xfer/1", b"unchecked")
    stub.commit()
    assert ledger.get_private_data(COLLECTION, "xfer/1") == b"unchecked"


class _Rewrite:
    """Rewrites the pinned record (the callee)."""

    async def init(self, stub: Stub) -> Response:
        return success()

    async def invoke(self, stub: Stub) -> Response:
        await stub.put_private_data(COLLECTION, "xfer/1", b"forged")
        return success()


class _Caller:
    """Calls ``callee`` in the same transaction."""

    async def init(self, stub: Stub) -> Response:
        return success()

    async def invoke(self, stub: Stub) -> Response:
        await stub.invoke_chaincode("callee", [])
        return success()


async def test_invoke_raises_and_called_chaincodes_need_the_same_endorsers() -> None:
    ledger = MemoryLedger()
    callee_ledger = ledger.register_chaincode("callee", _Rewrite())
    await _pinned(callee_ledger)
    with pytest.raises(EndorsementPolicyFailureError):
        await ledger.invoke(_Caller(), endorsers=[A])
    assert callee_ledger.get_private_data(COLLECTION, "xfer/1") == b"v0"
    await ledger.invoke(_Caller(), endorsers=[A, B])
    assert callee_ledger.get_private_data(COLLECTION, "xfer/1") == b"forged"


async def test_reading_the_parameter_reads_the_key_version() -> None:
    """As on a peer (the hashed read set): a key changed between the read of its parameter
    and the commit is an MVCC conflict."""
    ledger = MemoryLedger()
    await _pinned(ledger)
    reader = ledger.stub(endorsers=[A])
    assert await reader.get_private_data_validation_parameter(COLLECTION, "xfer/1")
    await reader.put_private_data(COLLECTION, "other", b"x")
    writer = ledger.stub(endorsers=[A, B])
    await writer.put_private_data(COLLECTION, "xfer/1", b"v1")
    writer.commit()
    with pytest.raises(MVCCReadConflictError):
        reader.commit()


async def test_a_parameter_that_does_not_parse_is_named_as_fabric_3105() -> None:
    ledger = MemoryLedger()
    stub = ledger.stub(endorsers=[A])
    await stub.put_private_data(COLLECTION, "dec/1", b"v")
    await stub.set_private_data_validation_parameter(COLLECTION, "dec/1", b"\xff\xff")
    stub.commit()  # written unchecked, as on a peer
    stub = ledger.stub(endorsers=[A, B])
    await stub.put_private_data(COLLECTION, "dec/1", b"w")
    with pytest.raises(ShimError, match=r"does not parse .*hyperledger/fabric#3105"):
        stub.commit()


def test_endorsers_must_be_a_sequence() -> None:
    with pytest.raises(InvalidArgumentError, match="not a string"):
        MemoryLedger().stub(endorsers=A)


# ------------------------------------------------- the real network's table, on the fake


async def test_the_probe_gives_the_measured_outcomes_on_the_memory_ledger() -> None:
    """``key_policy_probe`` run through the steps of ``tests/integration/
    test_key_policies.py`` (and ``docs/security.md``'s table) on ``MemoryLedger``: where
    the fake models the outcome, it is the one Fabric v3.1.1 gave."""
    chaincode = key_policy_probe.chaincode
    ledger = MemoryLedger()
    both = f'["{A}", "{B}"]'

    async def submit(function: str, *args: str, by: list[str], value: bytes = b"") -> str:
        transient = {"value": value} if value else None
        try:
            response = await ledger.invoke(
                chaincode, function, *args, transient=transient, endorsers=by
            )
        except EndorsementPolicyFailureError:
            return "ENDORSEMENT_POLICY_FAILURE"
        return "VALID" if not response.is_error else f"REFUSED {response.message}"

    assert await submit("create_pinned", COLLECTION, "r", both, by=[A], value=b"v0") == "VALID"
    pin = ledger.get_metadata(COLLECTION, "r")["VALIDATION_PARAMETER"]
    assert pin == all_of_policy([A, B])
    outcomes = [
        await submit("put", COLLECTION, "r", by=[A], value=b"forged"),
        await submit("delete", COLLECTION, "r", by=[A]),
        await submit("purge", COLLECTION, "r", by=[A]),
        await submit("set_parameter", COLLECTION, "r", f'["{A}"]', by=[A]),
        await submit("put", COLLECTION, "r", by=[B], value=b"forged"),
    ]
    assert outcomes == ["ENDORSEMENT_POLICY_FAILURE"] * 5
    assert ledger.get_private_data(COLLECTION, "r") == b"v0"
    assert await submit("rely_on", COLLECTION, "r", both, "note", by=[A], value=b"n") == "VALID"
    assert await submit("put", COLLECTION, "r", by=[A, B], value=b"v1") == "VALID"
    assert ledger.get_metadata(COLLECTION, "r") == {"VALIDATION_PARAMETER": pin}
    assert await submit("purge", COLLECTION, "r", by=[A, B]) == "VALID"
    assert await submit("put", COLLECTION, "r", by=[A], value=b"v2") == "VALID"
    assert ledger.get_metadata(COLLECTION, "r") == {}  # the pin died with the key
    refused = await submit("rely_on", COLLECTION, "r", both, "note2", by=[A], value=b"n")
    assert refused.startswith("REFUSED NOT_PINNED"), refused
    assert await submit("purge", COLLECTION, "r", by=[A]) == "VALID"  # unpinned: A alone

    assert await submit("create_pinned", COLLECTION, "s", both, "1", by=[A], value=b"w") == (
        "VALID"
    )
    assert await submit("put", COLLECTION, "s", by=[B], value=b"w1") == "VALID"

    assert await submit("put", COLLECTION, "g", by=[A], value=b"x") == "VALID"
    assert await submit("set_raw_parameter", COLLECTION, "g", "ffffff", by=[A]) == "VALID"
    with pytest.raises(ShimError, match="hyperledger/fabric#3105"):
        await submit("put", COLLECTION, "g", by=[A, B], value=b"y")
