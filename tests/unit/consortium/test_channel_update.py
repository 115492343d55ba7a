"""The configuration update that adds a bank: built by our code, checked against Fabric's.

* the organization's ``ConfigGroup`` we build is byte for byte the one ``configtxgen`` writes
  into a genesis block for the same organization;
* ``compute_update`` follows ``configtxlator compute_update``: unchanged elements are read by
  version only, the changed group gets version + 1, a new group is written whole;
* signatures are low-S ECDSA over (signature header ‖ update) by each admin's key.
"""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from consortium import channel, config, identities
from consortium import channel_update as cu
from consortium.binaries import find_binaries
from consortium.joining import signatures_needed
from consortium.layout import StateLayout
from consortium.policies import any_member, majority_of_peers, signature_policy_envelope
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

# The generated modules have no stubs: typed as Any, as the package itself does.
common_pb2: Any = importlib.import_module("fabric_protos.common.common_pb2")
configtx_pb2: Any = importlib.import_module("fabric_protos.common.configtx_pb2")
configuration_pb2: Any = importlib.import_module("fabric_protos.peer.configuration_pb2")
policies_pb2: Any = importlib.import_module("fabric_protos.common.policies_pb2")

DEFAULT = Path(__file__).resolve().parents[3] / "config" / "consortium.yaml"
FABRIC = find_binaries()
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


@pytest.fixture(scope="module")
def genesis(tmp_path_factory: pytest.TempPathFactory) -> tuple[StateLayout, Any]:
    """Crypto for the default consortium and its genesis config, made by configtxgen."""
    if FABRIC is None:
        pytest.skip("Fabric binaries are not built (scripts/_setup.sh builds them)")
    c = config.load(DEFAULT)
    layout = StateLayout(tmp_path_factory.mktemp("state"))
    identities.ensure_crypto(c, layout)
    channel.write_configtx(c, layout.crypto_dir, layout.channel_dir)
    block = layout.channel_dir / "genesis.block"
    subprocess.run(
        [str(FABRIC.tool("configtxgen")), "-profile", channel.PROFILE, "-outputBlock", str(block),
         "-channelID", c.channel, "-configPath", str(layout.channel_dir)],
        check=True, capture_output=True, env={"FABRIC_CFG_PATH": str(layout.channel_dir)},
    )  # fmt: skip
    return layout, cu.config_from_block(block.read_bytes())


def test_our_org_group_is_configtxgens(genesis: tuple[StateLayout, Any]) -> None:
    layout, cfg = genesis
    c = config.load(DEFAULT)
    app = cfg.channel_group.groups["Application"]
    assert cu.application_orgs(cfg) == sorted(o.msp_id for o in c.application_orgs)
    for org in c.application_orgs:
        ours = cu.application_org_group(
            org.msp_id, layout.org_crypto(org).msp_dir, [(p.host, p.port) for p in org.peers]
        )
        theirs = app.groups[org.msp_id]
        assert sorted(ours.values) == sorted(theirs.values) == ["AnchorPeers", "MSP"]
        for name in theirs.values:
            assert ours.values[name].value == theirs.values[name].value, (org.name, name)
        assert ours == theirs, org.name


def _new_bank(tmp_path: Path) -> tuple[StateLayout, config.Org]:
    data = config.load(DEFAULT)
    text = DEFAULT.read_text() + (
        "\njoined_banks:\n  - name: sgbank\n    msp_id: LionCityMSP\n"
        "    jurisdiction: SG\n    currencies: [USD]\n"
    )
    path = tmp_path / "consortium.yaml"
    path.write_text(text)
    c = config.load(path)
    assert c.founding_banks == data.banks
    layout = StateLayout(tmp_path / "state")
    identities.ensure_crypto(c, layout)
    return layout, c.joined_banks[0]


def test_adding_an_org_reads_versions_and_writes_the_application_group(
    genesis: tuple[StateLayout, Any], tmp_path: Path
) -> None:
    _, original = genesis
    layout, bank = _new_bank(tmp_path)
    group = cu.application_org_group(bank.msp_id, layout.org_crypto(bank).msp_dir,
                                     [(bank.peers[0].host, bank.peers[0].port)])
    updated = cu.with_application_org(original, bank.msp_id, group)
    assert cu.application_orgs(original) != cu.application_orgs(updated)
    update = cu.compute_update("payments", original, updated)
    assert update.channel_id == "payments"
    chan_r, chan_w = update.read_set, update.write_set
    # The channel group itself is unchanged: same version, only the Application group inside.
    assert chan_w.version == chan_r.version == original.channel_group.version
    assert list(chan_w.groups) == list(chan_r.groups) == ["Application"]
    assert not chan_w.values
    assert not chan_w.policies
    assert not chan_w.mod_policy
    app_o = original.channel_group.groups["Application"]
    app_r, app_w = chan_r.groups["Application"], chan_w.groups["Application"]
    assert app_r.version == app_o.version
    assert app_w.version == app_o.version + 1
    assert app_w.mod_policy == app_o.mod_policy == "Admins"  # MAJORITY Admins signs it
    # Every existing org, policy and value is read (and kept) by version only.
    for name, old in app_o.groups.items():
        assert app_r.groups[name] == configtx_pb2.ConfigGroup(version=old.version)
        assert app_w.groups[name] == configtx_pb2.ConfigGroup(version=old.version)
    grown = {"Readers", "Writers", "LifecycleEndorsement"}  # name the organizations: below
    for name, policy in app_o.policies.items():
        if name not in grown:
            assert app_w.policies[name] == configtx_pb2.ConfigPolicy(version=policy.version)
    # ANY Readers / ANY Writers as one OR, MAJORITY Endorsement as one OutOf, over every
    # organization, the new one included
    orgs = sorted([*app_o.groups, bank.msp_id])
    rules = {"Readers": any_member(orgs), "Writers": any_member(orgs),
             "LifecycleEndorsement": majority_of_peers(orgs)}
    for name, rule in rules.items():
        written = app_w.policies[name]
        assert written.version == app_o.policies[name].version + 1
        assert written.mod_policy == "Admins"
        assert written.policy.value == signature_policy_envelope(rule).SerializeToString()
    assert f"OutOf({len(orgs) // 2 + 1}, " in majority_of_peers(orgs)
    assert f"'{bank.msp_id}.member'" in any_member(orgs)
    for name, value in app_o.values.items():
        assert app_w.values[name] == configtx_pb2.ConfigValue(version=value.version)
    assert bank.msp_id not in app_r.groups
    assert app_w.groups[bank.msp_id] == group  # the new org, whole, at version 0
    anchors = configuration_pb2.AnchorPeers()
    anchors.ParseFromString(app_w.groups[bank.msp_id].values["AnchorPeers"].value)
    assert [(a.host, a.port) for a in anchors.anchor_peers] == [
        (bank.peers[0].host, bank.peers[0].port)
    ]


def test_the_genesis_application_policies_are_signature_policies_over_every_organization(
    genesis: tuple[StateLayout, Any],
) -> None:
    _, original = genesis
    application = original.channel_group.groups["Application"]
    orgs = sorted(application.groups)
    assert len(orgs) >= 3
    rules = {"Readers": any_member(orgs), "Writers": any_member(orgs),
             "LifecycleEndorsement": majority_of_peers(orgs)}
    for name, rule in rules.items():
        policy = application.policies[name]
        assert policy.policy.type == policies_pb2.Policy.SIGNATURE
        assert policy.policy.value == signature_policy_envelope(rule).SerializeToString()


def test_an_implicit_meta_lifecycle_endorsement_is_left_to_extend_itself(
    genesis: tuple[StateLayout, Any], tmp_path: Path
) -> None:
    """A channel made before the OutOf (ImplicitMeta MAJORITY Endorsement) keeps its rule:
    the new organization's Endorsement sub-policy extends it."""
    _, original = genesis
    implicit = configtx_pb2.Config()
    implicit.CopyFrom(original)
    rule = policies_pb2.ImplicitMetaPolicy(
        sub_policy="Endorsement", rule=policies_pb2.ImplicitMetaPolicy.MAJORITY)
    lifecycle = implicit.channel_group.groups["Application"].policies["LifecycleEndorsement"]
    lifecycle.policy.CopyFrom(policies_pb2.Policy(type=policies_pb2.Policy.IMPLICIT_META,
                                                  value=rule.SerializeToString()))
    layout, bank = _new_bank(tmp_path)
    group = cu.application_org_group(bank.msp_id, layout.org_crypto(bank).msp_dir,
                                     [(bank.peers[0].host, bank.peers[0].port)])
    updated = cu.with_application_org(implicit, bank.msp_id, group)
    assert updated.channel_group.groups["Application"].policies["LifecycleEndorsement"] == lifecycle
    update = cu.compute_update("payments", implicit, updated)
    app_w = update.write_set.groups["Application"]
    assert app_w.policies["LifecycleEndorsement"] == configtx_pb2.ConfigPolicy(
        version=lifecycle.version)


def test_any_member_and_majority_of_peers_refuse_nothing_and_repeats() -> None:
    assert any_member(["A", "B"]) == "OR('A.member', 'B.member')"
    with pytest.raises(ValueError, match="at least one"):
        any_member([])
    with pytest.raises(ValueError, match="repeated"):
        any_member(["A", "A"])
    assert majority_of_peers(["A"]) == "OutOf(1, 'A.peer')"
    assert (majority_of_peers(["A", "B", "C", "D"])
            == "OutOf(3, 'A.peer', 'B.peer', 'C.peer', 'D.peer')")
    with pytest.raises(ValueError, match="at least one"):
        majority_of_peers([])
    with pytest.raises(ValueError, match="repeated"):
        majority_of_peers(["A", "A"])


def test_a_changed_value_is_written_with_the_next_version(
    genesis: tuple[StateLayout, Any],
) -> None:
    _, original = genesis
    updated = configtx_pb2.Config()
    updated.CopyFrom(original)
    org = updated.channel_group.groups["Application"].groups["HarbourBankMSP"]
    org.values["AnchorPeers"].value = configuration_pb2.AnchorPeers(
        anchor_peers=[configuration_pb2.AnchorPeer(host="10.0.0.9", port=7051)]
    ).SerializeToString()
    update = cu.compute_update("payments", original, updated)
    app_w = update.write_set.groups["Application"]
    assert app_w.version == original.channel_group.groups["Application"].version  # no member change
    old = original.channel_group.groups["Application"].groups["HarbourBankMSP"]
    org_w = app_w.groups["HarbourBankMSP"]
    assert org_w.version == old.version  # its members are the same, one value changed
    assert org_w.values["AnchorPeers"].version == old.values["AnchorPeers"].version + 1
    assert list(org_w.values) == ["AnchorPeers"]  # the unchanged MSP is not written
    assert not org_w.policies


def test_no_difference_is_an_error_and_an_org_is_added_once(
    genesis: tuple[StateLayout, Any],
) -> None:
    _, original = genesis
    with pytest.raises(cu.ChannelUpdateError, match="no differences"):
        cu.compute_update("payments", original, original)
    existing = original.channel_group.groups["Application"].groups["HarbourBankMSP"]
    with pytest.raises(cu.ChannelUpdateError, match="already an organization"):
        cu.with_application_org(original, "HarbourBankMSP", existing)


def test_signatures_are_low_s_over_header_and_update(
    genesis: tuple[StateLayout, Any], tmp_path: Path
) -> None:
    layout, original = genesis
    c = config.load(DEFAULT)
    bank = c.banks[0]
    admin = layout.org_crypto(bank).user("Admin")
    signer = cu.AdminSigner.from_files(bank.msp_id, admin.cert, admin.key)
    update = cu.compute_update("payments", original, _with_anchor(original))
    for _ in range(20):  # about half of raw ECDSA signatures are high-S
        sig = cu.sign_update(update, signer)
        _r, s = decode_dss_signature(sig.signature)
        assert s <= P256_N // 2
        public = signer.key.public_key()
        public.verify(sig.signature, sig.signature_header + update.SerializeToString(),
                      ec.ECDSA(hashes.SHA256()))
        header = common_pb2.SignatureHeader()
        header.ParseFromString(sig.signature_header)
        assert len(header.nonce) == 24
    envelope = cu.update_envelope(update, [sig], signer)
    payload = common_pb2.Payload()
    payload.ParseFromString(envelope.payload)
    ch = common_pb2.ChannelHeader()
    ch.ParseFromString(payload.header.channel_header)
    assert (ch.type, ch.channel_id) == (common_pb2.CONFIG_UPDATE, "payments")
    body = configtx_pb2.ConfigUpdateEnvelope()
    body.ParseFromString(payload.data)
    assert body.config_update == update.SerializeToString()
    assert list(body.signatures) == [sig]
    signer.key.public_key().verify(envelope.signature, envelope.payload, ec.ECDSA(hashes.SHA256()))


def _with_anchor(original: Any) -> Any:
    updated = configtx_pb2.Config()
    updated.CopyFrom(original)
    org = updated.channel_group.groups["Application"].groups["HarbourBankMSP"]
    org.values["AnchorPeers"].value = b"\x0a\x00"
    return updated


@pytest.mark.parametrize(("orgs", "needed"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (21, 11)])
def test_majority_is_fabrics(orgs: int, needed: int) -> None:
    assert signatures_needed(orgs) == needed


def test_signature_policy_is_policydsls_or() -> None:
    env = cu.signature_policy("peer", ["AMSP"])
    assert env.rule.n_out_of.n == 1
    assert [r.signed_by for r in env.rule.n_out_of.rules] == [0]
    with pytest.raises(cu.ChannelUpdateError, match="unknown MSP role"):
        cu.signature_policy("boss", ["AMSP"])
