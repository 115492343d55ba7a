"""The block monitor: what no Fabric validation prevents, seen in the blocks and named.

What it owns: following the channel's blocks with the private data this organization may see
(Deliver ``block_and_private_data``), from a checkpoint kept with the monitor's own state, and
raising typed alerts:

* :class:`PlantedParameter`: a metadata write whose validation parameter does not parse or
  compile as a policy (hyperledger/fabric#3105: the next write of that key halts block
  processing on every peer), naming the writer (creator MSP, endorsers), collection, key hash,
  block and transaction. Any organization's monitor raises it.
* :class:`HoldBreach` (the regulator's): a VALID transaction that lowered the balance of an
  account under a full freeze, lowered it below an amount hold, deleted or purged a held
  account, or wrote one with a value the regulator's peer did not receive; it names the bank
  and the transaction. The holds are learnt from the ``holds-<bank>`` private data delivered
  to the regulator's peer (the regulator writes them); the held account's key comes from the
  hold's key (:func:`dtoken_wire.keys.held_account_key`: no account id is hashed here, so an
  unlinkable key scheme changes nothing); the balances from the ``acct-<bank>`` private
  data, of which the monitor keeps its own copy (the last balance of each account it saw
  written), so a debit is the delivered balance compared with the previous one.
* :class:`PrivateDataAlert`: private data delivered with a block that does not hash to the
  committed hashes, or missing for a collection this organization is a member of: a bank
  withholding or tampering with what another member's peer receives.

The decoding is :mod:`fabgateway.blocks`, the checks :mod:`fabgateway.ledger_order` and
:mod:`fabgateway.validation_parameters`; the account and hold keys come from
:mod:`dtoken_wire.keys` (the one place that knows them on the client side).

What it must not do: write to the ledger, or prevent anything (an alert comes after the
commit: see docs/security.md for what each alert cannot prevent); decode blocks itself; log a
private value (an alert carries key hashes and balances only for the regulator's own output).

One file of ~580 lines on purpose: the alerts, the state they are computed from and the loop
that follows blocks into that state are one mechanism; the alerts alone are data classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import fabgateway
from dtoken_wire.keys import (
    held_account_key,
    holds_collection,
    member_collections,
)
from fabgateway.blocks import Block, BlockTransaction, HashedWrite, key_hash
from fabgateway.ledger_order import (
    PrivateDataMismatch,
    private_data_mismatches,
    purged_keys,
)
from fabgateway.validation_parameters import (
    MalformedValidationParameter,
    malformed_validation_parameters,
)

from dtoken.bank import Member
from dtoken.errors import UsageError
from dtoken.profile import Profile

__all__ = [
    "Alert",
    "AlertKind",
    "BlockMonitor",
    "HeldAccount",
    "HoldBreach",
    "MonitorState",
    "PlantedParameter",
    "PrivateDataAlert",
    "alert_json",
    "default_state_path",
    "follow",
]

_log = logging.getLogger(__name__)

_ACCT_PREFIX = "acct-"
_HOLDS_PREFIX = "holds-"


class AlertKind(enum.Enum):
    PLANTED_PARAMETER = "planted_parameter"
    HOLD_BREACH = "hold_breach"
    PRIVATE_DATA = "private_data"


@dataclass(frozen=True)
class PlantedParameter:
    """A validation parameter that does not parse (``unmarshals`` False: the #3105 case) or
    does not compile. ``key_hash`` is hex (a private key), ``key`` a public key in clear."""

    block_number: int
    tx_index: int
    transaction_id: str
    creator_msp_id: str
    endorser_msp_ids: tuple[str, ...]
    is_valid: bool
    namespace: str
    collection: str | None
    key: str | None
    key_hash: str | None
    reason: str
    unmarshals: bool
    kind: AlertKind = AlertKind.PLANTED_PARAMETER

    @classmethod
    def of(cls, found: MalformedValidationParameter) -> PlantedParameter:
        return cls(
            block_number=found.position.block_number,
            tx_index=found.position.tx_index,
            transaction_id=found.position.transaction_id,
            creator_msp_id=found.creator_msp_id,
            endorser_msp_ids=found.endorser_msp_ids,
            is_valid=found.is_valid,
            namespace=found.namespace,
            collection=found.collection,
            key=found.key,
            key_hash=found.key_hash.hex() if found.key_hash is not None else None,
            reason=found.reason,
            unmarshals=found.unmarshals,
        )

    def describe(self) -> str:
        where = self.collection or "public state"
        what = self.key if self.key is not None else f"key hash {(self.key_hash or '')[:16]}…"
        committed = "VALID" if self.is_valid else "invalid"
        return (
            f"planted validation parameter in {self.namespace}/{where} {what} by "
            f"{self.creator_msp_id} (endorsed by {', '.join(self.endorser_msp_ids) or 'none'}), "
            f"block {self.block_number} tx {self.transaction_id[:12]}… ({committed}): "
            f"{self.reason}"
        )


@dataclass(frozen=True)
class HoldBreach:
    """A VALID transaction that broke a regulator's hold on an account of ``bank``.

    ``previous_balance``/``balance`` are None where unknown (the value was not delivered, or
    the monitor had not seen the account before); ``what`` says what broke the hold.
    """

    block_number: int
    tx_index: int
    transaction_id: str
    bank: str
    account_id: str
    key_hash: str
    frozen: bool
    held_amount: int
    previous_balance: int | None
    balance: int | None
    creator_msp_id: str
    endorser_msp_ids: tuple[str, ...]
    what: str
    kind: AlertKind = AlertKind.HOLD_BREACH

    def describe(self) -> str:
        hold = "frozen" if self.frozen else f"hold of {self.held_amount}"
        return (
            f"hold breach at {self.bank}: account {self.account_id} ({hold}) {self.what}, "
            f"block {self.block_number} tx {self.transaction_id} "
            f"(creator {self.creator_msp_id})"
        )


@dataclass(frozen=True)
class PrivateDataAlert:
    """Private data delivered to this organization's peer that disagrees with the block
    (``problem``: missing, value_mismatch, unexpected, rwset_mismatch, malformed). The bank
    whose collection it is (``acct-``/``pair-<writer>-``) is the one whose peer alone wrote it."""

    block_number: int
    tx_index: int
    transaction_id: str
    namespace: str
    collection: str
    key_hash: str
    problem: str
    creator_msp_id: str
    kind: AlertKind = AlertKind.PRIVATE_DATA

    @classmethod
    def of(cls, found: PrivateDataMismatch, creator_msp_id: str) -> PrivateDataAlert:
        return cls(
            block_number=found.position.block_number,
            tx_index=found.position.tx_index,
            transaction_id=found.position.transaction_id,
            namespace=found.namespace,
            collection=found.collection,
            key_hash=found.key_hash.hex(),
            problem=found.problem.value,
            creator_msp_id=creator_msp_id,
        )

    def describe(self) -> str:
        key = f" key hash {self.key_hash[:16]}…" if self.key_hash else ""
        return (
            f"private data {self.problem} in {self.collection}{key}, block "
            f"{self.block_number} tx {self.transaction_id[:12]}… (creator {self.creator_msp_id})"
        )


Alert = PlantedParameter | HoldBreach | PrivateDataAlert


def alert_json(alert: Alert) -> dict[str, Any]:
    """An alert as JSON data (``kind`` by its value)."""
    data = asdict(alert)
    data["kind"] = alert.kind.value
    data["endorser_msp_ids"] = list(data.get("endorser_msp_ids", ()))
    return data


@dataclass
class HeldAccount:
    """A hold the monitor learnt from ``holds-<bank>``; ``hold_key_hash`` (hex) is the hash
    of the hold's own key, by which its release is recognised."""

    bank: str
    account_id: str
    frozen: bool
    held_amount: int
    hold_key_hash: str


@dataclass
class MonitorState:
    """What the monitor keeps between runs: the next block to read, the holds in force, the
    last balance seen of each account (by bank and key hash, hex), and the purged keys (whose
    values are erased on every peer by design, so never "missing").

    It is a :class:`fabgateway.Checkpoint` (``block_number``: the next block), and saves
    itself atomically (a temporary file renamed over ``path``): a crash leaves the old state
    or the new one, and the blocks after the old one are read again (alerts may repeat,
    never be lost).
    """

    next_block: int | None = None
    holds: dict[str, HeldAccount] = field(default_factory=dict)
    """By ``<bank>/<account key hash hex>``."""
    balances: dict[str, int] = field(default_factory=dict)
    """By ``<bank>/<account key hash hex>``."""
    purged: set[tuple[str, str, str]] = field(default_factory=set)
    path: Path | None = None

    @property
    def block_number(self) -> int | None:
        return self.next_block

    @property
    def transaction_id(self) -> str | None:
        return None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MonitorState:
        """The state saved in ``path`` (a new one if the file does not exist)."""
        where = Path(path)
        if not where.exists():
            return cls(path=where)
        try:
            data = json.loads(where.read_text(encoding="utf-8"))
            return cls(
                next_block=data["next_block"],
                holds={k: HeldAccount(**v) for k, v in data["holds"].items()},
                balances={k: int(v) for k, v in data["balances"].items()},
                purged={(a, b, c) for a, b, c in data["purged"]},
                path=where,
            )
        except (ValueError, KeyError, TypeError) as error:
            raise UsageError(f"{where}: not a monitor state file ({error})") from error

    def save(self) -> None:
        if self.path is None:
            return
        data = {
            "next_block": self.next_block,
            "holds": {k: asdict(v) for k, v in sorted(self.holds.items())},
            "balances": dict(sorted(self.balances.items())),
            "purged": sorted(self.purged),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".monitor-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _id(bank: str, hashed: bytes) -> str:
    return f"{bank}/{hashed.hex()}"


def _json_object(value: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _balance(value: bytes) -> int | None:
    """The balance of a delivered account record, or None if it is no account record."""
    data = _json_object(value)
    if data is None or data.get("type") != "account":
        return None
    balance = data.get("balance")
    return balance if type(balance) is int else None


class BlockMonitor:
    """Inspects decoded blocks (in ledger order) and returns the alerts of each.

    ``chaincode`` is the organization's own namespace; ``collections`` the collections whose
    private data this organization's peer must hold (see
    :func:`dtoken_wire.keys.member_collections`), either names (all in ``chaincode``: the
    single namespace) or a mapping from each name to the namespace that holds it (the
    namespace layout: ``acct-``/``holds-<bank>`` in ``<cc>-<bank>``, a pair in its pair
    namespace; :meth:`for_profile` asks :meth:`~dtoken.profile.Profile.namespace_of`). A
    collection's writes count only in the namespace that holds it: the same name written
    elsewhere is another chaincode's collection. ``watch_holds`` makes it the regulator's
    monitor (holds and balances are tracked, breaches raised). Pure over its
    :class:`MonitorState`: no network.
    """

    def __init__(
        self,
        chaincode: str,
        collections: Iterable[str] | Mapping[str, str],
        *,
        watch_holds: bool = False,
        state: MonitorState | None = None,
    ) -> None:
        if isinstance(collections, Mapping):
            placed = {str(c): str(ns) for c, ns in collections.items()}
        else:
            placed = dict.fromkeys(collections, chaincode)
        self.chaincode = chaincode
        self.placement: Mapping[str, str] = placed
        """Each watched collection's namespace."""
        self.collections = frozenset(placed)
        self.namespaces = frozenset(placed.values())
        """The namespaces watched: where the watched collections live."""
        self.watch_holds = watch_holds
        self.state = state if state is not None else MonitorState()

    @classmethod
    def for_profile(cls, profile: Profile, state: MonitorState | None = None) -> BlockMonitor:
        """The monitor of the profile's organization (the regulator's watches holds), over
        every namespace where its collections live."""
        collections = member_collections(
            profile.org,
            profile.banks(),
            is_regulator=profile.is_regulator,
            has_regulator=profile.regulator() is not None,
        )
        placed = {c: profile.namespace_of(c) for c in sorted(collections)}
        return cls(profile.chaincode, placed, watch_holds=profile.is_regulator, state=state)

    def inspect(self, block: Block) -> list[Alert]:
        """The alerts of ``block``; updates the state (holds, balances, purges, next block)."""
        alerts: list[Alert] = [
            PlantedParameter.of(found) for found in malformed_validation_parameters([block])
        ]
        wanted = {(ns, c) for c, ns in self.placement.items()}
        creators = {tx.tx_index: tx.creator_msp_id for tx in block.transactions}
        if block.private_data is not None:
            purged = {(ns, coll, bytes.fromhex(h)) for ns, coll, h in self.state.purged}
            # Only the watched namespaces': another chaincode's data may be purged by a later
            # block this pass has not read yet, after which the peer delivers nothing for the
            # writes before it (the deposit-token contract never purges).
            alerts += [
                PrivateDataAlert.of(found, creators.get(found.position.tx_index, ""))
                for found in private_data_mismatches(block, collections=wanted, purged=purged)
                if found.namespace in self.namespaces
            ]
        for ns, coll, hashed in purged_keys([block]):
            self.state.purged.add((ns, coll, hashed.hex()))
        if self.watch_holds:
            for tx in block.valid_transactions:
                alerts += self._transaction(block, tx)
        self.state.next_block = block.number + 1
        return alerts

    # --- holds and balances (the regulator's) ------------------------------------------

    def _watched_writes(self, tx: BlockTransaction, prefix: str) -> list[tuple[str, str]]:
        """``(namespace, collection)`` of each collection named ``<prefix>…`` that ``tx``
        wrote in the namespace holding it."""
        return [
            (ns.namespace, coll.collection)
            for ns in tx.namespaces
            if ns.namespace in self.namespaces
            for coll in ns.collections
            if coll.collection.startswith(prefix)
            and self.placement.get(coll.collection) == ns.namespace
        ]

    def _transaction(self, block: Block, tx: BlockTransaction) -> list[Alert]:
        alerts: list[Alert] = []
        for ns_name, name in self._watched_writes(tx, _ACCT_PREFIX):
            bank = name[len(_ACCT_PREFIX):]
            delivered = block.private_data_of(tx.tx_index, ns_name, name)
            values = {w.key_hash: w for w in delivered.writes} if delivered else {}
            for write in tx.hashed_writes(ns_name, name):
                alert = self._account_write(tx, bank, write, values.get(write.key_hash))
                if alert is not None:
                    alerts.append(alert)
        # Hold changes take effect after this transaction's account writes (a transaction
        # writing both a hold and an account is the regulator's own; none does today).
        for ns_name, name in self._watched_writes(tx, _HOLDS_PREFIX):
            self._hold_writes(block, tx, ns_name, name[len(_HOLDS_PREFIX):],
                              tx.hashed_writes(ns_name, name))
        return alerts

    def _account_write(
        self, tx: BlockTransaction, bank: str, write: HashedWrite, delivered: Any
    ) -> HoldBreach | None:
        ident = _id(bank, write.key_hash)
        previous = self.state.balances.get(ident)
        balance: int | None = None
        readable = (
            delivered is not None
            and not write.is_delete
            and delivered.value_hash == write.value_hash
        )
        if readable:
            balance = _balance(delivered.value)
        if balance is not None:
            self.state.balances[ident] = balance
        elif write.is_delete or write.is_purge:
            self.state.balances.pop(ident, None)
        hold = self.state.holds.get(ident)
        if hold is None:
            return None
        what: str | None = None
        if write.is_purge:
            what = "was purged"
        elif write.is_delete:
            what = "was deleted"
        elif balance is None:
            what = "was written with a value the regulator's peer did not receive or cannot read"
        elif previous is None:
            if not hold.frozen and balance < hold.held_amount:
                what = f"now holds {balance}, below the held amount"
            elif hold.frozen:
                what = f"was written (balance {balance}; the previous balance is unknown)"
        elif hold.frozen and balance < previous:
            what = f"was debited {previous - balance} while frozen"
        elif not hold.frozen and balance < previous and balance < hold.held_amount:
            what = f"was debited {previous - balance}, leaving {balance} below the held amount"
        if what is None:
            return None
        return HoldBreach(
            block_number=tx.block_number,
            tx_index=tx.tx_index,
            transaction_id=tx.transaction_id,
            bank=bank,
            account_id=hold.account_id,
            key_hash=write.key_hash.hex(),
            frozen=hold.frozen,
            held_amount=hold.held_amount,
            previous_balance=previous,
            balance=balance,
            creator_msp_id=tx.creator_msp_id,
            endorser_msp_ids=tx.endorser_msp_ids,
            what=what,
        )

    def _hold_writes(
        self, block: Block, tx: BlockTransaction, namespace: str, bank: str,
        writes: tuple[HashedWrite, ...],
    ) -> None:
        """Holds set and released by ``tx`` in ``holds-<bank>`` (in ``namespace``). A hold is
        learnt only from a value that hashes to the committed one; a release (delete or purge)
        is matched by key hash, delivered or not. A hold value that does not decode leaves the
        hold as it was (the regulator endorses every hold: such a value is no honest write)."""
        delivered = block.private_data_of(tx.tx_index, namespace, holds_collection(bank))
        clear = {w.key_hash: w for w in delivered.writes} if delivered else {}
        held = {h.hold_key_hash: ident for ident, h in self.state.holds.items() if h.bank == bank}
        for write in writes:
            if write.is_delete or write.is_purge:
                ident = held.get(write.key_hash.hex())
                if ident is not None:
                    del self.state.holds[ident]
                continue
            value = clear.get(write.key_hash)
            if value is None or value.value_hash != write.value_hash:
                continue  # not received, or not what was committed: the data alert names it
            account = held_account_key(value.key)
            data = _json_object(value.value) or {}
            frozen, amount = data.get("frozen"), data.get("held_amount", 0)
            account_id = data.get("account_id")
            if (account is None or type(frozen) is not bool or type(amount) is not int
                    or not isinstance(account_id, str)):
                _log.warning("block %d: a hold record does not decode", block.number)
                continue
            self.state.holds[_id(bank, key_hash(account))] = HeldAccount(
                bank, account_id, frozen, amount, write.key_hash.hex())


async def follow(
    member: Member,
    monitor: BlockMonitor,
    *,
    on_alert: Callable[[Alert], None],
    once: bool = False,
    stop: asyncio.Event | None = None,
    start_block: int = 0,
    reconnect_delay: float = 5.0,
) -> int:
    """Follow the channel's blocks with private data from ``monitor.state`` (else
    ``start_block``), inspect each, call ``on_alert`` for each alert, then save the state.

    ``once``: stop after the chain height as of the start (the last committed block), and let
    a lost connection raise. Else follow until ``stop`` is set, resuming from the state after
    a lost connection (every ``reconnect_delay`` seconds). Returns the number of blocks
    inspected.
    """
    state = monitor.state
    last: int | None = None
    if once:
        info = await member.network.get_ledger_queries().get_chain_info()
        last = info.height - 1
        if (state.next_block if state.next_block is not None else start_block) > last:
            return 0
    inspected = 0
    while True:
        try:
            return inspected + await _follow_once(
                member, monitor, on_alert, last=last, stop=stop, start_block=start_block
            )
        except fabgateway.GatewayError as error:
            if once:
                raise
            _log.warning("monitor: %s; reconnecting", str(error).splitlines()[0])
        if stop is None:
            await asyncio.sleep(reconnect_delay)
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), reconnect_delay)
        if stop.is_set():
            return inspected


async def _follow_once(
    member: Member,
    monitor: BlockMonitor,
    on_alert: Callable[[Alert], None],
    *,
    last: int | None,
    stop: asyncio.Event | None,
    start_block: int,
) -> int:
    """One Deliver stream, until ``last``, ``stop`` or the stream's end."""
    state = monitor.state
    inspected = 0
    stream = member.network.block_and_private_data_events(
        start_block=start_block if state.next_block is None else None, checkpoint=state
    )
    async with stream as blocks:
        pending_stop = asyncio.ensure_future(stop.wait()) if stop is not None else None
        try:
            iterator = aiter(fabgateway.decoded_blocks(blocks))
            while pending_stop is None or not pending_stop.done():
                nxt: asyncio.Future[Block] = asyncio.ensure_future(anext(iterator))
                waiting: set[asyncio.Future[Any]] = {nxt}
                if pending_stop is not None:
                    waiting.add(pending_stop)
                await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if not nxt.done():
                    nxt.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await nxt
                    break
                try:
                    block = nxt.result()
                except StopAsyncIteration:
                    break
                for alert in monitor.inspect(block):
                    on_alert(alert)
                state.save()
                inspected += 1
                if last is not None and block.number >= last:
                    break
        finally:
            if pending_stop is not None:
                pending_stop.cancel()
    return inspected


def default_state_path(profile: Profile) -> Path:
    """``<state>/monitors/<org>.json``."""
    return profile.state_dir / "monitors" / f"{profile.org}.json"
