"""Native processes: start detached, track by pid file, health-check, stop.

Each process has a folder with its log file and pid file. A pid file is trusted
only while ``/proc/<pid>/cmdline`` still shows the program it was written for,
so a recycled pid is never signalled. ``stop`` signals only processes that this
package started (by their pid files).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from consortium.errors import NodeError

#: Processes started by this Python process, kept so they can be reaped (no zombies,
#: no "subprocess is still running" warnings); other processes are found by pid file.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

__all__ = [
    "ProcessSpec",
    "environment_of",
    "start",
    "stop",
    "tail",
    "wait_healthy",
    "wait_port",
]


@dataclass(frozen=True)
class ProcessSpec:
    """How to run one node: its argv, environment and its folder."""

    name: str
    argv: Sequence[str]
    home: Path  # holds <name>.log and <name>.pid
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    #: A command that runs ``argv`` elsewhere and then execs it (so the pid stays
    #: the program's), e.g. ``ip netns exec <ns>`` to place a node on a test host.
    launcher: Sequence[str] = ()

    @property
    def log_file(self) -> Path:
        return self.home / "node.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "node.pid"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _normalized(cmd: list[str]) -> list[str]:
    """The program resolved through symlinks: ``.venv/bin/python`` and
    ``.venv/bin/python3`` start the same program and must match."""
    if cmd and os.path.isabs(cmd[0]):
        return [os.path.realpath(cmd[0]), *cmd[1:]]
    return cmd


#: The variables that say which node a process is (not e.g. PYTHONPATH, which may
#: differ between the shell that started a node and the one that stops it).
_IDENTIFYING_ENV = frozenset({"FABRIC_CFG_PATH", "CHAINCODE_SERVER_ADDRESS", "CHAINCODE_TLS_CERT"})


def environment_of(pid: int) -> dict[str, str] | None:
    """The environment process ``pid`` was started with (``None``: not readable here)."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    return dict(
        part.decode(errors="replace").partition("=")[::2] for part in raw.split(b"\0") if part
    )


def _has_environment(pid: int, env: Mapping[str, str]) -> bool:
    have = environment_of(pid)
    if have is None:
        return False
    return all(have.get(key) == value for key, value in env.items() if key in _IDENTIFYING_ENV)


def running_pid(spec: ProcessSpec) -> int | None:
    """The pid of the spec's process if it is alive (and really is that process)."""
    try:
        pid = int(spec.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    cmd = _normalized(_cmdline(pid))
    argv = _normalized([str(a) for a in spec.argv])
    launched = _normalized([str(a) for a in (*spec.launcher, *spec.argv)])
    # Before the launcher execs the program, the pid still shows the launcher.
    if not cmd or (cmd[: len(argv)] != argv and cmd[: len(launched)] != launched):
        return None
    # Every peer runs 'peer node start': a recycled pid could be another network's
    # node. The environment we gave it (its config folder, its address) tells.
    if spec.env and not _has_environment(pid, spec.env):
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None  # a zombie is dead
    except OSError:
        return None
    return pid


def start(spec: ProcessSpec) -> int:
    """Start the process detached (its own session); return its pid.

    Output goes to the log file (appended, so a restart keeps the history).
    """
    pid = running_pid(spec)
    if pid is not None:
        return pid
    spec.home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CORE_", "ORDERER_"))}
    env.update(spec.env)
    with open(spec.log_file, "ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {spec.name}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [str(a) for a in (*spec.launcher, *spec.argv)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=spec.cwd or spec.home,
            start_new_session=True,
        )
    spec.pid_file.write_text(f"{proc.pid}\n")
    _CHILDREN[proc.pid] = proc
    # Popen may return before the exec completes; until then /proc/<pid>/cmdline is empty
    # and running_pid() would call the new process gone. Return once it is recognisable.
    deadline = time.monotonic() + 5.0
    while running_pid(spec) is None and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    return proc.pid


def stop(spec: ProcessSpec, *, timeout: float = 10.0, kill: bool = False) -> bool:
    """Stop the process (SIGTERM, then SIGKILL after ``timeout``); True if it ran."""
    pid = running_pid(spec)
    if pid is None:
        spec.pid_file.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running_pid(spec) is not None:
        _reap(pid)
        time.sleep(0.05)
    if running_pid(spec) is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while running_pid(spec) is not None:
            _reap(pid)
            time.sleep(0.05)
    _reap(pid)
    spec.pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MiB, from /proc (None if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        return None
    return None


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file (empty if it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


def _health_ok(url: str, context: ssl.SSLContext | None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def https_context(ca_file: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.check_hostname = True
    return ctx


def fetch(
    url: str,
    *,
    ca_file: Path,
    cert_file: Path | None = None,
    key_file: Path | None = None,
    timeout: float = 2.0,
) -> str | None:
    """GET an operations endpoint (client certificate optional); None if unreachable."""
    context = https_context(ca_file)
    if cert_file is not None:
        context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:  # noqa: S310
            return str(resp.read().decode())
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return None


def wait_healthy(
    spec: ProcessSpec,
    url: str,
    *,
    ca_file: Path | None = None,
    timeout: float = 60.0,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll an operations endpoint until it answers 200, or raise NodeError.

    ``alive()`` says whether the node still runs (default: its pid file's process)."""
    context = https_context(ca_file) if ca_file else None
    _wait(spec, lambda: _health_ok(url, context), f"{url} to answer 200", timeout, alive)


def health(url: str, ca_file: Path | None) -> bool:
    """One probe of an operations endpoint's /healthz."""
    return _health_ok(url, https_context(ca_file) if ca_file else None)


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def wait_port(
    spec: ProcessSpec,
    host: str,
    port: int,
    *,
    timeout: float = 30.0,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Wait until something accepts TCP connections on host:port."""
    what = f"{host}:{port} to accept connections"
    _wait(spec, lambda: port_open(host, port), what, timeout, alive)


def _wait(
    spec: ProcessSpec,
    probe: Callable[[], bool],
    what: str,
    timeout: float,
    alive: Callable[[], bool] | None = None,
) -> None:
    alive = alive or (lambda: running_pid(spec) is not None)
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if probe():
            return
        if not alive():
            raise NodeError(
                f"{spec.name} exited while waiting for {what}; its log {spec.log_file} ends:\n"
                f"{tail(spec.log_file)}"
            )
        if time.monotonic() > deadline:
            raise NodeError(
                f"{spec.name} did not become ready ({what}) within {timeout:.0f} s; "
                f"its log {spec.log_file} ends:\n{tail(spec.log_file)}"
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
