"""Checkpointers: where an event listener stopped, so that a restarted one resumes there.

A checkpoint is a block number and, optionally, a transaction id within that block:

* after ``checkpoint_chaincode_event(event)`` (or ``checkpoint_transaction(block, tx_id)``),
  the checkpoint is ``(event.block_number, event.transaction_id)``. Resuming asks the peer for
  events from that block *after* that transaction: the events later in the same block are still
  delivered, the processed ones are not repeated.
* after ``checkpoint_block(n)`` the checkpoint is ``(n + 1, None)``: the next block, whole.

A listener calls the checkpointer after it has processed an event (never before), so a crash
between the two re-delivers that event rather than losing it. This is fabric-gateway's scheme.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from fabgateway.errors import CheckpointError

if TYPE_CHECKING:
    from fabgateway.events import ChaincodeEvent

__all__ = ["Checkpoint", "Checkpointer", "FileCheckpointer", "InMemoryCheckpointer"]


@runtime_checkable
class Checkpoint(Protocol):
    """A position to resume event delivery from."""

    @property
    def block_number(self) -> int | None:
        """The block to start from (``None``: no checkpoint yet)."""
        ...

    @property
    def transaction_id(self) -> str | None:
        """The last processed transaction in that block (``None``: start at the block's start)."""
        ...


@runtime_checkable
class Checkpointer(Checkpoint, Protocol):
    """A checkpoint that a listener advances as it processes events."""

    def checkpoint_block(self, block_number: int) -> None:
        """Record that every event of ``block_number`` has been processed."""
        ...

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        """Record that the events of ``transaction_id`` in ``block_number`` have been processed."""
        ...

    def checkpoint_chaincode_event(self, event: ChaincodeEvent) -> None:
        """Record that ``event`` has been processed."""
        ...


class InMemoryCheckpointer:
    """A checkpointer held in memory: resumes a listener within one process."""

    def __init__(self) -> None:
        self._block_number: int | None = None
        self._transaction_id: str | None = None

    @property
    def block_number(self) -> int | None:
        return self._block_number

    @property
    def transaction_id(self) -> str | None:
        return self._transaction_id

    def checkpoint_block(self, block_number: int) -> None:
        self._block_number = block_number + 1
        self._transaction_id = None

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        self._block_number = block_number
        self._transaction_id = transaction_id

    def checkpoint_chaincode_event(self, event: ChaincodeEvent) -> None:
        self.checkpoint_transaction(event.block_number, event.transaction_id)


class FileCheckpointer:
    """A checkpointer persisted as JSON in ``path``, replaced atomically at each checkpoint.

    Each write goes to a temporary file in the same folder, is flushed to disk, then renamed over
    ``path`` (``os.replace``): a crash leaves either the old checkpoint or the new one, never a
    torn file. The file holds ``{"blockNumber": n, "transactionId": "..."}`` like
    fabric-gateway's file checkpointer.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        self._block_number: int | None = None
        self._transaction_id: str | None = None
        self._load()

    @property
    def path(self) -> Path:
        return self._path

    @property
    def block_number(self) -> int | None:
        return self._block_number

    @property
    def transaction_id(self) -> str | None:
        return self._transaction_id

    def checkpoint_block(self, block_number: int) -> None:
        self._save(block_number + 1, None)

    def checkpoint_transaction(self, block_number: int, transaction_id: str) -> None:
        self._save(block_number, transaction_id)

    def checkpoint_chaincode_event(self, event: ChaincodeEvent) -> None:
        self.checkpoint_transaction(event.block_number, event.transaction_id)

    def _load(self) -> None:
        try:
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as error:
            raise CheckpointError(f"{self._path}: cannot read checkpoint: {error}") from error
        if not text.strip():
            return
        try:
            state = json.loads(text)
        except json.JSONDecodeError as error:
            raise CheckpointError(f"{self._path}: checkpoint is not JSON: {error}") from error
        if not isinstance(state, dict):
            raise CheckpointError(f"{self._path}: checkpoint must be a JSON object")
        block = state.get("blockNumber")
        transaction_id = state.get("transactionId")
        if block is not None and (isinstance(block, bool) or not isinstance(block, int | str)):
            raise CheckpointError(f"{self._path}: blockNumber must be an integer")
        if transaction_id is not None and not isinstance(transaction_id, str):
            raise CheckpointError(f"{self._path}: transactionId must be a string")
        try:
            self._block_number = int(block) if block is not None else None
        except ValueError as error:
            raise CheckpointError(f"{self._path}: blockNumber must be an integer") from error
        if self._block_number is not None and self._block_number < 0:
            raise CheckpointError(f"{self._path}: blockNumber must not be negative")
        self._transaction_id = transaction_id or None

    def _save(self, block_number: int, transaction_id: str | None) -> None:
        state = {"blockNumber": block_number, "transactionId": transaction_id}
        data = json.dumps(state).encode("utf-8")
        folder = self._path.parent
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{self._path.name}.", dir=folder)
            try:
                with os.fdopen(fd, "wb") as tmp:
                    tmp.write(data)
                    tmp.flush()
                    os.fsync(tmp.fileno())
                os.replace(tmp_name, self._path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_name)
                raise
            _fsync_dir(folder)
        except OSError as error:
            raise CheckpointError(f"{self._path}: cannot write checkpoint: {error}") from error
        self._block_number = block_number
        self._transaction_id = transaction_id


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
