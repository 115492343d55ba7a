"""Bring a consortium Fabric network up from data, natively, without Docker.

This package owns the network side of the project: the consortium model loaded
from ``config/`` (banks, regulator, orderers, ports, policies), the crypto
material (CAs, MSPs, TLS), the channel configuration, the native node processes
(orderers, peers, chaincode servers) and the chaincode lifecycle. It must not
know the chaincode's business rules, and the client side never imports it.
"""
