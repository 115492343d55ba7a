"""Transaction bodies: read state, apply :mod:`deposit_token.rules`, buffer the writes.

Owns: access control (MSP id and role attributes of the client; the serving organization of
this chaincode server), which keys each transaction reads and writes, and what it returns.
Every function takes a :class:`Tx` and a parsed request and either returns a JSON-able value
or raises a :class:`~deposit_token.errors.DepositTokenError`; writes are buffered in the
:class:`~deposit_token.ledger.Ledger` and sent by the caller only when the body returned.

The modules, one concern each:

* :mod:`.declare`: :func:`declare`, which makes a body a transaction, and the table it fills;
* :mod:`.access`: :class:`Tx`, :class:`Caller`, roles and events, the registry, who may write
  or read what;
* :mod:`.steps`: steps several transactions share (idempotency references, account reads and
  saves, history and supply records, a transfer's records);
* :mod:`.accounts`: opening accounts, their status and limits;
* :mod:`.lanes`: balance lanes (``set_lanes``, ``rebalance_lanes``, reading the lane a debit
  or a credit touches);
* :mod:`.intrabank`: money in one bank (mint, burn, transfer);
* :mod:`.crossbank`: payments across banks (initiate, batch payout, accept, reject, refund,
  settlement);
* :mod:`.caps`: bilateral exposure caps (``set_exposure_cap``);
* :mod:`.payouts`: coalesced payouts (many payments of one payer, each with its own
  reference and outcome: what the SDK sends for concurrent ``transfer()`` calls);
* :mod:`.pvp`: payment versus payment (hash-locked transfers: lock, claim, expire);
* :mod:`.quotes`: conversion at the payee's bank (FX quotes: offer, read, pay with one);
* :mod:`.decisions`: decisions in bulk (many accepts/rejects of one payer bank's transfers,
  credits summed per payee account: what the SDK's listener sends for a backlog);
* :mod:`.escrow`: escrow until a condition (attesters, open, release, claim, refund);
  :mod:`.escrow_reads`: what a bank is shown of one (its parties' keys checked against its
  own registrations); :mod:`.escrow_counts`: how escrows count in obligations and the audit;
* :mod:`.payment_requests`: payment requests (request, approve once, decline);
* :mod:`.regulator`: the regulator's holds;
* :mod:`.suspension`: the regulator's suspension of a bank, and the check every bank makes;
* :mod:`.reads`: point reads;
* :mod:`.scans`: paginated scans and the cursor (accounts, supply, pending);
* :mod:`.netting`: obligations between two banks; :mod:`.conservation`: the regulator's audit.

What each write transaction reads and writes (``A`` the payer's bank, ``B`` the payee's):

* a debit point-reads the account key (or its own balance lane's key) and the regulator's
  hold key before it writes;
* ``accept`` reads ``refund/<id>`` in ``pair-A-B``; ``refund`` reads ``dec/<id>`` in
  ``pair-B-A``; each writes the key the other reads, so MVCC lets at most one commit;
* a hash-locked transfer's ``claim`` reads ``lock/<id>`` (pinned to A AND (B OR the
  regulator)); ``expire_lock`` (endorsed by A and the regulator) reads ``dec/<id>`` and
  rewrites ``lock/<id>``: at most one commits;
* ``pay_with_quote`` reads ``quote/<id>`` in ``pair-B-A`` (pinned to both) and its own
  ``quse/<id>``; the accept of a converted transfer reads the same quote and B's own
  ``quse/<id>`` and writes it: one accept per quote commits (MVCC);
* supply records, history records, transfer records and their ``open/`` index entries are
  new keys nobody else writes;
* no public key is written except by ``init_network`` and ``admit_bank`` (the registry,
  its organization's own, grown only with the argument its operator pinned);
* a new cross-bank payment or an accept reads ``suspension/<bank>`` of the banks involved in
  the serving bank's ``holds-<bank>`` (only the regulator writes there).

Must not: put a private value in a return value of a write, an event or an error message.
"""

from dtoken_wire.events import EVENT_DECIDED, EVENT_PENDING

from .access import (
    ADMIN_OU,
    ROLE_AUDITOR,
    ROLE_MINTER,
    ROLE_OPERATOR,
    ROLES,
    Caller,
    Tx,
    admit_bank,
    admitted_bank,
    authorize_bank_write,
    authorize_read,
    authorize_regulator_write,
    done,
    get_registry,
    init_network,
    load_registry,
    other_bank,
)
from .accounts import open_account, set_account_limits, set_account_status
from .caps import get_exposure_cap, set_exposure_cap
from .conservation import audit
from .crossbank import (
    accept_transfer,
    batch_payout,
    confirm_settlement,
    initiate_transfer,
    refund_transfer,
    reject_transfer,
)
from .decisions import decide_transfers
from .declare import TRANSACTIONS, TxSpec, declare
from .escrow import (
    claim_escrow,
    claim_escrows,
    open_escrow,
    refund_escrow,
    register_attester,
    release_escrow,
)
from .escrow_reads import get_escrow, list_escrows
from .intrabank import burn, mint, transfer
from .lanes import rebalance_lanes, set_lanes
from .netting import get_obligations
from .payment_requests import (
    approve_request,
    decline_request,
    get_payment_request,
    list_payment_requests,
    request_payment,
)
from .payouts import coalesced_payout
from .pvp import claim_transfer, expire_lock, lock_transfer
from .quotes import get_quote, offer_quote, pay_with_quote
from .reads import get_account, get_history, get_reference, get_transfer
from .regulator import release_hold, set_hold
from .scans import get_pending, get_supply, list_accounts
from .steps import read_account, record_history, record_supply, save_account, write_grouped
from .suspension import get_suspensions, refuse_suspended, resume_bank, suspend_bank

__all__ = [
    "ADMIN_OU",
    "EVENT_DECIDED",
    "EVENT_PENDING",
    "ROLES",
    "ROLE_AUDITOR",
    "ROLE_MINTER",
    "ROLE_OPERATOR",
    "TRANSACTIONS",
    "Caller",
    "Tx",
    "TxSpec",
    "accept_transfer",
    "admit_bank",
    "admitted_bank",
    "approve_request",
    "audit",
    "authorize_bank_write",
    "authorize_read",
    "authorize_regulator_write",
    "batch_payout",
    "burn",
    "claim_escrow",
    "claim_escrows",
    "claim_transfer",
    "coalesced_payout",
    "confirm_settlement",
    "decide_transfers",
    "declare",
    "decline_request",
    "done",
    "expire_lock",
    "get_account",
    "get_escrow",
    "get_exposure_cap",
    "get_history",
    "get_obligations",
    "get_payment_request",
    "get_pending",
    "get_quote",
    "get_reference",
    "get_registry",
    "get_supply",
    "get_suspensions",
    "get_transfer",
    "init_network",
    "initiate_transfer",
    "list_accounts",
    "list_escrows",
    "list_payment_requests",
    "load_registry",
    "lock_transfer",
    "mint",
    "offer_quote",
    "open_account",
    "open_escrow",
    "other_bank",
    "pay_with_quote",
    "read_account",
    "rebalance_lanes",
    "record_history",
    "record_supply",
    "refund_escrow",
    "refund_transfer",
    "refuse_suspended",
    "register_attester",
    "reject_transfer",
    "release_escrow",
    "release_hold",
    "request_payment",
    "resume_bank",
    "save_account",
    "set_account_limits",
    "set_account_status",
    "set_exposure_cap",
    "set_hold",
    "set_lanes",
    "suspend_bank",
    "transfer",
    "write_grouped",
]
