"""consortium.runtime, consortium.container_runtime and consortium.images without an engine:
which runtime a state folder runs on, what a node is told in a container (in-image programs,
host names instead of 127.0.0.1, published ports, ledger volumes), the chaincode servers'
certificates naming their container host names, and the images' content tags.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from consortium import config, identities, images
from consortium.binaries import TOOLS, FabricInstall
from consortium.container_runtime import ContainerRuntime
from consortium.errors import NetworkError
from consortium.network import Network
from consortium.nodes import chaincode_alias
from cryptography import x509

DEFAULT = Path(__file__).resolve().parents[3] / "config" / "consortium.yaml"


def _quiet(_msg: str) -> None:
    pass


def test_a_state_folder_keeps_the_runtime_it_was_made_with(tmp_path: Path) -> None:
    c = config.load(DEFAULT)
    made = Network(c, tmp_path / "state", progress=_quiet, runtime="containers")
    made.state_dir.mkdir()
    made._check_fingerprint()
    assert json.loads((made.state_dir / "network.json").read_text())["runtime"] == "containers"
    # down and status find it without being told.
    assert Network(c, made.state_dir, progress=_quiet).runtime.name == "containers"
    with pytest.raises(NetworkError, match=r"runs on the containers runtime, not native"):
        Network(c, made.state_dir, progress=_quiet, runtime="native")._check_fingerprint()
    with pytest.raises(NetworkError, match=r"unknown runtime 'vm': one of native, containers"):
        Network(c, tmp_path / "other", progress=_quiet, runtime="vm")
    # A folder made before runtimes were recorded is native.
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "network.json").write_text(json.dumps({"name": c.name}))
    assert Network(c, legacy, progress=_quiet).runtime.name == "native"


def test_in_a_container_a_node_runs_the_image_programs_and_knows_host_names(
    tmp_path: Path,
) -> None:
    c = config.load(DEFAULT)
    net = Network(c, tmp_path / "state", progress=_quiet, runtime="containers")
    assert isinstance(net.runtime, ContainerRuntime)
    p = c.banks[0].peers[0]
    peer = net.peer_handle(p)
    assert peer.spec.argv[0] == f"{images.FABRIC_BIN}/peer"
    assert peer.aliases == (p.name,)
    assert peer.ports == (p.port, p.chaincode_listen_port, p.operations_port)
    assert peer.ledger
    # The peer dials each chaincode slot by its container host name.
    builder = json.loads(peer.spec.env["CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"])
    assert builder["cc0"] == f"chaincode.{p.name}:{p.chaincode_server_port}"
    assert builder["cc2"] == f"chaincode2.{p.name}:{p.chaincode_server_port + 2}"
    server = net.chaincode_handle(p)
    assert server.spec.argv[:3] == [images.NODE_PYTHON, "-m", "fabshim"]
    assert server.spec.env["CHAINCODE_SERVER_ADDRESS"] == builder["cc0"]
    assert not server.ledger
    # Clients on this machine keep the consortium file's addresses (published ports).
    assert peer.endpoint == p.endpoint
    assert server.endpoint == f"{p.host}:{p.chaincode_server_port}"
    # Every node's configuration and the channel's use the host names.
    assert net.node_set.view.peers[0].host == p.name
    assert net.joins.view.ordering.orderers[0].host == c.ordering.orderers[0].name
    orderer = net.orderer_handle(c.ordering.orderers[0])
    assert orderer.spec.argv == [f"{images.FABRIC_BIN}/orderer"]
    # Names of the engine's objects: one network per state folder.
    other = Network(c, tmp_path / "state2", progress=_quiet, runtime="containers")
    assert isinstance(other.runtime, ContainerRuntime)
    assert net.runtime.network_name != other.runtime.network_name
    assert net.runtime.container_name(peer) == f"{net.runtime.network_name}.{p.name}"
    # Natively nothing changes: the program paths are the host's, hosts the config's.
    native = Network(c, tmp_path / "native", progress=_quiet)
    native_builder = json.loads(
        native.peer_handle(p).spec.env["CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"]
    )
    assert native_builder["cc0"] == f"{p.host}:{p.chaincode_server_port}"
    assert native.peer_handle(p).ledger_dir() == native.node_dir(p.name) / "data"


def test_a_chaincode_servers_certificate_names_every_slots_container_host(
    tmp_path: Path,
) -> None:
    c = config.load(DEFAULT)
    net = Network(c, tmp_path / "state", progress=_quiet)
    identities.ensure_crypto(c, net.layout)
    p = c.banks[0].peers[0]
    cert_file = net.layout.chaincode_server_dir(p.org, p.name) / "server.crt"
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = set(sans.get_values_for_type(x509.DNSName))
    assert {chaincode_alias(p, 0), chaincode_alias(p, 6), "localhost"} <= names
    assert chaincode_alias(p, 0) == f"chaincode.{p.name}"


def test_debootstrap_uses_apts_own_mirror_never_the_security_archive(tmp_path: Path) -> None:
    deb822 = tmp_path / "debian.sources"
    deb822.write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n"
    )
    assert images.apt_mirror([deb822]) == "http://mirror.invalid/debian"
    one_line = tmp_path / "sources.list"
    one_line.write_text("# comment\ndeb [arch=amd64] http://other.invalid/debian bookworm main\n")
    assert images.apt_mirror([tmp_path / "missing", one_line]) == "http://other.invalid/debian"
    with pytest.raises(images.ImageError, match="no Debian mirror"):
        images.apt_mirror([tmp_path / "missing"])


def test_the_node_image_tag_changes_with_what_goes_into_it(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for dist in images.CHAINCODE_DISTRIBUTIONS:
        (repo / dist / "pkg").mkdir(parents=True)
        (repo / dist / "pyproject.toml").write_text("[project]\n")
        (repo / dist / "pkg" / "__init__.py").write_text("")
    fabric = FabricInstall(tmp_path / "bin", tmp_path / "config")
    fabric.bin_dir.mkdir()
    fabric.config_dir.mkdir()
    for tool in TOOLS:
        fabric.tool(tool).write_bytes(tool.encode())
    for name in ("core.yaml", "orderer.yaml"):
        (fabric.config_dir / name).write_text(name)
    tag = images.node_image_tag(repo, "dtoken-base:1", fabric)
    assert tag.startswith("dtoken-node:")
    assert len(tag.split(":")[1]) == 16
    assert images.node_image_tag(repo, "dtoken-base:1", fabric) == tag  # stable
    # Caches and build output do not count; sources, binaries and the base do.
    (repo / "chaincode/shim/pkg/__pycache__").mkdir()
    (repo / "chaincode/shim/pkg/__pycache__/x.pyc").write_bytes(b"x")
    assert images.node_image_tag(repo, "dtoken-base:1", fabric) == tag
    assert images.node_image_tag(repo, "dtoken-base:2", fabric) != tag
    (repo / "chaincode/server/pkg/__init__.py").write_text("VERSION = 2\n")
    changed = images.node_image_tag(repo, "dtoken-base:1", fabric)
    assert changed != tag
    fabric.tool("peer").write_bytes(b"another build")
    assert images.node_image_tag(repo, "dtoken-base:1", fabric) != changed
