"""Errors of the network bootstrap.

Tree::

    NetworkError
    ├── ConfigError      a consortium file is wrong (names the file, the field, the problem)
    ├── CryptoError      MSP or TLS material is missing or invalid (names the path)
    ├── BinariesError    the Fabric binaries cannot be built or are not the pinned build
    ├── NodeError        a node failed to start or to become healthy (names its log file)
    ├── FabricCommandError  a Fabric tool (peer, osnadmin, configtxgen) failed (its output)
    ├── PolicyError      a signature policy or collections entry that cannot be compiled
    │                    (also ValueError; names the text and what is wrong)
    ├── LifecycleError   a ``_lifecycle`` approval or commit failed: names the organization,
    │                    the chaincode definition, the step and Fabric's message
    └── PeerAdminError   an admin request to a peer (join the channel, install a package)
                         failed: names the peer, the request and Fabric's answer
"""

from __future__ import annotations

from pathlib import Path


class NetworkError(Exception):
    """Root of every error raised by the ``consortium`` package."""


class ConfigError(NetworkError, ValueError):
    """A consortium file is invalid; nothing has been started."""

    def __init__(self, source: Path, field: str, problem: str) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        where = f"{source}: {field}" if field else str(source)
        super().__init__(f"{where}: {problem}")


class CryptoError(NetworkError):
    """MSP or TLS material is missing or invalid."""


class BinariesError(NetworkError):
    """The Fabric binaries could not be built or verified."""


class NodeError(NetworkError):
    """A node did not start or did not become healthy."""


class FabricCommandError(NetworkError):
    """A Fabric command-line tool exited with an error."""

    def __init__(self, command: str, returncode: int, output: str) -> None:
        self.command = command
        self.returncode = returncode
        self.output = output
        tail = "\n".join(output.strip().splitlines()[-15:])
        super().__init__(f"{command} exited with {returncode}:\n{tail}")


class PolicyError(NetworkError, ValueError):
    """A signature policy (Fabric's policy language) or a collections entry is invalid."""


class LifecycleError(NetworkError):
    """A ``_lifecycle`` approval or commit failed.

    ``org`` is the organization that approved or submitted the commit, ``definition`` the
    chaincode name, ``step`` ``approve`` or ``commit``, ``message`` what Fabric said (the
    peers' answers, the orderer's, or the validation code of an invalid transaction)."""

    def __init__(self, step: str, org: str, definition: str, message: str) -> None:
        self.step = step
        self.org = org
        self.definition = definition
        self.message = message
        super().__init__(f"{step} of chaincode definition {definition!r} by {org} failed: "
                         f"{message}")


class PeerAdminError(NetworkError):
    """An admin request to one peer (``cscc`` join, ``_lifecycle`` install) failed.

    ``peer`` is the peer's name, ``request`` what was asked (``cscc JoinChain``), ``message``
    what the peer answered (or why no answer came)."""

    def __init__(self, peer: str, request: str, message: str) -> None:
        self.peer = peer
        self.request = request
        self.message = message
        super().__init__(f"{request} on peer {peer} failed: {message}")
