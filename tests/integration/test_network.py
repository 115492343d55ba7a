"""Issue 2 on the real network: healthy nodes, the CLI, idempotent up, restarts keep data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml
from harness import TestNetwork, consortium_variant
from harness.network import DEFAULT_CONFIG

DTOKEN = [sys.executable, "-m", "dtoken.cli"]


def dtoken(*args: str, config: Path, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DTOKEN, "network", "--config", str(config), "--state-dir", str(state), *args],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "chaincodes")},
    )  # fmt: skip


def test_every_node_is_healthy_and_status_json_lists_what_the_sdk_needs(
    network: TestNetwork,
) -> None:
    status = dtoken("status", "--json", config=network.consortium.source, state=network.state_dir)
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["state_dir"] == str(network.state_dir)
    assert data["channel"] == network.consortium.channel
    assert data["chaincode"] == network.consortium.chaincode.name
    kinds = {o["name"]: o["kind"] for o in data["orgs"]}
    assert kinds == {"ordering": "orderer", "hkbank": "bank", "usbank": "bank",
                     "cnbank": "bank", "regulator": "regulator"}  # fmt: skip
    for org in data["orgs"]:
        assert Path(org["admin"]["cert"]).is_file()
        assert Path(org["admin"]["key"]).is_file()
        assert Path(org["admin"]["msp_dir"]).is_dir()
        for peer in org["peers"]:
            assert peer["healthy"], peer
            assert peer["chaincode_server"]["running"], peer
            assert Path(peer["tls_ca_cert"]).is_file()
        if org["kind"] != "orderer":
            profile = json.loads(Path(org["connection_profile"]).read_text())
            assert profile["msp_id"] == network.consortium.org(org["name"]).msp_id
            assert profile["gateway"]["endpoint"] == org["peers"][0]["endpoint"]
            assert Path(profile["gateway"]["tls_ca_cert"]).is_file()
            assert profile["channel"] == data["channel"]
    assert len(data["orderers"]) == 3
    for orderer in data["orderers"]:
        assert orderer["healthy"], orderer
        assert orderer["admin_endpoint"] != orderer["endpoint"]
    table = dtoken("status", config=network.consortium.source, state=network.state_dir)
    assert table.returncode == 0
    assert "DOWN" not in table.stdout
    assert "peer0.hkbank" in table.stdout


def test_up_on_a_healthy_network_changes_nothing(network: TestNetwork) -> None:
    bank = network.bank(0)
    height = network.ledger_height(bank)
    pids = {n.name: n.pid() for n in network.nodes()}
    again = dtoken("up", config=network.consortium.source, state=network.state_dir)
    assert again.returncode == 0, again.stderr
    assert {n.name: n.pid() for n in network.nodes()} == pids
    assert network.ledger_height(bank) == height


def test_up_restarts_a_node_that_died(network: TestNetwork) -> None:
    peer = network.node(network.consortium.banks[1].peers[0].name)
    network.kill(peer)
    assert not peer.healthy()
    result = dtoken("up", config=network.consortium.source, state=network.state_dir)
    assert result.returncode == 0, result.stderr
    assert peer.healthy()


def test_a_config_with_a_mistake_is_refused_and_starts_nothing(tmp_path: Path) -> None:
    banks = yaml.safe_load(DEFAULT_CONFIG.read_text())["banks"]
    banks[1]["currencies"] = ["USD", "EUR"]
    bad = consortium_variant(tmp_path / "bad.yaml", name="badnet", base_port=7900, banks=banks)
    state = tmp_path / "state"
    result = dtoken("up", config=bad, state=state)
    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert "banks[1].currencies" in result.stderr
    assert "'EUR'" in result.stderr
    assert not state.exists()


def test_a_bank_issues_a_client_identity_with_roles_from_the_cli(network: TestNetwork) -> None:
    result = dtoken(
        "identity", "issue", "--org", "usbank", "--name", "treasury-bot",
        "--attr", "operator=true", "--attr", "minter=true",
        config=network.consortium.source, state=network.state_dir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)
    assert issued["msp_id"] == network.consortium.org("usbank").msp_id
    profile = network.profile(network.consortium.org("usbank"))
    listed = profile["identities"]["treasury-bot"]
    assert listed["cert"] == issued["cert"]
    assert listed["attributes"]["minter"] == "true"
    assert listed["attributes"]["operator"] == "true"
    assert listed["attributes"]["hf.EnrollmentID"] == "treasury-bot"
    refused = dtoken(
        "identity", "issue", "--org", "usbank", "--name", "x", "--attr", "minter",
        config=network.consortium.source, state=network.state_dir,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "NAME=VALUE" in refused.stderr
