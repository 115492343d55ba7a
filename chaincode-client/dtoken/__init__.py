"""The bank SDK and the ``dtoken`` CLI for member banks of the deposit-token network.

This package owns the domain side of the client: a bank's typed operations
(accounts, mint, burn, transfers, settlement, audit) on top of the generic
``fabgateway`` client, and the operator CLI. It never imports the chaincode side.
"""
