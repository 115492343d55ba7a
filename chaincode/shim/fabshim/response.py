"""The chaincode's answer to INIT or TRANSACTION: a status, a message and a payload."""

from __future__ import annotations

from dataclasses import dataclass

OK = 200
"""Status of a successful response."""

ERROR_THRESHOLD = 400
"""Statuses at or above this are errors: the endorser refuses to endorse them."""

ERROR = 500
"""Status of an error response built by :func:`error`."""


@dataclass(frozen=True, slots=True)
class Response:
    """What ``Chaincode.init`` and ``Chaincode.invoke`` return.

    ``payload`` of a submitted transaction is written into the block: never put a private
    value in it. ``message`` of an error response goes back to the client.
    """

    status: int
    message: str = ""
    payload: bytes = b""

    @property
    def is_error(self) -> bool:
        """True for a status at or above :data:`ERROR_THRESHOLD`."""
        return self.status >= ERROR_THRESHOLD


def success(payload: bytes = b"") -> Response:
    """A successful response (status 200) carrying ``payload``."""
    return Response(status=OK, payload=bytes(payload))


def error(message: str) -> Response:
    """An error response (status 500) carrying ``message``."""
    return Response(status=ERROR, message=message)
