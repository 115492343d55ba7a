"""The deposit-token contract: bank-issued deposit tokens on Hyperledger Fabric.

Owns the domain: tokens ``(issuing bank, currency)`` in integer minor units, accounts in each
bank's private collection, mint / burn / transfer within a bank, two-phase transfers across
banks through directional collections, batch payouts, interbank obligations and settlement,
regulator holds and audit. Layers, innermost first:

* :mod:`dtoken_wire` (shared with the SDK) - transient key, canonical JSON, timestamps,
  statuses, the error-code table, the strict field reader, one dataclass per request;
* :mod:`deposit_token.errors`   - the contract's exceptions, built from the wire's table;
* :mod:`deposit_token.keys`     - collection names, opaque keys, HMAC-derived ids and salts;
* :mod:`deposit_token.registry` - registry, bank and token definitions;
* :mod:`deposit_token.records`  - stored record schemas, salted envelopes;
* :mod:`deposit_token.requests` - a wire request's parse, with the contract's errors;
* :mod:`deposit_token.rules`    - pure rules: balances, limits, transfer states, ledger order;
* :mod:`deposit_token.tallies`  - the sums behind obligations and the audit;
* :mod:`deposit_token.operations` - the transaction bodies, one module per concern;
* :mod:`deposit_token.service`  - one transaction end to end (transient request, flush);
* :mod:`deposit_token.contract` - the Fabric contract applying the rules to ledger state;
* :mod:`deposit_token.chaincode`- the module the chaincode server launches.

Must not: import anything of the client side, draw randomness or read a clock inside a
transaction, or put a private value into an argument, a return value of a submitted
transaction, an event or an error message (all of them are written into blocks).
"""

from .errors import DepositTokenError

__all__ = ["DepositTokenError"]
