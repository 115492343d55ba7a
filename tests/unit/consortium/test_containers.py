"""Container deployments: the Compose file and Kubernetes manifests are generated and well-formed.

No container engine runs here, so what is checked is what can be checked without one:

* the files parse, every node has its service with the official image, every file a
  container is told about (MSP, TLS, secrets, genesis inputs) exists where its mount puts
  it, ports follow the port plan, TLS is on everywhere, each peer's ccaas builder config
  names its own chaincode server, whose TLS certificate names that host;
* Kubernetes documents are well-formed (kinds, DNS-1123 names, references), Secrets
  decode to the files, and the environment is the Compose one with Kubernetes host names;
* the bootstrap script runs, twice, against stand-ins for ``configtxgen``, ``osnadmin``
  and ``peer`` that check every path and flag it passes (the Compose mounts, and the
  Kubernetes Job's volumes laid out from the manifests);
* when the pinned Fabric binaries are in the cache: Fabric's own ``configtxgen`` accepts
  the generated genesis inputs, and an orderer and a peer started with exactly the
  generated environment answer over TLS, join the channel and install the package
  through the ccaas builder named in that environment.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from consortium import channel, config, containers, crypto, processes
from consortium.binaries import find_binaries
from consortium.chaincodes import REGISTRY_PIN_ENV, registry_argument, registry_pin
from consortium.config import Consortium
from consortium.containers import Target
from consortium.errors import NetworkError
from consortium.network import BUILDER_DIR, Network
from cryptography import x509

REPO_ROOT = Path(__file__).resolve().parents[3]  # the build context: pytest runs from it
DEFAULT = REPO_ROOT / "config" / "consortium.yaml"
ROOT = containers.ROOT
BOOTSTRAP_FUNCTIONS = resources.files("consortium.deploy").joinpath("bootstrap.sh")

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
KINDS = {
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Service"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("batch/v1", "Job"),
}
COMPOSE_SERVICE_KEYS = {
    "image", "build", "hostname", "command", "environment", "ports", "volumes",
    "healthcheck", "restart", "depends_on",
}  # fmt: skip


def variant_data(base_port: int = 7300) -> dict[str, Any]:
    """Two peers per bank, no regulator, one orderer."""
    data = dict(yaml.safe_load(DEFAULT.read_text()))
    data["base_port"] = base_port
    data["ordering"] = {**data["ordering"], "orderers": 1}
    data["banks"] = [{**b, "peers": 2} for b in data["banks"]]
    data["regulator"] = {**data["regulator"], "enabled": False}
    return data


def load_variant(tmp: Path, base_port: int = 7300) -> Consortium:
    path = tmp / "variant.yaml"
    path.write_text(yaml.safe_dump(variant_data(base_port), sort_keys=False))
    return config.load(path)


@dataclass(frozen=True)
class Generated:
    c: Consortium
    folder: Path
    compose: dict[str, Any]
    k8s: list[dict[str, Any]]

    @property
    def services(self) -> dict[str, Any]:
        return dict(self.compose["services"])

    def docs(self, kind: str) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["name"]: d for d in self.k8s if d["kind"] == kind}

    def net(self) -> Network:
        return Network(self.c, self.folder, progress=lambda _m: None)


@pytest.fixture(scope="module", params=["default", "variant"])
def gen(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    tmp = tmp_path_factory.mktemp(request.param)
    c = config.load(DEFAULT) if request.param == "default" else load_variant(tmp)
    folder = tmp / "deploy"
    compose_path = containers.write_compose(c, folder)
    k8s_path = containers.write_kubernetes(c, folder)  # the same folder: shared crypto
    assert compose_path == folder / "compose.yaml"
    assert k8s_path == folder / "kubernetes.yaml"
    return Generated(
        c=c,
        folder=folder,
        compose=yaml.safe_load(compose_path.read_text()),
        k8s=list(yaml.safe_load_all(k8s_path.read_text())),
    )


# --------------------------------------------------------------------------- helpers


def host_path(folder: Path, service: dict[str, Any], container_path: str) -> Path:
    """Where a path inside a Compose container comes from on the host (via its binds)."""
    best: tuple[int, Path] | None = None
    for v in service.get("volumes", []):
        if v["type"] != "bind":
            continue
        target = v["target"]
        if container_path == target or container_path.startswith(target + "/"):
            rest = container_path[len(target) :].lstrip("/")
            candidate = (folder / v["source"]).resolve() / rest if rest else folder / v["source"]
            if best is None or len(target) > best[0]:
                best = (len(target), candidate)
    assert best is not None, f"{container_path} is not under any mount of the service"
    return best[1]


def env_paths(env: dict[str, str]) -> dict[str, str]:
    """Environment entries naming our files inside the container (``[a]`` lists too)."""
    out = {}
    for name, value in env.items():
        path = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        if path.startswith(ROOT + "/"):
            out[name] = path
    return out


def sans(cert_path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in ext}


def cn(cert_path: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return str(cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value)


def k8s_containers(gen: Generated) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Workload name -> (pod spec, its container) for StatefulSets, Deployments and the Job."""
    out = {}
    for kind in ("StatefulSet", "Deployment", "Job"):
        for name, doc in gen.docs(kind).items():
            spec = doc["spec"]["template"]["spec"]
            (container,) = spec["containers"]
            out[name] = (spec, container)
    return out


def materialize(
    gen: Generated, pod_spec: dict[str, Any], container: dict[str, Any], root: Path
) -> None:
    """Lay out under ``root`` the files the container would see, from Secrets and ConfigMaps."""
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    secrets, maps = gen.docs("Secret"), gen.docs("ConfigMap")
    for mount in container["volumeMounts"]:
        target = root / mount["mountPath"].lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        volume = volumes.get(mount["name"], {})  # absent: a claim template (the ledger)
        if "secret" in volume:
            ref = volume["secret"]
            data = secrets[ref["secretName"]]["data"]
            for item in ref["items"]:
                path = target / item["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(base64.b64decode(data[item["key"]]))
        elif "configMap" in volume:
            for key, text in maps[volume["configMap"]["name"]]["data"].items():
                (target / key).write_text(text)


def node_names(c: Consortium, target: Target) -> dict[str, str]:
    """Host name on the target -> kind, for every node and chaincode server."""
    out = {containers.node_host(c, o.name, target): "orderer" for o in c.ordering.orderers}
    out |= {containers.node_host(c, p.name, target): "peer" for p in c.peers}
    out |= {containers.chaincode_host(c, p, target): "chaincode" for p in c.peers}
    return out


# --------------------------------------------------------------------------- compose


def test_compose_file_parses_and_is_the_pure_functions_document(gen: Generated) -> None:
    assert gen.compose == containers.compose(gen.c, gen.folder / "crypto")
    assert set(gen.compose) <= {"name", "services", "volumes"}
    assert gen.compose["name"] == gen.c.name
    for name, service in gen.services.items():
        assert set(service) <= COMPOSE_SERVICE_KEYS, name
        assert all(isinstance(v, str) for v in service.get("environment", {}).values()), name
        assert service["restart"] in {"no", "unless-stopped"}
        for v in service["volumes"]:
            if v["type"] == "volume":
                assert v["source"] in gen.compose["volumes"]
        for dep in service.get("depends_on", {}):
            assert dep in gen.services
            assert "healthcheck" in gen.services[dep]


def test_every_node_has_a_service_with_the_right_image(gen: Generated) -> None:
    c = gen.c
    expected = node_names(c, Target.COMPOSE)
    assert set(gen.services) == {*expected, "bootstrap"}
    images = {
        "orderer": "hyperledger/fabric-orderer:3.1.1",
        "peer": "hyperledger/fabric-peer:3.1.1",
        "chaincode": containers.default_chaincode_image(c),
    }
    for name, kind in expected.items():
        service = gen.services[name]
        assert service["image"] == images[kind]
        assert service["hostname"] == name
    # Services are named after the nodes: the names every TLS certificate carries.
    assert {o.name for o in c.ordering.orderers} <= set(gen.services)
    assert {p.name for p in c.peers} <= set(gen.services)
    assert gen.services["bootstrap"]["image"] == "hyperledger/fabric-tools:3.1.1"
    # Ledgers: one named volume per orderer and peer; chaincode servers keep none.
    ledgers = {n for n, k in expected.items() if k != "chaincode"}
    assert set(gen.compose["volumes"]) == {*ledgers, "bootstrap"}
    for name in ledgers:
        (ledger,) = [v for v in gen.services[name]["volumes"] if v["type"] == "volume"]
        assert ledger == {"type": "volume", "source": name, "target": containers.LEDGER_DIR}


def test_chaincode_image_is_built_from_this_repository(gen: Generated) -> None:
    dockerfile = gen.folder / "image" / "Dockerfile"
    text = dockerfile.read_text()
    assert text.splitlines()[4] == "FROM python:3.11-slim"
    # only the chaincode server's distributions: fabshim, dtoken-wire, dtoken-chaincode
    assert "RUN pip install ./src/chaincode/shim ./src/wire ./src/chaincode/server" in text
    cmd = json.loads(text.split("CMD ", 1)[1])
    assert cmd == ["python", "-m", "fabshim", "serve", gen.c.chaincode.module]
    ignore = (gen.folder / "image" / "Dockerfile.dockerignore").read_text().splitlines()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for src in line.split()[1:-1]:
                assert (REPO_ROOT / src).exists()
                assert f"!{src}" in ignore
    for p in gen.c.peers:
        service = gen.services[containers.chaincode_host(gen.c, p, Target.COMPOSE)]
        context = (gen.folder / service["build"]["context"]).resolve()
        assert context == REPO_ROOT
        assert (context / service["build"]["dockerfile"]).resolve() == dockerfile.resolve()
        assert service["command"] == cmd


def test_every_mounted_file_exists_and_every_file_the_env_names_is_mounted(gen: Generated) -> None:
    for name, service in gen.services.items():
        for v in service["volumes"]:
            if v["type"] == "bind":
                assert v["read_only"] is True
                assert v["source"].startswith("./")
                assert (gen.folder / v["source"]).exists(), f"{name}: {v['source']}"
        for var, path in env_paths(service.get("environment", {})).items():
            assert host_path(gen.folder, service, path).exists(), f"{name}: {var}={path}"


def test_nodes_mount_their_own_msp_and_tls(gen: Generated) -> None:
    c = gen.c
    nodes = [(o.name, c.orderer_org.name) for o in c.ordering.orderers]
    nodes += [(p.name, p.org) for p in c.peers]
    for node, org in nodes:
        service = gen.services[node]
        env = service["environment"]
        ident = crypto.load_org(gen.folder / "crypto", org).node(node)
        if "CORE_PEER_MSPCONFIGPATH" in env:
            msp, cert = env["CORE_PEER_MSPCONFIGPATH"], env["CORE_PEER_TLS_CERT_FILE"]
            key = env["CORE_PEER_TLS_KEY_FILE"]
        else:
            msp, cert = env["ORDERER_GENERAL_LOCALMSPDIR"], env["ORDERER_GENERAL_TLS_CERTIFICATE"]
            key = env["ORDERER_GENERAL_TLS_PRIVATEKEY"]
        assert host_path(gen.folder, service, msp).resolve() == ident.msp_dir.resolve()
        assert host_path(gen.folder, service, cert).resolve() == ident.tls_cert.resolve()
        assert host_path(gen.folder, service, key).resolve() == ident.tls_key.resolve()
        assert cn(ident.cert) == node
        # Its host name on both targets is in its TLS certificate.
        assert {node, containers.node_host(c, node, Target.KUBERNETES)} <= sans(ident.tls_cert)


def test_ports_follow_the_port_plan_and_do_not_collide(gen: Generated) -> None:
    c = gen.c
    plan: dict[str, list[int]] = {}
    for o in c.ordering.orderers:
        plan[o.name] = [o.port, o.admin_port, o.operations_port]
        env = gen.services[o.name]["environment"]
        assert env["ORDERER_GENERAL_LISTENPORT"] == str(o.port)
        assert env["ORDERER_ADMIN_LISTENADDRESS"] == f"0.0.0.0:{o.admin_port}"
        assert env["ORDERER_OPERATIONS_LISTENADDRESS"] == f"0.0.0.0:{o.operations_port}"
    for p in c.peers:
        plan[p.name] = [p.port, p.chaincode_listen_port, p.operations_port]
        plan[containers.chaincode_host(c, p, Target.COMPOSE)] = [p.chaincode_server_port]
        env = gen.services[p.name]["environment"]
        assert env["CORE_PEER_LISTENADDRESS"] == f"0.0.0.0:{p.port}"
        assert env["CORE_PEER_ADDRESS"] == f"{p.name}:{p.port}"
        assert env["CORE_OPERATIONS_LISTENADDRESS"] == f"0.0.0.0:{p.operations_port}"
    published: list[int] = []
    for name, ports in plan.items():
        entries = gen.services[name]["ports"]
        assert [e["target"] for e in entries] == ports
        assert [int(e["published"]) for e in entries] == ports  # same number on the host
        assert {e["host_ip"] for e in entries} == {"127.0.0.1"}  # the config keeps it local
        published += ports
    assert len(published) == len(set(published))
    assert min(published) == c.base_port
    assert max(published) < c.base_port + 10 * (len(c.ordering.orderers) + len(c.peers))
    assert "ports" not in gen.services["bootstrap"]


def test_each_peer_dials_its_own_chaincode_server(gen: Generated) -> None:
    c, net = gen.c, gen.net()
    for p in c.peers:
        org = c.org(p.org)
        env = gen.services[p.name]["environment"]
        builder = json.loads(env["CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"])
        assert set(builder) == {"cc0"}
        host, port = builder["cc0"].rsplit(":", 1)
        assert host == f"chaincode.{p.name}"
        assert int(port) == p.chaincode_server_port
        server = gen.services[host]
        cc_env = server["environment"]
        assert cc_env["CHAINCODE_SERVER_ADDRESS"] == f"0.0.0.0:{port}"
        assert cc_env["DTOKEN_BANK_MSP"] == org.msp_id
        assert cc_env[REGISTRY_PIN_ENV] == registry_pin(c)  # what init_network must carry
        assert cc_env["CHAINCODE_ID"] == net.package_id(org)
        # The peer checks the server's certificate against the host it dials.
        cert = host_path(gen.folder, server, cc_env["CHAINCODE_TLS_CERT"])
        assert host in sans(cert)
        assert containers.chaincode_host(c, p, Target.KUBERNETES) in sans(cert)
        client_ca = host_path(gen.folder, server, cc_env["CHAINCODE_CLIENT_CA_CERT"])
        assert client_ca.read_bytes() == net.tlsca(org.name).read_bytes()
        secret = host_path(gen.folder, server, cc_env["DTOKEN_SECRET_FILE"])
        assert secret.resolve() == net.secret_file(org).resolve()
        assert len(secret.read_bytes()) == 32
        # The package the peer installs says {{.cc0}} and trusts this server's CA.
        with tarfile.open(net.package_path(org, net.deployments()[0])) as outer:
            code = outer.extractfile("code.tar.gz")
            assert code is not None
            with tarfile.open(fileobj=code) as inner:
                conn_file = inner.extractfile("connection.json")
                assert conn_file is not None
                connection = json.loads(conn_file.read())
        assert connection["address"] == "{{.cc0}}"
        assert connection["tls_required"] is True
        assert connection["client_auth_required"] is True
        x509.load_pem_x509_certificate(connection["root_cert"].encode()).verify_directly_issued_by(
            x509.load_pem_x509_certificate(client_ca.read_bytes())
        )


def test_tls_is_on_everywhere_and_the_peer_uses_no_docker_daemon(gen: Generated) -> None:
    for name, service in gen.services.items():
        env = service.get("environment", {})
        flags = {k: v for k, v in env.items() if k.endswith("TLS_ENABLED")}
        if name.startswith("orderer"):
            assert flags == dict.fromkeys(
                [
                    "ORDERER_GENERAL_TLS_ENABLED",
                    "ORDERER_OPERATIONS_TLS_ENABLED",
                    "ORDERER_ADMIN_TLS_ENABLED",
                ],
                "true",
            )
            assert env["ORDERER_ADMIN_TLS_CLIENTAUTHREQUIRED"] == "true"
        elif name.startswith("peer"):
            assert flags == {"CORE_PEER_TLS_ENABLED": "true", "CORE_OPERATIONS_TLS_ENABLED": "true"}
            assert env["CORE_VM_ENDPOINT"] == ""
            assert env["CORE_LEDGER_STATE_STATEDATABASE"] == "goleveldb"
            assert f"path: {containers.CCAAS_BUILDER}," in env["CORE_CHAINCODE_EXTERNALBUILDERS"]
            assert (
                "propagateEnvironment: [CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG]"
                in env["CORE_CHAINCODE_EXTERNALBUILDERS"]
            )
        elif name.startswith("chaincode"):
            assert "CHAINCODE_TLS_DISABLED" not in env
            assert {"CHAINCODE_TLS_CERT", "CHAINCODE_TLS_KEY", "CHAINCODE_CLIENT_CA_CERT"} <= set(
                env
            )
        else:
            assert name == "bootstrap"


def test_channel_inputs_name_the_container_hosts(gen: Generated) -> None:
    c = gen.c
    doc = yaml.safe_load((gen.folder / "channel" / "configtx.yaml").read_text())
    view = containers.container_view(c, Target.COMPOSE)
    assert doc == yaml.safe_load(
        yaml.safe_dump(channel.configtx(view, Path(containers.CRYPTO_DIR)))
    )
    profile = doc["Profiles"][channel.PROFILE]
    consenters = profile["Orderer"]["EtcdRaft"]["Consenters"]
    assert [(x["Host"], x["Port"]) for x in consenters] == [
        (o.name, o.port) for o in c.ordering.orderers
    ]
    anchors = {o["Name"]: o["AnchorPeers"] for o in profile["Application"]["Organizations"]}
    for org in c.application_orgs:
        assert anchors[org.msp_id] == [{"Host": p.name, "Port": p.port} for p in org.peers]
    # Its crypto paths are the bootstrap container's, and exist through its mount.
    bootstrap = gen.services["bootstrap"]
    paths = [x["ClientTLSCert"] for x in consenters]
    paths += [o["MSPDir"] for o in profile["Application"]["Organizations"]]
    paths += [o["MSPDir"] for o in profile["Orderer"]["Organizations"]]
    for path in paths:
        assert path.startswith(containers.CRYPTO_DIR + "/")
        assert host_path(gen.folder, bootstrap, path).exists()
    collections = gen.folder / "channel" / f"collections-{c.chaincode.name}.json"
    assert json.loads(collections.read_text()) == channel.collections_config(c)
    roots = (gen.folder / "channel" / "tls-roots.pem").read_text()
    assert roots.count("BEGIN CERTIFICATE") == len(c.orgs)


def test_generating_again_changes_no_key_certificate_or_package(gen: Generated) -> None:
    def snapshot() -> dict[str, bytes]:
        return {
            str(p.relative_to(gen.folder)): p.read_bytes()
            for sub in ("crypto", "secrets", "chaincode")
            for p in sorted((gen.folder / sub).rglob("*"))
            if p.is_file()
        }

    before = snapshot()
    containers.write_kubernetes(gen.c, gen.folder)
    containers.write_compose(gen.c, gen.folder)
    assert snapshot() == before
    assert oct((gen.folder / "kubernetes.yaml").stat().st_mode & 0o777) == "0o600"


def test_an_unprepared_folder_is_refused(tmp_path: Path) -> None:
    c = config.load(DEFAULT)
    with pytest.raises(NetworkError, match="prepare"):
        containers.compose(c, tmp_path / "crypto")
    with pytest.raises(NetworkError, match="'crypto' folder"):
        containers.kubernetes(c, tmp_path / "keys")
    with pytest.raises(NetworkError, match="not a checkout"):
        containers.write_compose(c, tmp_path / "out", source_dir=tmp_path)


# --------------------------------------------------------------------------- kubernetes


def test_kubernetes_documents_are_well_formed(gen: Generated) -> None:
    ns = gen.c.name
    assert gen.k8s[0] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns, "labels": {"app.kubernetes.io/part-of": ns}},
    }
    seen = set()
    for doc in gen.k8s:
        assert (doc["apiVersion"], doc["kind"]) in KINDS
        name = doc["metadata"]["name"]
        assert (doc["kind"], name) not in seen
        seen.add((doc["kind"], name))
        assert len(name) <= 253, name
        assert DNS1123_SUBDOMAIN.match(name), name
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == ns
        if doc["kind"] in {"Service", "Namespace"}:
            assert len(name) <= 63, name
            assert DNS1035_LABEL.match(name), name
        for key, value in doc["metadata"].get("labels", {}).items():
            assert len(value) <= 63
            assert re.match(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", value)
            assert "/" in key
        if doc["kind"] in {"Secret", "ConfigMap"}:
            assert all(CONFIG_KEY.match(k) for k in doc["data"])
    services = gen.docs("Service")
    secrets, maps = gen.docs("Secret"), gen.docs("ConfigMap")
    claims = gen.docs("PersistentVolumeClaim")
    for name, (spec, container) in k8s_containers(gen).items():
        assert DNS1123_LABEL.match(container["name"])
        assert all(ENV_NAME.match(e["name"]) for e in container.get("env", []))
        assert all(isinstance(e["value"], str) for e in container.get("env", []))
        volumes = {v["name"] for v in spec["volumes"]}
        claim_templates = set()
        if name in gen.docs("StatefulSet"):
            sts = gen.docs("StatefulSet")[name]["spec"]
            assert sts["serviceName"] in services
            claim_templates = {t["metadata"]["name"] for t in sts["volumeClaimTemplates"]}
        for mount in container["volumeMounts"]:
            assert mount["name"] in volumes | claim_templates
            assert mount["mountPath"].startswith("/")
        for v in spec["volumes"]:
            assert DNS1123_LABEL.match(v["name"])
            if "secret" in v:
                secret = secrets[v["secret"]["secretName"]]
                assert {i["key"] for i in v["secret"]["items"]} == set(secret["data"])
            if "configMap" in v:
                assert v["configMap"]["name"] in maps
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims
        for port in container.get("ports", []):
            assert len(port["name"]) <= 15
            assert PORT_NAME.match(port["name"])
        if name in services:
            selector = services[name]["spec"]["selector"]
            for kind in ("StatefulSet", "Deployment"):
                if name in gen.docs(kind):
                    workload = gen.docs(kind)[name]["spec"]
                    assert workload["selector"]["matchLabels"] == selector
                    labels = workload["template"]["metadata"]["labels"]
                    assert selector.items() <= labels.items()
            assert [(p["name"], p["port"]) for p in services[name]["spec"]["ports"]] == [
                (p["name"], p["containerPort"]) for p in container["ports"]
            ]


def test_kubernetes_has_a_service_and_workload_per_node_with_the_right_image(
    gen: Generated,
) -> None:
    c = gen.c
    expected = node_names(c, Target.KUBERNETES)
    assert set(gen.docs("Service")) == set(expected)
    images = {
        "orderer": "hyperledger/fabric-orderer:3.1.1",
        "peer": "hyperledger/fabric-peer:3.1.1",
        "chaincode": containers.default_chaincode_image(c),
    }
    workloads = k8s_containers(gen)
    for name, kind in expected.items():
        assert DNS1035_LABEL.match(name)
        assert len(name) <= 63
        owner = gen.docs("Deployment" if kind == "chaincode" else "StatefulSet")[name]
        assert owner["metadata"]["labels"]["app.kubernetes.io/component"] == kind
        assert workloads[name][1]["image"] == images[kind]
    assert workloads["bootstrap"][1]["image"] == "hyperledger/fabric-tools:3.1.1"
    assert gen.docs("Job")["bootstrap"]["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"
    for name in gen.docs("StatefulSet"):
        (template,) = gen.docs("StatefulSet")[name]["spec"]["volumeClaimTemplates"]
        assert template["spec"]["resources"]["requests"]["storage"] == "2Gi"


def test_kubernetes_environment_is_the_compose_one_with_kubernetes_host_names(
    gen: Generated,
) -> None:
    c = gen.c
    rename = {
        containers.node_host(c, n, Target.COMPOSE): containers.node_host(c, n, Target.KUBERNETES)
        for n in [o.name for o in c.ordering.orderers] + [p.name for p in c.peers]
    }
    rename |= {
        containers.chaincode_host(c, p, Target.COMPOSE): containers.chaincode_host(
            c, p, Target.KUBERNETES
        )
        for p in c.peers
    }
    workloads = k8s_containers(gen)
    for compose_name, k8s_name in rename.items():
        compose_env = gen.services[compose_name]["environment"]
        k8s_env = {e["name"]: e["value"] for e in workloads[k8s_name][1]["env"]}
        expected = {}
        for key, value in compose_env.items():
            if key != "CORE_PEER_ID":  # the peer keeps its name (its certificate's CN)
                for old, new in rename.items():
                    value = re.sub(rf"(?<![\w.-]){re.escape(old)}(?=:\d)", new, value)
            expected[key] = value
        assert k8s_env == expected, k8s_name
        assert workloads[k8s_name][1].get("command") == gen.services[compose_name].get("command")


def test_kubernetes_secrets_decode_to_the_files(gen: Generated) -> None:
    secrets = gen.docs("Secret")
    assert secrets
    for name, secret in secrets.items():
        source = gen.folder / secret["metadata"]["annotations"]["dtoken/source"]
        items = {
            i["key"]: i["path"]
            for _spec, container in k8s_containers(gen).values()
            for v in _spec["volumes"]
            if v.get("secret", {}).get("secretName") == name
            for i in v["secret"]["items"]
        }
        assert set(items) == set(secret["data"]), name
        for key, path in items.items():
            expected = source.read_bytes() if source.is_file() else (source / path).read_bytes()
            assert base64.b64decode(secret["data"][key]) == expected, f"{name}: {path}"
        if source.is_dir() and name.endswith(("-msp", "-tls")):  # every file of the folder
            files = {p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file()}
            assert set(items.values()) == files


def test_kubernetes_pods_see_every_file_their_environment_names(
    gen: Generated, tmp_path: Path
) -> None:
    for name, (spec, container) in k8s_containers(gen).items():
        root = tmp_path / name
        materialize(gen, spec, container, root)
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        for var, path in env_paths(env).items():
            assert (root / path.lstrip("/")).exists(), f"{name}: {var}={path}"
        if "CORE_PEER_MSPCONFIGPATH" in env:
            msp = root / env["CORE_PEER_MSPCONFIGPATH"].lstrip("/")
            assert cn(msp / "signcerts" / "cert.pem") == env["CORE_PEER_ID"]
            host = env["CORE_PEER_ADDRESS"].rsplit(":", 1)[0]
            assert host in sans(root / env["CORE_PEER_TLS_CERT_FILE"].lstrip("/"))
        if "CHAINCODE_TLS_CERT" in env:
            assert name in sans(root / env["CHAINCODE_TLS_CERT"].lstrip("/"))
    configtx = yaml.safe_load(gen.docs("ConfigMap")["channel"]["data"]["configtx.yaml"])
    consenters = configtx["Profiles"][channel.PROFILE]["Orderer"]["EtcdRaft"]["Consenters"]
    assert [x["Host"] for x in consenters] == [
        containers.node_host(gen.c, o.name, Target.KUBERNETES) for o in gen.c.ordering.orderers
    ]


# --------------------------------------------------------------------------- bootstrap


FAKE_FABRIC = textwrap.dedent(
    r'''
    """Stand-ins for configtxgen, osnadmin and peer: check every path and flag, keep state."""
    import json, os, re, sys
    from pathlib import Path

    STATE = Path(os.environ["FAKE_STATE"])
    state = json.loads(STATE.read_text()) if STATE.exists() else {
        "orderers": {}, "peers": {}, "installed": {}, "approved": {}, "committed": False,
        "initialized": False, "calls": []}
    tool, args = Path(sys.argv[0]).name, sys.argv[1:]

    def die(msg):
        print(f"Error: {msg}"); sys.exit(1)

    def opt(name):
        return args[args.index(name) + 1] if name in args else None

    def opts(name):
        return [args[i + 1] for i, a in enumerate(args) if a == name]

    def must_exist(path, what):
        if not path or not Path(path).exists():
            die(f"{what}: {path} does not exist")

    def done(out="", code=0):
        STATE.write_text(json.dumps(state))
        print(out)
        sys.exit(code)

    def record(kind, **kw):
        state["calls"].append({"tool": tool, "kind": kind, **kw})

    if tool == "configtxgen":
        config_path = Path(opt("-configPath"))
        text = (config_path / "configtx.yaml").read_text()
        for path in re.findall(r"/etc/hyperledger/dtoken/crypto/\S+", text):
            local = path.replace("/etc/hyperledger/dtoken/crypto", os.environ["DTOKEN_CRYPTO"])
            must_exist(local, "configtx")
        assert opt("-profile") == "ConsortiumChannel" and opt("-channelID")
        Path(opt("-outputBlock")).write_bytes(b"genesis")
        record("genesis")
        done()

    if tool == "osnadmin":
        for flag in ("--ca-file", "--client-cert", "--client-key"):
            must_exist(opt(flag), flag)
        address = opt("-o")
        channels = state["orderers"].setdefault(address, [])
        if args[:2] == ["channel", "list"]:
            body = {"systemChannel": None, "channels": [{"name": c, "url": "/x"} for c in channels]}
            done("Status: 200\n" + json.dumps(body, indent="\t"))
        if args[:2] == ["channel", "join"]:
            must_exist(opt("--config-block"), "--config-block")
            channels.append(opt("--channelID"))
            record("orderer-join", address=address)
            done("Status: 201\n{}")
        die(f"unexpected {args}")

    # peer
    env = os.environ
    msp = Path(env["CORE_PEER_MSPCONFIGPATH"])
    must_exist(msp / "signcerts" / "cert.pem", "admin cert")
    must_exist(msp / "keystore" / "priv_sk", "admin key")
    must_exist(env["CORE_PEER_TLS_ROOTCERT_FILE"], "CORE_PEER_TLS_ROOTCERT_FILE")
    assert env["CORE_PEER_TLS_ENABLED"] == "true"
    address, msp_id = env["CORE_PEER_ADDRESS"], env["CORE_PEER_LOCALMSPID"]
    peer = state["peers"].setdefault(address, {"msp": msp_id, "channels": []})
    assert peer["msp"] == msp_id, "a peer is administered by its own organization"

    def check_orderer():
        assert "--tls" in args and opt("-o")
        must_exist(opt("--cafile"), "--cafile")

    def check_definition():
        assert opt("--sequence") == "1" and opt("--version") and opt("--signature-policy")
        must_exist(opt("--collections-config"), "--collections-config")
        json.loads(Path(opt("--collections-config")).read_text())

    if args[:2] == ["channel", "list"]:
        done("Channels peers has joined: \n" + "\n".join(peer["channels"]))
    if args[:2] == ["channel", "join"]:
        must_exist(opt("-b"), "-b")
        peer["channels"].append(os.environ["FAKE_CHANNEL"])  # the block's channel
        record("peer-join", address=address)
        done()
    if args[:3] == ["lifecycle", "chaincode", "queryinstalled"]:
        ids = state["installed"].get(address, [])
        done(json.dumps({"installed_chaincodes": [{"package_id": i} for i in ids]}, indent="\t"))
    if args[:3] == ["lifecycle", "chaincode", "install"]:
        package = Path(args[3])
        must_exist(package, "package")
        import hashlib, tarfile

        with tarfile.open(package) as tar:
            label = json.loads(tar.extractfile("metadata.json").read())["label"]
        package_id = f"{label}:{hashlib.sha256(package.read_bytes()).hexdigest()}"
        state["installed"].setdefault(address, []).append(package_id)
        record("install", address=address, package_id=package_id)
        done()
    if args[:3] == ["lifecycle", "chaincode", "querycommitted"]:
        if state["committed"]:
            done(json.dumps({"sequence": 1, "version": "1.0"}, indent="\t"))
        done("Error: namespace is not defined", 1)
    if args[:3] == ["lifecycle", "chaincode", "checkcommitreadiness"]:
        check_definition()
        done(json.dumps({"approvals": state["approved"]}, indent="\t"))
    if args[:3] == ["lifecycle", "chaincode", "approveformyorg"]:
        check_orderer(); check_definition()
        if opt("--package-id") not in state["installed"].get(address, []):
            die(f"package {opt('--package-id')} is not installed on {address}")
        state["approved"][msp_id] = True
        record("approve", msp=msp_id, package_id=opt("--package-id"))
        done()
    if args[:3] == ["lifecycle", "chaincode", "commit"]:
        check_orderer(); check_definition()
        for ca in opts("--tlsRootCertFiles"):
            must_exist(ca, "--tlsRootCertFiles")
        record("commit", peers=opts("--peerAddresses"), approvals=dict(state["approved"]))
        state["committed"] = True
        done()
    if args[:2] == ["chaincode", "invoke"]:
        check_orderer()
        for ca in opts("--tlsRootCertFiles"):
            must_exist(ca, "--tlsRootCertFiles")
        if state["initialized"]:
            done("Error: endorsement failure: ALREADY_INITIALIZED: done before", 1)
        state["initialized"] = True
        record("invoke", ctor=json.loads(opt("-c")), peers=opts("--peerAddresses"))
        done()
    die(f"unexpected {args}")
    '''
)


def run_bootstrap(
    gen: Generated, script: Path, fake_bin: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script)],
        env={
            "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
            "FAKE_CHANNEL": gen.c.channel,
            "DTOKEN_ATTEMPTS": "2",
            "DTOKEN_DELAY": "0",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "fake_fabric.py"
    program.write_text(f"#!{sys.executable} -IS\n" + FAKE_FABRIC)  # -IS: starts faster
    for tool in ("configtxgen", "osnadmin", "peer"):
        (bin_dir / tool).symlink_to(program)
    program.chmod(0o755)
    return bin_dir


def check_bootstrap_calls(gen: Generated, target: Target, calls: list[dict[str, Any]]) -> None:
    c, net = gen.c, gen.net()
    view = containers.container_view(c, target)
    kinds = [x["kind"] for x in calls]
    assert kinds[0] == "genesis"
    assert {x["address"] for x in calls if x["kind"] == "orderer-join"} == {
        o.admin_endpoint for o in view.ordering.orderers
    }
    assert sorted(x["address"] for x in calls if x["kind"] == "peer-join") == sorted(
        p.endpoint for p in view.peers
    )
    installs = {x["address"]: x["package_id"] for x in calls if x["kind"] == "install"}
    assert installs == {p.endpoint: net.package_id(c.org(p.org)) for p in view.peers}
    approvals = {x["msp"]: x["package_id"] for x in calls if x["kind"] == "approve"}
    assert approvals == {org.msp_id: net.package_id(org) for org in c.application_orgs}
    (commit,) = [x for x in calls if x["kind"] == "commit"]
    assert commit["peers"] == [org.peers[0].endpoint for org in view.application_orgs]
    assert set(commit["approvals"]) == {org.msp_id for org in c.application_orgs}
    (invoke,) = [x for x in calls if x["kind"] == "invoke"]
    assert invoke["ctor"]["Args"][0] == "init_network"
    assert json.loads(invoke["ctor"]["Args"][1]) == net.registry()
    # byte for byte the argument whose hash every chaincode server pinned
    assert invoke["ctor"]["Args"][1] == registry_argument(c)
    assert hashlib.sha256(invoke["ctor"]["Args"][1].encode()).hexdigest() == registry_pin(c)
    assert invoke["peers"] == [b.peers[0].endpoint for b in view.banks]
    assert kinds.index("commit") > max(i for i, k in enumerate(kinds) if k == "approve")
    assert kinds[-1] == "invoke"


def test_compose_bootstrap_script_runs_and_is_idempotent(
    gen: Generated, fake_bin: Path, tmp_path: Path
) -> None:
    service = gen.services["bootstrap"]
    assert service["command"] == ["bash", f"{containers.BOOTSTRAP_DIR}/bootstrap.sh"]
    script = host_path(gen.folder, service, service["command"][1])
    assert script.read_text() == containers.bootstrap_script(
        gen.c, gen.folder / "crypto", Target.COMPOSE
    )
    work = tmp_path / "work"
    env = {
        "FAKE_STATE": str(tmp_path / "state.json"),
        "DTOKEN_CRYPTO": str(host_path(gen.folder, service, containers.CRYPTO_DIR)),
        "DTOKEN_CHANNEL_DIR": str(host_path(gen.folder, service, containers.CHANNEL_DIR)),
        "DTOKEN_PACKAGES": str(host_path(gen.folder, service, containers.PACKAGES_DIR)),
        "DTOKEN_WORK": str(work),
    }
    first = run_bootstrap(gen, script, fake_bin, env)
    assert first.returncode == 0, first.stdout + first.stderr
    state = json.loads((tmp_path / "state.json").read_text())
    check_bootstrap_calls(gen, Target.COMPOSE, state["calls"])
    # Again: every step finds its work done.
    again = run_bootstrap(gen, script, fake_bin, env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads((tmp_path / "state.json").read_text())["calls"] == state["calls"]
    # Without the init marker, the chaincode's ALREADY_INITIALIZED counts as done.
    (work / "initialized").unlink()
    third = run_bootstrap(gen, script, fake_bin, env)
    assert third.returncode == 0, third.stdout + third.stderr
    assert (work / "initialized").exists()


def test_kubernetes_bootstrap_job_runs_from_its_secrets_and_config_maps(
    gen: Generated, fake_bin: Path, tmp_path: Path
) -> None:
    spec, container = k8s_containers(gen)["bootstrap"]
    root = tmp_path / "pod"
    materialize(gen, spec, container, root)

    def inside(path: str) -> Path:
        return root / path.lstrip("/")

    script = inside(container["command"][1])
    env = {
        "FAKE_STATE": str(tmp_path / "state.json"),
        "DTOKEN_CRYPTO": str(inside(containers.CRYPTO_DIR)),
        "DTOKEN_CHANNEL_DIR": str(inside(containers.CHANNEL_DIR)),
        "DTOKEN_PACKAGES": str(inside(containers.PACKAGES_DIR)),
        "DTOKEN_WORK": str(inside(containers.WORK_DIR)),
    }
    result = run_bootstrap(gen, script, fake_bin, env)
    assert result.returncode == 0, result.stdout + result.stderr
    check_bootstrap_calls(
        gen, Target.KUBERNETES, json.loads((tmp_path / "state.json").read_text())["calls"]
    )


def test_bootstrap_script_fails_loudly_when_a_node_never_answers(
    gen: Generated, fake_bin: Path, tmp_path: Path
) -> None:
    service = gen.services["bootstrap"]
    script = host_path(gen.folder, service, service["command"][1])
    env = {
        "FAKE_STATE": str(tmp_path / "state.json"),
        "DTOKEN_CRYPTO": str(tmp_path / "no-crypto"),  # the admin files are missing
        "DTOKEN_CHANNEL_DIR": str(host_path(gen.folder, service, containers.CHANNEL_DIR)),
        "DTOKEN_PACKAGES": str(host_path(gen.folder, service, containers.PACKAGES_DIR)),
        "DTOKEN_WORK": str(tmp_path / "work"),
    }
    result = run_bootstrap(gen, script, fake_bin, env)
    assert result.returncode != 0
    assert "giving up after 2 attempts: genesis" in result.stderr


def test_bootstrap_script_passes_shellcheck(gen: Generated) -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    with resources.as_file(BOOTSTRAP_FUNCTIONS) as functions:
        # The generated script, and the package data its functions come from.
        for script in (gen.folder / "bootstrap.sh", functions):
            result = subprocess.run(
                ["shellcheck", str(script)], capture_output=True, text=True, check=False
            )
            assert result.returncode == 0, f"{script}:\n{result.stdout}"


def test_bootstrap_functions_are_package_data_without_their_header(gen: Generated) -> None:
    """The script's functions come from bootstrap.sh shipped in consortium.deploy; its
    header (up to the first empty line) documents the file and is not copied."""
    text = BOOTSTRAP_FUNCTIONS.read_text(encoding="utf-8")
    header, _, body = text.partition("\n\n")
    assert header.startswith("# shellcheck shell=bash\n")
    assert "retry() {" in body
    assert "init_chaincode() {" in body
    script = (gen.folder / "bootstrap.sh").read_text()
    assert "\nset -euo pipefail\n" + body.strip("\n") + "\n\nPROFILE=" in script
    assert header.splitlines()[1] not in script


# --------------------------------------------------------------------------- CLI


def test_cli_generates_both_targets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dtoken.cli import main

    base = ["network", "--config", str(DEFAULT), "--state-dir", str(tmp_path / "state")]
    out = tmp_path / "deploy"
    assert main([*base, "generate", "compose", "--out", str(out)]) == 0
    assert main([*base, "generate", "kubernetes", "--out", str(out), "--chaincode-image",
                 "registry.example/dtoken-cc:1"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert f"wrote {out.resolve() / 'compose.yaml'}" in printed
    assert yaml.safe_load((out / "compose.yaml").read_text())["name"] == "dtoken"
    docs = list(yaml.safe_load_all((out / "kubernetes.yaml").read_text()))
    images = {
        d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in docs
        if d["kind"] == "Deployment"
    }
    assert images == {"registry.example/dtoken-cc:1"}
    assert not (tmp_path / "state").exists()  # generating starts and writes nothing native


def test_generate_refuses_the_namespace_layout_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The generated bootstrap commits one dtoken definition: a layout consortium is refused
    before anything is written, with the field and what to do."""
    from dtoken.cli import main

    data = yaml.safe_load(DEFAULT.read_text())
    data["chaincode"]["layout"] = "namespaces"
    config_file = tmp_path / "layout.yaml"
    config_file.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "deploy"
    base = ["network", "--config", str(config_file), "--state-dir", str(tmp_path / "state")]
    assert main([*base, "generate", "compose", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "chaincode.layout: namespaces" in err
    assert "dtoken network up" in err
    assert not out.exists()


# --------------------------------------------------------------------------- real Fabric


def _free_base_port(slots: int) -> int:
    for base in range(23000 + (os.getpid() % 200) * 100, 60000, 1000):
        ok = True
        for port in range(base, base + 10 * slots):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise AssertionError("no free port range")


def _native_env(gen: Generated, service: dict[str, Any], ledger: Path) -> dict[str, str]:
    """A service's environment with container paths mapped to the host's files."""
    out = {}
    for key, value in service["environment"].items():

        def host(match: re.Match[str]) -> str:
            return str(host_path(gen.folder, service, match.group(0)))

        value = re.sub(r"/etc/hyperledger/dtoken/[^\],\s]+", host, value)
        value = value.replace(containers.LEDGER_DIR, str(ledger))
        value = value.replace(containers.CCAAS_BUILDER, str(BUILDER_DIR))
        out[key] = value.replace("0.0.0.0:", "127.0.0.1:").replace("0.0.0.0", "127.0.0.1")
    return out


FABRIC = find_binaries()


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; stopped (by their own handles) when it ends."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run(cmd: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{cmd[:4]}: {result.stdout}{result.stderr}"
    return result.stdout + result.stderr


def _wait_healthy(url: str, ca: Path, log: Path) -> None:
    deadline = time.monotonic() + 60
    while not processes.health(url, ca):
        assert time.monotonic() < deadline, f"{url} never healthy:\n{processes.tail(log)}"
        time.sleep(0.2)


def _wait_listening(port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"port {port} never opened:\n{processes.tail(log)}"
        time.sleep(0.2)


@pytest.mark.skipif(
    FABRIC is None,
    reason="the pinned Fabric binaries are not built (python -m consortium.binaries)",
)
def test_fabric_accepts_the_generated_inputs_and_environment(
    tmp_path: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    """Fabric 3.1.1's own configtxgen, orderer, osnadmin and peer, given what was generated.

    The nodes run here, not in containers: only the container paths are mapped to the
    deployment folder's files and 0.0.0.0 to 127.0.0.1. Everything else is the generated
    environment, so a wrong variable name, list syntax or builder definition shows here.
    """
    assert FABRIC is not None
    c = load_variant(tmp_path, _free_base_port(1 + 3 * 2))
    folder = tmp_path / "deploy"
    containers.write_compose(c, folder)
    doc = yaml.safe_load((folder / "compose.yaml").read_text())
    gen = Generated(c=c, folder=folder, compose=doc, k8s=[])
    base_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "FABRIC_CFG_PATH": str(FABRIC.config_dir),  # Fabric's sampleconfig, as in the images
    }

    # The genesis block from the generated configtx.yaml (crypto paths mapped to the host).
    channel_dir = tmp_path / "channel"
    channel_dir.mkdir()
    configtx = (folder / "channel" / "configtx.yaml").read_text()
    (channel_dir / "configtx.yaml").write_text(
        configtx.replace(containers.CRYPTO_DIR, str(folder / "crypto"))
    )
    block = tmp_path / "genesis.block"
    _run(
        [
            str(FABRIC.tool("configtxgen")), "-profile", channel.PROFILE, "-channelID", c.channel,
            "-configPath", str(channel_dir), "-outputBlock", str(block),
        ],
        base_env,
    )  # fmt: skip

    # The orderer, with the orderer service's environment; osnadmin joins it.
    o = c.ordering.orderers[0]
    oo = c.orderer_org.name
    log = tmp_path / "orderer.log"
    with log.open("wb") as out:
        env = {**base_env, **_native_env(gen, gen.services[o.name], tmp_path / "orderer")}
        started.append(
            subprocess.Popen([str(FABRIC.tool("orderer"))], env=env, stdout=out, stderr=out)
        )
    tlsca = folder / "crypto" / oo / "tlsca" / "tlsca-cert.pem"
    _wait_healthy(f"https://127.0.0.1:{o.operations_port}/healthz", tlsca, log)
    admin = folder / "crypto" / oo / "users" / "Admin" / "tls"
    joined = _run(
        [
            str(FABRIC.tool("osnadmin")), "channel", "join", "--channelID", c.channel,
            "--config-block", str(block), "-o", f"127.0.0.1:{o.admin_port}",
            "--ca-file", str(admin / "ca.crt"), "--client-cert", str(admin / "client.crt"),
            "--client-key", str(admin / "client.key"),
        ],
        base_env,
    )  # fmt: skip
    assert "Status: 201" in joined

    # A peer, with the peer service's environment: it joins and installs the package
    # through the external builder its environment defines (CORE_CHAINCODE_EXTERNALBUILDERS
    # names our builder here in place of the image's; core.yaml's own entry would not exist).
    p = c.peers[0]
    org = c.org(p.org)
    log = tmp_path / "peer.log"
    with log.open("wb") as out:
        env = {**base_env, **_native_env(gen, gen.services[p.name], tmp_path / "peer")}
        started.append(
            subprocess.Popen(
                [str(FABRIC.tool("peer")), "node", "start"], env=env, stdout=out, stderr=out
            )
        )
    org_tlsca = folder / "crypto" / org.name / "tlsca" / "tlsca-cert.pem"
    _wait_healthy(f"https://127.0.0.1:{p.operations_port}/healthz", org_tlsca, log)
    # The peer serves its operations endpoint before its gRPC listener: under load the
    # join below would find the port closed.
    _wait_listening(p.port, log)
    admin_env = {
        **base_env,
        "FABRIC_LOGGING_SPEC": "warning",
        "CORE_PEER_LOCALMSPID": org.msp_id,
        "CORE_PEER_MSPCONFIGPATH": str(folder / "crypto" / org.name / "users" / "Admin" / "msp"),
        "CORE_PEER_ADDRESS": f"127.0.0.1:{p.port}",
        "CORE_PEER_TLS_ENABLED": "true",
        "CORE_PEER_TLS_ROOTCERT_FILE": str(org_tlsca),
    }
    _run([str(FABRIC.tool("peer")), "channel", "join", "-b", str(block)], admin_env)
    assert c.channel in _run([str(FABRIC.tool("peer")), "channel", "list"], admin_env).split()
    net = Network(c, folder, progress=lambda _m: None)
    _run(
        [
            str(FABRIC.tool("peer")),
            "lifecycle",
            "chaincode",
            "install",
            str(net.package_path(org, net.deployments()[0])),
        ],
        admin_env,
    )
    installed = _run(
        [str(FABRIC.tool("peer")), "lifecycle", "chaincode", "queryinstalled", "--output", "json"],
        admin_env,
    )
    server = gen.services[containers.chaincode_host(c, p, Target.COMPOSE)]
    assert server["environment"]["CHAINCODE_ID"] in installed
    assert (
        hashlib.sha256(net.package_path(org, net.deployments()[0]).read_bytes()).hexdigest()
        in installed
    )
