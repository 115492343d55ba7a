"""The chaincode server's own identity: which organization it serves, and that one's secret.

Owns: reading ``DTOKEN_BANK_MSP``, ``DTOKEN_SECRET_FILE``, ``DTOKEN_REGISTRY_SHA256`` and
``DTOKEN_NAMESPACE_LAYOUT`` (the only place the contract reads the environment). Explicit
arguments win over the environment. The secret (32 random bytes, the same on every peer of
the organization) keys the HMACs that make ids, record tags and salts deterministic across
that organization's endorsers. The registry pin is the SHA-256 (64 lowercase hex digits) of
the exact ``init_network`` argument the organization's operator agreed to: this server
endorses ``init_network`` with that argument only, and with no other
(``SERVER_MISCONFIGURED`` when the pin is missing).

Must not: log or return the secret, or name the secret file's path in an error (errors end up
in blocks).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ServerMisconfigured
from .keys import MSP_ID_RE, SECRET_LENGTH, Deriver

__all__ = ["ENV_LAYOUT", "ENV_MSP", "ENV_REGISTRY_SHA256", "ENV_SECRET_FILE", "ServerSettings"]

ENV_MSP = "DTOKEN_BANK_MSP"
ENV_SECRET_FILE = "DTOKEN_SECRET_FILE"  # noqa: S105 (a variable name, not a secret)
#: The network bootstrap (``consortium.chaincodes.REGISTRY_PIN_ENV``) sets it under this name.
ENV_REGISTRY_SHA256 = "DTOKEN_REGISTRY_SHA256"
#: ``true``: the chaincode runs under the namespace layout (one namespace per bank, pair
#: namespaces reached through the storage chaincode); unset or ``false``: one namespace.
ENV_LAYOUT = "DTOKEN_NAMESPACE_LAYOUT"

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ServerSettings:
    """The organization a chaincode server endorses for, its secret, and the registry its
    operator agreed to (``registry_sha256``; ``None``: this server endorses no
    ``init_network``)."""

    msp_id: str
    secret: bytes = field(repr=False)
    registry_sha256: str | None = None
    #: The namespace layout (docs/architecture.md): collections are routed by namespace.
    layout: bool = False

    def __post_init__(self) -> None:
        if not MSP_ID_RE.fullmatch(self.msp_id):
            raise ServerMisconfigured(f"{ENV_MSP} is not a valid MSP id")
        if len(self.secret) != SECRET_LENGTH:
            raise ServerMisconfigured(f"the secret in {ENV_SECRET_FILE} must be "
                                      f"{SECRET_LENGTH} bytes")
        if self.registry_sha256 is not None and not _SHA256_HEX.fullmatch(self.registry_sha256):
            raise ServerMisconfigured(f"{ENV_REGISTRY_SHA256} must be 64 lowercase hex digits")

    @property
    def deriver(self) -> Deriver:
        """HMAC derivations under this organization's secret."""
        return Deriver(self.secret)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        msp_id: str | None = None,
        secret_file: str | Path | None = None,
        registry_sha256: str | None = None,
        layout: bool | None = None,
    ) -> ServerSettings:
        """Settings from explicit arguments, else from the environment."""
        env = os.environ if environ is None else environ
        msp = msp_id if msp_id is not None else env.get(ENV_MSP, "")
        if not msp:
            raise ServerMisconfigured(f"{ENV_MSP} is not set")
        path = secret_file if secret_file is not None else env.get(ENV_SECRET_FILE, "")
        if not path:
            raise ServerMisconfigured(f"{ENV_SECRET_FILE} is not set")
        try:
            secret = Path(path).read_bytes()
        except OSError:
            raise ServerMisconfigured(f"the file named by {ENV_SECRET_FILE} "
                                      "cannot be read") from None
        pin = registry_sha256 if registry_sha256 is not None else env.get(ENV_REGISTRY_SHA256)
        if layout is None:
            flag = env.get(ENV_LAYOUT, "").strip().lower()
            if flag not in ("", "true", "false"):
                raise ServerMisconfigured(f"{ENV_LAYOUT} must be true or false")
            layout = flag == "true"
        return cls(msp, secret, pin or None, layout)
