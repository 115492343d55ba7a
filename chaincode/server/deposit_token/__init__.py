"""The deposit-token contract: bank-issued deposit tokens on Hyperledger Fabric.

Owns the domain: tokens ``(issuing bank, currency)`` in integer minor units, accounts in each
bank's private collection, mint / burn / transfer within a bank, two-phase transfers across
banks through directional collections, batch payouts, interbank obligations and settlement,
regulator holds and audit. Layers, innermost first:

* :mod:`deposit_token.errors`   - stable error codes (``INSUFFICIENT_FUNDS: ...``);
* :mod:`deposit_token.keys`     - collection names, opaque keys, HMAC-derived ids and salts;
* :mod:`deposit_token.model`    - registry, token definitions, strict JSON field reading;
* :mod:`deposit_token.records`  - stored record schemas, salted envelopes;
* :mod:`deposit_token.requests` - transient request schemas (the SDK's wire types);
* :mod:`deposit_token.rules`    - pure rules: balances, limits, transfer states, tallies;
* :mod:`deposit_token.contract` - the Fabric contract applying the rules to ledger state;
* :mod:`deposit_token.chaincode`- the module the chaincode server launches.

Must not: import anything of the client side, draw randomness or read a clock inside a
transaction, or put a private value into an argument, a return value of a submitted
transaction, an event or an error message (all of them are written into blocks).
"""

from .errors import DepositTokenError

__all__ = ["DepositTokenError"]
