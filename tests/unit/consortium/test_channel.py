"""Rendered channel configuration and the chaincode's endorsement design."""

from __future__ import annotations

from pathlib import Path

from consortium import channel, config

DEFAULT = Path(__file__).resolve().parents[3] / "config" / "consortium.yaml"


def test_configtx_has_capabilities_endpoints_anchor_peers_and_peer_endorsement() -> None:
    c = config.load(DEFAULT)
    doc = channel.configtx(c, Path("/crypto"))
    profile = doc["Profiles"][channel.PROFILE]
    assert profile["Capabilities"] == {"V3_0": True}
    assert profile["Orderer"]["Capabilities"] == {"V2_0": True}
    assert profile["Application"]["Capabilities"] == {"V2_5": True}
    orderer_org = profile["Orderer"]["Organizations"][0]
    assert orderer_org["OrdererEndpoints"] == [o.endpoint for o in c.ordering.orderers]
    assert len(profile["Orderer"]["EtcdRaft"]["Consenters"]) == 3
    assert profile["Orderer"]["BatchTimeout"] == f"{c.ordering.batch_timeout_ms}ms"
    apps = {o["Name"]: o for o in profile["Application"]["Organizations"]}
    assert set(apps) == {o.msp_id for o in c.application_orgs}
    for org in c.application_orgs:
        section = apps[org.msp_id]
        assert section["Policies"]["Endorsement"]["Rule"] == f"OR('{org.msp_id}.peer')"
        assert section["AnchorPeers"] == [{"Host": p.host, "Port": p.port} for p in org.peers]


def test_collections_follow_the_trust_design() -> None:
    c = config.load(DEFAULT)
    cols = {x["name"]: x for x in channel.collections_config(c)}
    banks = [b.name for b in c.banks]
    assert len(cols) == 3 + 3 * 2 + 3
    reg = c.regulator
    assert reg is not None
    for b in c.banks:
        acct = cols[f"acct-{b.name}"]
        assert acct["endorsementPolicy"]["signaturePolicy"] == f"OR('{b.msp_id}.peer')"
        assert acct["policy"] == f"OR('{b.msp_id}.member', '{reg.msp_id}.member')"
        holds = cols[f"holds-{b.name}"]
        assert holds["endorsementPolicy"]["signaturePolicy"] == f"OR('{reg.msp_id}.peer')"
    for a in c.banks:
        for b in c.banks:
            if a is b:
                continue
            pair = cols[f"pair-{a.name}-{b.name}"]
            assert pair["endorsementPolicy"]["signaturePolicy"] == f"OR('{a.msp_id}.peer')"
            assert a.msp_id in pair["policy"]
            assert b.msp_id in pair["policy"]
            third = [x for x in c.banks if x is not a and x is not b]
            assert all(t.msp_id not in pair["policy"] for t in third)
    for col in cols.values():
        assert ".member" not in col["endorsementPolicy"]["signaturePolicy"]
        assert col["requiredPeerCount"] == 0
        assert col["maxPeerCount"] >= 1
    assert banks


def test_chaincode_policy_needs_every_bank() -> None:
    c = config.load(DEFAULT)
    policy = channel.chaincode_policy(c)
    assert policy.startswith("AND(")
    for b in c.banks:
        assert f"'{b.msp_id}.peer'" in policy
    assert c.regulator is not None
    assert c.regulator.msp_id not in policy
