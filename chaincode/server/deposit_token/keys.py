"""Collection names, opaque keys and deterministic ids of the deposit-token contract.

Owns: the names of the private data collections the network bootstrap creates, the layout
of every key this contract writes, and the HMAC derivations that turn an organization's
secret plus a transaction id (or a client reference) into ids, record tags and salts.

Must not: draw randomness or read a clock. Every endorsing peer of one organization holds the
same secret and sees the same transaction id, so every value derived here is the same on all
of them, and the write set they sign is identical (DESIGN §5, "Salts and ids").

Key layout (simple keys, ``/``-separated, never composite keys: the shim refuses range
queries over composite keys, and simple keys let a paginated scan resume at any key):

==============================  ===================  ==========================================
key                             collection           opaque because
==============================  ===================  ==========================================
``registry``                    public state         (public)
``token/<bank>/<CUR>``          public state         (public)
``acct/<account tag>``          ``acct-<bank>``      tag = HMAC(bank's account key, id)
``hist/<account tag>/<seq>``    ``acct-<bank>``      as above
``lane/<account tag>/<lane>``   ``acct-<bank>``      as above (balance lanes 1, 2 ...)
``keys/accounts``               ``acct-<bank>``      (fixed) holds the bank's account key
``sup/<CUR>/<tag>``             ``acct-<bank>``      tag = HMAC(bank secret, tx id, ...)
``ref/<tag>``                   ``acct-<bank>``      tag = HMAC(bank secret, client reference)
``out/<transfer id>``           ``acct-<bank>``      transfer id = HMAC(bank secret, tx id);
                                                     no longer written (``Transfer.payer_ref``)
``xfer/<transfer id>``          ``pair-<A>-<B>``     as above
``open/<created at>/<id>``      ``pair-<A>-<B>``     carries the first transfer id of the
                                                     transaction's entry (an index by time)
``refund/<transfer id>``        ``pair-<A>-<B>``     as above
``dec/<transfer id>``           ``pair-<B>-<A>``     as above
``lock/<transfer id>``          ``pair-<A>-<B>``     as above (a hash-locked leg's state)
``quote/<quote id>``            ``pair-<B>-<A>``     quote id drawn by B's client (B's FX quote)
``quse/<quote id>``             ``acct-<bank>``      as above (the bank used the quote once)
``settle/<tag>``                ``pair-<B>-<A>``     tag = HMAC(B's secret, RTGS reference)
``cap/<CUR>/<seq>``             ``pair-<B>-<A>``     (B's cap on what A may owe it; no secret)
``hold/<account tag>``          ``holds-<bank>``     as for the account
``attester/<name>``             ``acct-<bank>``      (a party the bank trusts; no secret)
``esc/<escrow id>``             ``pair-<A>-<B>``     escrow id = HMAC(bank secret, tx id)
                                (or ``acct-<A>``)
``escnote/<escrow id>``         ``acct-<A>``         as above
``escrel/<escrow id>``          ``pair-<A>-<B>``     as above
``escref/<escrow id>``          ``pair-<A>-<B>``     as above
``escclaim/<escrow id>``        ``pair-<B>-<A>``     as above
``payreq/<request id>``         ``pair-<B>-<A>``     request id = HMAC(B's secret, tx id)
``reqdecl/<request id>``        ``pair-<A>-<B>``     as above
``suspension/<bank>``           ``holds-<bank>``     (none: every bank is told of a suspension)
==============================  ===================  ==========================================

Account keys are not ``acct/<account id>``: the key's SHA-256 is in every block that writes
it, and whoever knows an account id (a payer knows its payee's) could follow that account
through the blocks and see whether it is under a hold. They are keyed by the account's *tag*,
``HMAC(account key, "account", id)`` (:class:`AccountKeys`), where the bank's *account key*
(128 bits, derived from its secret) is shared with the regulator only: the bank writes it once
under ``keys/accounts`` in its own ``acct-<bank>``, the one collection both their peers hold,
so the regulator's server can key the holds it writes and read the accounts it checks without
the bank's secret (docs/security.md, "Unlinkable account keys").
"""

from __future__ import annotations

import hashlib
import hmac
import re

from dtoken_wire.fields import ACCOUNT_ID_RE, BANK_NAME_RE, CURRENCY_RE, MSP_ID_RE

from .errors import InvalidArgument, ServerMisconfigured

__all__ = [
    "ACCOUNT_ID_RE",
    "ACCOUNT_KEYS_KEY",
    "BANK_NAME_RE",
    "CAP_SEQ_MAX",
    "CURRENCY_RE",
    "HEX32_RE",
    "MSP_ID_RE",
    "REGISTRY_KEY",
    "REGISTRY_SHA256_KEY",
    "SECRET_LENGTH",
    "TAG_RE",
    "AccountKeys",
    "Deriver",
    "account_key",
    "acct_collection",
    "attester_key",
    "cap_key",
    "check_account_id",
    "check_bank_name",
    "check_currency",
    "check_transfer_id",
    "decision_key",
    "escrow_claim_key",
    "escrow_key",
    "escrow_note_key",
    "escrow_refund_key",
    "escrow_release_key",
    "history_key",
    "hold_key",
    "holds_collection",
    "lane_key",
    "lock_key",
    "opened_key",
    "outgoing_key",
    "pair_collection",
    "payment_request_key",
    "prefix_range",
    "quote_key",
    "quote_use_key",
    "reference_key",
    "reference_tag_of",
    "refund_key",
    "request_decline_key",
    "settlement_key",
    "supply_key",
    "suspension_key",
    "token_key",
    "transfer_key",
]

#: Tags and derived ids: 32 lowercase hex digits (128 bits of HMAC-SHA256).
TAG_RE = re.compile(r"^[0-9a-f]{32}$")
#: A SHA-256 digest or a 32-byte preimage, as lowercase hex.
HEX32_RE = re.compile(r"^[0-9a-f]{64}$")
#: Length of an organization's secret (``DTOKEN_SECRET_FILE``).
SECRET_LENGTH = 32

REGISTRY_KEY = "registry"
#: Public key beside :data:`REGISTRY_KEY`: the SHA-256 (hex) of the argument that wrote the
#: registry (``init_network`` or ``admit_bank``), which a server compares with its own pin.
REGISTRY_SHA256_KEY = "registry_sha256"
_SEP = "/"
#: Where a bank keeps its account key, in its own ``acct-<bank>`` (read by the regulator).
ACCOUNT_KEYS_KEY = "keys/accounts"


def check_bank_name(name: object, field: str = "bank") -> str:
    """Return ``name`` if it is a well-formed bank name, else raise ``INVALID_ARGUMENT``."""
    if not isinstance(name, str) or not BANK_NAME_RE.fullmatch(name):
        raise InvalidArgument(f"{field} must be a bank name matching {BANK_NAME_RE.pattern}")
    return name


def check_currency(code: object, field: str = "currency") -> str:
    """Return ``code`` if it is a three-letter currency code, else raise ``INVALID_ARGUMENT``."""
    if not isinstance(code, str) or not CURRENCY_RE.fullmatch(code):
        raise InvalidArgument(f"{field} must be a three-letter upper-case currency code")
    return code


def check_account_id(value: object, field: str = "account_id") -> str:
    """Return ``value`` if it is a well-formed opaque id, else raise ``INVALID_ARGUMENT``."""
    if not isinstance(value, str) or not ACCOUNT_ID_RE.fullmatch(value):
        raise InvalidArgument(f"{field} must be 22 to 64 characters of [A-Za-z0-9_-]")
    return value


def check_transfer_id(value: object, field: str = "transfer_id") -> str:
    """Transfer ids follow the account-id format (a derived one is 32 hex digits)."""
    return check_account_id(value, field)


# --------------------------------------------------------------------------- collections


def acct_collection(bank: str) -> str:
    """The bank's own collection: accounts, supply, history, idempotency records."""
    return f"acct-{bank}"


def pair_collection(asserter: str, counterparty: str) -> str:
    """The directional collection of what ``asserter`` asserts toward ``counterparty``."""
    return f"pair-{asserter}-{counterparty}"


def holds_collection(bank: str) -> str:
    """The regulator's holds on ``bank``'s accounts."""
    return f"holds-{bank}"


# --------------------------------------------------------------------------- keys


def token_key(bank: str, currency: str) -> str:
    """Public key of the token definition ``(bank, currency)``."""
    return _SEP.join(("token", bank, currency))


def account_key(tag: str) -> str:
    """The account record, balance included (one key: a debit checks it by a point read);
    ``tag`` is :meth:`AccountKeys.tag` of the account id."""
    return _SEP.join(("acct", tag))


def lane_key(tag: str, lane: int) -> str:
    """Balance lane ``lane`` (1, 2 ...) of the account tagged ``tag`` (lane 0 is the account
    record itself)."""
    if not 1 <= lane <= 99:
        raise InvalidArgument("a lane number is 1 to 99")
    return _SEP.join(("lane", tag, f"{lane:02d}"))


def history_key(tag: str, seq: int) -> str:
    """History record ``seq`` of the account tagged ``tag``; zero-padded so a range scan
    returns it in order."""
    return _SEP.join(("hist", tag, f"{seq:012d}"))


def supply_key(currency: str, tag: str) -> str:
    """A supply record: the movements of one transaction of one kind toward one
    counterparty (``steps.write_grouped``), never read by writers."""
    return _SEP.join(("sup", currency, tag))


def reference_key(tag: str) -> str:
    """Idempotency record of a client reference (``tag`` = HMAC of the reference)."""
    return _SEP.join(("ref", tag))


def reference_tag_of(key: str) -> str:
    """The tag of a :func:`reference_key`."""
    prefix, _, tag = key.partition(_SEP)
    if prefix != "ref" or not TAG_RE.fullmatch(tag):
        raise ValueError("not a reference key")
    return tag


def outgoing_key(transfer_id: str) -> str:
    """The payer bank's own note of an outgoing transfer (which account to refund), as
    contracts before ``Transfer.payer_ref`` wrote it: read for their transfers' refunds."""
    return _SEP.join(("out", transfer_id))


def transfer_key(transfer_id: str) -> str:
    """A cross-bank transfer, in ``pair-<payer>-<payee>``."""
    return _SEP.join(("xfer", transfer_id))


def opened_key(created_at: str, transfer_id: str) -> str:
    """The index entry of a transfer by creation time, in ``pair-<payer>-<payee>``.

    ``created_at`` is a fixed-width timestamp (``model.format_timestamp``), so the keys sort by time
    and ``get_pending`` can read only the transfers created since a moment.
    """
    return _SEP.join(("open", created_at, transfer_id))


def refund_key(transfer_id: str) -> str:
    """The payer bank's refund of a transfer, in ``pair-<payer>-<payee>``."""
    return _SEP.join(("refund", transfer_id))


def quote_key(quote_id: str) -> str:
    """The payee bank's FX quote to a payer bank, in ``pair-<payee>-<payer>``."""
    return _SEP.join(("quote", quote_id))


def quote_use_key(quote_id: str) -> str:
    """A bank's own note that a quote was used (paid with, or accepted), in
    ``acct-<bank>``: a quote is good for one payment."""
    return _SEP.join(("quse", quote_id))


def lock_key(transfer_id: str) -> str:
    """The state of a hash-locked transfer (locked, expired), in ``pair-<payer>-<payee>``."""
    return _SEP.join(("lock", transfer_id))


def decision_key(transfer_id: str) -> str:
    """The payee bank's decision (accepted or rejected), in ``pair-<payee>-<payer>``."""
    return _SEP.join(("dec", transfer_id))


def settlement_key(tag: str) -> str:
    """A creditor's settlement confirmation, in ``pair-<creditor>-<debtor>``."""
    return _SEP.join(("settle", tag))


#: The highest sequence number of a cap change (12 digits, so keys sort in number order).
CAP_SEQ_MAX = 10**12 - 1


def cap_key(currency: str, seq: int) -> str:
    """Change ``seq`` (1, 2, ...) of a creditor's exposure cap on a debtor, in
    ``pair-<creditor>-<debtor>``; zero-padded, so a range scan meets the changes in order and
    the last one read is the cap in force."""
    if not 1 <= seq <= CAP_SEQ_MAX:
        raise InvalidArgument("a cap's sequence number is out of range")
    return _SEP.join(("cap", currency, f"{seq:012d}"))


def hold_key(tag: str) -> str:
    """The regulator's hold on the account tagged ``tag``, in ``holds-<bank>``."""
    return _SEP.join(("hold", tag))


def attester_key(name: str) -> str:
    """A party the bank trusts to sign escrow statements, in ``acct-<bank>``."""
    return _SEP.join(("attester", name))


def escrow_key(escrow_id: str) -> str:
    """An escrow: in ``pair-<payer>-<payee>`` across banks, ``acct-<bank>`` within one."""
    return _SEP.join(("esc", escrow_id))


def escrow_note_key(escrow_id: str) -> str:
    """The payer bank's own note of a cross-bank escrow (the account), in ``acct-<payer>``."""
    return _SEP.join(("escnote", escrow_id))


def escrow_release_key(escrow_id: str) -> str:
    """The payer bank's release of an escrow (beside the escrow)."""
    return _SEP.join(("escrel", escrow_id))


def escrow_refund_key(escrow_id: str) -> str:
    """The payer bank's refund of an escrow (beside the escrow)."""
    return _SEP.join(("escref", escrow_id))


def escrow_claim_key(escrow_id: str) -> str:
    """The payee bank's claim of an escrow: ``pair-<payee>-<payer>`` (``acct-<bank>`` within
    one bank)."""
    return _SEP.join(("escclaim", escrow_id))


def payment_request_key(request_id: str) -> str:
    """A payment request, in ``pair-<payee>-<payer>``."""
    return _SEP.join(("payreq", request_id))


def request_decline_key(request_id: str) -> str:
    """The payer bank's decline of a payment request, in ``pair-<payer>-<payee>``."""
    return _SEP.join(("reqdecl", request_id))


def suspension_key(bank: str) -> str:
    """The regulator's suspension of ``bank``, in every bank's ``holds-<bank>``."""
    return _SEP.join(("suspension", check_bank_name(bank)))


def prefix_range(prefix: str) -> tuple[str, str]:
    """The ``[start, end)`` range of every simple key beginning with ``prefix + "/"``."""
    return prefix + _SEP, prefix + chr(ord(_SEP) + 1)


# --------------------------------------------------------------------------- derivation


def _encode(parts: tuple[str, ...]) -> bytes:
    # Length-prefixed, so that no two different part lists encode alike.
    out = [b"dtoken/v1"]
    for part in parts:
        data = part.encode("utf-8")
        out.append(len(data).to_bytes(4, "big"))
        out.append(data)
    return b"".join(out)


_BLOCK = 64  # SHA-256's block size: HMAC pads (or hashes) the key to it
_IPAD = bytes(b ^ 0x36 for b in range(256))  # XOR with HMAC's pads, as translation tables
_OPAD = bytes(b ^ 0x5C for b in range(256))


class _Mac:
    """HMAC-SHA256 under one key, keyed once (RFC 2104): the SHA-256 states after the inner
    and outer padded keys are copied for each message. The same digests as
    ``hmac.new(key, msg, sha256)`` without setting the key up again for each of the dozen
    derivations a payment makes."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        key = hashlib.sha256(key).digest() if len(key) > _BLOCK else key
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def hex32(self, message: bytes) -> str:
        """The first 32 hex digits of the HMAC of ``message``."""
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()[:32]


class Deriver:
    """HMAC-SHA256 derivations under one organization's secret.

    Every value is 32 lowercase hex digits. Purposes are distinct first parts, so no
    derivation can be made to collide with another.
    """

    __slots__ = ("_account_keys", "_mac", "_secret")

    def __init__(self, secret: bytes) -> None:
        if len(secret) != SECRET_LENGTH:
            raise ServerMisconfigured(f"the organization secret must be {SECRET_LENGTH} bytes")
        self._secret = bytes(secret)
        self._mac = _Mac(self._secret)
        self._account_keys: AccountKeys | None = None

    def __repr__(self) -> str:  # never show the secret
        return "Deriver(<secret>)"

    def derive(self, purpose: str, *parts: str) -> str:
        """``HMAC(secret, purpose, *parts)`` as 32 hex digits."""
        return self._mac.hex32(_encode((purpose, *parts)))

    def salt(self, tx_id: str, collection: str, key: str) -> str:
        """The salt of the value written under ``key`` in ``collection`` by ``tx_id``."""
        return self.derive("salt", tx_id, collection, key)

    def record_tag(self, tx_id: str, purpose: str, index: int = 0) -> str:
        """Tag of a per-transaction record (supply ...): unpredictable to other banks."""
        return self.derive("record", tx_id, purpose, str(index))

    def transfer_id(self, tx_id: str, index: int = 0) -> str:
        """Id of the ``index``-th cross-bank transfer a transaction initiates."""
        return self.derive("transfer", tx_id, str(index))

    def account_id(self, tx_id: str) -> str:
        """Id of an account opened without a client-drawn id."""
        return self.derive("account", tx_id)

    def escrow_id(self, tx_id: str) -> str:
        """Id of the escrow a transaction opens (no client-drawn id)."""
        return self.derive("escrow", tx_id)

    def request_id(self, tx_id: str) -> str:
        """Id of the payment request a transaction sends (no client-drawn id)."""
        return self.derive("payment-request", tx_id)

    def reference_tag(self, kind: str, reference: str) -> str:
        """Tag of a client reference; ``kind`` separates namespaces (``payment``, ``rtgs``)."""
        return self.derive("reference", kind, reference)

    def account_keys(self) -> AccountKeys:
        """This organization's account key (the one it shares with the regulator)."""
        if self._account_keys is None:  # immutable: derived once per organization
            self._account_keys = AccountKeys(self.derive("account-keys"))
        return self._account_keys


class AccountKeys:
    """The keys of one bank's accounts, their history and the regulator's holds on them.

    ``key`` (32 hex digits) is the bank's account key: derived from the bank's secret by its
    own servers, read from ``keys/accounts`` in ``acct-<bank>`` by the regulator's. Knowing an
    account id without it gives no key hash to look for in the blocks.
    """

    __slots__ = ("_key", "_mac")

    def __init__(self, key: str) -> None:
        if not TAG_RE.fullmatch(key):
            raise ServerMisconfigured("an account key is 32 hex digits")
        self._key = key.encode("ascii")
        self._mac = _Mac(self._key)

    def __repr__(self) -> str:  # never show the key
        return "AccountKeys(<key>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AccountKeys) and hmac.compare_digest(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self._key)

    @property
    def key(self) -> str:
        """The account key, as the bank stores it for the regulator."""
        return self._key.decode("ascii")

    def tag(self, account_id: str) -> str:
        """``HMAC(account key, "account", id)``: what the account's keys carry."""
        return self._mac.hex32(_encode(("account", account_id)))

    def account(self, account_id: str) -> str:
        """The account record's key."""
        return account_key(self.tag(account_id))

    def lane(self, account_id: str, lane: int) -> str:
        """The key of the account's balance lane ``lane`` (1, 2 ...)."""
        return lane_key(self.tag(account_id), lane)

    def history(self, account_id: str, seq: int) -> str:
        """The key of the account's history record ``seq``."""
        return history_key(self.tag(account_id), seq)

    def history_prefix(self, account_id: str) -> str:
        """The prefix under which every history record of the account lies."""
        return _SEP.join(("hist", self.tag(account_id)))

    def hold(self, account_id: str) -> str:
        """The key of the regulator's hold on the account."""
        return hold_key(self.tag(account_id))
