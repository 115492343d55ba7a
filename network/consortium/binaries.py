"""Fabric binaries: built from the Go module proxy, pinned, cached outside the tree.

The pin lives in ``consortium/fabric_build/go.mod`` (package data: a module of our own that
requires ``github.com/hyperledger/fabric`` at the release commit's
pseudo-version) and its committed ``go.sum`` verifies every download. The
binaries are built with ``CGO_ENABLED=0`` into
``$XDG_CACHE_HOME/dtoken/fabric/<version>/bin`` (``~/.cache`` by default) and
reused while ``go version -m`` shows the pinned module version; Fabric's
``sampleconfig`` (core.yaml, orderer.yaml) is copied from the module cache
beside them, and every node's configuration is derived from it.

Why v3.1.1 and not v3.1.5: see docs/operations.md ("Fabric version"). In short,
the module proxy reachable from our machines refuses every form of v3.1.5 (and
v3.1.2 to v3.1.4) with 403; v3.1.1 is the newest 3.1 release it serves.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from consortium.errors import BinariesError

__all__ = ["FABRIC_COMMIT", "FABRIC_VERSION", "FabricInstall", "ensure_binaries", "find_binaries"]

FABRIC_VERSION = "3.1.1"
FABRIC_COMMIT = "435a7f1a780a128756fb2f72bf4cad164bf13fbb"
FABRIC_MODULE = "github.com/hyperledger/fabric"
TOOLS = ("peer", "orderer", "osnadmin", "configtxgen")
#: The Go module that pins Fabric: package data, so an installed wheel builds the same binaries.
BUILD_MODULE_DIR = Path(str(resources.files("consortium").joinpath("fabric_build")))


@dataclass(frozen=True)
class FabricInstall:
    """Where the pinned binaries and Fabric's sample configuration are."""

    bin_dir: Path
    config_dir: Path  # holds core.yaml and orderer.yaml from Fabric's sampleconfig

    def tool(self, name: str) -> Path:
        return self.bin_dir / name


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dtoken" / "fabric" / FABRIC_VERSION


def pinned_module_version() -> str:
    """The pseudo-version of the release commit, read from our go.mod."""
    gomod = BUILD_MODULE_DIR / "go.mod"
    try:
        text = gomod.read_text(encoding="utf-8")
    except OSError as exc:
        raise BinariesError(f"{gomod}: cannot be read: {exc}") from exc
    match = re.search(rf"^require {re.escape(FABRIC_MODULE)} (\S+)$", text, re.MULTILINE)
    if not match:
        raise BinariesError(f"{gomod}: no 'require {FABRIC_MODULE} <version>' line")
    version = match.group(1)
    if not version.endswith(FABRIC_COMMIT[:12]):
        raise BinariesError(f"{gomod}: {version} is not the pinned commit {FABRIC_COMMIT[:12]}")
    return version


def _built_version(binary: Path) -> str | None:
    try:
        out = subprocess.run(
            ["go", "version", "-m", str(binary)], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    match = re.search(rf"^\s+mod\s+{re.escape(FABRIC_MODULE)}\s+(\S+)", out, re.MULTILINE)
    return match.group(1) if match else None


def find_binaries() -> FabricInstall | None:
    """The cached install if every tool is the pinned build, else None."""
    root = cache_root()
    install = FabricInstall(root / "bin", root / "config")
    stamp = root / "stamp"
    want = pinned_module_version()
    if not (stamp.exists() and stamp.read_text().strip() == want):
        return None
    for tool in TOOLS:
        if not install.tool(tool).is_file():
            return None
    if not (install.config_dir / "core.yaml").is_file():
        return None
    return install


def ensure_binaries(progress: Callable[[str], None] | None = None) -> FabricInstall:
    """Return the pinned Fabric install, building it first if it is missing or stale."""
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    found = find_binaries()
    if found is not None:
        return found
    if shutil.which("go") is None:
        raise BinariesError("the 'go' command is not on PATH: Go 1.24+ is needed to build Fabric")
    want = pinned_module_version()
    root = cache_root()
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod")
    ldflags = (
        f"-s -w -X {FABRIC_MODULE}/common/metadata.Version={FABRIC_VERSION}"
        f" -X {FABRIC_MODULE}/common/metadata.CommitSHA={FABRIC_COMMIT[:7]}"
    )
    say(f"Building Fabric {FABRIC_VERSION} ({want}) into {bin_dir}: downloads, then about 2 min")
    started = time.monotonic()
    say("  downloading modules (verified against consortium/fabric_build/go.sum) ...")
    _run(["go", "mod", "download", FABRIC_MODULE], env)
    for tool in TOOLS:
        t0 = time.monotonic()
        _run(
            [
                "go",
                "build",
                "-trimpath",
                "-ldflags",
                ldflags,
                "-o",
                str(bin_dir / tool),
                f"{FABRIC_MODULE}/cmd/{tool}",
            ],
            env,
        )
        say(f"  built {tool} in {time.monotonic() - t0:.0f} s")
        got = _built_version(bin_dir / tool)
        if got != want:
            raise BinariesError(f"{bin_dir / tool} reports {FABRIC_MODULE} {got}, expected {want}")
    module_dir = _run(["go", "list", "-m", "-f", "{{.Dir}}", FABRIC_MODULE], env).strip()
    config_dir = root / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    for name in ("core.yaml", "orderer.yaml"):
        target = config_dir / name
        shutil.copyfile(Path(module_dir) / "sampleconfig" / name, target)
        target.chmod(0o644)
    (root / "stamp").write_text(want + "\n")
    say(f"Fabric {FABRIC_VERSION} ready in {time.monotonic() - started:.0f} s")
    return FabricInstall(bin_dir, config_dir)


def _run(cmd: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(
        cmd, cwd=BUILD_MODULE_DIR, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BinariesError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout


if __name__ == "__main__":
    try:
        install = ensure_binaries()
    except BinariesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    print(f"Fabric {FABRIC_VERSION}: {install.bin_dir}")
