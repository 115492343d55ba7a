"""The module the chaincode server launches.

``python -m fabshim serve deposit_token.chaincode:chaincode`` runs :data:`chaincode`, a
``ContractChaincode`` holding the :class:`~deposit_token.contract.DepositTokenContract`.
Importing it reads no environment: the server's MSP id and secret are read at the first
transaction (``DTOKEN_BANK_MSP``, ``DTOKEN_SECRET_FILE``).
"""

from __future__ import annotations

from fabcontract import ContractChaincode

from .contract import DepositTokenContract

__all__ = ["chaincode"]

chaincode = ContractChaincode(DepositTokenContract(), title="deposit-token", version="0.1.0")
