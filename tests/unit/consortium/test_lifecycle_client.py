"""The ``_lifecycle`` client against fake peers: each approval is signed by its organization's
admin and endorsed by that organization's peer only, many in flight but never more than the
bound; a commit is endorsed by a peer of every approver; Fabric's "already done" answers count
as done; what heals by itself is retried; anything else is a ``LifecycleError`` naming the
organization, the definition and Fabric's message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from consortium import config, identities, namespaces
from consortium.config import Consortium, Org
from consortium.errors import LifecycleError
from consortium.layout import StateLayout
from consortium.lifecycle_args import APPROVE, COMMIT, ChaincodeDefinition
from consortium.lifecycle_client import Approval, CommitJob, LifecycleClient
from consortium.lifecycle_client import Invocation as Invoke
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import transaction_pb2
from fabric_protos.peer.lifecycle import lifecycle_pb2
from unit.fabgateway.gw_fakes import (
    Answer,
    FakeEndorser,
    FakePeer,
    Invocation,
    Server,
    endorsing_server,
    named_peer_channel,
)

pytestmark = pytest.mark.timeout(120)

DEFAULT = Path(__file__).resolve().parents[3] / "config" / "consortium.yaml"
CODES = transaction_pb2.TxValidationCode


@pytest.fixture(scope="module")
def consortium() -> Consortium:
    return config.load(DEFAULT)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory, consortium: Consortium) -> StateLayout:
    layout = StateLayout(tmp_path_factory.mktemp("lifecycle-state"))
    identities.ensure_crypto(consortium, layout)
    return layout


@pytest.fixture
def peer() -> FakePeer:
    return FakePeer()


@pytest.fixture
def endorser(peer: FakePeer) -> FakeEndorser:
    return FakeEndorser(ledger=peer)


@pytest.fixture
async def server(peer: FakePeer, endorser: FakeEndorser) -> AsyncIterator[Server]:
    async with endorsing_server(peer, endorser) as running:
        yield running


def client(consortium: Consortium, layout: StateLayout, server: Server,
           **options: int) -> LifecycleClient:
    """Every organization's peer is the fake server, told apart by the peer name."""
    return LifecycleClient(consortium, layout,
                           connect=lambda org: named_peer_channel(server.address, org.name),
                           **options)


def creator_msp(inv: Invocation) -> str:
    return str(identities_pb2.SerializedIdentity.FromString(inv.creator).mspid)


def layout_jobs(c: Consortium) -> tuple[list[Approval], list[CommitJob]]:
    approvals, commits = [], []
    for d in namespaces.definitions(c):
        definition = ChaincodeDefinition(d.name, "1.0", 1, d.policy, d.collections)
        for name in d.approvers:
            package = d.package_of(name)
            approvals.append(Approval(definition, c.org(name),
                                      None if package is None else f"{package}-{name}:00"))
        commits.append(CommitJob(definition, tuple(c.org(o) for o in d.approvers)))
    return approvals, commits


async def test_every_approval_by_its_own_admin_and_peer_then_every_commit(
    consortium: Consortium, layout: StateLayout, server: Server, endorser: FakeEndorser
) -> None:
    approvals, commits = layout_jobs(consortium)
    endorser.delay = 0.05  # long enough for approvals to pile up in flight
    async with client(consortium, layout, server, concurrency=5) as lc:
        approved = await lc.approve_all(approvals)
        assert 1 < endorser.max_in_flight <= 5
        committed = await lc.commit_all(commits)
    assert (approved.sent, approved.present) == (len(approvals), 0)
    assert (committed.sent, committed.present) == (len(commits), 0)

    msp_of = {o.name: o.msp_id for o in consortium.application_orgs}
    seen: set[tuple[str, str]] = set()
    commit_endorsers: dict[str, set[str]] = {}
    for peer_name, inv in endorser.calls:
        function = inv.args[0].decode()
        if function == APPROVE:
            args = lifecycle_pb2.ApproveChaincodeDefinitionForMyOrgArgs.FromString(inv.args[1])
            assert creator_msp(inv) == msp_of[peer_name]  # its own admin, on its own peer
            source = args.source
            expected = next(a for a in approvals
                            if a.org.name == peer_name and a.definition.name == args.name)
            if expected.package_id is None:
                assert source.WhichOneof("Type") == "unavailable"
            else:
                assert source.local_package.package_id == expected.package_id
            seen.add((args.name, peer_name))
        else:
            assert function == COMMIT
            args = lifecycle_pb2.CommitChaincodeDefinitionArgs.FromString(inv.args[1])
            commit_endorsers.setdefault(args.name, set()).add(peer_name)
    assert seen == {(a.definition.name, a.org.name) for a in approvals}
    assert commit_endorsers == {c.definition.name: {o.name for o in c.endorsers}
                                for c in commits}


async def test_approvals_are_all_endorsed_before_any_is_submitted(
    consortium: Consortium, layout: StateLayout, server: Server, endorser: FakeEndorser,
    peer: FakePeer,
) -> None:
    """Submitted together, approvals fill blocks instead of one small block each per batch
    timeout while the rest are being endorsed."""
    approvals, _ = layout_jobs(consortium)
    endorser.delay = 0.02
    endorsed_when_first_submitted: list[int] = []

    class Watched(list[object]):  # the fake peer appends every Submit request here
        def append(self, request: object) -> None:
            if not endorsed_when_first_submitted:
                endorsed_when_first_submitted.append(len(endorser.calls))
            super().append(request)

    peer.submit_requests = Watched()
    async with client(consortium, layout, server, concurrency=4) as lc:
        approved = await lc.approve_all(approvals)
    assert approved.sent == len(approvals) > 4
    assert endorsed_when_first_submitted == [len(approvals)]
    assert len(endorser.calls) == len(approvals)  # each endorsed once


async def test_an_approval_already_made_counts_as_done(
    consortium: Consortium, layout: StateLayout, server: Server, endorser: FakeEndorser,
    peer: FakePeer,
) -> None:
    approvals, _ = layout_jobs(consortium)
    endorser.handler = lambda inv, name: Answer(
        status=500, message="failed to invoke backing implementation of "
        "'ApproveChaincodeDefinitionForMyOrg': attempted to redefine uncommitted sequence (1) "
        "for namespace dtoken-hkbank with unchanged content")
    async with client(consortium, layout, server) as lc:
        report = await lc.approve_all(approvals)
    assert (report.sent, report.present) == (0, len(approvals))
    assert peer.submit_requests == []


async def test_a_refused_approval_names_the_org_the_definition_and_fabrics_message(
    consortium: Consortium, layout: StateLayout, server: Server, endorser: FakeEndorser
) -> None:
    approvals, _ = layout_jobs(consortium)
    refusal = ("collection-name: acct-usbank -- collection member 'Nobody' is not part of the "
               "channel")

    def refuse_usbank(inv: Invocation, name: str) -> Answer:
        if name == "usbank":
            return Answer(status=500, message=refusal)
        return Answer()

    endorser.handler = refuse_usbank
    async with client(consortium, layout, server) as lc:
        with pytest.raises(LifecycleError) as failed:
            await lc.approve_all(approvals)
    error = failed.value
    assert (error.step, error.org) == ("approve", "usbank")
    assert error.definition in {a.definition.name for a in approvals if a.org.name == "usbank"}
    assert refusal in error.message
    assert "chaincode response 500" in error.message
    assert "usbank" in str(error)
    assert error.definition in str(error)
    # the other organizations' approvals all went through before the failure was raised
    others = {(inv.transaction_id) for name, inv in endorser.calls if name != "usbank"}
    assert len(others) == len([a for a in approvals if a.org.name != "usbank"])


async def test_a_commit_waits_for_peers_that_lag_behind(
    consortium: Consortium, layout: StateLayout, server: Server, endorser: FakeEndorser
) -> None:
    _, commits = layout_jobs(consortium)
    lagging = {"count": 0}

    def lag_twice(inv: Invocation, name: str) -> Answer:
        if name == "cnbank" and lagging["count"] < 2:
            lagging["count"] += 1
            return Answer(status=500, message="chaincode definition not agreed to by this org "
                                              "(PearlRiverMSP)")
        return Answer()

    endorser.handler = lag_twice
    job = next(c for c in commits if any(o.name == "cnbank" for o in c.endorsers))
    async with client(consortium, layout, server) as lc:
        report = await lc.commit_all([job])
    assert (report.sent, report.retries) == (1, 2)


async def test_an_invocation_waits_for_a_peer_that_has_not_committed_the_definition(
    consortium: Consortium, layout: StateLayout, server: Server, endorser: FakeEndorser
) -> None:
    """init_network right after the commits: a peer a block behind does not know the
    chaincode yet (seen on a loaded machine); it is asked again, not reported as a failure."""
    behind = {"count": 0}

    def not_defined_twice(inv: Invocation, name: str) -> Answer:
        if behind["count"] < 2:
            behind["count"] += 1
            return Answer(status=500, message="make sure the chaincode dtoken-cnbank has been "
                                              "successfully defined on channel payments and try "
                                              "again: chaincode dtoken-cnbank not found")
        return Answer()

    endorser.handler = not_defined_twice
    cnbank = consortium.org("cnbank")
    job = Invoke("dtoken-cnbank", cnbank, ("init_network", "{}"), (cnbank,),
                 "ALREADY_INITIALIZED")
    async with client(consortium, layout, server) as lc:
        report = await lc.invoke_all([job])
    assert (report.sent, report.retries) == (1, 2)


async def test_a_definition_already_committed_counts_as_done(
    consortium: Consortium, layout: StateLayout, server: Server, endorser: FakeEndorser
) -> None:
    _, commits = layout_jobs(consortium)
    endorser.handler = lambda inv, name: Answer(
        status=500, message="requested sequence is 1, but new definition must be sequence 2")
    async with client(consortium, layout, server) as lc:
        report = await lc.commit_all(commits[:2])
    assert (report.sent, report.present) == (0, 2)


async def test_a_commit_invalidated_names_its_validation_code(
    consortium: Consortium, layout: StateLayout, server: Server, endorser: FakeEndorser,
    peer: FakePeer,
) -> None:
    _, commits = layout_jobs(consortium)

    def invalid(inv: Invocation, name: str) -> Answer:
        peer.commit_codes[inv.transaction_id] = CODES.Value("ENDORSEMENT_POLICY_FAILURE")
        return Answer()

    endorser.handler = invalid
    async with client(consortium, layout, server) as lc:
        with pytest.raises(LifecycleError, match="ENDORSEMENT_POLICY_FAILURE") as failed:
            await lc.commit_all(commits[:1])
    assert failed.value.org == commits[0].endorsers[0].name
    assert failed.value.definition == commits[0].definition.name


async def test_an_unreachable_peer_is_retried_then_named(
    consortium: Consortium, layout: StateLayout, server: Server, endorser: FakeEndorser
) -> None:
    approvals, _ = layout_jobs(consortium)
    endorser.abort["hkbank"] = (grpc.StatusCode.UNAVAILABLE, "connection refused")
    mine = [a for a in approvals if a.org.name == "hkbank"][:1]
    async with client(consortium, layout, server, attempts=3) as lc:
        with pytest.raises(LifecycleError, match="UNAVAILABLE: connection refused") as failed:
            await lc.approve_all(mine)
    assert failed.value.org == "hkbank"
    assert len([1 for name, _ in endorser.calls if name == "hkbank"]) == 0  # aborted first


def test_bad_options_are_refused(consortium: Consortium, layout: StateLayout) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        LifecycleClient(consortium, layout, concurrency=0)
    with pytest.raises(ValueError, match="attempts"):
        LifecycleClient(consortium, layout, attempts=0)
    org: Org = consortium.application_orgs[0]
    definition = ChaincodeDefinition("cc", "1.0", 1, "OR('A.peer')")
    with pytest.raises(ValueError, match="no endorsing organization"):
        CommitJob(definition, ())
    assert Approval(definition, org, None).package_id is None


def test_the_bootstrap_approves_with_each_orgs_own_package_and_commits_with_the_approvers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ChaincodeLifecycle.define_namespaces`` asks for what ``consortium.namespaces`` says:
    each approver with the package it runs there (its own package id) or none, every commit
    endorsed by the definition's approvers; committed definitions are left alone."""
    import yaml
    from consortium.chaincodes import ChaincodeCatalog
    from consortium.lifecycle import ChaincodeLifecycle

    data = yaml.safe_load(DEFAULT.read_text())
    data["chaincode"]["layout"] = "namespaces"
    c = config.parse(data)
    catalog = ChaincodeCatalog(c, StateLayout(tmp_path))
    identities.ensure_crypto(c, catalog.layout)
    lifecycle = ChaincodeLifecycle(c, catalog, nodes=None, admin=None)  # type: ignore[arg-type]
    defs = namespaces.definitions(c)
    monkeypatch.setattr(lifecycle, "committed_names", lambda: {defs[0].name})
    asked: list[tuple[list[Approval], list[CommitJob]]] = []
    monkeypatch.setattr(lifecycle, "_approve_and_commit",
                        lambda approvals, commits: asked.append((approvals, commits)))
    assert lifecycle.define_namespaces() == len(defs) - 1
    [(approvals, commits)] = asked
    main, storage = catalog.main(), catalog.storage()
    expected = []
    for d in defs[1:]:
        for name in d.approvers:
            org = c.org(name)
            package = d.package_of(name)
            package_id = None if package is None else catalog.package_id(
                org, main if package is namespaces.Package.CONTRACT else storage)
            expected.append((d.name, name, package_id))
    assert [(a.definition.name, a.org.name, a.package_id) for a in approvals] == expected
    assert [(j.definition.name, [o.name for o in j.endorsers]) for j in commits] == [
        (d.name, list(d.approvers)) for d in defs[1:]]
    assert all(j.definition.collections == d.collections and j.definition.policy == d.policy
               for j, d in zip(commits, defs[1:], strict=True))
    monkeypatch.setattr(lifecycle, "committed_names", lambda: {d.name for d in defs})
    assert lifecycle.define_namespaces() == 0
    assert len(asked) == 1
