"""The shim's exceptions: one root, :class:`ShimError`.

::

    ShimError
    ├── ConfigError                 server configuration missing or invalid (names the source)
    ├── InvalidArgumentError        a bad key, collection, composite-key part, role ... (ValueError)
    ├── ProtocolError               the peer broke the shim protocol
    ├── StreamClosedError           the stream to the peer ended while a request waited
    ├── TransactionClosedError      the stub was used after its transaction finished
    ├── PeerError                   the peer answered a request with ERROR
    ├── InvokeChaincodeError        a called chaincode answered with an error status
    ├── IdentityError               the creator is not an X.509 identity we can read
    │   └── AttributeAssertionError an attribute is missing or has another value (PermissionError)
    ├── MVCCReadConflictError       (fabshim.testing only) a read changed before commit
    └── EndorsementPolicyFailureError (fabshim.testing only) a write breaks a key-level policy
"""

from __future__ import annotations


class ShimError(Exception):
    """Root of every exception the shim raises on purpose."""


class ConfigError(ShimError):
    """The server configuration is missing a value or names an unreadable file."""


class InvalidArgumentError(ShimError, ValueError):
    """An argument is malformed: empty key, empty collection, forbidden character ..."""


class ProtocolError(ShimError):
    """The peer sent a message the protocol does not allow in the current state."""


class StreamClosedError(ShimError):
    """The stream to the peer ended while a request was waiting for its answer."""


class TransactionClosedError(ShimError):
    """The stub was used after its transaction had completed."""


class PeerError(ShimError):
    """The peer answered a request with ERROR.

    ``request`` is the request type (``"GET_STATE"``, ...) and ``message`` the peer's text.
    The peer's text never comes back as data: it is raised.
    """

    def __init__(self, request: str, message: str) -> None:
        super().__init__(message)
        self.request = request
        self.message = message


class InvokeChaincodeError(ShimError):
    """A chaincode called with ``invoke_chaincode`` answered with an error status (>= 400)."""

    def __init__(self, chaincode: str, status: int, message: str, payload: bytes = b"") -> None:
        super().__init__(f"chaincode {chaincode!r} answered status {status}: {message}")
        self.chaincode = chaincode
        self.status = status
        self.message = message
        self.payload = payload


class IdentityError(ShimError):
    """The transaction creator cannot be read as an X.509 identity."""


class AttributeAssertionError(IdentityError, PermissionError):
    """``ClientIdentity.assert_attribute_value`` failed."""


class MVCCReadConflictError(ShimError):
    """Raised by ``fabshim.testing`` when a transaction's reads changed before its commit."""


class EndorsementPolicyFailureError(ShimError):
    """(``fabshim.testing`` only) A transaction writes, deletes, purges or re-pins a key
    whose committed key-level policy its endorsers do not satisfy: a peer would mark it
    ``ENDORSEMENT_POLICY_FAILURE``."""
