"""The exceptions fabgateway raises, one per stage, and the gRPC status unpacking behind them.

::

    GatewayError                     root: everything this package raises on purpose
    ├── CallError                    a Gateway or Deliver gRPC call failed: code, status_message,
    │   │                            details (per-peer ErrorDetail), chaincode_message,
    │   │                            chaincode_status, is_duplicate_transaction
    │   ├── TransactionError         ... for one transaction: + transaction_id
    │   │   ├── EvaluateError
    │   │   │   └── NotInLedgerError no such transaction or block (qscc): function, argument
    │   │   ├── EndorseError
    │   │   ├── SubmitError
    │   │   └── CommitStatusError
    │   ├── ChaincodeEventsError
    │   └── BlockEventsError         (+ deliver_status when the peer answered with a status)
    ├── CommitError                  the transaction committed, but invalid: code, code_name
    ├── SigningError                 no signer, or the signer failed
    ├── MalformedMessageError        bytes that do not parse as expected (also ValueError)
    └── CheckpointError              a checkpoint file that cannot be read or written (also OSError)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from fabgateway import _rpc_status
from fabgateway._protos import gateway_pb2, transaction_pb2

__all__ = [
    "BlockEventsError",
    "CallError",
    "ChaincodeEventsError",
    "CheckpointError",
    "CommitError",
    "CommitStatusError",
    "EndorseError",
    "ErrorDetail",
    "EvaluateError",
    "GatewayError",
    "MalformedMessageError",
    "NotInLedgerError",
    "SigningError",
    "SubmitError",
    "TransactionError",
    "validation_code_name",
]

_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_ERROR_DETAIL_TYPE = "gateway.ErrorDetail"
_DUPLICATE = "duplicate transaction found"
_CHAINCODE_RESPONSE = re.compile(r"chaincode response (\d+), (.*)", re.DOTALL)


@dataclass(frozen=True)
class ErrorDetail:
    """What one peer (or orderer) said, as the Gateway reports it in the gRPC status details."""

    address: str
    msp_id: str
    message: str


class GatewayError(Exception):
    """Root of every exception raised by fabgateway."""


class CallError(GatewayError):
    """A gRPC call to the Gateway (or Deliver) service failed.

    ``code`` is the gRPC status code, ``status_message`` the status text, ``details`` the
    per-endpoint errors unpacked from the ``grpc-status-details-bin`` trailer (a
    ``google.rpc.Status`` whose details are ``gateway.ErrorDetail``).
    """

    def __init__(
        self,
        status_message: str,
        *,
        code: grpc.StatusCode,
        details: Sequence[ErrorDetail] = (),
    ) -> None:
        self.code = code
        self.status_message = status_message
        self.details: list[ErrorDetail] = list(details)
        super().__init__(self._describe())

    def _prefix(self) -> str:
        return ""

    def _describe(self) -> str:
        lines = [f"{self._prefix()}{self.code.name}: {self.status_message}"]
        for detail in self.details:
            lines.append(f"  - {detail.address} ({detail.msp_id}): {detail.message}")
        return "\n".join(lines)

    @property
    def chaincode_status(self) -> int | None:
        """The status the chaincode answered with (e.g. 500), when the failure came from it."""
        found = self._chaincode_match()
        return int(found.group(1)) if found else None

    @property
    def chaincode_message(self) -> str | None:
        """The chaincode's own error message, when the failure came from the chaincode.

        The Gateway reports a chaincode error as ``chaincode response 500, <message>`` in a
        detail (and, for evaluate, in the status message too); this returns ``<message>``.
        """
        found = self._chaincode_match()
        return found.group(2) if found else None

    @property
    def is_duplicate_transaction(self) -> bool:
        """True when a peer refused the transaction id as already in its ledger.

        A peer refuses to endorse a transaction id that its ledger holds, committed valid or
        invalid ("duplicate transaction found"): the retry of a transaction that was already
        ordered. Ask its fate with ``network.new_commit(transaction_id).get_status()``.
        """
        texts = [d.message for d in self.details] + [self.status_message]
        return any(_DUPLICATE in text for text in texts)

    def _chaincode_match(self) -> re.Match[str] | None:
        for text in [d.message for d in self.details] + [self.status_message]:
            found = _CHAINCODE_RESPONSE.search(text)
            if found:
                return found
        return None


class TransactionError(CallError):
    """A gRPC call about one transaction failed; carries its ``transaction_id``."""

    def __init__(
        self,
        status_message: str,
        *,
        code: grpc.StatusCode,
        transaction_id: str,
        details: Sequence[ErrorDetail] = (),
    ) -> None:
        self.transaction_id = transaction_id
        super().__init__(status_message, code=code, details=details)

    def _prefix(self) -> str:
        return f"transaction {self.transaction_id}: "


class EvaluateError(TransactionError):
    """The Evaluate call failed (the chaincode refused, no peer, timeout ...)."""

    def _prefix(self) -> str:
        return f"evaluate failed, {super()._prefix()}"


class NotInLedgerError(EvaluateError):
    """The peer's ledger has no such transaction or block (a ``qscc`` query answered so).

    ``function`` is the query (``GetTransactionByID`` ...), ``argument`` what was asked (the
    transaction id, the block number). Raised at once: nothing waits for it to appear.
    ``transaction_id`` is the query's own proposal id, not the one asked about.
    """

    def __init__(
        self,
        status_message: str,
        *,
        code: grpc.StatusCode,
        transaction_id: str,
        function: str,
        argument: str,
        details: Sequence[ErrorDetail] = (),
    ) -> None:
        self.function = function
        self.argument = argument
        super().__init__(status_message, code=code, transaction_id=transaction_id, details=details)

    def _prefix(self) -> str:
        return f"{self.function}({self.argument}): not in the ledger; "


class EndorseError(TransactionError):
    """The Endorse call failed: the transaction was not endorsed and not sent to ordering."""

    def _prefix(self) -> str:
        return f"endorse failed, {super()._prefix()}"


class SubmitError(TransactionError):
    """The Submit call failed: the orderers may or may not have received the transaction."""

    def _prefix(self) -> str:
        return f"submit failed, {super()._prefix()}"


class CommitStatusError(TransactionError):
    """The CommitStatus call failed: the commit status of the transaction is unknown."""

    def _prefix(self) -> str:
        return f"commit status failed, {super()._prefix()}"


class ChaincodeEventsError(CallError):
    """The ChaincodeEvents stream failed."""

    def _prefix(self) -> str:
        return "chaincode events failed, "


class BlockEventsError(CallError):
    """The Deliver stream failed; ``deliver_status`` is the peer's common.Status if it sent one."""

    def __init__(
        self,
        status_message: str,
        *,
        code: grpc.StatusCode,
        details: Sequence[ErrorDetail] = (),
        deliver_status: int | None = None,
    ) -> None:
        self.deliver_status = deliver_status
        super().__init__(status_message, code=code, details=details)

    def _prefix(self) -> str:
        return "block events failed, "


class CommitError(GatewayError):
    """The transaction was committed to a block but marked invalid (MVCC_READ_CONFLICT ...).

    ``code`` is the ``peer.TxValidationCode`` number, ``code_name`` its name.
    """

    def __init__(self, transaction_id: str, code: int, code_name: str | None = None) -> None:
        self.transaction_id = transaction_id
        self.code = code
        self.code_name = code_name if code_name is not None else validation_code_name(code)
        super().__init__(
            f"transaction {transaction_id} failed to commit with status code {code} "
            f"({self.code_name})"
        )


class SigningError(GatewayError):
    """No signer was supplied (off-line signing expected), or the signer raised."""


class MalformedMessageError(GatewayError, ValueError):
    """Bytes that do not parse as the message expected (off-line signed bytes, a response)."""


class CheckpointError(GatewayError, OSError):
    """A checkpoint file that cannot be read, parsed or written."""


def validation_code_name(code: int) -> str:
    """The ``peer.TxValidationCode`` name for ``code`` (``"UNKNOWN_<n>"`` if it has none)."""
    try:
        return str(transaction_pb2.TxValidationCode.Name(code))
    except ValueError:
        return f"UNKNOWN_{code}"


def error_details(error: grpc.aio.AioRpcError) -> list[ErrorDetail]:
    """The ``gateway.ErrorDetail`` entries of the ``grpc-status-details-bin`` trailer."""
    # grpc.aio yields (key, value) pairs; grpc-stubs types the items as _Metadatum.
    metadata: Any = error.trailing_metadata()
    if metadata is None:
        return []
    results: list[ErrorDetail] = []
    for item in metadata:
        key, value = (item.key, item.value) if hasattr(item, "key") else item
        if key != _STATUS_DETAILS_KEY:
            continue
        raw = value if isinstance(value, bytes) else str(value).encode("latin-1")
        results.extend(_details_from_status(raw))
    return results


def _details_from_status(raw: bytes) -> list[ErrorDetail]:
    status = _rpc_status.Status()
    try:
        status.ParseFromString(raw)
    except Exception:
        return []
    results: list[ErrorDetail] = []
    for any_detail in status.details:
        if any_detail.type_url.rsplit("/", 1)[-1] != _ERROR_DETAIL_TYPE:
            continue
        detail = gateway_pb2.ErrorDetail()
        try:
            detail.ParseFromString(any_detail.value)
        except Exception:  # noqa: S112 - skip an undecodable detail, keep the others
            continue
        results.append(
            ErrorDetail(address=detail.address, msp_id=detail.msp_id, message=detail.message)
        )
    return results


def _status_message(error: grpc.aio.AioRpcError) -> str:
    return error.details() or ""
