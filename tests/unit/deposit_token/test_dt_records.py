"""The stored bytes of records: pinned, because every endorser of a bank must write the same.

Two peers running different versions of the contract would sign different write sets if the
bytes of a record changed, and the transaction would fail endorsement; a change of the
stored form must therefore be deliberate (and come with ``RECORD_VERSION``).
"""

from __future__ import annotations

import pytest
from deposit_token.errors import CorruptState
from deposit_token.records import (
    Account,
    AccountKeysRecord,
    Decision,
    HistoryItem,
    HistoryKind,
    HistoryRecord,
    Opened,
    Outcome,
    ReferenceRecord,
    SupplyKind,
    SupplyRecord,
    Transfer,
    decode,
    encode,
)
from dtoken_wire import Limits

SALT = "0" * 32
AT = "2026-01-01T00:00:00.000000Z"

_FIRST = HistoryRecord(account_id="A" * 22, seq=3, kind=HistoryKind.PAYMENT_OUT, delta=-5,
                       balance_after=95, counterparty_bank="usbank",
                       counterparty_account="P" * 22, transfer_id="T" * 22, tx_id="f" * 64,
                       at=AT)

PINNED = [
    (Account(account_id="A" * 22, bank="hkbank", currency="USD", owner_ref="CIF-1",
             limits=Limits(100, None), opened_at=AT),
     '{"account_id":"AAAAAAAAAAAAAAAAAAAAAA","balance":0,"bank":"hkbank","currency":"USD",'
     '"limits":{"daily_outflow":null,"single_payment":100},"opened_at":"2026-01-01T00:00:00'
     '.000000Z","outflow":0,"outflow_day":"","owner_ref":"CIF-1","salt":"' + SALT + '","seq":0,'
     '"status":"active","type":"account","v":1}'),
    (Transfer(transfer_id="T" * 22, payer_bank="hkbank", payee_bank="usbank",
              payee_account="P" * 22, amount=5, currency="USD", created_at=AT,
              expires_at="2026-01-02T00:00:00.000000Z", originator={"name": "X"},
              remittance="inv", tx_id="a" * 64),
     '{"amount":5,"created_at":"2026-01-01T00:00:00.000000Z","currency":"USD","expires_at":'
     '"2026-01-02T00:00:00.000000Z","originator":{"name":"X"},"payee_account":'
     '"PPPPPPPPPPPPPPPPPPPPPP","payee_bank":"usbank","payer_bank":"hkbank","remittance":"inv",'
     '"salt":"' + SALT + '","transfer_id":"TTTTTTTTTTTTTTTTTTTTTT","tx_id":"' + "a" * 64 + '",'
     '"type":"transfer","v":1}'),
    (ReferenceRecord(kind="transfer", tx_id="b" * 64, at=AT, ids=("x" * 22,)),
     '{"at":"2026-01-01T00:00:00.000000Z","ids":["xxxxxxxxxxxxxxxxxxxxxx"],"kind":"transfer",'
     '"salt":"' + SALT + '","tx_id":"' + "b" * 64 + '","type":"reference","v":1}'),
    (SupplyRecord(currency="USD", kind=SupplyKind.OUT, amount=3, counterparty="usbank",
                  transfer_id="T" * 22, tx_id="c" * 64, at=AT),
     '{"amount":3,"at":"2026-01-01T00:00:00.000000Z","counterparty":"usbank","currency":"USD",'
     '"kind":"out","salt":"' + SALT + '","transfer_id":"TTTTTTTTTTTTTTTTTTTTTT","tx_id":"'
     + "c" * 64 + '","type":"supply","v":1}'),
    (Decision(transfer_id="T" * 22, outcome=Outcome.ACCEPTED, payer_bank="hkbank",
              payee_bank="usbank", amount=5, currency="USD", decided_at=AT, tx_id="d" * 64),
     '{"amount":5,"currency":"USD","decided_at":"2026-01-01T00:00:00.000000Z","outcome":'
     '"accepted","payee_bank":"usbank","payer_bank":"hkbank","reason":"","salt":"' + SALT
     + '","transfer_id":"TTTTTTTTTTTTTTTTTTTTTT","tx_id":"' + "d" * 64 + '","type":"decision",'
     '"v":1}'),
    # New with the keyed account keys (docs/security.md); no existing record's bytes changed.
    (AccountKeysRecord(key="e" * 32),
     '{"key":"' + "e" * 32 + '","salt":"' + SALT + '","type":"account_keys","v":1}'),
    # New with batched records (docs/benchmarks.md, "Fewer keys per payment"): one history
    # record for a transaction's events on an account, one index entry for its transfers
    # toward one bank; a record of one event is stored as before.
    (HistoryRecord.of_events(_FIRST, [HistoryItem(HistoryKind.PAYMENT_OUT, -7, 88, "cnbank",
                                                  "Q" * 22, "U" * 22)]),
     '{"account_id":"AAAAAAAAAAAAAAAAAAAAAA","at":"2026-01-01T00:00:00.000000Z","balance_after"'
     ':88,"counterparty_account":null,"counterparty_bank":null,"delta":-12,"detail":"","items":'
     '[{"balance_after":95,"counterparty_account":"PPPPPPPPPPPPPPPPPPPPPP","counterparty_bank":'
     '"usbank","delta":-5,"detail":"","kind":"payment_out","transfer_id":"TTTTTTTTTTTTTTTTTTTTTT'
     '"},{"balance_after":88,"counterparty_account":"QQQQQQQQQQQQQQQQQQQQQQ","counterparty_bank"'
     ':"cnbank","delta":-7,"detail":"","kind":"payment_out","transfer_id":"UUUUUUUUUUUUUUUUUUUUUU'
     '"}],"kind":"payment_out","salt":"' + SALT + '","seq":3,"transfer_id":null,"tx_id":"'
     + "f" * 64 + '","type":"history","v":1}'),
    (_FIRST,
     '{"account_id":"AAAAAAAAAAAAAAAAAAAAAA","at":"2026-01-01T00:00:00.000000Z","balance_after"'
     ':95,"counterparty_account":"PPPPPPPPPPPPPPPPPPPPPP","counterparty_bank":"usbank","delta":'
     '-5,"detail":"","kind":"payment_out","salt":"' + SALT + '","seq":3,"transfer_id":"'
     'TTTTTTTTTTTTTTTTTTTTTT","tx_id":"' + "f" * 64 + '","type":"history","v":1}'),
    (Opened(transfer_ids=("T" * 22, "U" * 22), tx_id="g" * 64),
     '{"salt":"' + SALT + '","transfer_ids":["TTTTTTTTTTTTTTTTTTTTTT","UUUUUUUUUUUUUUUUUUUUUU"],'
     '"tx_id":"' + "g" * 64 + '","type":"opened","v":1}'),
]  # fmt: skip


@pytest.mark.parametrize(("record", "stored"), PINNED, ids=lambda v: type(v).__name__)
def test_the_stored_bytes_of_a_record_are_pinned_and_read_back(record: object,
                                                               stored: str) -> None:
    assert encode(record, SALT).decode() == stored  # type: ignore[arg-type]
    assert decode(type(record), stored.encode()) == record  # type: ignore[type-var]


def test_a_record_read_as_another_type_is_corrupt_state() -> None:
    _record, stored = PINNED[0]
    with pytest.raises(CorruptState, match="type"):
        decode(Transfer, stored.encode())


def test_a_history_record_whose_items_do_not_add_up_is_corrupt_state() -> None:
    stored = PINNED[-3][1]
    for wrong in (stored.replace('"delta":-12', '"delta":-13'),
                  stored.replace('"balance_after":88,"counterparty_account":null',
                                 '"balance_after":87,"counterparty_account":null')):
        with pytest.raises(CorruptState, match="items"):
            decode(HistoryRecord, wrong.encode())


def test_an_index_entry_of_one_transfer_as_contracts_before_batches_wrote_it_reads() -> None:
    old = ('{"salt":"' + SALT + '","transfer_id":"TTTTTTTTTTTTTTTTTTTTTT","tx_id":"x",'
           '"type":"opened","v":1}')
    assert decode(Opened, old.encode()) == Opened(transfer_ids=("T" * 22,), tx_id="x")
    with pytest.raises(CorruptState, match="transfer_ids"):
        decode(Opened, old.replace('"transfer_id":"TTTTTTTTTTTTTTTTTTTTTT"',
                                   '"transfer_ids":[]').encode())
