"""The container runtime's images, built here from what the project already builds, with no
registry: a Debian base with Python (a ``debootstrap`` root file system imported as an image)
and the node image on top of it (the pinned Fabric binaries and sample configuration, the
chaincode server's wheels installed into ``/opt/dtoken``, the project's wheels built from
this checkout). Every tag is the SHA-256 of what went into the image, so an unchanged input
finds its image and a changed one builds a new one.

One node image serves orderers, peers and chaincode servers: the peer's chaincode-as-a-service
builder is Python (``consortium/ccaas_builder``), so the peer needs Python beside it anyway.

Every container runs its node's command through :data:`ENTRYPOINT`, which appends the node's
output to its log file in the state folder (``DTOKEN_NODE_LOG``), as a native process does.

This module talks to the engine only to find, import and build images (through the Docker
Engine API, ``docker`` package); it must not create containers or networks.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Final

import docker
import docker.errors

from consortium.binaries import TOOLS, FabricInstall, cache_root
from consortium.deploy.model import FabricImages
from consortium.errors import NetworkError
from consortium.nodeconfig import BUILDER_DIR

__all__ = [
    "ENTRYPOINT",
    "FABRIC_BIN",
    "NODE_PYTHON",
    "ImageError",
    "ensure_node_image",
]

#: Inside the node image: Fabric's binaries, and the Python that runs the chaincode servers.
FABRIC_BIN: Final = "/opt/fabric/bin"
FABRIC_CONFIG: Final = "/opt/fabric/config"
NODE_PYTHON: Final = "/opt/dtoken/bin/python"
#: Runs the command with its output appended to ``$DTOKEN_NODE_LOG`` (exec: the node keeps pid).
ENTRYPOINT: Final = ("/bin/sh", "-c", 'exec "$@" >>"$DTOKEN_NODE_LOG" 2>&1', "node")

#: Debian release and packages of the base image.
BASE_SUITE: Final = "bookworm"
BASE_PACKAGES: Final = ("python3", "python3-venv")
#: The distributions a chaincode server needs, by folder in the repository.
CHAINCODE_DISTRIBUTIONS: Final = ("chaincode/shim", "chaincode/server", "chaincode-client/wire")
_SKIP: Final = {".venv", "__pycache__", "build", "dist", ".mypy_cache", ".ruff_cache"}

_DOCKERFILE: Final = """\
FROM {base}
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/dtoken \\
 && /opt/dtoken/bin/pip install --no-index --no-cache-dir --find-links /tmp/wheels {dists} \\
 && rm -rf /tmp/wheels
COPY fabric /opt/fabric
ENV FABRIC_CFG_PATH={config} PATH=/opt/fabric/bin:/opt/dtoken/bin:/usr/sbin:/usr/bin:/sbin:/bin
LABEL org.dtoken.image=node
"""


#: The generated Compose and Kubernetes documents' Fabric images, made from the node image:
#: the layout of Fabric's official images (configuration in /etc/hyperledger/fabric, the
#: ccaas builder in /opt/hyperledger/ccaas_builder) and each role's default command.
_FABRIC_ROLE_DOCKERFILE: Final = """\
FROM {node}
COPY ccaas_builder /opt/hyperledger/ccaas_builder
RUN mkdir -p /etc/hyperledger && cp -r /opt/fabric/config /etc/hyperledger/fabric
ENV FABRIC_CFG_PATH=/etc/hyperledger/fabric
WORKDIR /opt/fabric
CMD {cmd}
LABEL org.dtoken.image=fabric-{role}
"""
_ROLE_COMMANDS: Final = {
    "orderer": '["orderer"]',
    "peer": '["peer", "node", "start"]',
    "tools": '["bash"]',
}


class ImageError(NetworkError):
    """An image could not be made (debootstrap, wheels, import or build failed)."""


def _cache() -> Path:
    return cache_root().parent.parent / "images"


def _say_default(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _run(cmd: list[str], what: str, **kwargs: object) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        raise ImageError(
            f"{what}: {' '.join(cmd[:3])} ... failed ({proc.returncode}):\n"
            f"{(proc.stdout + proc.stderr)[-3000:]}"
        )


def _has(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        return False
    return True


def apt_mirror(files: Sequence[Path] | None = None) -> str:
    """The Debian mirror this machine's apt uses (its sources; not the security archive),
    for ``debootstrap``; ``files`` default to apt's own."""
    if files is None:
        sources = Path("/etc/apt/sources.list.d")
        files = sorted(sources.glob("*.sources")) + sorted(sources.glob("*.list"))
        files.append(Path("/etc/apt/sources.list"))
    for path in files:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and "security" not in words[-2]:
                return next(w for w in words[1:] if "://" in w)
    raise ImageError("no Debian mirror in /etc/apt/sources.list(.d): debootstrap needs one")


def ensure_base_image(client: docker.DockerClient, say: Callable[[str], None]) -> str:
    """``dtoken-base:<sha256>``: Debian with Python, from a cached debootstrap root file system."""
    cache = _cache()
    rootfs_tar = cache / f"rootfs-{BASE_SUITE}-{'-'.join(BASE_PACKAGES)}.tar"
    if not rootfs_tar.exists():
        if shutil.which("debootstrap") is None:
            raise ImageError(
                "debootstrap is not installed (Debian package debootstrap): "
                "scripts/container-engine install"
            )
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            root = Path(tmp) / "rootfs"
            say(f"  debootstrap {BASE_SUITE} with {', '.join(BASE_PACKAGES)} (about 45 s) ...")
            _run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    BASE_SUITE,
                    str(root),
                    apt_mirror(),
                ],
                "the base image's root file system",
            )
            partial = rootfs_tar.with_suffix(".partial")
            _run(
                [
                    "tar",
                    "-C",
                    str(root),
                    "--sort=name",
                    "--numeric-owner",
                    "-cf",
                    str(partial),
                    ".",
                ],
                "the base image's tar",
            )
            partial.replace(rootfs_tar)
    digest = _sha256_file(rootfs_tar)
    tag = f"dtoken-base:{digest[:16]}"
    if not _has(client, tag):
        say(f"  importing {tag} ...")
        repository, _, version = tag.partition(":")
        answer = client.api.import_image_from_file(
            str(rootfs_tar), repository=repository, tag=version
        )
        # A Podman service ignores the tag of an import: tag the image by the id it answers.
        found = re.findall(r"sha256:[0-9a-f]{64}", str(answer))
        if not _has(client, tag) and found:
            client.images.get(found[-1]).tag(repository, version)
        if not _has(client, tag):
            raise ImageError(f"importing {rootfs_tar} did not produce {tag}")
    return tag


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _source_files(repo: Path) -> Iterator[Path]:
    for dist in CHAINCODE_DISTRIBUTIONS:
        for dirpath, dirnames, filenames in os.walk(repo / dist):
            dirnames[:] = sorted(
                d for d in dirnames if d not in _SKIP and not d.endswith(".egg-info")
            )
            for name in sorted(filenames):
                if not name.endswith((".pyc", ".pyo")):
                    yield Path(dirpath) / name


def node_image_tag(repo: Path, base: str, fabric: FabricInstall) -> str:
    """``dtoken-node:<sha256>`` of the Dockerfile, the base, the binaries and the sources."""
    h = hashlib.sha256()
    h.update(_dockerfile(base).encode())
    for tool in TOOLS:
        h.update(tool.encode() + _sha256_file(fabric.tool(tool)).encode())
    for name in ("core.yaml", "orderer.yaml"):
        h.update((fabric.config_dir / name).read_bytes())
    for path in _source_files(repo):
        h.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes())
    return f"dtoken-node:{h.hexdigest()[:16]}"


def _dockerfile(base: str) -> str:
    dists = " ".join(("fabshim", "dtoken-chaincode", "dtoken-wire"))
    return _DOCKERFILE.format(base=base, dists=dists, config=FABRIC_CONFIG)


def repository_root() -> Path:
    """The checkout the project's wheels are built from (this module lives in it)."""
    root = Path(__file__).resolve().parents[2]
    if not all((root / d / "pyproject.toml").is_file() for d in CHAINCODE_DISTRIBUTIONS):
        raise ImageError(
            f"{root}: not a checkout of this repository: the node image is "
            "built from the project's sources (run from a clone)"
        )
    return root


def ensure_node_image(
    client: docker.DockerClient, fabric: FabricInstall, say: Callable[[str], None] | None = None
) -> str:
    """The node image's tag, building the base and the node image when missing."""
    say = say or _say_default
    repo = repository_root()
    base = ensure_base_image(client, say)
    tag = node_image_tag(repo, base, fabric)
    if _has(client, tag):
        return tag
    say(f"  building {tag} (wheels, Fabric {', '.join(TOOLS)}) ...")
    with tempfile.TemporaryDirectory(prefix="dtoken-image-") as tmp:
        context = Path(tmp)
        sources = context / "sources"
        for dist in CHAINCODE_DISTRIBUTIONS:
            shutil.copytree(
                repo / dist,
                sources / dist,
                ignore=shutil.ignore_patterns(*_SKIP, "*.egg-info", "*.pyc"),
            )
        wheels = context / "wheels"
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "-q",
                "--wheel-dir",
                str(wheels),
                *(str(sources / d) for d in CHAINCODE_DISTRIBUTIONS),
            ],
            "the chaincode server's wheels",
            env={**os.environ, "PIP_NO_INPUT": "1"},
        )
        shutil.rmtree(sources)
        fab = context / "fabric"
        (fab / "bin").mkdir(parents=True)
        (fab / "config").mkdir()
        for tool in TOOLS:
            shutil.copy2(fabric.tool(tool), fab / "bin" / tool)
        for name in ("core.yaml", "orderer.yaml"):
            shutil.copy2(fabric.config_dir / name, fab / "config" / name)
        (context / "Dockerfile").write_text(_dockerfile(base))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(str(context), arcname=".")
        buf.seek(0)
        try:
            client.images.build(
                fileobj=buf,
                custom_context=True,
                tag=tag,
                rm=True,
                forcerm=True,
                network_mode="none",
            )
        except docker.errors.BuildError as exc:
            log = "".join(str(x.get("stream", "")) for x in exc.build_log)[-3000:]
            raise ImageError(f"building {tag} failed: {exc}\n{log}") from exc
    return tag


def ensure_fabric_images(
    client: docker.DockerClient, fabric: FabricInstall, say: Callable[[str], None] | None = None
) -> FabricImages:
    """Images for the generated Compose and Kubernetes documents in place of Fabric's
    official ones (which no registry serves here): ``dtoken-fabric-<role>:<sha256>`` built
    from the node image, with the official images' layout and default commands."""
    say = say or _say_default
    node = ensure_node_image(client, fabric, say)
    builder = BUILDER_DIR / "bin"
    tags: dict[str, str] = {}
    for role, cmd in _ROLE_COMMANDS.items():
        dockerfile = _FABRIC_ROLE_DOCKERFILE.format(node=node, cmd=cmd, role=role)
        h = hashlib.sha256(dockerfile.encode())
        for path in sorted(builder.iterdir()):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
        tag = f"dtoken-fabric-{role}:{h.hexdigest()[:16]}"
        tags[role] = tag
        if _has(client, tag):
            continue
        say(f"  building {tag} ...")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = dockerfile.encode()
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            for path in sorted(builder.iterdir()):
                tar.add(str(path), arcname=f"ccaas_builder/bin/{path.name}")
        buf.seek(0)
        try:
            client.images.build(fileobj=buf, custom_context=True, tag=tag, rm=True,
                                network_mode="none")  # fmt: skip
        except docker.errors.BuildError as exc:
            raise ImageError(f"building {tag} failed: {exc}") from exc
    return FabricImages(orderer=tags["orderer"], peer=tags["peer"], tools=tags["tools"])
