"""The contract's chaincode events: their names and payloads.

Owns: :data:`EVENT_PENDING` (set by every transaction that opens transfers, payload
``{"payee_banks": [<bank>, ...], "at": <the transaction's time>}``: the time its transfers'
``open/`` index entries carry, which the block's header shows anyway) and
:data:`EVENT_DECIDED` (set by ``accept_transfer`` and ``reject_transfer``, payload
``{"payer_bank": <bank>}``). A payload names banks (and a time)
only: an event is in the block, so it carries no id, amount or account.

Must not: import anything outside the standard library.
"""

from __future__ import annotations

__all__ = ["EVENT_DECIDED", "EVENT_ESCROW", "EVENT_PAYMENT_REQUEST", "EVENT_PENDING"]

#: Transfers wait on the payee banks named in the payload, created at its ``at``.
EVENT_PENDING = "TransferPending"
#: The payee bank decided a transfer of the payer bank named in the payload.
EVENT_DECIDED = "TransferDecided"
#: Something changed on an escrow between the serving bank and the banks named in the payload
#: (``{"banks": [<bank>, ...]}``: opened, released, claimed or refunded).
EVENT_ESCROW = "EscrowChanged"
#: A payment request waits on the payer bank named in the payload (``{"payer_bank": <bank>}``),
#: or was answered (the same event, set by the payer bank, names the payee bank:
#: ``{"payee_bank": <bank>}``).
EVENT_PAYMENT_REQUEST = "PaymentRequest"
