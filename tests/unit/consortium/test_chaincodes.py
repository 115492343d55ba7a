"""consortium.chaincodes and consortium.layout: deployments, packages, the state folder.

No Fabric binaries and no network: what ``Network.deploy`` records and which package
(and package id) each organization gets are decided here, before any tool runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from consortium import config, identities
from consortium.chaincodes import (
    MAX_CHAINCODES,
    REGISTRY_PIN_ENV,
    ChaincodeCatalog,
    registry,
    registry_argument,
    registry_pin,
)
from consortium.errors import NetworkError
from consortium.layout import StateLayout
from consortium.network import Network
from consortium.nodes import NodeSet
from deposit_token.config import ENV_REGISTRY_SHA256

DEFAULT = Path(__file__).resolve().parents[3] / "config" / "consortium.yaml"


@pytest.fixture
def catalog(tmp_path: Path) -> ChaincodeCatalog:
    return ChaincodeCatalog(config.load(DEFAULT), StateLayout(tmp_path))


def test_the_consortium_chaincode_is_slot_0_and_others_take_the_next_free_slot(
    catalog: ChaincodeCatalog,
) -> None:
    main = catalog.main()
    assert (main.slot, main.init_function) == (0, "init_network")
    assert not catalog.layout.chaincodes_file.exists()
    a = catalog.declare("a", "pkg.a:Contract", env={"X": "1"})
    b = catalog.declare("b", "pkg.b:Contract", argv=["node", "server.js"])
    assert (a.slot, b.slot) == (1, 2)
    assert a.init_function is None
    assert json.loads(a.env_json or "") == {"X": "1"}
    # Recorded: a new catalog on the same folder sees them, in order.
    again = ChaincodeCatalog(catalog.consortium, catalog.layout)
    assert [d.name for d in again.deployments()] == [main.name, "a", "b"]
    assert again.deployment("b") == b


def test_under_the_layout_a_declared_chaincode_lists_the_pair_storage_once(
    tmp_path: Path,
) -> None:
    """Found by the trust-model tests on the layout: declare() recorded the pair storage among
    the extras, so every node list named its servers twice and ``down`` stopped fewer nodes
    than the network said it had."""
    layout_cfg = tmp_path / "consortium.yaml"
    data = yaml.safe_load(DEFAULT.read_text())
    data["chaincode"]["layout"] = "namespaces"
    layout_cfg.write_text(yaml.safe_dump(data))
    (tmp_path / "state").mkdir()
    catalog = ChaincodeCatalog(config.load(layout_cfg), StateLayout(tmp_path / "state"))
    storage = catalog.storage()
    probe = catalog.declare("probe", "pkg.probe:Contract")
    second = catalog.declare("second", "pkg.second:Contract")
    assert (storage.slot, probe.slot, second.slot) == (1, 2, 3)
    names = [d.name for d in catalog.deployments()]
    assert names == ["dtoken", "dtoken-storage", "probe", "second"]
    recorded = json.loads(catalog.layout.chaincodes_file.read_text())
    assert [d["name"] for d in recorded] == ["probe", "second"]
    # A state folder written before the fix (the storage recorded too) lists it once.
    catalog.layout.chaincodes_file.write_text(json.dumps([storage.__dict__, *recorded]))
    assert [d.name for d in catalog.deployments()] == names


def test_declaring_a_recorded_chaincode_again_returns_it_unchanged(
    catalog: ChaincodeCatalog,
) -> None:
    first = catalog.declare("a", "pkg.a:Contract", version="1.0")
    assert catalog.declare("a", "other:Contract", version="2.0") == first
    assert len(catalog.deployments()) == 2


def test_a_peer_has_room_for_seven_chaincodes_and_no_more(catalog: ChaincodeCatalog) -> None:
    for i in range(1, MAX_CHAINCODES):
        assert catalog.declare(f"cc{i}", "pkg:Contract").slot == i
    with pytest.raises(NetworkError, match=f"at most {MAX_CHAINCODES} chaincodes"):
        catalog.declare("one-too-many", "pkg:Contract")


def test_an_unknown_chaincode_is_a_key_error_naming_it(catalog: ChaincodeCatalog) -> None:
    with pytest.raises(KeyError, match="nope"):
        catalog.deployment("nope")


def test_each_org_gets_a_deterministic_package_whose_id_is_its_hash(tmp_path: Path) -> None:
    c = config.load(DEFAULT)
    layout = StateLayout(tmp_path)
    identities.ensure_crypto(c, layout)
    catalog = ChaincodeCatalog(c, layout)
    ids = {}
    for org in c.application_orgs:
        package_id = catalog.package_id(org)
        path = catalog.package_path(org, catalog.main())
        label = f"{c.chaincode.name}_{org.name}_{c.chaincode.version}"
        assert path == tmp_path / "chaincode" / org.name / f"{label}.tar.gz"
        assert package_id == f"{label}:{hashlib.sha256(path.read_bytes()).hexdigest()}"
        ids[org.name] = package_id
        with tarfile.open(fileobj=io.BytesIO(path.read_bytes())) as tar:
            assert sorted(tar.getnames()) == ["code.tar.gz", "metadata.json"]
            assert all(m.mtime == 0 for m in tar.getmembers())
            meta = tar.extractfile("metadata.json")
            assert meta is not None
            assert json.loads(meta.read()) == {"type": "ccaas", "label": label}
        # Made again from the same keys, the bytes (so the id) are the same.
        path.unlink()
        assert catalog.package_id(org) == package_id
    assert len(set(ids.values())) == len(ids)  # each org's package carries its own TLS pair


def test_the_registry_lists_the_banks_the_regulator_and_the_currencies() -> None:
    c = config.load(DEFAULT)
    reg = registry(c)
    assert [b["msp_id"] for b in reg["banks"]] == [b.msp_id for b in c.banks]
    assert reg["regulator_msp_id"] == (c.regulator.msp_id if c.regulator else None)
    assert reg["currencies"] == dict(c.currencies)


def test_the_registry_argument_is_canonical_and_every_server_pins_its_hash(
    tmp_path: Path,
) -> None:
    c = config.load(DEFAULT)
    argument = registry_argument(c)
    assert json.loads(argument) == registry(c)
    assert argument == json.dumps(registry(c), sort_keys=True, separators=(",", ":"))
    assert registry_pin(c) == hashlib.sha256(argument.encode()).hexdigest()
    assert REGISTRY_PIN_ENV == ENV_REGISTRY_SHA256  # the name the chaincode server reads
    # Every organization's chaincode server (the regulator's too) gets the pin natively.
    layout = StateLayout(tmp_path)
    nodes = NodeSet(c, ChaincodeCatalog(c, layout), fabric=lambda: pytest.fail("no binaries"))
    for p in c.peers:
        env = nodes.chaincode(p).spec.env
        assert env[REGISTRY_PIN_ENV] == registry_pin(c)


def test_a_state_folder_names_the_consortium_file_it_was_made_from(tmp_path: Path) -> None:
    c = config.load(DEFAULT)
    assert Network.source_of(tmp_path) is None
    net = Network(c, tmp_path / "state", progress=lambda _m: None)
    net.state_dir.mkdir()
    net._check_fingerprint()
    assert Network.source_of(net.state_dir) == c.source.resolve()
    (net.state_dir / "network.json").write_text("not json")
    assert StateLayout.source_of(net.state_dir) is None


def test_the_namespace_layout_serves_two_packages_and_names_the_orgs_namespace(
    tmp_path: Path,
) -> None:
    import yaml
    from consortium.chaincodes import LAYOUT_ENV, STORAGE_MODULE
    from consortium.profiles import ConnectionProfiles
    from deposit_token.config import ENV_LAYOUT

    data = yaml.safe_load(DEFAULT.read_text())
    data["chaincode"]["layout"] = "namespaces"
    c = config.parse(data)
    cat = ChaincodeCatalog(c, StateLayout(tmp_path))
    main, storage = cat.deployments()
    assert (main.slot, storage.slot) == (0, 1)
    assert main.collections_json is None  # the layout's definitions carry the collections
    assert json.loads(main.env_json or "{}") == {LAYOUT_ENV: "true"}
    assert LAYOUT_ENV == ENV_LAYOUT  # the server reads what the bootstrap sets
    assert storage.module == STORAGE_MODULE
    assert cat.storage() == storage
    hk = c.org("hkbank")
    identities.ensure_crypto(c, cat.layout)
    assert cat.package_id(hk, main) != cat.package_id(hk, storage)  # two handlers
    profile = ConnectionProfiles(c, cat.layout).profile(hk)
    assert (profile["chaincode"], profile["namespace_layout"]) == ("dtoken-hkbank", "namespaces")
    with pytest.raises(NetworkError, match="namespace layout only"):
        ChaincodeCatalog(config.load(DEFAULT), StateLayout(tmp_path / "x")).storage()


def test_the_layout_key_is_checked() -> None:
    import yaml
    from consortium.errors import ConfigError

    data = yaml.safe_load(DEFAULT.read_text())
    data["chaincode"]["layout"] = "sharded"
    with pytest.raises(ConfigError, match="layout"):
        config.parse(data)
