"""Idempotent submission: every write carries a reference, and a reference executes once.

How (docs/sdk.md, "Retries and idempotency", says the same with the reasons):

* **Transaction ids are derived, not drawn.** Attempt ``n`` of a write with reference ``R`` has
  the nonce ``HMAC-SHA256(client secret, "dtoken/nonce/v1", name, R, SHA-256(request), n)``
  truncated to 24 bytes, so its transaction id ``SHA-256(nonce || creator)`` is the same in
  every process that retries it. Fabric executes a transaction id at most once: a peer refuses
  to endorse an id its ledger holds (valid *or* invalid), the committer invalidates a second
  copy as ``DUPLICATE_TXID``. Mixing in the transaction name and the request digest means a
  reference reused for a *different* request gets other ids, and the contract's own reference
  record refuses it (``DUPLICATE_REFERENCE``) instead of the SDK answering for the other one.
* **Attempts advance only on proof of failure.** Attempt ``n + 1`` is endorsed only once the
  ledger holds attempt ``n`` as invalid (an MVCC conflict, say): Fabric keeps invalid ids too,
  so ``n`` cannot be reused, and since ``n`` can no longer commit, ``n + 1`` cannot apply the
  reference a second time. Whenever attempt ``n``'s fate is unknown (a lost reply, a commit
  status that timed out), the SDK sends attempt ``n`` *again*: either the peer answers
  "duplicate" (then its status is read) or the same id is ordered again and at most one copy
  commits. A fresh process walks from attempt 0 the same way, so a restart loses nothing.
* **A detected replay is never submitted.** "Duplicate" at endorsement means the id is in the
  ledger: the SDK reads its status and returns that outcome (``Receipt.replayed``); it does not
  submit anything (a transaction that writes nothing would be invalidated anyway).
* **A refusal is checked against in-flight copies.** The contract may refuse attempt ``n``
  *because* an earlier copy of ``n`` just committed (a burn retried after it took effect finds
  no funds). So a refusal is re-checked: if this call may have sent ``n`` already, the SDK
  waits for ``n``'s status; otherwise it asks the peer once more whether ``n`` is in the
  ledger (an evaluate with the same nonce is refused as a duplicate if it is).
* **No reference dies of contention.** A call keeps walking after conflicts (with a jittered
  pause, so that callers contending for one key spread out) until ``outcome_timeout``; then it
  raises :class:`~dtoken.errors.Contended`, which says nothing was applied. A later call with
  the same reference walks past every attempt the ledger holds as invalid (whatever code
  invalidated it: an invalid transaction applied nothing) and goes on from the first attempt
  the ledger does not hold. Only the contract's refusals, and a transaction *this* call sent
  that committed invalid for a reason retrying cannot cure, end a call with an error that is
  not worth retrying.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import fabgateway
import grpc
from dtoken_wire import TRANSIENT_KEY, canonical_json

from dtoken.errors import (
    CommitFailed,
    Contended,
    ContractError,
    DuplicateReference,
    NetworkFault,
    OutcomeUnknown,
    PeerUnavailable,
    UsageError,
    contract_error,
)

__all__ = [
    "NONCE_LENGTH",
    "Receipt",
    "RetryPolicy",
    "Submitter",
    "derive_nonce",
]

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

NONCE_LENGTH = 24
_NONCE_LABEL = b"dtoken/nonce/v1"
#: Invalidation codes after which the next attempt may succeed (the reads changed). An
#: ``ENDORSEMENT_POLICY_FAILURE`` of this bank's own honest transaction is a conflict too: a key
#: it writes was created and pinned (a key-level validation parameter) by another transaction
#: after this one was simulated, and Fabric checks endorsement policies, with the committed
#: parameter, before MVCC versions (two first account openings racing to share the bank's
#: account key with the regulator, say). The next attempt is simulated on the new state.
RETRYABLE_CODES = frozenset(
    {"MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT", "ENDORSEMENT_POLICY_FAILURE"})
_TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
    }
)


def derive_nonce(secret: bytes, name: str, reference: str, request: bytes, attempt: int) -> bytes:
    """The nonce of attempt ``attempt`` of transaction ``name`` with ``reference``."""
    if attempt < 0:
        raise ValueError("attempt must not be negative")
    message = b"\0".join(
        (
            _NONCE_LABEL,
            name.encode(),
            reference.encode(),
            hashlib.sha256(request).digest(),
            str(attempt).encode(),
        )
    )
    return hmac.new(secret, message, hashlib.sha256).digest()[:NONCE_LENGTH]


@dataclass(frozen=True)
class Receipt:
    """A committed, valid write."""

    reference: str
    transaction: str
    """The contract transaction name (``mint``, ``initiate_transfer`` ...)."""
    tx_id: str
    block_number: int
    attempt: int
    """Which derived attempt committed (0 unless earlier ones were invalidated)."""
    replayed: bool
    """True when the reference had already been applied before this call sent anything: the
    receipt is the first execution's, and this call executed nothing."""
    result: bytes = field(default=b"", repr=False, compare=False)
    """The contract's response as endorsed for the committed attempt (empty when this call
    did not endorse it: a replay)."""

    def item_codes(self, count: int, what: str) -> list[str]:
        """The per-item codes of a batch whose items are applied one by one (``OK`` or the
        refusal's code, in request order): ``NetworkFault`` if the response lacks one per
        item. Only for a receipt with a ``result`` (not a replay)."""
        try:
            codes = json.loads(self.result).get("results")
        except (ValueError, AttributeError):
            codes = None
        if not isinstance(codes, list) or len(codes) != count:
            raise NetworkFault(f"{self.transaction}: the response has no result per {what}")
        return [str(code) for code in codes]


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the SDK tries before giving up (seconds for times)."""

    max_attempts: int | None = None
    """Attempts one call may *send* and see invalidated by a conflict before it raises
    :class:`~dtoken.errors.Contended` (``None``: until ``outcome_timeout``). Attempts found
    invalid in the ledger by a later call are walked past and do not count."""
    call_retries: int = 4
    """Retries of one gRPC step that failed in transport (peer unreachable, deadline)."""
    backoff: float = 0.1
    """First pause between retries; doubled each time, at most 2 s."""
    commit_timeout: float = 20.0
    """How long one wait for a commit status lasts before the attempt is sent again."""
    outcome_timeout: float = 90.0
    """How long a call may try to learn a sent attempt's fate before ``OutcomeUnknown``."""


class _Duplicate(Exception):
    """The peer refused to endorse: the transaction id is in its ledger already."""


class Submitter:
    """Endorse, submit and confirm writes with derived transaction ids (see module doc).

    One per gateway identity. ``lookup_reference`` answers which transaction applied a
    reference (the contract's ``get_reference``), or ``None`` for writes that keep no reference
    record; it is used when the contract says ``DUPLICATE_REFERENCE``. ``probe_transaction``
    is a cheap read the peer runs to tell whether an id is in its ledger.
    """

    def __init__(
        self,
        contract: fabgateway.Contract,
        network: fabgateway.Network,
        secret: bytes,
        *,
        policy: RetryPolicy | None = None,
        lookup_reference: Callable[[str], Awaitable[str | None]] | None = None,
        probe_transaction: str = "get_registry",
    ) -> None:
        if len(secret) < 16:
            raise UsageError("the client secret must be at least 16 bytes")
        self._contract = contract
        self._network = network
        self._secret = secret
        self.policy = policy or RetryPolicy()
        self._lookup_reference = lookup_reference
        self.probe_transaction = probe_transaction

    def transaction_id(
        self, name: str, request: Mapping[str, object], reference: str, attempt: int
    ) -> str:
        """The transaction id attempt ``attempt`` of this write has (for tests and audits)."""
        nonce = derive_nonce(self._secret, name, reference, canonical_json(request), attempt)
        return self._contract.new_proposal(name, nonce=nonce).transaction_id

    async def evaluate(
        self,
        name: str,
        request: Mapping[str, object] | None,
        *,
        target_organizations: Sequence[str],
    ) -> Any:
        """Run a read on the target organizations' peers; return the parsed JSON result."""
        transient = None if request is None else {TRANSIENT_KEY: canonical_json(request)}

        async def call() -> bytes:
            return await self._contract.evaluate(
                name, transient_data=transient, endorsing_organizations=target_organizations
            )

        raw = await self._retrying(call, f"evaluate {name}")
        try:
            return json.loads(raw) if raw else None
        except ValueError as error:
            raise NetworkFault(f"{name}: the peer answered with non-JSON bytes") from error

    async def submit(
        self,
        name: str,
        request: Mapping[str, object],
        *,
        reference: str,
        endorsing_organizations: Sequence[str],
        chaincode: str | None = None,
    ) -> Receipt:
        """Apply the write ``name`` once for ``reference``; see the module doc for how.

        ``chaincode``: the namespace to invoke, if not the contract's own (under the namespace
        layout, ``expire_lock`` starts in a pair namespace). The transaction id does not
        depend on it, so probes for an attempt still go through the contract's own.

        Raises a :class:`~dtoken.errors.ContractError` if the contract refuses,
        :class:`~dtoken.errors.CommitFailed` if it commits invalid for a reason retrying cannot
        cure (or every attempt was spent), :class:`~dtoken.errors.OutcomeUnknown` if it was
        sent but its fate could not be learnt in time (retry with the same reference), and
        :class:`~dtoken.errors.NetworkFault` if nothing could be sent.
        """
        if not reference or len(reference) > 128:
            raise UsageError("a reference is 1 to 128 characters")
        body = canonical_json(request)
        contract = None if chaincode is None else self._network.get_contract(chaincode)
        run = _Run(self, name, body, reference, list(endorsing_organizations), contract)
        return await run.execute()

    async def status_of(self, tx_id: str) -> fabgateway.Status:
        """The commit status of a transaction known to be in the ledger (``NetworkFault`` if
        it does not come within ``commit_timeout``)."""
        run = _Run(self, "status", b"", tx_id, [])
        return await run.known_status(tx_id)

    # --- steps shared with _Run -----------------------------------------------------------

    async def _retrying(self, call: Callable[[], Awaitable[_T]], what: str) -> _T:
        """``call()``, retried on transport failures; contract refusals are mapped."""
        delay = self.policy.backoff
        for attempt in range(self.policy.call_retries + 1):
            try:
                return await call()
            except fabgateway.CallError as error:
                if error.chaincode_message is not None:
                    refusal = contract_error(error.chaincode_message, transaction_id=_tx_id(error))
                    # A peer that could not read its ledger refused nothing: a node fault.
                    if not isinstance(refusal, PeerUnavailable):
                        raise refusal from None
                    transient = True
                elif error.is_duplicate_transaction:
                    raise _Duplicate(str(error)) from None
                else:
                    transient = error.code in _TRANSIENT_CODES
                if not transient or attempt == self.policy.call_retries:
                    raise NetworkFault(f"{what}: {_first_line(error)}") from error
                _log.info("%s: %s; retrying", what, error.code.name)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")


class _Run:
    """One ``Submitter.submit`` call: the attempt walk and what it has sent."""

    def __init__(
        self, owner: Submitter, name: str, body: bytes, reference: str, endorsers: list[str],
        contract: fabgateway.Contract | None = None,
    ) -> None:
        self.owner = owner
        self.contract = contract or owner._contract  # where the proposal goes
        self.policy = owner.policy
        self.name = name
        self.body = body
        self.reference = reference
        self.endorsers = endorsers
        self.started = time.monotonic()
        self.sent: dict[int, str] = {}  # attempts this call may have ordered, fate unknown
        self.ids: dict[int, str] = {}
        self.results: dict[int, bytes] = {}  # endorsed responses, by attempt
        self.conflicts = 0  # attempts this call sent that a conflict invalidated

    def proposal(self, attempt: int) -> fabgateway.Proposal:
        nonce = derive_nonce(self.owner._secret, self.name, self.reference, self.body, attempt)
        proposal = self.contract.new_proposal(
            self.name,
            transient_data={TRANSIENT_KEY: self.body},
            endorsing_organizations=self.endorsers,
            nonce=nonce,
        )
        self.ids[attempt] = proposal.transaction_id
        return proposal

    def receipt(self, status: fabgateway.Status, attempt: int, replayed: bool) -> Receipt:
        return Receipt(
            reference=self.reference,
            transaction=self.name,
            tx_id=status.transaction_id,
            block_number=status.block_number,
            attempt=attempt,
            replayed=replayed,
            result=b"" if replayed else self.results.get(attempt, b""),
        )

    def unknown(self, why: str) -> OutcomeUnknown:
        return OutcomeUnknown(
            f"{self.name}: {why}; the outcome is unknown: retry with the same reference "
            f"{self.reference!r} (it cannot apply twice)",
            reference=self.reference,
            transaction_ids=tuple(self.sent.values()),
        )

    def out_of_time(self) -> bool:
        return time.monotonic() - self.started > self.policy.outcome_timeout

    async def execute(self) -> Receipt:
        attempt = 0
        while True:
            outcome = await self.try_attempt(attempt)
            if isinstance(outcome, Receipt):
                return outcome
            attempt = outcome

    async def after_conflict(self, attempt: int, tx_id: str) -> None:
        """Attempt ``attempt``, sent by this call, lost a conflict: pause, or give the call up
        (never the reference) with :class:`Contended`."""
        self.conflicts += 1
        cap = self.policy.max_attempts
        if (cap is not None and self.conflicts >= cap) or self.out_of_time():
            raise Contended(
                f"{self.name}: {self.conflicts} attempts of reference {self.reference!r} lost "
                f"a conflict; nothing was applied: call again with the same reference",
                reference=self.reference,
                transaction_id=tx_id,
                next_attempt=attempt + 1,
            )
        pause = min(self.policy.backoff * 2 ** min(self.conflicts - 1, 5), 2.0)
        await asyncio.sleep(random.uniform(0, pause))  # noqa: S311 (spreading, not secrecy)

    async def try_attempt(self, attempt: int) -> Receipt | int:
        """One round of attempt ``attempt``: a receipt, or the attempt number to go on with."""
        proposal = self.proposal(attempt)
        tx_id = proposal.transaction_id
        try:
            transaction = await self.owner._retrying(
                lambda: proposal.endorse(), f"endorse {self.name}"
            )
        except _Duplicate:
            replayed = attempt not in self.sent  # else: the copy this call sent committed
            return await self.settle(attempt, await self.known_status(tx_id), replayed=replayed)
        except ContractError as refusal:
            return await self.recheck_refusal(attempt, proposal, refusal)
        except NetworkFault as fault:
            if self.sent:
                raise self.unknown(str(fault)) from fault
            raise
        self.sent[attempt] = tx_id
        self.results[attempt] = transaction.result
        try:
            await self.owner._retrying(lambda: transaction.submit(), f"submit {self.name}")
        except (NetworkFault, _Duplicate) as error:
            # The orderers may have it anyway: learn its fate before anything else.
            _log.info("submit %s %s: %s", self.name, tx_id[:12], error)
        status = await self.wait_status(tx_id)
        if status is None:
            if self.out_of_time():
                raise self.unknown("no commit status in time")
            return attempt  # send the same attempt again: same id, at most one commits
        return await self.settle(attempt, status, replayed=False)

    async def settle(
        self, attempt: int, status: fabgateway.Status, *, replayed: bool
    ) -> Receipt | int:
        """A receipt if ``status`` is valid; the next attempt if retrying may help."""
        self.sent.pop(attempt, None)
        if status.successful:
            return self.receipt(status, attempt, replayed)
        if replayed:
            # An earlier call's attempt, invalid: it applied nothing; walk on past it.
            return attempt + 1
        if status.code_name in RETRYABLE_CODES:
            _log.info("%s %s invalidated (%s): next attempt", self.name,
                      status.transaction_id[:12], status.code_name)
            await self.after_conflict(attempt, status.transaction_id)
            return attempt + 1
        raise CommitFailed(
            f"{self.name}: transaction {status.transaction_id} committed invalid "
            f"({status.code_name})",
            transaction_id=status.transaction_id,
            code_name=status.code_name,
        )

    async def recheck_refusal(
        self, attempt: int, proposal: fabgateway.Proposal, refusal: ContractError
    ) -> Receipt | int:
        """A refusal may be caused by an earlier copy of this very attempt: check first."""
        tx_id = proposal.transaction_id
        if isinstance(refusal, DuplicateReference):
            original = await self.original_of_reference()
            mine = {i: t for i, t in self.ids.items() if t == original}
            if original is not None and mine:
                (which,) = mine
                return await self.settle(which, await self.known_status(original), replayed=True)
            raise DuplicateReference(
                refusal.detail, transaction_id=tx_id, original_tx_id=original
            ) from None
        if attempt in self.sent:
            # This call sent this attempt before and does not know its fate: the refusal may
            # be its effect. Only its commit status can tell.
            status = await self.wait_status(tx_id, until_outcome_timeout=True)
            if status is None:
                raise self.unknown(f"refused ({refusal.code}) while an earlier copy is pending")
            return await self.settle(attempt, status, replayed=False)
        if await self.in_ledger(attempt):
            return await self.settle(attempt, await self.known_status(tx_id), replayed=True)
        raise refusal

    async def original_of_reference(self) -> str | None:
        lookup = self.owner._lookup_reference
        if lookup is None:
            return None
        try:
            return await lookup(self.reference)
        except ContractError:
            return None

    async def in_ledger(self, attempt: int) -> bool:
        """Whether the peer holds attempt ``attempt``'s id: it refuses to run any proposal
        with that id again. The probe is a cheap read (``probe_transaction``) under the same
        nonce; a probe the peer cannot answer (it may still hold the refused proposal's
        context for a moment) is retried, then taken as "not in the ledger"."""
        nonce = derive_nonce(self.owner._secret, self.name, self.reference, self.body, attempt)
        delay = self.policy.backoff
        for _ in range(self.policy.call_retries + 1):
            probe = self.owner._contract.new_proposal(
                self.owner.probe_transaction, nonce=nonce,
                endorsing_organizations=self.endorsers,
            )
            try:
                await self.owner._retrying(probe.evaluate, f"probe {self.name}")
            except _Duplicate:
                return True
            except ContractError:
                return False  # it ran: the id is not in the ledger
            except NetworkFault as fault:
                _log.info("probe %s: %s", self.name, fault)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            return False
        return False

    async def known_status(self, tx_id: str) -> fabgateway.Status:
        """The status of a transaction the peer says is in its ledger."""
        status = await self.wait_status(tx_id)
        if status is None:
            raise NetworkFault(f"{self.name}: no status for committed transaction {tx_id}")
        return status

    async def wait_status(
        self, tx_id: str, *, until_outcome_timeout: bool = False
    ) -> fabgateway.Status | None:
        """The commit status of ``tx_id``, or ``None`` if it did not come in time.

        Waits ``commit_timeout`` (or until ``outcome_timeout`` of the whole call), retrying
        transport failures; a transaction unknown to the ledger simply makes the call wait.
        """
        policy = self.policy
        limit = policy.commit_timeout
        if until_outcome_timeout:
            limit = max(policy.outcome_timeout - (time.monotonic() - self.started), 0.0)
        deadline = time.monotonic() + limit
        delay = policy.backoff
        commit = self.owner._network.new_commit(tx_id)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                return await commit.get_status(timeout=remaining)
            except fabgateway.CommitStatusError as error:
                if error.code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    return None
                _log.info("commit status %s: %s", tx_id[:12], error.code.name)
            await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0.0)))
            delay = min(delay * 2, 2.0)


def _tx_id(error: fabgateway.CallError) -> str | None:
    return error.transaction_id if isinstance(error, fabgateway.TransactionError) else None


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
