"""``connect()``: a Gateway over a gRPC channel that the caller owns; and ``tls_channel()``."""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import grpc

from fabgateway._client import GatewayClient, SigningIdentity, Timeouts
from fabgateway.events import (
    BlockEventsRequest,
    ChaincodeEventsRequest,
    parse_block_events_request,
    parse_chaincode_events_request,
)
from fabgateway.hashing import Hash, sha256
from fabgateway.identity import Identity, Signer
from fabgateway.network import Network
from fabgateway.proposal import Proposal, parse_proposal
from fabgateway.transaction import Commit, Transaction, parse_commit, parse_transaction

__all__ = [
    "DEFAULT_COMMIT_STATUS_TIMEOUT",
    "DEFAULT_ENDORSE_TIMEOUT",
    "DEFAULT_EVALUATE_TIMEOUT",
    "DEFAULT_SUBMIT_TIMEOUT",
    "Gateway",
    "connect",
    "tls_channel",
]

DEFAULT_EVALUATE_TIMEOUT = 5.0
DEFAULT_ENDORSE_TIMEOUT = 15.0
DEFAULT_SUBMIT_TIMEOUT = 5.0
DEFAULT_COMMIT_STATUS_TIMEOUT = 60.0

MAX_MESSAGE_LENGTH = 100 * 1024 * 1024
"""Fabric's own gRPC message limit (100 MiB); gRPC's default of 4 MiB is too small for blocks."""


def connect(
    channel: grpc.aio.Channel,
    identity: Identity,
    signer: Signer | None = None,
    *,
    hash: Hash = sha256,
    evaluate_timeout: float | None = DEFAULT_EVALUATE_TIMEOUT,
    endorse_timeout: float | None = DEFAULT_ENDORSE_TIMEOUT,
    submit_timeout: float | None = DEFAULT_SUBMIT_TIMEOUT,
    commit_status_timeout: float | None = DEFAULT_COMMIT_STATUS_TIMEOUT,
    tls_client_certificate_hash: bytes | None = None,
) -> Gateway:
    """A Gateway for ``identity`` over ``channel`` (a grpc.aio channel to a peer).

    Without ``signer`` every message must be signed off-line (``new_signed_*``). ``hash`` makes
    the digest given to the signer (``hashing.none`` for Ed25519). Timeouts are the default
    deadlines in seconds of each call (``None``: no deadline); each call can override its own.
    ``tls_client_certificate_hash`` (SHA-256 of the client TLS certificate, DER) binds block
    event requests to a mutual-TLS session when the peer requires it.
    Nothing is sent until a call is made; the caller closes the channel.
    """
    timeouts = Timeouts(
        evaluate=evaluate_timeout,
        endorse=endorse_timeout,
        submit=submit_timeout,
        commit_status=commit_status_timeout,
    )
    return Gateway(
        GatewayClient(channel, timeouts),
        SigningIdentity(identity, signer, hash),
        tls_client_certificate_hash,
    )


class Gateway:
    """A connection to a peer's Gateway service for one identity. Use :func:`connect`."""

    def __init__(
        self,
        client: GatewayClient,
        signing_id: SigningIdentity,
        tls_certificate_hash: bytes | None = None,
    ) -> None:
        self._client = client
        self._signing_id = signing_id
        self._tls_certificate_hash = tls_certificate_hash

    @property
    def identity(self) -> Identity:
        return self._signing_id.identity

    @property
    def channel(self) -> grpc.aio.Channel:
        """The gRPC channel given to :func:`connect` (still owned by the caller)."""
        return self._client.channel

    def get_network(self, channel_name: str) -> Network:
        """The channel ``channel_name``."""
        return Network(self._client, self._signing_id, channel_name, self._tls_certificate_hash)

    async def close(self) -> None:
        """Nothing to release: the gRPC channel belongs to the caller, who closes it."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- off-line signing: rebuild a message from its bytes, with or without its signature ---

    def new_proposal(self, data: bytes) -> Proposal:
        """A proposal from ``Proposal.bytes()``."""
        return parse_proposal(self._client, self._signing_id, data)

    def new_signed_proposal(self, data: bytes, signature: bytes) -> Proposal:
        """A proposal from ``Proposal.bytes()`` with the signature of ``Proposal.digest()``."""
        proposal = self.new_proposal(data)
        proposal._set_signature(signature)
        return proposal

    def new_transaction(self, data: bytes) -> Transaction:
        """A transaction from ``Transaction.bytes()``."""
        return parse_transaction(self._client, self._signing_id, data)

    def new_signed_transaction(self, data: bytes, signature: bytes) -> Transaction:
        """A transaction from ``Transaction.bytes()`` with the signature of its digest."""
        transaction = self.new_transaction(data)
        transaction._set_signature(signature)
        return transaction

    def new_commit(self, data: bytes) -> Commit:
        """A commit-status request from ``Commit.bytes()``."""
        return parse_commit(self._client, self._signing_id, data)

    def new_signed_commit(self, data: bytes, signature: bytes) -> Commit:
        """A commit-status request from ``Commit.bytes()`` with the signature of its digest."""
        commit = self.new_commit(data)
        commit._set_signature(signature)
        return commit

    def new_chaincode_events_request(self, data: bytes) -> ChaincodeEventsRequest:
        """A chaincode events request from ``ChaincodeEventsRequest.bytes()``."""
        return parse_chaincode_events_request(self._client, self._signing_id, data)

    def new_signed_chaincode_events_request(
        self, data: bytes, signature: bytes
    ) -> ChaincodeEventsRequest:
        """A chaincode events request from its bytes with the signature of its digest."""
        request = self.new_chaincode_events_request(data)
        request._set_signature(signature)
        return request

    def new_block_events_request(self, data: bytes, *, kind: str = "block") -> BlockEventsRequest:
        """A block events request from ``BlockEventsRequest.bytes()``."""
        return parse_block_events_request(self._client, self._signing_id, kind, data)

    def new_signed_block_events_request(
        self, data: bytes, signature: bytes, *, kind: str = "block"
    ) -> BlockEventsRequest:
        """A block events request from its bytes with the signature of its digest."""
        request = self.new_block_events_request(data, kind=kind)
        request._set_signature(signature)
        return request


def tls_channel(
    endpoint: str,
    tls_root_cert_pem: bytes | None,
    server_name_override: str | None = None,
    client_cert_pem: bytes | None = None,
    client_key_pem: bytes | None = None,
    *,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """A grpc.aio secure channel to ``endpoint`` (``host:port``).

    ``tls_root_cert_pem`` is the peer's TLS CA (``None``: the system roots).
    ``server_name_override`` sets ``grpc.ssl_target_name_override`` (the name checked against
    the peer's certificate when it differs from the dialled host). Give both
    ``client_cert_pem`` and ``client_key_pem`` for mutual TLS. Messages up to 100 MiB are
    allowed both ways unless ``options`` say otherwise.
    """
    if (client_cert_pem is None) != (client_key_pem is None):
        raise ValueError("mutual TLS needs both client_cert_pem and client_key_pem")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=tls_root_cert_pem,
        private_key=client_key_pem,
        certificate_chain=client_cert_pem,
    )
    merged: dict[str, Any] = {
        "grpc.max_receive_message_length": MAX_MESSAGE_LENGTH,
        "grpc.max_send_message_length": MAX_MESSAGE_LENGTH,
    }
    if server_name_override:
        merged["grpc.ssl_target_name_override"] = server_name_override
    merged.update(dict(options))
    return grpc.aio.secure_channel(endpoint, credentials, options=list(merged.items()))
