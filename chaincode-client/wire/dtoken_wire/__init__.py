"""The wire contract between the bank SDK (``dtoken``) and the deposit-token chaincode.

Owns: what crosses the wire and is stored, written once for both sides: the transient key,
canonical JSON, the timestamp format, status enums, limits, the error-code table and one frozen
dataclass per request. Must not: import anything of the project (an import-linter contract
keeps it so), or anything outside the standard library.
"""
